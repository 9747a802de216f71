import datetime as dt

import dagster as dg
import pandas as pd

from dagster_project.resources import MlflowResource, WarehouseResource

SEGMENTER_EXPERIMENT = "customer_segmenter"


@dg.asset(
    key=["ml", "customer_clusters"],
    deps=[dg.AssetKey(["marts", "customer_rfm"])],
    group_name="ml",
    kinds={"scikit-learn", "mlflow", "duckdb"},
    pool="duckdb",
)
def customer_clusters(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                      mlflow: MlflowResource) -> dg.MaterializeResult:
    """Each customer's RFM cluster from the champion `customer_segmenter`, one row per customer."""
    from ml.evaluation import SEGMENTER_GATE
    from ml.features import rfm_features
    from ml.registry import load_champion_segmenter, log_segmenter
    from ml.segmentation import fit_segmenter

    rfm = warehouse.warehouse.query_df(
        "select customer_id, as_of_date, recency_days, frequency, monetary "
        "from marts.customer_rfm order by customer_id"
    )
    features = rfm_features(rfm)
    fit = fit_segmenter(features)
    experiment_id = mlflow.experiment_id(SEGMENTER_EXPERIMENT)
    as_of = str(rfm["as_of_date"].max().date()) if len(rfm) else ""
    registered = log_segmenter(experiment_id, fit, features,
                               {"as_of_date": as_of, "n_customers": str(len(features))},
                               SEGMENTER_GATE)
    if registered.promoted:
        context.log.info(f"{registered.name} v{registered.version} passed its gate: champion")
    else:
        context.log.warning(f"{registered.name} v{registered.version} rejected: "
                            f"{'; '.join(registered.gate_failures)}")
    if registered.champion_version is None:
        raise dg.Failure(
            f"No {registered.name}@champion exists and v{registered.version} failed its gate "
            f"({'; '.join(registered.gate_failures)}); nothing can be scored."
        )

    model, version, names = load_champion_segmenter()
    labels = model.predict(features)
    scored = pd.DataFrame({
        "customer_id": features.index,
        "cluster_id": labels.astype(int),
        "cluster_name": [names.get(int(label), f"cluster {label}") for label in labels],
        "model_name": registered.name,
        "model_version": version,
        "scored_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    })
    warehouse.warehouse.replace_table("ml.customer_clusters", scored)

    mix = scored.groupby("cluster_name").size().sort_values(ascending=False)
    return dg.MaterializeResult(metadata={
        "rows": dg.MetadataValue.int(len(scored)),
        "model_version": dg.MetadataValue.text(version),
        "trained_version": dg.MetadataValue.text(registered.version),
        "promoted": dg.MetadataValue.bool(registered.promoted),
        "silhouette": dg.MetadataValue.float(fit.metrics["silhouette"]),
        "k": dg.MetadataValue.int(fit.k),
        "cluster_mix": dg.MetadataValue.md(
            "| cluster | customers |\n|---|---|\n"
            + "\n".join(f"| {name} | {n} |" for name, n in mix.items())),
        "cluster_profiles": dg.MetadataValue.md(
            fit.profiles.rename(index=fit.cluster_names).round(2).to_markdown()),
    })
