"""The segmenter and lifetime-value assets. A model version that fails its gate never fails
the run: the champion keeps scoring, and with no champion yet the table is written empty (no ML
or predictive segments), said so by the asset's non-blocking check `champion` (severity ERROR:
the output is absent; WARN: this run's version was rejected and the champion stays) and by a
warning in the run's logs. RFM and rule segments, recommendations, audiences and the published
copy carry on either way."""

import datetime as dt

import dagster as dg
import pandas as pd

from core import preload
from dagster_project.resources import HomeResource, MlflowResource, WarehouseResource

SEGMENTER_EXPERIMENT = "customer_segmenter"
CHAMPION_CHECK = "champion"


def mlflow_run_url(run_id: str) -> dg.MetadataValue:
    """A link to the MLflow run's page in the MLflow UI (`make mlflow`, or
    SEGMENTA_MLFLOW_UI_URL), shown as a link on the asset's materialization."""
    import os

    base = os.environ.get("SEGMENTA_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")
    return dg.MetadataValue.url(f"{base}/#/runs/{run_id}")


def rounded(figures: dict[str, float]) -> dict[str, dg.MetadataValue]:
    """Scores as metadata, rounded to 4 decimals; counts (`*_customers*`) as integers."""
    return {name: dg.MetadataValue.int(int(value)) if "customers" in name
            else dg.MetadataValue.float(round(float(value), 4)) for name, value in figures.items()}


# the largest PNG put inline in a materialization's metadata (Dagster's event log keeps it with
# every materialization, as base64: a third more). The plots are palette PNGs (core/plots.py):
# on the sample store cluster profiles 30 kB, CLV calibration 11 and 10 kB, recommender vs
# baselines 16 kB. A champion logged before them has RGBA PNGs, made palette PNGs here (its
# cluster profiles: 259 kB, 98 kB)
MAX_INLINE_PNG = 150_000


def plot_metadata(model: str, registered, plots: dict[str, tuple[str, str]]
                  ) -> dict[str, dg.MetadataValue]:
    """The model's plots as Markdown images: `plots` maps an MLflow artifact file to its
    metadata key and what it shows. A run that trained a version shows the PNGs it logged to
    MLflow (drawn once for both); a run that trained none shows the champion's, read from its
    MLflow run (a scoring run draws nothing)."""
    from core.plots import compact_png
    from dagster_project.plots import png_markdown
    from ml.registry import champion_plots

    if registered is not None and registered.plots:
        found = registered.plots
        source = (f"v{registered.version}, trained in this run"
                  + ("" if registered.promoted else ", rejected"))
    else:
        champion = champion_plots(model, plots)
        if champion is None:
            return {}
        version, found = champion
        found = {file: compact_png(png) for file, png in found.items()}
        source = f"champion v{version}, from its MLflow run"
    return {key: png_markdown(found[file], what, f"{what} ({source})")
            for file, (key, what) in plots.items()
            if file in found and len(found[file]) <= MAX_INLINE_PNG}


def champion_check_spec(key: list[str], model: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CHAMPION_CHECK, asset=dg.AssetKey(key), blocking=False,
        description=f"Scored by {model}@champion, a version that passed its quality gate "
                    "(ml/evaluation.py). Fails with severity WARN when this run's version was "
                    "rejected and the champion stays, ERROR when there is no champion and the "
                    "table is empty; never blocks what comes after.")


