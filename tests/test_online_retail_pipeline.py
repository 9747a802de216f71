"""A real store end to end: the UCI Online Retail file through `segmenta import` and `segmenta
run` (the README's "Bring your own data" example) to a full summary and a published copy.

The store has orders only: no events, no customer profiles (so no consents). The run must still
finish and build everything that does not need what is missing: RFM and rule segments, the
lifetime-value scores or their documented absence, recommendations, the audiences' syncs and
the analysts' copy. A model whose first version fails its gate leaves its table empty, says why
in the summary and fails its non-blocking `champion` check, and stops nothing.

One import and one run for the whole file (about 2 minutes on 2 idle cores; marked e2e and
realdata). Skipped where ../shared/data or the file is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml

from core.settings import PROJECT_ROOT
from tests.conftest import SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.realdata]

SOURCE = SHARED_DATA / "online_retail" / "online_retail_2010-12_2011-12.parquet"
MAPPING = PROJECT_ROOT / "mappings" / "online_retail.yaml"
# README, "Bring your own data": `segmenta run --rfm-lookback-days 3650` as of 2011-12-10
RFM_SEGMENTS = {
    "Loyal Customers": 798, "Hibernating": 759, "Champions": 631, "At Risk": 589,
    "Potential Loyalists": 493, "About To Sleep": 358, "Lost": 334, "Need Attention": 178,
    "Promising": 86, "Can't Lose Them": 76, "New Customers": 36,
}
ML_TABLES = {"customer_segmenter": "ml/customer_clusters",
             "customer_lifetime_value": "ml/customer_clv",
             "product_recommender": "ml/customer_recommendations"}


def _segmenta(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEGMENTA_HOME": str(home)}
    for name in ("DAGSTER_HOME", "SEGMENTA_RFM_LOOKBACK_DAYS", "SEGMENTA_AUDIENCES",
                 "SEGMENTA_RULES", "SEGMENTA_START_DATE"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=env,
                          check=False, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SOURCE.exists():
        pytest.skip(f"{SOURCE} is absent (real data lives in ../shared/data)")
    home = tmp_path_factory.mktemp("online_retail_home")
    started = time.monotonic()
    imported = _segmenta(home, "import", "--mapping", str(MAPPING), "--source", str(SOURCE))
    assert imported.returncode == 0, imported.stderr[-3000:]
    (home / "import_output.txt").write_text(imported.stdout)
    ran = _segmenta(home, "run", "--rfm-lookback-days", "3650")
    (home / "run_output.txt").write_text(
        f"{ran.stdout}\n--- stderr ---\n{ran.stderr}\n"
        f"--- wall time {time.monotonic() - started:.0f} s ---\n")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-5000:]
    return home


def _run_output(home: Path) -> str:
    return (home / "run_output.txt").read_text()


def _query(path: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).df()


def _warehouse(home: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    return _query(home / "warehouse.duckdb", sql, params)


def _champion_check(home: Path, asset: str):
    """The latest evaluation of an ML asset's `champion` check, as the Dagster UI shows it."""
    key = dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), "champion")
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.evaluation


def _champion(home: Path, model: str) -> str | None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    try:
        return str(MlflowClient().get_model_version_by_alias(model, "champion").version)
    except MlflowException:
        return None


def test_every_country_of_the_file_is_mapped_and_has_a_climate():
    if not SOURCE.exists():
        pytest.skip(f"{SOURCE} is absent")
    mapping = yaml.safe_load(MAPPING.read_text())["columns"]["shipping_country"]["values"]
    countries = {c for (c,) in duckdb.sql(
        f"select distinct Country from read_parquet('{SOURCE}')").fetchall()}
    assert len(countries) == 38 and countries <= set(mapping), countries - set(mapping)
    climate = pd.read_csv(PROJECT_ROOT / "dbt_project" / "seeds" / "geo_climate.csv",
                          keep_default_na=False)
    codes = {code for code in mapping.values() if code}
    assert codes <= set(climate["country"]), codes - set(climate["country"])


def test_the_run_ends_with_a_full_summary(home):
    output = _run_output(home)
    assert "Materializing landing days 2010-12-01..2011-12-09 and everything downstream: 1 run(s)" \
        in output  # days without orders (Saturdays, the holidays) do not split the load
    for heading in ("RFM segments as of 2011-12-10:", "Rule segments (segments/rules.yml):",
                    "Recommendations (product_recommender v", "Audiences (segments/audiences.yml",
                    "Analysts:   duckdb -readonly"):
        assert heading in output, heading
    assert "ML clusters" in output and "Lifetime value" in output


def test_rfm_segments_match_the_published_figures(home):
    published = home / "published" / "marts.duckdb"
    medians = _query(published, """
        select median(recency_days) as recency, median(frequency) as frequency,
               round(median(monetary::double), 2) as monetary, count(*) as customers,
               max(as_of_date) as as_of
        from customer_rfm
    """).iloc[0]
    assert (medians["recency"], medians["frequency"], medians["monetary"],
            medians["customers"]) == (51, 2, 674.49, 4_338)  # ../shared/data/README.md
    assert str(medians["as_of"])[:10] == "2011-12-10"
    sizes = _query(published, "select rfm_segment, count(*) as n from customer_rfm group by 1")
    assert dict(zip(sizes["rfm_segment"], sizes["n"], strict=True)) == RFM_SEGMENTS
    for name, n in RFM_SEGMENTS.items():  # and the summary prints them
        assert any(line.strip().startswith(name) and f"{n:,} customers" in line
                   for line in _run_output(home).splitlines()), name


