import datetime as dt

import dagster as dg
import pandas as pd

from dagster_project.resources import HomeResource, MlflowResource, WarehouseResource

SEGMENTER_EXPERIMENT = "customer_segmenter"


@dg.asset(
    key=["ml", "customer_clusters"],
    deps=[dg.AssetKey(["marts", "customer_360"])],
    group_name="ml",
    kinds={"scikit-learn", "mlflow", "duckdb"},
    pool="duckdb",
)
def customer_clusters(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                      mlflow: MlflowResource, home: HomeResource) -> dg.MaterializeResult:
    """Each customer who visited or bought, in a behaviour cluster of the champion
    `customer_segmenter`: a stable cluster key, a readable name and the model version."""
    from ml.evaluation import SEGMENTER_GATE, sample_store_agreement
    from ml.features import PROFILE_COLUMNS, segmentation_features, segmentation_frame
    from ml.registry import SEGMENTER, champion_segmenter, log_segmenter
    from ml.segmentation import fit_segmenter

    frame = segmentation_frame(warehouse.warehouse.query_df(
        "select * from marts.customer_360 order by customer_id"))
    features = segmentation_features(frame)
    experiment_id = mlflow.experiment_id(SEGMENTER_EXPERIMENT)
    champion = champion_segmenter()
    fit = fit_segmenter(features, profile=frame[PROFILE_COLUMNS],
                        previous_centroids=champion.centroids if champion else None)
    agreement = sample_store_agreement(home.home.generator / "personas.csv", fit.keys, frame)
    as_of = str(warehouse.warehouse.query_df(
        "select max(as_of_date) as d from marts.customer_rfm")["d"][0])[:10]
    registered = log_segmenter(experiment_id, fit, features,
                               {"as_of_date": as_of, "n_customers": str(len(features))},
                               SEGMENTER_GATE, extra_metrics=agreement)
    _log_promotion(context, registered)

    champion = champion_segmenter()
    assert champion is not None  # _log_promotion fails the step when there is none
    keys = pd.Series(champion.model.predict(features)).map(champion.keys).to_numpy()
    scored = pd.DataFrame({
        "customer_id": features.index,
        "cluster_key": keys.astype(int),
        "cluster_name": [champion.names.get(int(key), f"Cluster {key}") for key in keys],
        "model_name": SEGMENTER,
        "model_version": champion.version,
        "scored_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    })
    warehouse.warehouse.replace_table("ml.customer_clusters", scored)

    mix = scored.groupby("cluster_name").size().sort_values(ascending=False)
    metadata = {
        "rows": dg.MetadataValue.int(len(scored)),
        "model_version": dg.MetadataValue.text(champion.version),
        "trained_version": dg.MetadataValue.text(registered.version),
        "promoted": dg.MetadataValue.bool(registered.promoted),
        "mlflow_run_id": dg.MetadataValue.text(registered.run_id),
        "mlflow_experiment": dg.MetadataValue.text(SEGMENTER_EXPERIMENT),
        "silhouette": dg.MetadataValue.float(fit.metrics["silhouette"]),
        "k": dg.MetadataValue.int(fit.k),
        "cluster_mix": dg.MetadataValue.md(
            "| cluster | customers |\n|---|---|\n"
            + "\n".join(f"| {name} | {n} |" for name, n in mix.items())),
        "cluster_profiles": dg.MetadataValue.md(
            fit.profiles.rename(index=fit.cluster_names).round(2).to_markdown()),
    }
    metadata.update({name: dg.MetadataValue.float(value) for name, value in agreement.items()})
    return dg.MaterializeResult(metadata=metadata)


LIFETIME_VALUE_EXPERIMENT = "customer_lifetime_value"
HORIZON_DAYS = 90


@dg.asset(
    key=["ml", "customer_clv"],
    deps=[dg.AssetKey(["marts", "fct_orders"]), dg.AssetKey(["marts", "customer_rfm"])],
    group_name="ml",
    kinds={"scipy", "mlflow", "duckdb"},
    pool="duckdb",
)
def customer_clv(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 mlflow: MlflowResource) -> dg.MaterializeResult:
    """Each buyer's probability of being alive, expected purchases and expected value over the
    next 90 days, from the champion `customer_lifetime_value` (BG/NBD + Gamma-Gamma)."""
    from ml import clv
    from ml.evaluation import LIFETIME_VALUE_GATE
    from ml.registry import (
        LIFETIME_VALUE,
        SUMMARY_COLUMNS,
        champion_version,
        load_champion,
        log_lifetime_value,
    )

    # the orders RFM counts: completed, with a customer and a positive net amount
    orders = warehouse.warehouse.query_df("""
        select customer_id, order_date as date, net_revenue as amount
        from marts.fct_orders
        where is_completed and customer_id is not null and net_revenue > 0
    """)
    as_of = warehouse.warehouse.query_df(
        "select max(as_of_date) as as_of from marts.customer_rfm")["as_of"][0]
    if orders.empty or pd.isna(as_of):
        raise dg.Failure("No completed orders in marts.fct_orders: nothing to model.")
    end = pd.Timestamp(as_of) - pd.Timedelta(days=1)  # the last day with data
    span = (end - pd.to_datetime(orders["date"]).min()).days
    holdout_days = min(HORIZON_DAYS, span // 3)
    calibration_end = end - pd.Timedelta(days=holdout_days)
    summary = clv.rfm_summary(orders, end)
    too_thin = clv.not_trainable_reason(orders, calibration_end, span)
    registered = None
    if too_thin is None:
        _, report = clv.evaluate_holdout(orders, calibration_end, end)
        model = clv.fit_lifetime_value(summary)  # the version to ship: fitted on all history
        registered = log_lifetime_value(
            mlflow.experiment_id(LIFETIME_VALUE_EXPERIMENT), model, report, summary,
            HORIZON_DAYS / 7,
            {"first_order": str(pd.to_datetime(orders["date"]).min().date()),
             "calibration_end": str(calibration_end.date()), "last_day": str(end.date()),
             "n_customers": str(len(summary))},
            LIFETIME_VALUE_GATE)
        _log_promotion(context, registered)
    else:
        mlflow.configure()
        context.log.warning(f"{LIFETIME_VALUE} not trained: {too_thin}.")
        if champion_version(LIFETIME_VALUE) is None:
            # a young store: no model yet, no predictive segments, not a failed run
            warehouse.warehouse.replace_table("ml.customer_clv", clv.empty_scores())
            return dg.MaterializeResult(metadata={
                "rows": dg.MetadataValue.int(0),
                "not_trained": dg.MetadataValue.text(too_thin)})

    champion, version = load_champion(LIFETIME_VALUE)
    scores = champion.predict(summary[SUMMARY_COLUMNS].astype(float))
    scored = pd.DataFrame({
        "customer_id": summary.index.astype(str),
        "as_of_date": pd.Timestamp(as_of),
        "n_repeat_purchases": summary["frequency"].to_numpy().astype(int),
        "recency_weeks": summary["recency"].to_numpy().round(2),
        "tenure_weeks": summary["T"].to_numpy().round(2),
        "avg_repeat_spend": summary["monetary_value"].to_numpy().round(2),
        "probability_alive": scores["probability_alive"].to_numpy().round(4),
        "expected_purchases_90d": scores["expected_purchases"].to_numpy().round(4),
        "expected_spend_per_purchase": scores["expected_spend_per_purchase"].to_numpy().round(2),
        "expected_value_90d": scores["expected_value"].to_numpy().round(2),
        "model_name": LIFETIME_VALUE,
        "model_version": version,
        "scored_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    })
    warehouse.warehouse.replace_table("ml.customer_clv", scored)

    metadata = {
        "rows": dg.MetadataValue.int(len(scored)),
        "model_version": dg.MetadataValue.text(version),
        "expected_value_90d_total": dg.MetadataValue.float(float(scored["expected_value_90d"].sum())),
        "mean_probability_alive": dg.MetadataValue.float(float(scored["probability_alive"].mean())),
        "mlflow_experiment": dg.MetadataValue.text(LIFETIME_VALUE_EXPERIMENT),
    }
    if registered is None:
        metadata["not_trained"] = dg.MetadataValue.text(f"{too_thin}; scored with the champion")
        return dg.MaterializeResult(metadata=metadata)
    m = report.metrics
    return dg.MaterializeResult(metadata={
        **metadata,
        "trained_version": dg.MetadataValue.text(registered.version),
        "promoted": dg.MetadataValue.bool(registered.promoted),
        "mlflow_run_id": dg.MetadataValue.text(registered.run_id),
        "parameters": dg.MetadataValue.json({k: round(v, 4) for k, v in model.params().items()}),
        "holdout": dg.MetadataValue.md(
            f"{m['holdout_weeks']:.1f} weeks held out: {m['holdout_purchases_predicted']:.0f} "
            f"purchases predicted, {m['holdout_purchases_actual']:.0f} made; RMSE per customer "
            f"{m['holdout_rmse']:.3f} vs {m['holdout_rmse_baseline']:.3f} for the customer's own "
            f"past rate; Spearman {m['holdout_spearman']:.3f}\n\n"
            + report.by_frequency.round(3).to_markdown()),
    })


def _log_promotion(context: dg.AssetExecutionContext, registered) -> None:
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
