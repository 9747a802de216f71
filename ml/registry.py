"""MLflow logging, registration and promotion. The caller sets the tracking URI first.

Promotion moves the registry alias `champion`; scoring always loads `models:/<name>@champion`.
A version that fails its gate stays registered, tagged with why it was rejected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from ml.evaluation import check_gate, gate_params
from ml.segmentation import SegmenterFit

CHAMPION = "champion"
SEGMENTER = "customer_segmenter"


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    promoted: bool
    gate_failures: list[str]
    champion_version: str | None


def log_segmenter(experiment_id: str, fit: SegmenterFit, features: pd.DataFrame,
                  data_window: dict[str, str],
                  gate: dict[str, tuple[str, float]]) -> Registered:
    """Log a fitted segmenter with its metrics, gate and plot; register it; promote if it passes."""
    metrics = fit.metrics
    failures = check_gate(metrics, gate)
    with mlflow.start_run(experiment_id=experiment_id, run_name="customer_segmenter") as run:
        mlflow.log_params({"algorithm": "kmeans", "k": fit.k,
                           "k_range": f"{min(fit.silhouette_by_k)}-{max(fit.silhouette_by_k)}",
                           "features": ",".join(features.columns), **gate_params(gate),
                           **{f"data.{key}": value for key, value in data_window.items()}})
        mlflow.log_metrics({**metrics,
                            **{f"silhouette_k{k}": v for k, v in fit.silhouette_by_k.items()}})
        mlflow.log_dict({str(k): v for k, v in fit.cluster_names.items()}, "cluster_names.json")
        mlflow.log_table(fit.profiles.reset_index(), "cluster_profiles.json")
        mlflow.log_figure(profile_plot(fit), "cluster_profiles.png")
        info = mlflow.sklearn.log_model(
            fit.pipeline, name="model", registered_model_name=SEGMENTER,
            signature=infer_signature(features, fit.labels), input_example=features.head(5),
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(SEGMENTER, version, "cluster_names",
                                 json.dumps({str(k): v for k, v in fit.cluster_names.items()}))
    if failures:
        client.set_model_version_tag(SEGMENTER, version, "rejected", "; ".join(failures))
    else:
        client.set_registered_model_alias(SEGMENTER, CHAMPION, version)
        client.set_model_version_tag(SEGMENTER, version, "promoted", "passed quality gate")
    return Registered(SEGMENTER, version, run.info.run_id, not failures, failures,
                      champion_version(SEGMENTER))


def champion_version(name: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def load_champion_segmenter() -> tuple[object, str, dict[int, str]]:
    """The champion pipeline, its version and its cluster names."""
    version = MlflowClient().get_model_version_by_alias(SEGMENTER, CHAMPION)
    model = mlflow.sklearn.load_model(f"models:/{SEGMENTER}@{CHAMPION}")
    names = {int(k): v for k, v in json.loads(version.tags.get("cluster_names", "{}")).items()}
    return model, str(version.version), names


def profile_plot(fit: SegmenterFit) -> plt.Figure:
    """Cluster size and mean recency, frequency and monetary value, one panel each."""
    profiles = fit.profiles.rename(index=fit.cluster_names)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, column in zip(axes, ["share", "recency_days", "frequency", "monetary"], strict=True):
        profiles[column].plot.barh(ax=ax, color="#4c72b0")
        ax.set_title(column)
    fig.suptitle(f"customer_segmenter: {fit.k} clusters, silhouette "
                 f"{fit.silhouette_by_k[fit.k]:.3f}")
    fig.tight_layout()
    return fig