def test_every_source_row_is_loaded_or_quarantined_with_a_reason(home):
    """The mapping writes all 541,909 rows; ingestion reconciles them, quarantining only the
    two "Adjust bad debt" lines (negative price); the cleaned figures of ../shared/data/README.md
    come out of the marts."""
    assert ("wrote 541,909 of 541,909 rows" in (home / "import_output.txt").read_text()
            and "2010-12-01..2011-12-09)" in (home / "import_output.txt").read_text())
    loaded = _warehouse(home, "select count(*) as n from raw.orders")["n"][0]
    reasons = _warehouse(home, "select reason, count(*) as n from quarantine.orders group by 1")
    assert dict(zip(reasons["reason"], reasons["n"], strict=True)) == {"negative_price": 2}
    assert loaded + 2 == 541_909
    cleaned = _warehouse(home, """
        select count(*) as lines, count(distinct customer_id) as customers,
               count(distinct order_id) as orders, count(distinct product_id) as products
        from marts.fct_order_items
        where is_completed and customer_id is not null and quantity > 0 and unit_price > 0
    """).iloc[0].tolist()
    assert cleaned == [397_884, 4_338, 18_532, 3_665]
    guests = _warehouse(home, "select count(*) as n from marts.fct_orders "
                              "where is_guest_checkout")["n"][0]
    assert guests > 0


def test_rule_segments_have_members_from_the_order_countries(home):
    # no profiles: a customer's country is where their newest order went
    located = _warehouse(home, """
        select count(*) as customers, count(country) as located,
               count(*) filter (where hemisphere = 'south') as south
        from marts.dim_customers
    """).iloc[0]
    assert located["customers"] == 4_372 and located["located"] > 4_300
    rules = _warehouse(home, """
        select segment_key, count(*) as n from marts.segment_memberships
        where segment_type = 'rule' group by 1
    """)
    sizes = dict(zip(rules["segment_key"], rules["n"], strict=True))
    assert located["south"] > 0 and sizes["rule_southern_hemisphere"] == located["south"]
    summary = _warehouse(home, "select n_customers from marts.segment_summary "
                               "where segment_key = 'rule_southern_hemisphere'")
    assert summary["n_customers"].tolist() == [located["south"]]


@pytest.mark.parametrize("model", ["customer_segmenter", "customer_lifetime_value"])
def test_a_model_is_scored_by_its_champion_or_documented_absent(home, model):
    """Clusters and lifetime values: scored by the champion, or (no version passed its gate)
    an empty table, a failed non-blocking ERROR check saying why, and the summary saying so;
    the rest of the run carried on either way."""
    asset = ML_TABLES[model]
    table = asset.replace("/", ".")
    rows = _warehouse(home, f"select * from {table}")
    evaluation = _champion_check(home, asset)
    champion = _champion(home, model)
    if champion is not None:
        assert evaluation.severity != dg.AssetCheckSeverity.ERROR or evaluation.passed
        assert len(rows) > 0 and set(rows["model_version"]) == {champion}
        if model == "customer_lifetime_value":
            buyers = _warehouse(home, "select count(*) as n from marts.customer_rfm")["n"][0]
            assert len(rows) == buyers and rows["probability_alive"].between(0, 1).all()
    else:
        assert rows.empty
        assert not evaluation.passed and not evaluation.blocking
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.description.startswith(f"no {model}@champion: ")  # and why
        title = "ML clusters" if model == "customer_segmenter" else "Lifetime value"
        [line] = [line for line in _run_output(home).splitlines() if line.startswith(title)]
        assert line.startswith(f"{title}: none this refresh")
        assert f"no {model}@champion: v" in line and f"check {asset}:champion failed" in line
        segment_type = "ml" if model == "customer_segmenter" else "predictive"
        members = _warehouse(home, "select count(*) as n from marts.segment_memberships "
                                   "where segment_type = ?", [segment_type])["n"][0]
        assert members == 0


