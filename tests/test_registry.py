"""MLflow promotion on a real registry (sqlite in a temporary folder): a version that fails its
gate stays registered with the reason, and the champion alias does not move."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from core.plots import PNG_SIGNATURE
from ml import clv, registry
from ml.evaluation import LIFETIME_VALUE_GATE, SEGMENTER_GATE
from ml.features import PROFILE_COLUMNS, segmentation_features, segmentation_frame
from ml.segmentation import fit_segmenter
from tests.test_segmentation import _customers


@pytest.fixture
def tracking(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("test", artifact_location=(tmp_path / "a").as_uri())
    yield experiment
    mlflow.set_tracking_uri(None)


def _paired(table: pd.DataFrame, n: int = 40) -> dict[str, np.ndarray]:
    """Per-customer NDCG for each row of an evaluation table: every customer scores the row's
    mean (a consistent lead, whose bootstrap interval is the lead itself)."""
    return {name: np.full(n, float(row["ndcg@10"])) for name, row in table.iterrows()}


def _segmenter_fit(customers: pd.DataFrame, protected: bool = False):
    frame = segmentation_frame(customers)
    features = segmentation_features(frame, protected=protected)
    return features, fit_segmenter(features, profile=frame[PROFILE_COLUMNS], k_range=range(2, 6))


def test_a_worse_segmenter_is_registered_but_not_champion(tracking):
    customers, _ = _customers()
    features, good = _segmenter_fit(customers)
    first = registry.log_segmenter(tracking, good, features, {"as_of_date": "2026-01-01"},
                                   SEGMENTER_GATE)
    assert first.promoted and first.champion_version == first.version

    # structureless customers: every column drawn uniformly over its range, on its own (with
    # age, pure noise in this data, among the features; columns shuffled each on their own
    # kept enough of their heavy tails for a silhouette of 0.21 once the email open rate was
    # no longer a feature)
    rng = np.random.default_rng(0)
    noise = customers.copy()
    for column in noise.columns.drop("customer_id"):
        values = pd.to_numeric(noise[column], errors="coerce")
        noise[column] = rng.uniform(np.nanmin(values), np.nanmax(values), len(noise))
    features, bad = _segmenter_fit(noise, protected=True)
    assert bad.metrics["silhouette"] < SEGMENTER_GATE["silhouette"][1]
    second = registry.log_segmenter(tracking, bad, features, {"as_of_date": "2026-01-02"},
                                    SEGMENTER_GATE)
    assert not second.promoted and second.champion_version == first.version
    version = MlflowClient().get_model_version(registry.SEGMENTER, second.version)
    assert "silhouette" in version.tags["rejected"]
    champion = registry.champion_segmenter()
    assert champion.version == first.version
    assert champion.names == good.cluster_names and set(champion.centroids.index) == set(
        good.cluster_names)
    pd.testing.assert_frame_equal(champion.centroids.sort_index(),
                                  good.centroids.round(6).sort_index(), check_names=False,
                                  check_index_type=False)

    # the cluster profiles drawn once: the PNG the run logged is the one handed back (for the
    # asset's metadata), and a scoring run finds the champion's in its MLflow run
    png = first.plots[registry.CLUSTER_PROFILES_PNG]
    assert png.startswith(PNG_SIGNATURE) and 5_000 < len(png) < 150_000
    logged = mlflow.artifacts.download_artifacts(run_id=first.run_id,
                                                 artifact_path=registry.CLUSTER_PROFILES_PNG)
    assert Path(logged).read_bytes() == png
    assert registry.champion_plots(registry.SEGMENTER, [registry.CLUSTER_PROFILES_PNG,
                                                        "missing.png"]) == (
        first.version, {registry.CLUSTER_PROFILES_PNG: png})
    assert second.plots[registry.CLUSTER_PROFILES_PNG] != png  # the rejected version's own


def test_a_segmenter_run_says_what_it_learned_from(tracking):
    """The MLflow run is named by the model and its data window, records the table it learned
    from (a dataset: source, schema, rows; not the rows), draws the silhouette of each k as one
    curve, and keeps the centroids as an artifact, not as a version tag."""
    customers, _ = _customers()
    features, fit = _segmenter_fit(customers)
    registered = registry.log_segmenter(tracking, fit, features, {"as_of_date": "2026-01-01"},
                                        SEGMENTER_GATE)
    client = MlflowClient()
    run = client.get_run(registered.run_id)
    assert run.info.run_name == "customer_segmenter as of 2026-01-01"
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.name == "marts.customer_features"
    assert '"mlflow_colspec"' in dataset.dataset.schema
    for column in features.columns:
        assert f'"name": "{column}"' in dataset.dataset.schema
    tags = {tag.key: tag.value for tag in dataset.tags}
    assert tags["rows"] == str(len(features)) and tags["mlflow.data.context"] == "training"
    curve = client.get_metric_history(registered.run_id, "silhouette_by_k")
    assert {point.step: point.value for point in curve} == pytest.approx(fit.silhouette_by_k)
    assert len(curve) == len(fit.silhouette_by_k) >= 3
    version = client.get_model_version(registry.SEGMENTER, registered.version)
    assert "centroids" not in version.tags
    assert sum(len(value) for value in version.tags.values()) < 2_000
    assert registry.CENTROIDS_ARTIFACT in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_run_names_carry_the_data_window():
    assert registry.run_name("product_recommender", {"first_order": "2025-11-01",
                                                     "last_order": "2026-10-31"}) == \
        "product_recommender 2025-11-01..2026-10-31"
    assert registry.run_name("customer_lifetime_value", {
        "first_order": "2025-11-01", "calibration_end": "2026-08-01",
        "last_day": "2026-10-31"}) == "customer_lifetime_value 2025-11-01..2026-10-31"
    assert registry.run_name("customer_segmenter", {}) == "customer_segmenter"


def test_a_lifetime_value_model_that_forecasts_worse_than_the_baseline_is_rejected(tracking):
    tx = pd.DataFrame({"customer_id": np.repeat([f"C{i}" for i in range(40)], 3),
                       "date": pd.Timestamp("2025-01-01")
                       + pd.to_timedelta(np.tile([0, 30, 75], 40) + np.repeat(range(40), 3),
                                         unit="D"),
                       "amount": 20.0 + np.arange(120) % 7})
    end = pd.Timestamp("2025-06-30")
    summary = clv.rfm_summary(tx, end)
    model = clv.fit_lifetime_value(summary)
    report = clv.HoldoutReport({"holdout_rmse_vs_baseline": 0.8,
                                "holdout_total_error_share": 0.1, "holdout_weeks": 13.0,
                                "holdout_no_purchase_mean_gap": 0.05,
                                "holdout_purchases_predicted": 40.0,
                                "holdout_purchases_actual": 41.0},
                               pd.DataFrame({"customers": [40], "predicted": [1.0],
                                             "actual": [1.0]}))
    good = registry.log_lifetime_value(tracking, model, report, summary, 13.0, {},
                                       LIFETIME_VALUE_GATE)
    assert good.promoted
    # drawn once, logged to MLflow and handed back for the asset's metadata; no P(alive)
    # deciles in this report, so no calibration plot of them
    assert set(good.plots) == {registry.HOLDOUT_PNG}
    assert good.plots[registry.HOLDOUT_PNG].startswith(PNG_SIGNATURE)
    worse = clv.HoldoutReport({**report.metrics, "holdout_rmse_vs_baseline": 1.4},
                              report.by_frequency)
    rejected = registry.log_lifetime_value(tracking, model, worse, summary, 13.0, {},
                                           LIFETIME_VALUE_GATE)
    assert not rejected.promoted and rejected.champion_version == good.version
    assert "holdout_rmse_vs_baseline = 1.4000 is above 1.0" in MlflowClient().get_model_version(
        registry.LIFETIME_VALUE, rejected.version).tags["rejected"]
    # a P(alive) off the holdout's quiet customers is rejected too
    uncalibrated = clv.HoldoutReport({**report.metrics, "holdout_no_purchase_mean_gap": 0.18},
                                     report.by_frequency)
    assert not registry.log_lifetime_value(tracking, model, uncalibrated, summary, 13.0, {},
                                           LIFETIME_VALUE_GATE).promoted
    champion, version = registry.load_champion(registry.LIFETIME_VALUE)
    assert version == good.version
    scores = champion.predict(summary[registry.SUMMARY_COLUMNS].astype(float))
    alive = scores["probability_alive"]
    assert len(scores) == len(summary)
    # between 0 and 1, or empty for everyone where churn cannot be identified
    assert alive.between(0, 1).all() or (
        alive.isna().all() and clv.churn_identified(model.purchases) is not None)


def test_a_recommender_that_does_not_beat_the_baselines_is_rejected(tracking):
    from ml import recommendation as rec
    from ml.evaluation import RECOMMENDER_GATE
    from tests.test_recommendation import STORE, _lines

    data = rec.Interactions.from_lines(_lines(STORE))
    model = rec.RepeatThenSimilar().fit(data)
    columns = ["ndcg@10", "hit_rate@10", "customers"]
    better = pd.DataFrame([[0.30, 0.7, 10], [0.25, 0.6, 10]], columns=columns,
                          index=["ours", "own then popular"])
    first = registry.log_recommender(tracking, model, data.products, better, "ours", {},
                                     RECOMMENDER_GATE, per_customer=_paired(better))
    assert first.promoted
    run = mlflow.get_run(first.run_id)
    assert run.data.metrics["ndcg_lift_ci95_low"] == pytest.approx(1.2)
    assert first.plots[registry.MODEL_VS_BASELINES_PNG].startswith(PNG_SIGNATURE)
    worse = pd.DataFrame([[0.20, 0.7, 10], [0.25, 0.6, 10]], columns=columns,
                         index=["ours", "own then popular"])
    second = registry.log_recommender(tracking, model, data.products, worse, "ours", {},
                                      RECOMMENDER_GATE, per_customer=_paired(worse))
    assert not second.promoted and second.champion_version == first.version
    assert "ndcg_lift_over_best_baseline = 0.8000 is not above 1.0" in MlflowClient(
    ).get_model_version(registry.PRODUCT_RECOMMENDER, second.version).tags["rejected"]
    champion, version = registry.load_champion(registry.PRODUCT_RECOMMENDER)
    recs = champion.predict(pd.DataFrame({"customer_id": ["x", "x"],
                                          "product_id": ["phone", "nonexistent"],
                                          "n_orders": [1.0, 2.0]}))
    assert version == first.version
    assert list(recs["product_id"][:2]) == ["phone", "case"]


def test_a_recommender_that_falls_below_the_current_champion_is_rejected(tracking):
    from ml import recommendation as rec
    from ml.evaluation import RECOMMENDER_GATE
    from tests.test_recommendation import STORE, _lines

    data = rec.Interactions.from_lines(_lines(STORE))
    model = rec.RepeatThenSimilar().fit(data)
    columns = ["ndcg@10", "hit_rate@10", "customers"]
    first = registry.log_recommender(
        tracking, model, data.products,
        pd.DataFrame([[0.30, 0.7, 10], [0.25, 0.6, 10]], columns=columns,
                     index=["ours", "own then popular"]), "ours", {}, RECOMMENDER_GATE,
        params={"configuration": "own first, orders"},
        per_customer={"ours": np.full(40, 0.30), "own then popular": np.full(40, 0.25)})
    assert first.promoted
    version, params = registry.champion_params(registry.PRODUCT_RECOMMENDER)
    assert (version, params["configuration"]) == (first.version, "own first, orders")
    # beats every baseline, but not the champion's configuration on the same holdout
    evaluation = pd.DataFrame([[0.28, 0.7, 10], [0.25, 0.6, 10], [0.31, 0.7, 10]],
                              columns=columns, index=["ours", "own then popular",
                                                      "current champion (v1)"])
    second = registry.log_recommender(tracking, model, data.products, evaluation, "ours", {},
                                      RECOMMENDER_GATE, champion_row="current champion (v1)",
                                      per_customer=_paired(evaluation))
    assert not second.promoted and second.champion_version == first.version
    rejected = MlflowClient().get_model_version(registry.PRODUCT_RECOMMENDER,
                                                second.version).tags["rejected"]
    assert "ndcg_vs_current_champion = 0.9032 is below 1.0" in rejected
    assert "ndcg_lift_over_best_baseline" not in rejected   # 0.28 > 0.25: that half passed


def test_a_store_whose_first_recommender_loses_gets_the_strongest_baseline_as_champion(
        tracking):
    from ml import recommendation as rec
    from ml.evaluation import FALLBACK_RECOMMENDER_GATE, RECOMMENDER_GATE
    from tests.test_recommendation import STORE, _lines

    data = rec.Interactions.from_lines(_lines(STORE))
    columns = ["ndcg@10", "hit_rate@10", "customers"]
    evaluation = pd.DataFrame([[0.20, 0.7, 10], [0.25, 0.6, 10], [0.05, 0.3, 10]],
                              columns=columns,
                              index=["ours", "customer's own most-bought, then popularity",
                                     "global popularity"])
    lost = registry.log_recommender(tracking, rec.RepeatThenSimilar().fit(data), data.products,
                                    evaluation, "ours", {}, RECOMMENDER_GATE,
                                    per_customer=_paired(evaluation))
    assert not lost.promoted and lost.champion_version is None

    best, name, table = rec.fallback(evaluation, "ours")
    assert best == "customer's own most-bought, then popularity"
    assert list(table.index) == [*evaluation.index, name]  # the rejected row stays visible
    # the baseline itself: under the recommender's gate it only ties with itself and fails ...
    tied = registry.log_recommender(tracking, rec.baselines()[best].fit(data), data.products,
                                    table, name, {}, RECOMMENDER_GATE, per_customer=_paired(table))
    assert not tied.promoted
    # ... so it ships, labelled as the fallback it is, under the fallback gate (not below a
    # champion; there is none)
    fallback = registry.log_recommender(tracking, rec.baselines()[best].fit(data),
                                        data.products, table, name, {},
                                        FALLBACK_RECOMMENDER_GATE, per_customer=_paired(table))
    assert fallback.promoted and fallback.champion_version == fallback.version
    run = mlflow.get_run(fallback.run_id)
    assert run.data.metrics["ndcg_lift_over_best_baseline"] == pytest.approx(1.0)
    assert run.data.params["gate.ndcg_vs_current_champion"] == ">= 1.0"
    assert "gate.ndcg_lift_over_best_baseline" not in run.data.params
    champion, _ = registry.load_champion(registry.PRODUCT_RECOMMENDER)
    recs = champion.predict(pd.DataFrame({"customer_id": ["x"], "product_id": ["tea"],
                                          "n_orders": [1.0]}))  # no engagement column
    assert list(recs["product_id"][:2]) == ["tea", "mug"]  # own, then the most popular


def test_a_recommender_that_ties_the_baseline_or_leads_within_the_noise_is_rejected(tracking):
    """A lift of exactly 1 fails, and so does a lead whose paired bootstrap 95 % interval
    reaches below 1: half the customers gain, half lose almost as much."""
    from ml import recommendation as rec
    from ml.evaluation import RECOMMENDER_GATE, paired_bootstrap_ratio
    from tests.test_recommendation import STORE, _lines

    data = rec.Interactions.from_lines(_lines(STORE))
    model = rec.RepeatThenSimilar().fit(data)
    columns = ["ndcg@10", "hit_rate@10", "customers"]
    baseline = np.tile([0.2, 0.6], 20)
    for ours, failure in ((baseline.copy(), "ndcg_lift_over_best_baseline = 1.0000 is not above"),
                          (baseline + np.tile([0.3, -0.28], 20), "ndcg_lift_ci95_low")):
        low, high = paired_bootstrap_ratio(ours, baseline)
        assert low <= 1.0 <= high
        table = pd.DataFrame([[ours.mean(), 0.7, 40], [baseline.mean(), 0.6, 40]],
                             columns=columns, index=["ours", "own then popular"])
        version = registry.log_recommender(
            tracking, model, data.products, table, "ours", {}, RECOMMENDER_GATE,
            per_customer={"ours": ours, "own then popular": baseline})
        assert not version.promoted and version.champion_version is None
        rejected = MlflowClient().get_model_version(registry.PRODUCT_RECOMMENDER,
                                                    version.version).tags["rejected"]
        assert failure in rejected, rejected
    # without the per-customer scores there is no interval, and no promotion
    table = pd.DataFrame([[0.3, 0.7, 40], [0.2, 0.6, 40]], columns=columns,
                         index=["ours", "own then popular"])
    unpaired = registry.log_recommender(tracking, model, data.products, table, "ours", {},
                                        RECOMMENDER_GATE)
    assert not unpaired.promoted


def test_similar_items_of_a_rejected_version_are_replaced_by_the_champions(tracking, tmp_path):
    """The recommender writes `ml.item_similarities` from the @champion: a table holding
    another version's neighbours (one that was rejected) is written again from the champion;
    the champion's own table is kept as it is."""
    from core.warehouse import Warehouse
    from dagster_project.defs.ml.recommendations import _champion_similarities
    from ml import recommendation as rec
    from ml.evaluation import RECOMMENDER_GATE
    from tests.test_recommendation import STORE, _lines

    data = rec.Interactions.from_lines(_lines(STORE))
    table = pd.DataFrame([[0.30, 0.7, 40], [0.25, 0.6, 40]],
                         columns=["ndcg@10", "hit_rate@10", "customers"],
                         index=["ours", "own then popular"])
    champion = registry.log_recommender(tracking, rec.RepeatThenSimilar().fit(data),
                                        data.products, table, "ours", {}, RECOMMENDER_GATE,
                                        per_customer=_paired(table))
    assert champion.promoted
    db = Warehouse(tmp_path / "warehouse.duckdb")
    stale = pd.DataFrame({"product_id": ["phone"], "rank": [1], "similar_product_id": ["tea"],
                          "similarity": [0.9], "model_version": ["99"]})  # a rejected version
    db.replace_table("ml.item_similarities", stale)
    model, version = registry.load_champion(registry.PRODUCT_RECOMMENDER)
    similar = _champion_similarities(db, model.unwrap_python_model(), version)
    written = db.query_df("select * from ml.item_similarities")
    assert set(written["model_version"]) == {version} == set(similar["model_version"])
    phone = written[written["product_id"] == "phone"].sort_values("rank")
    assert phone["similar_product_id"].iloc[0] == "case"  # phones sell with cases
    # the champion's own neighbours stay as written
    db.replace_table("ml.item_similarities", written.head(1))
    kept = _champion_similarities(db, model.unwrap_python_model(), version)
    assert len(kept) == 1


