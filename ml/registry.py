"""MLflow logging, registration and promotion. The caller sets the tracking URI first.

Promotion moves the registry alias `champion`; scoring always loads `models:/<name>@champion`.
A version that fails its gate stays registered, tagged with why it was rejected.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import sklearn
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema

from core.plots import png_bytes
from ml.clv import HoldoutReport, LifetimeValueModel, churn_identified
from ml.evaluation import check_gate, gate_params, paired_bootstrap_ratio
from ml.segmentation import SegmenterFit

CHAMPION = "champion"
SEGMENTER = "customer_segmenter"
LIFETIME_VALUE = "customer_lifetime_value"
CENTROIDS_ARTIFACT = "centroids.json"


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    promoted: bool
    gate_failures: list[str]
    champion_version: str | None
    # the run's plots as logged to MLflow (artifact file -> PNG), for the asset's metadata too
    plots: dict[str, bytes] = field(default_factory=dict)


# the plots each model's run logs (artifact files), drawn once as PNG bytes (core/plots.py)
CLUSTER_PROFILES_PNG = "cluster_profiles.png"
HOLDOUT_PNG = "holdout_predicted_vs_actual.png"
ALIVE_CALIBRATION_PNG = "holdout_alive_calibration.png"
MODEL_VS_BASELINES_PNG = "model_vs_baselines.png"


def log_plots(plots: dict[str, bytes]) -> None:
    """Log PNGs (artifact file -> bytes) to the active MLflow run, as `mlflow.log_figure`
    would, from bytes already rendered."""
    with tempfile.TemporaryDirectory() as folder:
        for name, png in plots.items():
            path = Path(folder) / name
            path.write_bytes(png)
            mlflow.log_artifact(str(path))


def champion_plots(name: str, files: Iterable[str]) -> tuple[str, dict[str, bytes]] | None:
    """The champion's version and those of `files` its MLflow run logged (file -> bytes), or
    None without a champion: what a scoring run, which draws nothing, shows."""
    try:
        version = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    found: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as folder:
        for file in files:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=version.run_id, artifact_path=file, dst_path=folder)
            except (MlflowException, OSError):  # an older run without that plot
                continue
            found[file] = Path(path).read_bytes()
    return str(version.version), found


def run_name(model: str, data_window: dict[str, str]) -> str:
    """An MLflow run's name: the model and the data it learned from, e.g. `product_recommender
    2025-11-01..2026-10-31` (the runs list shows it; the experiment's name says nothing more)."""
    first = data_window.get("first_order")
    last = data_window.get("last_order") or data_window.get("last_day")
    if first and last:
        return f"{model} {first}..{last}"
    if data_window.get("as_of_date"):
        return f"{model} as of {data_window['as_of_date']}"
    return model


def log_training_data(table: str, frame: pd.DataFrame, data_window: dict[str, str],
                      context: str = "training") -> None:
    """The table the active run learned from, as an MLflow dataset: where it lives (the
    warehouse), its columns and types, its size and data window; never its rows (they hold
    customer ids), and no scan of them: `mlflow.data.from_pandas` infers the schema from every
    value (69 s for 10M order lines), this from a sample."""
    import hashlib

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from core.settings import HOME

    sample = pd.concat([frame.head(5_000), frame.tail(5_000)])
    schema = infer_signature(sample).inputs if len(frame) else None
    fingerprint = hashlib.sha256(pd.util.hash_pandas_object(sample, index=False).to_numpy())
    fingerprint.update(f"{table} {len(frame)} {sorted(data_window.items())}".encode())
    dataset = MetaDataset(resolve_dataset_source(str(HOME.warehouse)), name=table,
                          digest=fingerprint.hexdigest()[:12], schema=schema)
    mlflow.log_input(dataset, context=context, tags={
        "rows": str(len(frame)), **{f"data.{key}": value for key, value in data_window.items()}})


def log_curve(name: str, values: dict[int, float]) -> None:
    """A metric over a range (e.g. the silhouette of each k) as one metric with steps: the
    MLflow UI draws it as a curve, not one single-bar chart per value."""
    for step, value in sorted(values.items()):
        if not math.isnan(value):
            mlflow.log_metric(name, value, step=int(step))


def log_segmenter(experiment_id: str, fit: SegmenterFit, features: pd.DataFrame,
                  data_window: dict[str, str], gate: dict[str, tuple[str, float]],
                  extra_metrics: dict[str, float] | None = None) -> Registered:
    """Log a fitted segmenter with its metrics, gate and plot; register it; promote if it passes.

    The version carries its cluster names, its label-to-key map and its centroids as tags, so a
    scorer (and the next retrain's key matching) needs nothing but the registry."""
    metrics = {**fit.metrics, **(extra_metrics or {})}
    failures = check_gate(metrics, gate)
    with mlflow.start_run(experiment_id=experiment_id,
                          run_name=run_name(SEGMENTER, data_window)) as run:
        log_training_data("marts.customer_features", features, data_window)
        mlflow.log_params({"algorithm": "kmeans", "k": fit.k,
                           "k_range": f"{min(fit.silhouette_by_k)}-{max(fit.silhouette_by_k)}",
                           "features": ",".join(features.columns), **gate_params(gate),
                           **{f"data.{key}": value for key, value in data_window.items()}})
        mlflow.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})
        log_curve("silhouette_by_k", fit.silhouette_by_k)
        # the centroids (features x clusters) are an artifact, not a version tag: a scorer and
        # the next retrain's key matching read them from the version's run
        mlflow.log_dict({str(k): v for k, v in fit.centroids.round(6).to_dict(orient="index")
                         .items()}, CENTROIDS_ARTIFACT)
        mlflow.log_dict({str(k): v for k, v in fit.cluster_names.items()}, "cluster_names.json")
        mlflow.log_table(fit.profiles.rename(index=fit.cluster_names).reset_index(),
                         "cluster_profiles.json")
        plots = {CLUSTER_PROFILES_PNG: png_bytes(profile_plot(fit))}
        log_plots(plots)
        info = mlflow.sklearn.log_model(
            fit.pipeline, name="model", registered_model_name=SEGMENTER,
            signature=infer_signature(features, fit.labels), input_example=features.head(5),
            # named, not inferred: inference imports the model in a subprocess (about 8 s)
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", "pandas", "numpy"],
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for tag, value in (("cluster_names", {str(k): v for k, v in fit.cluster_names.items()}),
                       ("cluster_keys", {str(k): v for k, v in fit.cluster_keys.items()})):
        client.set_model_version_tag(SEGMENTER, version, tag, json.dumps(value, default=str))
    return promote_if_passed(SEGMENTER, version, run.info.run_id, failures, plots)


@dataclass(frozen=True)
class ChampionSegmenter:
    model: object
    version: str
    names: dict[int, str]  # stable key -> name
    keys: dict[int, int]  # raw label -> stable key
    centroids: pd.DataFrame  # stable key -> feature means


def champion_segmenter() -> ChampionSegmenter | None:
    """The champion segmenter with its names, keys and centroids, or None before the first."""
    try:
        version = MlflowClient().get_model_version_by_alias(SEGMENTER, CHAMPION)
    except MlflowException:
        return None
    tags = version.tags
    names = {int(k): v for k, v in json.loads(tags.get("cluster_names", "{}")).items()}
    keys = {int(k): int(v) for k, v in json.loads(tags.get("cluster_keys", "{}")).items()}
    # versions registered before the centroids became an artifact carry them as a tag
    stored = (json.loads(tags["centroids"]) if "centroids" in tags else
              mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{CENTROIDS_ARTIFACT}"))
    centroids = pd.DataFrame.from_dict(stored, orient="index")
    centroids.index = centroids.index.astype(int)
    model = mlflow.sklearn.load_model(f"models:/{SEGMENTER}@{CHAMPION}")
    return ChampionSegmenter(model, str(version.version), names, keys or {k: k for k in names},
                             centroids)


def promote_if_passed(name: str, version: str, run_id: str, failures: list[str],
                      plots: dict[str, bytes] | None = None) -> Registered:
    """Move `champion` to the version when its gate passed; otherwise tag why it was rejected.
    `plots`: those its run logged, handed on to the caller."""
    client = MlflowClient()
    if failures:
        client.set_model_version_tag(name, version, "rejected", "; ".join(failures))
    else:
        client.set_registered_model_alias(name, CHAMPION, version)
        client.set_model_version_tag(name, version, "promoted", "passed quality gate")
    return Registered(name, version, run_id, not failures, failures, champion_version(name),
                      plots or {})


class LifetimeValuePyfunc(mlflow.pyfunc.PythonModel):
    """The fitted BG/NBD + Gamma-Gamma model as an MLflow pyfunc: input one row per customer
    (frequency, recency, T in weeks, monetary_value), output P(alive), expected purchases and
    expected value over `horizon_weeks`."""

    def __init__(self, model: LifetimeValueModel, horizon_weeks: float):
        self.model = model
        self.horizon_weeks = horizon_weeks

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.score(model_input, self.horizon_weeks).reset_index(drop=True)


SUMMARY_COLUMNS = ["frequency", "recency", "T", "monetary_value"]


def log_lifetime_value(experiment_id: str, model: LifetimeValueModel, report: HoldoutReport,
                       summary: pd.DataFrame, horizon_weeks: float, data_window: dict[str, str],
                       gate: dict[str, tuple[str, float]],
                       extra_metrics: dict[str, float] | None = None) -> Registered:
    """Log the holdout evaluation and the model fitted on all history; register; promote if
    the holdout evaluation passes the gate. `extra_metrics` (e.g. the churn AUC against the
    sample store's personas) are logged, not gated."""
    failures = check_gate(report.metrics, gate)
    pyfunc = LifetimeValuePyfunc(model, horizon_weeks)
    example = summary[SUMMARY_COLUMNS].head(5).astype(float)
    churn = churn_identified(model.purchases)
    with mlflow.start_run(experiment_id=experiment_id,
                          run_name=run_name(LIFETIME_VALUE, data_window)) as run:
        log_training_data("marts.fct_orders", summary[SUMMARY_COLUMNS], data_window)
        mlflow.log_params({"purchase_model": model.purchase_model,
                           "spend_model": "Gamma-Gamma (Fader & Hardie 2013)",
                           "implementation": "ml/clv.py (scipy)", "time_unit": "week",
                           "churn": churn or "identified",
                           "horizon_weeks": round(horizon_weeks, 3), **gate_params(gate),
                           **{f"data.{key}": value for key, value in data_window.items()}})
        mlflow.log_metrics({**report.metrics, **model.params(), **(extra_metrics or {})})
        mlflow.log_table(report.by_frequency.reset_index(), "holdout_by_frequency.json")
        plots = {HOLDOUT_PNG: png_bytes(holdout_plot(report))}
        if not report.by_alive_decile.empty:
            mlflow.log_table(report.by_alive_decile.reset_index(),
                             "holdout_by_alive_decile.json")
            plots[ALIVE_CALIBRATION_PNG] = png_bytes(alive_calibration_plot(report))
        log_plots(plots)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=pyfunc, registered_model_name=LIFETIME_VALUE,
            signature=infer_signature(example, pyfunc.predict(None, example)),
            input_example=example, pip_requirements=["scipy", "pandas", "numpy"],
        )
    return promote_if_passed(LIFETIME_VALUE, str(info.registered_model_version),
                             run.info.run_id, failures, plots)


def load_champion(name: str):
    """The champion pyfunc of a registered model and its version."""
    version = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    return mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}"), str(version.version)


def holdout_plot(report: HoldoutReport) -> plt.Figure:
    """Mean predicted vs actual holdout purchases per calibration frequency (the BG/NBD check)."""
    frame = report.by_frequency
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(frame.index, frame["actual"], "o-", label="actual", color="#4c72b0")
    ax.plot(frame.index, frame["predicted"], "s--", label="predicted", color="#dd8452")
    ax.set_xlabel("repeat purchases in the calibration period (7 = 7 or more)")
    ax.set_ylabel("mean purchases in the holdout")
    m = report.metrics
    ax.set_title(f"holdout {m['holdout_weeks']:.0f} weeks: {m['holdout_purchases_predicted']:.0f} "
                 f"predicted, {m['holdout_purchases_actual']:.0f} actual")
    ax.legend()
    fig.tight_layout()
    return fig


def alive_calibration_plot(report: HoldoutReport) -> plt.Figure:
    """Predicted vs actual share of customers with no purchase in the holdout, by decile of
    P(alive): the churn part of the lifetime-value gate."""
    frame = report.by_alive_decile
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(frame.index, frame["actual_no_purchase"], "o-", label="actual", color="#4c72b0")
    ax.plot(frame.index, frame["predicted_no_purchase"], "s--", label="predicted",
            color="#dd8452")
    ax.set_xlabel("decile of P(alive) at the end of calibration (1 = least likely alive)")
    ax.set_ylabel("share with no purchase in the holdout")
    ax.set_ylim(0, 1)
    ax.set_title(f"P(alive) calibration: mean gap "
                 f"{report.metrics['holdout_no_purchase_mean_gap']:.3f}")
    ax.legend()
    fig.tight_layout()
    return fig


def champion_params(name: str) -> tuple[str, dict[str, str]] | None:
    """The champion's version and the parameters its MLflow run logged, or None."""
    try:
        version = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return str(version.version), mlflow.get_run(version.run_id).data.params


def champion_tags(name: str) -> dict[str, str] | None:
    """The champion version's tags (what ml/retraining.py decides on), or None."""
    try:
        return dict(MlflowClient().get_model_version_by_alias(name, CHAMPION).tags)
    except MlflowException:
        return None


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def champion_version(name: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def profile_plot(fit: SegmenterFit) -> plt.Figure:
    """Cluster size and the profile columns that tell clusters apart, one panel each."""
    profiles = fit.profiles.rename(index=fit.cluster_names)
    columns = [c for c in ("share", "n_orders", "net_revenue", "n_sessions_lifetime",
                           "days_since_last_visit", "discount_share_of_spend",
                           "gift_season_session_share", "email_open_rate_lifetime")
               if c in profiles]
    # the cluster names once per row of panels (shared y): 1300 x 600 px, 30 kB as a palette
    # PNG for the sample store's 9 clusters (with the names beside every panel: 1800 x 700 px,
    # 98 kB; 259 kB as RGBA)
    fig, axes = plt.subplots(2, (len(columns) + 1) // 2, figsize=(13, 6), sharey=True,
                             squeeze=False)
    for ax, column in zip(axes.flat, columns, strict=False):
        profiles[column].plot.barh(ax=ax, color="#4c72b0")
        ax.set_title(column, fontsize=9)
        ax.set_ylabel("")
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(columns):]:
        ax.set_visible(False)
    fig.suptitle(f"customer_segmenter: {fit.k} clusters, silhouette "
                 f"{fit.silhouette_by_k[fit.k]:.3f}")
    fig.tight_layout()
    return fig


PRODUCT_RECOMMENDER = "product_recommender"


RECOMMENDER_INPUT = Schema([ColSpec("string", "customer_id"), ColSpec("string", "product_id"),
                            ColSpec("double", "n_orders"),
                            ColSpec("double", "recency", required=False),
                            ColSpec("double", "engagement", required=False),
                            # the dated history a learned ranker scores from (rec.Dated)
                            *[ColSpec("double", column, required=False)
                              for column in ("d30", "d90", "last_seen", "first_seen",
                                             "c_orders")]])


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """The fitted recommender as an MLflow pyfunc. Input: one row per customer and product
    (customer_id, product_id, n_orders, and optionally recency: the orders decayed by age, which
    TIFU-KNN scores from, engagement: the weighted views and cart adds, and the dated history
    a learned ranker scores from: d30, d90, last_seen, first_seen, c_orders, see
    `ml.recommendation.Dated`); output: the top-n products per customer (customer_id, rank,
    product_id, score, reason)."""

    def __init__(self, model, products: pd.Index, n: int = 10,
                 purchase_weight: float | None = None):
        self.model = model
        self.products = products
        self.n = n
        self.purchase_weight = purchase_weight

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from scipy import sparse

        from ml.recommendation import PURCHASE_WEIGHT, Dated, Interactions, recommend

        customers = pd.Index(model_input["customer_id"].astype(str).unique(), name="customer_id")
        cols = self.products.get_indexer(model_input["product_id"].astype(str))
        known = cols >= 0
        rows = customers.get_indexer(model_input["customer_id"].astype(str))
        shape = (len(customers), len(self.products))
        if "engagement" not in model_input:
            model_input = model_input.assign(engagement=0.0)
        if "recency" not in model_input:  # without ages, every order weighs the same
            model_input = model_input.assign(recency=model_input["n_orders"])
        matrix, recency, engagement = (sparse.csr_matrix(
            (model_input[column].to_numpy(float)[known], (rows[known], cols[known])), shape=shape)
            for column in ("n_orders", "recency", "engagement"))
        matrix.eliminate_zeros()
        recency.eliminate_zeros()
        weight = getattr(self, "purchase_weight", None) or PURCHASE_WEIGHT
        dated = (Dated.from_pairs(model_input[known], rows[known], cols[known], shape)
                 if all(column in model_input for column in Dated.COLUMNS) else None)
        data = Interactions(matrix, customers, self.products, recency=recency,
                            engagement=engagement, purchase_weight=weight, dated=dated)
        return recommend(self.model, data, n=self.n)


def log_recommender(experiment_id: str, model, products: pd.Index, evaluation: pd.DataFrame,
                    shipped: str, data_window: dict[str, str],
                    gate: dict[str, tuple[str, float]], params: dict[str, str] | None = None,
                    tables: dict[str, pd.DataFrame] | None = None,
                    purchase_weight: float | None = None,
                    champion_row: str | None = None,
                    per_customer: dict[str, np.ndarray] | None = None,
                    training_lines: pd.DataFrame | None = None) -> Registered:
    """Log the offline comparison (model vs baselines) and the model fitted on all history;
    register; promote if it passes `gate`: for RECOMMENDER_GATE, the model beat the strongest
    baseline by a margin whose paired bootstrap 95 % interval lies above it (`per_customer`:
    each row's NDCG@10 per held-out customer, as `rec.evaluate` gives them) and does not fall
    below the current champion (`champion_row`: the champion's row of `evaluation`). `params`
    and `tables` (e.g. the chosen configuration and the validation table it was chosen on) are
    logged too."""
    ours = evaluation.loc[shipped]
    baselines = evaluation.drop(index=[shipped, *([champion_row] if champion_row else [])])
    best_name = baselines["ndcg@10"].idxmax() if baselines["ndcg@10"].notna().any() else None
    best_baseline = float(baselines["ndcg@10"].max()) if best_name is not None else 0.0
    champion_ndcg = float(evaluation.loc[champion_row, "ndcg@10"]) if champion_row else None
    metrics = {**{k.replace("@", "_at_"): float(v) for k, v in ours.items()},
               "best_baseline_ndcg_at_10": best_baseline,
               "ndcg_lift_over_best_baseline": float(ours["ndcg@10"] / best_baseline)
               if best_baseline > 0 else 0.0,
               # nothing to fall below without a champion
               "ndcg_vs_current_champion": 1.0 if not champion_ndcg
               else float(ours["ndcg@10"] / champion_ndcg)}
    if (per_customer and shipped in per_customer and best_name in per_customer
            and len(per_customer[shipped])):  # no held-out customer: no interval, no pass
        low, high = paired_bootstrap_ratio(per_customer[shipped], per_customer[best_name])
        metrics.update({"ndcg_lift_ci95_low": low, "ndcg_lift_ci95_high": high})
    failures = check_gate({**metrics}, gate)
    pyfunc = RecommenderPyfunc(model, products, purchase_weight=purchase_weight)
    example = pd.DataFrame({"customer_id": ["example"], "product_id": [str(products[0])],
                            "n_orders": [1.0], "recency": [1.0], "engagement": [0.0],
                            # one order today (the learned ranker's dated history)
                            "d30": [1.0], "d90": [1.0], "last_seen": [1.0],
                            "first_seen": [1.0], "c_orders": [1.0]})
    with mlflow.start_run(experiment_id=experiment_id,
                          run_name=run_name(PRODUCT_RECOMMENDER, data_window)) as run:
        if training_lines is not None:
            log_training_data("marts.fct_order_items", training_lines, data_window)
        settings = ("similar_weight", "own_weight", "own_blend", "shrinkage",  # RepeatThenSimilar
                    "alpha", "neighbours", "pool_size",  # TifuKnn
                    "windows", "window_days", "max_customers", "trained_on")  # LearnedRanker
        mlflow.log_params({"model": type(model).__name__,
                           **{name: getattr(model, name) for name in settings
                              if hasattr(model, name)},
                           "use_events": getattr(model, "use_events", False),
                           "max_per_category": getattr(model, "max_per_category", None),
                           "n_products": len(products),
                           **(params or {}), **gate_params(gate),
                           **{f"data.{key}": value for key, value in data_window.items()}})
        mlflow.log_metrics(metrics)
        mlflow.log_table(evaluation.reset_index(), "offline_evaluation.json")
        for name, table in (tables or {}).items():
            mlflow.log_table(table.reset_index(), f"{name}.json")
        plots = {MODEL_VS_BASELINES_PNG: png_bytes(comparison_plot(evaluation, shipped))}
        log_plots(plots)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=pyfunc, registered_model_name=PRODUCT_RECOMMENDER,
            signature=ModelSignature(RECOMMENDER_INPUT,
                                     infer_signature(example, pyfunc.predict(None, example)
                                                     ).outputs),
            input_example=example,
            pip_requirements=["scipy", "pandas", "numpy", "scikit-learn"])
    return promote_if_passed(PRODUCT_RECOMMENDER, str(info.registered_model_version),
                             run.info.run_id, failures, plots)


def comparison_plot(evaluation: pd.DataFrame, shipped: str) -> plt.Figure:
    """NDCG@10 and hit rate@10 of the shipped model beside each baseline."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
    colors = ["#dd8452" if name == shipped else "#4c72b0" for name in evaluation.index]
    for ax, metric in zip(axes, ["ndcg@10", "hit_rate@10"], strict=True):
        evaluation[metric].plot.barh(ax=ax, color=colors)
        ax.set_title(metric)
    fig.tight_layout()
    return fig