def champion_check(context: dg.AssetExecutionContext, model: str, registered,
                   scored_by: str | None, not_trained: str | None = None,
                   asset_key: list[str] | None = None) -> dg.AssetCheckResult:
    """The `champion` check of an ML asset, with a warning in the run's logs when it fails.

    `registered` is this run's version (None when none was trained, `not_trained` says why),
    `scored_by` the champion version that scored the table (None: the table is empty)."""
    if registered is not None and registered.promoted:
        context.log.info(f"{model} v{registered.version} passed its gate: champion")
    reasons = (not_trained if registered is None
               else "; ".join(registered.gate_failures) if not registered.promoted else "")
    trained = ("no version trained" if registered is None
               else f"v{registered.version} {'promoted' if registered.promoted else 'rejected'}")
    metadata = {"trained": dg.MetadataValue.text(trained),
                "champion_version": dg.MetadataValue.text(scored_by or "none")}
    if reasons:
        metadata["reason"] = dg.MetadataValue.text(reasons)
    if scored_by is None:
        description = f"no {model}@champion: {trained} ({reasons}); the table is empty"
        severity = dg.AssetCheckSeverity.ERROR
    elif reasons:
        description = f"{trained} ({reasons}); scored with the champion v{scored_by}"
        severity = dg.AssetCheckSeverity.WARN
    else:
        description, severity = f"scored with the champion v{scored_by}", None
    if severity is not None:
        context.log.warning(f"{model}: {description}")
    return dg.AssetCheckResult(
        check_name=CHAMPION_CHECK, passed=severity is None,
        severity=severity or dg.AssetCheckSeverity.ERROR, description=description,
        metadata=metadata, asset_key=asset_key)


@dg.asset(
    key=["ml", "customer_clusters"],
    deps=[dg.AssetKey(["marts", "customer_360"])],
    group_name="ml",
    kinds={"scikit-learn", "mlflow", "duckdb"},
    pool="duckdb",
    check_specs=[champion_check_spec(["ml", "customer_clusters"], "customer_segmenter")],
)
def customer_clusters(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                      mlflow: MlflowResource, home: HomeResource) -> dg.MaterializeResult:
    """Each customer who visited or bought, in a behaviour cluster of the champion
    `customer_segmenter`: a stable cluster key, a readable name and the model version. Empty
    (no ML segments) while there is no champion: see the check `champion`."""
    preload.wait()  # the background imports of these modules, if any, are done
    from ml import retraining
    from ml.evaluation import SEGMENTER_GATE, sample_store_agreement
    from ml.features import (
        PROFILE_COLUMNS,
        SEGMENTATION_COLUMNS,
        segmentation_features,
        segmentation_frame,
    )
    from ml.registry import (
        CLUSTER_PROFILES_PNG,
        SEGMENTER,
        champion_segmenter,
        champion_tags,
        log_segmenter,
        tag_version,
    )
    from ml.segmentation import empty_clusters, fit_segmenter

    plots = {CLUSTER_PROFILES_PNG: ("cluster_profiles_plot",
                                    "cluster profiles: size and the means that tell them apart")}

    # the columns it clusters on, not all 63 of the mart (at 1M customers 0.6 s instead of 3.3)
    columns = ", ".join(f'"{column}"' for column in SEGMENTATION_COLUMNS)
    frame = segmentation_frame(warehouse.warehouse.query_df(
        f"select {columns} from marts.customer_360 order by customer_id"))
    features = segmentation_features(frame)
    experiment_id = mlflow.experiment_id(SEGMENTER_EXPERIMENT)
    as_of = _as_of_date(warehouse)
    config = retraining.config_fingerprint({"features": list(features.columns)})
    decision = (retraining.decide(champion_tags(SEGMENTER), as_of, len(features), config)
                if as_of else retraining.Decision(True, "no as-of date in marts.customer_rfm"))
    champion = champion_segmenter()
    registered, fit, agreement, not_trained = None, None, {}, None
    if decision.retrain:
        try:
            fit = fit_segmenter(features, profile=frame[PROFILE_COLUMNS],
                                previous_centroids=champion.centroids if champion else None)
        except ValueError as exc:  # too few customers to cluster: nothing to register
            not_trained = str(exc)
    else:
        context.log.info(f"{SEGMENTER}: {decision.reason}")
    if fit is not None:
        agreement = sample_store_agreement(home.home.generator / "personas.csv", fit.keys, frame)
        registered = log_segmenter(experiment_id, fit, features,
                                   {"as_of_date": str(as_of), "n_customers": str(len(features))},
                                   SEGMENTER_GATE, extra_metrics=agreement)
        if as_of:
            tag_version(SEGMENTER, registered.version,
                        retraining.tags(as_of, len(features), config))
        champion = champion_segmenter()
    if champion is None:
        warehouse.warehouse.replace_table("ml.customer_clusters", empty_clusters())
        check = champion_check(context, SEGMENTER, registered, None, not_trained)
        metadata = {"rows": dg.MetadataValue.int(0),
                    "status": dg.MetadataValue.text(check.description)}
        if registered is not None:
            metadata.update({
                "trained_version": dg.MetadataValue.text(registered.version),
                "promoted": dg.MetadataValue.bool(False),
                "mlflow_run_id": dg.MetadataValue.text(registered.run_id),
                "mlflow_run": mlflow_run_url(registered.run_id),
                "mlflow_experiment": dg.MetadataValue.text(SEGMENTER_EXPERIMENT),
                "silhouette": dg.MetadataValue.float(round(fit.metrics["silhouette"], 4)),
                "min_cluster_share": dg.MetadataValue.float(fit.metrics["min_cluster_share"])})
            metadata.update(plot_metadata(SEGMENTER, registered, plots))
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

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
        "training": dg.MetadataValue.text(f"retrained: {decision.reason}" if decision.retrain
                                          else decision.reason),
        "model_version": dg.MetadataValue.text(champion.version),
        "mlflow_experiment": dg.MetadataValue.text(SEGMENTER_EXPERIMENT),
        "cluster_mix": dg.MetadataValue.md(
            "| cluster | customers |\n|---|---|\n"
            + "\n".join(f"| {name} | {n} |" for name, n in mix.items())),
    }
    if registered is not None:
        metadata.update({
            "trained_version": dg.MetadataValue.text(registered.version),
            "promoted": dg.MetadataValue.bool(registered.promoted),
            "mlflow_run_id": dg.MetadataValue.text(registered.run_id),
            "mlflow_run": mlflow_run_url(registered.run_id),
            "silhouette": dg.MetadataValue.float(round(fit.metrics["silhouette"], 4)),
            "k": dg.MetadataValue.int(fit.k),
            "cluster_profiles": dg.MetadataValue.md(
                fit.profiles.rename(index=fit.cluster_names).round(2).to_markdown())})
    metadata.update(rounded(agreement))
    metadata.update(plot_metadata(SEGMENTER, registered, plots))
    return dg.MaterializeResult(metadata=metadata, check_results=[
        champion_check(context, SEGMENTER, registered, champion.version, not_trained)])