def test_a_champion_without_neighbours_of_its_own_keeps_its_empty_table(tracking, tmp_path):
    """A popularity fallback has no similarity matrix: its `ml.item_similarities` came from the
    interactions at its training. A later run without them (a UI re-execution of a run with
    nothing new) keeps the champion's table, even an empty one, and replaces another version's
    neighbours by none rather than failing."""
    from core.warehouse import Warehouse
    from dagster_project.defs.ml.recommendations import EMPTY_TABLES, _champion_similarities
    from ml import recommendation as rec
    from ml.evaluation import RECOMMENDER_GATE
    from tests.test_recommendation import STORE, _lines

    data = rec.Interactions.from_lines(_lines(STORE))
    table = pd.DataFrame([[0.30, 0.7, 40], [0.25, 0.6, 40]],
                         columns=["ndcg@10", "hit_rate@10", "customers"],
                         index=["ours", "own then popular"])
    fallback = rec.RepeatThenSimilar(similar_weight=0.0).fit(data)
    assert fallback.similarity is None
    registry.log_recommender(tracking, fallback, data.products, table, "ours", {},
                             RECOMMENDER_GATE, per_customer=_paired(table))
    model, version = registry.load_champion(registry.PRODUCT_RECOMMENDER)
    inner = model.unwrap_python_model()
    db = Warehouse(tmp_path / "warehouse.duckdb")
    empty = pd.DataFrame({name: pd.Series(dtype=kind)
                          for name, kind in EMPTY_TABLES["ml.item_similarities"].items()})
    db.replace_table("ml.item_similarities", empty)
    assert _champion_similarities(db, inner, version).empty
    stale = pd.DataFrame({"product_id": ["phone"], "rank": [1], "similar_product_id": ["tea"],
                          "similarity": [0.9], "model_version": ["99"]})
    db.replace_table("ml.item_similarities", stale)
    assert _champion_similarities(db, inner, version).empty
    assert db.query_df("select * from ml.item_similarities").empty