def test_the_store_without_events_is_clustered_on_purchase_behaviour(home):
    """Issue 14 found clusters over browsing features degenerate on a store without events (the
    first version failed min_cluster_share); issue 17: such a store is clustered on how often,
    how much and how long ago its customers bought, and that version passes its gate."""
    from mlflow import MlflowClient

    from ml.features import ORDERS_ONLY_FEATURES

    evaluation = _champion_check(home, "ml/customer_clusters")
    assert evaluation.passed, evaluation.description
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("customer_segmenter", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.params["features"] == ",".join(ORDERS_ONLY_FEATURES)
    assert run.data.metrics["silhouette"] >= 0.2 and run.data.metrics["min_cluster_share"] >= 0.02
    clusters = _warehouse(home, "select cluster_name, count(*) as n from ml.customer_clusters "
                                "group by 1")
    assert len(clusters) == run.data.metrics["k"] and clusters["cluster_name"].is_unique
    # everyone who bought (a buyer whose returns cancel their spend is not in RFM, but clustered)
    buyers = _warehouse(home, "select count(*) as n from marts.customer_360 "
                              "where n_orders > 0")["n"][0]
    assert clusters["n"].sum() == buyers


def test_recommendations_for_every_buyer_from_the_champion(home):
    from mlflow import MlflowClient

    champion = _champion(home, "product_recommender")
    recs = _warehouse(home, "select * from ml.customer_recommendations")
    assert champion is not None and set(recs["model_version"]) == {champion}
    buyers = _warehouse(home, "select count(*) as n from marts.customer_rfm")["n"][0]
    assert recs["customer_id"].nunique() >= buyers
    assert recs.groupby("customer_id")["rank"].max().le(10).all()
    mart = _warehouse(home, "select count(*) as n from marts.customer_product_recommendations")
    assert mart["n"][0] == len(recs)
    # no catalogue feed, so no product is known inactive: nearly every buyer's list starts
    # with what they bought (the bug this guards: unknown products were excluded, everyone got
    # popular; the learned ranker puts a neighbour's product first for a few)
    first = recs[recs["rank"] == 1]
    assert (first["reason"] == "buy_again").sum() >= 0.99 * buyers
    # and the offline evaluation scored what ships, not an empty list
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    for version in client.search_model_versions("name='product_recommender'"):
        assert client.get_run(version.run_id).data.metrics["ndcg_at_10"] > 0.3
    # issue 17's target, in the pipeline itself (business rules applied, the last 28 days):
    # the champion beats the strongest same-code baseline by 8 % or more, the paired
    # bootstrap interval above 0 (measured 2026-12-05: the learned ranker, +11.9 %, +9.6 % to
    # +14.4 %)
    champion_run = client.get_run(client.get_model_version_by_alias(
        "product_recommender", "champion").run_id)
    metrics = champion_run.data.metrics
    assert metrics["ndcg_lift_over_best_baseline"] >= 1.08, metrics
    assert metrics["ndcg_lift_ci95_low"] > 1.0, metrics
    # repeat buying dominates this retailer: the first champion may be the strongest
    # baseline (../shared/data/README.md); the check says which won
    evaluation = _champion_check(home, "ml/customer_recommendations")
    assert evaluation.passed or evaluation.severity == dg.AssetCheckSeverity.WARN


def test_every_audience_synced_and_has_its_file(home):
    from activation.audiences import load_audiences

    audiences = load_audiences(PROJECT_ROOT / "segments" / "audiences.yml")
    runs = _warehouse(home, "select audience_key, destination, status, n_desired "
                            "from activation.sync_runs")
    expected = {(a.key, t.name) for a in audiences for t in a.targets}
    assert set(zip(runs["audience_key"], runs["destination"], strict=True)) == expected
    assert set(runs["status"]) == {"succeeded"}
    # no profiles, so no email consent: every audience is empty, and its file says so
    assert runs["n_desired"].sum() == 0
    for audience in audiences:
        exported = pd.read_csv(home / "exports" / "audiences" / f"{audience.key}.csv")
        assert list(exported.columns) == ["customer_id"] and exported.empty


def test_the_published_copy_has_every_mart_and_model_table(home):
    published = home / "published" / "marts.duckdb"
    tables = set(_query(published, "select table_name from information_schema.tables"
                        )["table_name"])
    assert {"dim_customers", "fct_orders", "fct_order_items", "customer_rfm",
            "customer_features", "customer_360", "segment_memberships", "segment_summary",
            "segment_transitions", "customer_product_recommendations", "audience_uplift",
            "customer_clusters", "customer_clv", "item_similarities",
            "cart_complements"} <= tables
    assert "customer_contacts" not in tables
    for table in ("fct_order_items", "customer_rfm", "segment_memberships"):
        copied = _query(published, f"select count(*) as n from {table}")["n"][0]
        assert copied == _warehouse(home, f"select count(*) as n from marts.{table}")["n"][0]
    items = _query(published, """
        select count(*) as n from fct_order_items
        where is_completed and customer_id is not null and quantity > 0 and unit_price > 0
    """)["n"][0]
    assert items == 397_884  # the published cleaned figure


def test_strict_turns_the_documented_absence_into_exit_code_1(home):
    # the run above exited 0 although it lacks a model; asked to be strict, the same state
    # (nothing changed since) exits 1
    degraded = any(_champion(home, model) is None for model in ML_TABLES)
    strict = _segmenta(home, "run", "--rfm-lookback-days", "3650", "--strict")
    assert "Everything is up to date" in strict.stdout
    assert strict.returncode == (1 if degraded else 0), strict.stderr[-3000:]
    for model, asset in ML_TABLES.items():
        missing = f"strict: {asset}: no {model}@champion"
        assert (missing in strict.stderr) == (_champion(home, model) is None), strict.stderr