def _as_of_date(warehouse: WarehouseResource) -> dt.date | None:
    """The as-of date of today's data (RFM's: the day after the newest order), or None."""
    value = warehouse.warehouse.query_df(
        "select max(as_of_date) as d from marts.customer_rfm")["d"][0]
    return None if pd.isna(value) else pd.Timestamp(value).date()


LIFETIME_VALUE_EXPERIMENT = "customer_lifetime_value"
HORIZON_DAYS = 90


@dg.asset(
    key=["ml", "customer_clv"],
    deps=[dg.AssetKey(["marts", "fct_orders"]), dg.AssetKey(["marts", "customer_rfm"])],
    group_name="ml",
    kinds={"scipy", "mlflow", "duckdb"},
    pool="duckdb",
    check_specs=[champion_check_spec(["ml", "customer_clv"], "customer_lifetime_value")],
)
def customer_clv(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 mlflow: MlflowResource, home: HomeResource) -> dg.MaterializeResult:
    """Each buyer's probability of being alive, expected purchases and expected value over the
    next 90 days, from the champion `customer_lifetime_value` (BG/NBD or MBG/NBD, whichever
    fits the store better, + Gamma-Gamma). P(alive) is empty where churn cannot be identified
    (then no churn segments; the metadata says why). Empty (no predictive segments) while there
    is no champion: see the check `champion`."""
    preload.wait()
    from ml import clv, retraining
    from ml.evaluation import LIFETIME_VALUE_GATE, sample_store_churn_agreement
    from ml.registry import (
        ALIVE_CALIBRATION_PNG,
        HOLDOUT_PNG,
        LIFETIME_VALUE,
        SUMMARY_COLUMNS,
        champion_tags,
        champion_version,
        load_champion,
        log_lifetime_value,
        tag_version,
    )

    plots = {HOLDOUT_PNG: ("clv_calibration_plot", "purchases predicted vs made in the holdout"),
             ALIVE_CALIBRATION_PNG: ("clv_alive_calibration_plot", "P(alive) calibration")}

    # the orders RFM counts: completed, with a customer (not an erased one's pseudonymous key)
    # and a positive net amount. They come into pandas only to train; a scoring run sums them
    # per customer in the warehouse (clv.rfm_summary_sql)
    purchases = """
        select customer_id, order_date as date, net_revenue as amount
        from marts.fct_orders
        where is_completed and customer_id is not null and net_revenue > 0
            and customer_id not like 'erased-%'"""
    first_day, as_of = warehouse.warehouse.query_df(f"""
        select (select min(date) from ({purchases})) as first_day,
               (select max(as_of_date) from marts.customer_rfm) as as_of""").iloc[0]
    registered, report, model, summary, agreement = None, None, None, None, {}
    orders = None
    if pd.isna(first_day) or pd.isna(as_of):
        too_thin = "no completed orders with a customer in marts.fct_orders"
    else:
        end = pd.Timestamp(as_of) - pd.Timedelta(days=1)  # the last day with data
        span = (end - pd.Timestamp(first_day)).days
        holdout_days = min(HORIZON_DAYS, span // 3)
        calibration_end = end - pd.Timedelta(days=holdout_days)
        summary = warehouse.warehouse.query_df(clv.rfm_summary_sql(purchases, end)).set_index(
            "customer_id")
        calibrated = warehouse.warehouse.query_df(
            f"select count(*) filter (where frequency > 0) as repeat "
            f"from ({clv.rfm_summary_sql(purchases, calibration_end)})")["repeat"][0]
        too_thin = clv.not_trainable_reason(None, calibration_end, span,
                                            repeat_buyers=int(calibrated))
    decision = retraining.Decision(False, "")
    config = retraining.config_fingerprint({"model": "BG/NBD or MBG/NBD + Gamma-Gamma",
                                            "horizon_days": HORIZON_DAYS})
    if too_thin is None:
        mlflow.configure()
        decision = retraining.decide(champion_tags(LIFETIME_VALUE), pd.Timestamp(as_of).date(),
                                     len(summary), config)
        if not decision.retrain:
            context.log.info(f"{LIFETIME_VALUE}: {decision.reason}")
    if too_thin is None and decision.retrain:
        orders = warehouse.warehouse.query_df(purchases)
        evaluated, report = clv.evaluate_holdout(orders, calibration_end, end)
        # the version to ship: the purchase model chosen on the calibration period, refitted on
        # all history
        model = clv.fit_lifetime_value(summary, evaluated.purchases.variant)
        churn = model.score(summary, HORIZON_DAYS / 7)["probability_alive"]
        agreement = sample_store_churn_agreement(home.home.generator / "personas.csv", churn,
                                                 summary["frequency"])
        registered = log_lifetime_value(
            mlflow.experiment_id(LIFETIME_VALUE_EXPERIMENT), model, report, summary,
            HORIZON_DAYS / 7,
            {"first_order": str(pd.Timestamp(first_day).date()),
             "calibration_end": str(calibration_end.date()), "last_day": str(end.date()),
             "n_customers": str(len(summary))},
            LIFETIME_VALUE_GATE, extra_metrics=agreement)
        tag_version(LIFETIME_VALUE, registered.version,
                    retraining.tags(pd.Timestamp(as_of).date(), len(summary), config))
    elif too_thin is not None:
        mlflow.configure()
        too_thin = f"not trained: {too_thin}"
    version = champion_version(LIFETIME_VALUE)
    if version is None or summary is None:
        # no model yet (a young store, or every version failed its gate): no predictive
        # segments, not a failed run
        warehouse.warehouse.replace_table("ml.customer_clv", clv.empty_scores())
        check = champion_check(context, LIFETIME_VALUE, registered, None, too_thin)
        metadata = {"rows": dg.MetadataValue.int(0),
                    "status": dg.MetadataValue.text(check.description)}
        if too_thin:
            metadata["not_trained"] = dg.MetadataValue.text(too_thin)
        if registered is not None:
            metadata.update(_lifetime_value_training(registered, report, model))
            metadata.update(plot_metadata(LIFETIME_VALUE, registered, plots))
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

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
        "mlflow_experiment": dg.MetadataValue.text(LIFETIME_VALUE_EXPERIMENT),
    }
    purchases = champion.unwrap_python_model().model.purchases
    churn_note = clv.churn_identified(purchases)
    if churn_note is None:
        metadata["mean_probability_alive"] = dg.MetadataValue.float(
            round(float(scored["probability_alive"].mean()), 4))
    else:  # P(alive) is empty: no churn segments, and why
        context.log.warning(f"{LIFETIME_VALUE} v{version}: {churn_note}")
    metadata["churn"] = dg.MetadataValue.text(churn_note or f"identified by {purchases.variant}")
    metadata.update(rounded(agreement))
    if registered is None:
        metadata["not_trained"] = dg.MetadataValue.text(
            f"{too_thin}; scored with the champion" if too_thin else decision.reason)
    else:
        metadata.update(_lifetime_value_training(registered, report, model))
    metadata.update(plot_metadata(LIFETIME_VALUE, registered, plots))
    return dg.MaterializeResult(metadata=metadata, check_results=[
        champion_check(context, LIFETIME_VALUE, registered, version, too_thin)])


def _lifetime_value_training(registered, report, model) -> dict[str, dg.MetadataValue]:
    """Metadata of the version this run trained: its registry entry and holdout evaluation."""
    from ml import clv

    m = report.metrics
    return {
        "trained_version": dg.MetadataValue.text(registered.version),
        "promoted": dg.MetadataValue.bool(registered.promoted),
        "mlflow_run_id": dg.MetadataValue.text(registered.run_id),
        "mlflow_run": mlflow_run_url(registered.run_id),
        "mlflow_experiment": dg.MetadataValue.text(LIFETIME_VALUE_EXPERIMENT),
        "parameters": dg.MetadataValue.json({k: round(v, 4) for k, v in model.params().items()}),
        "holdout": dg.MetadataValue.md(
            f"{m['holdout_weeks']:.1f} weeks held out: {m['holdout_purchases_predicted']:.0f} "
            f"purchases predicted, {m['holdout_purchases_actual']:.0f} made; RMSE per customer "
            f"{m['holdout_rmse']:.3f} vs {m['holdout_rmse_baseline']:.3f} for the customer's own "
            f"past rate; Spearman {m['holdout_spearman']:.3f}\n\n"
            + report.by_frequency.round(3).to_markdown()),
        "holdout_alive_calibration": dg.MetadataValue.md(
            f"share with no purchase in the holdout by decile of P(alive): mean gap "
            f"{m['holdout_no_purchase_mean_gap']:.3f} (uninformed P(alive): "
            f"{m.get('holdout_no_purchase_mean_gap_uninformed', float('nan')):.3f})\n\n"
            + report.by_alive_decile.round(3).to_markdown()
            if not report.by_alive_decile.empty else clv.churn_identified(model.purchases)
            or ""),
    }
