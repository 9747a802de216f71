"""`segmenta run` on a fresh SEGMENTA_HOME: landing files to exported audiences, then a no-op rerun."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.support import request_erasure

pytestmark = pytest.mark.e2e


def _segmenta(home: Path, *args: str, rules: Path | None = None, expect_failure: bool = False,
              env_vars: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEGMENTA_HOME": str(home), **(env_vars or {})}
    env.pop("DAGSTER_HOME", None)
    if rules is not None:
        env["SEGMENTA_RULES"] = str(rules)
    # from an empty working directory: nothing may land in the caller's folder (an MLflow
    # client used before the tracking URI is set writes ./mlflow.db, dbt ./logs)
    scratch = _scratch(home)
    done = subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=env, check=False,
                          capture_output=True, text=True, timeout=900, cwd=scratch)
    assert (done.returncode != 0) == expect_failure, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _scratch(home: Path) -> Path:
    scratch = home.with_name(home.name + "-cwd")
    scratch.mkdir(exist_ok=True)
    return scratch


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("segmenta_home")
    _segmenta(home, "generate", "--customers", "2000", "--days", "90", "--seed", "3")
    first = _segmenta(home, "run", "--demo-destinations")
    assert "RFM segments as of" in first.stdout and "Dagster UI" in first.stdout
    (home / "first_run_output.txt").write_text(first.stdout + first.stderr)
    return home


def _query(home: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def test_partition_row_counts_equal_the_generators(home):
    manifest = json.loads((home / "generator" / "manifest.json").read_text())
    for feed in ("orders", "events"):  # every written row was loaded or quarantined
        read = _query(home, f"""
            select strftime(_partition_date, '%Y-%m-%d') as day, count(*) as n from (
                select _partition_date from raw.{feed}
                union all select _partition_date from quarantine.{feed}
            ) group by 1
        """)
        assert dict(zip(read["day"], read["n"], strict=True)) == manifest["rows"][feed]
    quarantined = _query(home, "select reason, count(*) as n from (select reason from "
                               "quarantine.orders union all select reason from "
                               "quarantine.events) group by 1")
    assert dict(zip(quarantined["reason"], quarantined["n"], strict=True)) == manifest["defects"]
    for feed in ("customers", "products"):
        n = _query(home, f"select count(*) as n from raw.{feed}")["n"][0]
        assert n == sum(manifest["rows"][feed].values())


def test_the_terminal_shows_progress_and_the_full_logs_go_to_a_file(home):
    """`segmenta run`'s output before its summary fits on a screen, without dbt's or Dagster's
    log lines or a progress bar; they are in SEGMENTA_HOME/logs/run-*.log, which it names."""
    output = (home / "first_run_output.txt").read_text()
    before = output.split("RFM segments as of")[0]
    lines = before.splitlines()
    assert len(lines) <= 25, before
    assert "\r" not in output and "Running with dbt" not in before, before
    assert " - dagster - " not in before and "mlflow" not in before.lower(), before
    assert any("steps done" in line for line in lines) and "Done in" in before, before
    # the run's log, and the demo's closing sync's (its report on the terminal, no log lines)
    logs = sorted((home / "logs").glob("run-*.log"))
    named = [log for log in logs if f"Full logs: {log}" in before]
    assert len(logs) == 2 and len(named) == 1, (logs, before)
    full = named[0].read_text()
    assert "Running with dbt" in full and "Performance info" in full
    assert " - dagster - " in full and "Done in" in full
    assert not list(_scratch(home).iterdir()), "written outside SEGMENTA_HOME"
    after = output.split("RFM segments as of")[1]
    assert "Syncing" in after and " - dagster - " not in after, after
    sync_log = next(log for log in logs if log not in named)
    assert f"Full logs: {sync_log}" in after and " - dagster - " in sync_log.read_text()


def test_every_buyer_has_exactly_one_rfm_segment(home):
    buyers = _query(home, """
        select distinct customer_id from marts.fct_orders
        where is_completed and net_revenue > 0 and customer_id is not null
          and customer_id not like 'erased-%'  -- erased customers: no RFM (docs/privacy.md)
    """)["customer_id"]
    rfm = _query(home, "select customer_id, rfm_segment, r_score, f_score, m_score "
                       "from marts.customer_rfm")
    assert set(rfm["customer_id"]) == set(buyers)
    assert rfm["customer_id"].is_unique and rfm["rfm_segment"].notna().all()
    assert rfm[["r_score", "f_score", "m_score"]].isin([1, 2, 3, 4, 5]).all().all()
    assert rfm["rfm_segment"].nunique() >= 5


def test_rfm_matches_an_independent_computation_from_raw_orders(home):
    lines = _query(home, "select * from raw.orders where customer_id is null "
                         "or customer_id not like 'erased-%'")
    lines["amount"] = lines["quantity"] * lines["unit_price"]
    lines["bought"] = lines["amount"].where(lines["quantity"] > 0, 0)
    lines["returned"] = -lines["amount"].where(lines["quantity"] < 0, 0)
    orders = lines.groupby("order_id").agg(
        customer_id=("customer_id", "first"), ordered_at=("ordered_at", "min"),
        statuses=("status", set), bought=("bought", "sum"), returned=("returned", "sum"),
        discount=("discount_amount", "sum"))
    completed = orders[orders["statuses"].map(lambda s: s == {"completed"})].copy()
    completed["net"] = completed["bought"] - completed["discount"] - completed["returned"]
    completed["day"] = completed["ordered_at"].dt.normalize()
    as_of = completed["day"].max() + pd.Timedelta(days=1)  # the default as-of date
    window = completed[(completed["net"].round(2) > 0) & completed["customer_id"].notna()
                       & (completed["day"] >= as_of - pd.Timedelta(days=365))]
    expected = window.groupby("customer_id").agg(
        recency_days=("day", lambda d: (as_of - d.max()).days),
        frequency=("net", "size"), monetary=("net", "sum"))
    rfm = _query(home, "select * from marts.customer_rfm").set_index("customer_id")
    assert set(rfm.index) == set(expected.index)
    joined = expected.join(rfm, rsuffix="_mart")
    assert (joined["recency_days"] == joined["recency_days_mart"]).all()
    assert (joined["frequency"] == joined["frequency_mart"]).all()
    assert ((joined["monetary"] - joined["monetary_mart"]).abs() < 0.05).all()
    for value, score in (("recency_days", "r_score"), ("frequency", "f_score"),
                         ("monetary", "m_score")):
        assert (rfm.groupby(value)[score].nunique() == 1).all(), f"ties in {value} split"


def test_champion_models_scored_every_customer_with_their_version(home):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("customer_segmenter", "champion")
    clusters = _query(home, "select * from ml.customer_clusters")
    assert set(clusters["model_version"]) == {str(champion.version)}
    assert set(clusters["model_name"]) == {"customer_segmenter"}
    active = _query(home, "select customer_id from marts.customer_360 "
                          "where n_orders > 0 or n_sessions_lifetime > 0")["customer_id"]
    assert set(clusters["customer_id"]) == set(active)
    assert clusters["cluster_name"].notna().all() and clusters["cluster_key"].notna().all()

    champion = client.get_model_version_by_alias("customer_lifetime_value", "champion")
    clv = _query(home, "select * from ml.customer_clv")
    assert set(clv["model_version"]) == {str(champion.version)}
    buyers = _query(home, "select distinct customer_id from marts.fct_orders "
                          "where is_completed and net_revenue > 0 and customer_id is not null "
                          "and customer_id not like 'erased-%'")
    assert set(clv["customer_id"]) == set(buyers["customer_id"])
    assert (clv["expected_value_90d"] >= 0).all()
    churn = client.get_run(champion.run_id).data.params["churn"]
    if churn == "identified":
        assert clv["probability_alive"].between(0, 1).all()
    else:  # 90 days are too few to see anyone stop buying: said so, P(alive) left empty
        assert churn.startswith("churn cannot be identified")
        assert clv["probability_alive"].isna().all()
        assert not _query(home, "select * from marts.segment_memberships where segment_key in "
                                "('predictive_likely_lost', "
                                "'predictive_high_value_likely_to_churn')").shape[0]

    champion = client.get_model_version_by_alias("product_recommender", "champion")
    recs = _query(home, "select * from ml.customer_recommendations")
    assert set(recs["model_version"]) == {str(champion.version)}
    customers = _query(home, "select customer_id from marts.dim_customers where not is_deleted")
    assert set(recs["customer_id"]) == set(customers["customer_id"])
    assert recs.groupby("customer_id")["rank"].max().eq(10).all()
    assert set(recs["reason"]) <= {"buy_again", "also_bought", "popular", "popular_in_segment",
                                   "popular_in_country"}
    assert "popular_in_country" in set(recs["reason"])  # customers who have not bought yet


def test_audiences_reach_every_demo_platform_with_the_right_consent(home):
    runs = _query(home, "select * from activation.sync_runs where mode <> 'dry_run'")
    assert set(runs["status"]) == {"succeeded"}
    assert set(runs["destination"]) == {"file", "hubspot", "klaviyo", "meta", "google", "webhook"}
    state = _query(home, """
        select s.destination, s.customer_id, c.has_email_consent, c.has_ads_consent, c.is_deleted
        from activation.sync_state s join marts.dim_customers c using (customer_id)""")
    email = state["destination"].isin(["file", "hubspot", "klaviyo", "webhook"])
    assert state.loc[email, "has_email_consent"].all()
    assert state.loc[~email, "has_ads_consent"].all()
    assert not state["is_deleted"].any()
    holdout = _query(home, "select audience_key, customer_id from "
                           "activation.audience_assignments where arm = 'holdout'")
    synced = state.merge(_query(home, "select distinct audience_key, customer_id "
                                      "from activation.sync_state"), on="customer_id")
    assert synced.merge(holdout, on=["audience_key", "customer_id"]).empty
    exported = pd.read_csv(home / "exports" / "audiences" / "champions_newsletter.csv")
    expected = _query(home, "select customer_id from activation.sync_state where "
                            "audience_key = 'champions_newsletter' and destination = 'file'")
    assert set(exported["customer_id"]) == set(expected["customer_id"]) and len(exported) > 0
    assert {"recommended_product_1", "first_name"} <= set(exported.columns)
    uplift = _query(home, "select * from marts.audience_uplift")
    assert set(uplift["audience_key"]) == {"champions_newsletter", "at_risk_winback",
                                           "cart_abandoners"}


def test_no_raw_email_or_phone_in_any_log_of_the_run(home):
    """Dagster's event and compute logs, the console output, and the audit tables hold no raw
    email address or phone number of any customer (exports/ holds them by design)."""
    import re

    customers = duckdb.sql(f"select email, phone from read_csv("
                           f"'{home}/landing/customers/**/*.csv', all_varchar = true, "
                           "union_by_name = true)").df()
    emails = {e.strip().lower() for e in customers["email"].dropna()}
    phones = {re.sub(r"\D", "", p) for p in customers["phone"].dropna()}
    phones = {p for p in phones if len(p) >= 8}
    assert len(emails) > 1000 and len(phones) > 1000
    texts = [(home / "first_run_output.txt").read_bytes()]
    texts += [p.read_bytes() for p in (home / "dagster").rglob("*") if p.is_file()]
    texts.append(_query(home, "select * from activation.sync_log").to_csv().encode())
    texts.append(_query(home, "select * from activation.sync_runs").to_csv().encode())
    found_emails, found_phones = set(), set()
    for blob in texts:
        text = blob.decode("utf-8", errors="replace").lower()
        found_emails |= set(re.findall(r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}", text)) & emails
        found_phones |= {re.sub(r"\D", "", m)
                         for m in re.findall(r"\+?\d[\d ()-]{7,}\d", text)} & phones
    assert not found_emails, f"raw emails in logs: {sorted(found_emails)[:3]}"
    assert not found_phones, f"raw phones in logs: {sorted(found_phones)[:3]}"


def test_published_copy_has_marts_but_no_contact_details(home):
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as con:
        tables = {row[0] for row in con.execute(
            "select table_name from information_schema.tables").fetchall()}
    assert {"customer_rfm", "dim_customers", "fct_orders"} <= tables
    assert "customer_contacts" not in tables


def test_published_marts_have_the_columns_their_contracts_declare(home):
    """The analysts' copy of each dbt mart has exactly the declared, described columns, in
    their order (docs/analysts.md)."""
    from dagster_project.defs.transform.project import dbt_project
    from tests.test_analyst_contract import PUBLISHED

    nodes = {node["name"]: node for node in json.loads(
        Path(dbt_project().manifest_path).read_text())["nodes"].values()}
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as con:
        for name in sorted(PUBLISHED):
            columns = [row[0] for row in con.execute(
                "select column_name from information_schema.columns where table_name = ? "
                "order by ordinal_position", [name]).fetchall()]
            assert columns == list(nodes[name]["columns"]), name


def test_dbt_source_freshness_passes_on_the_built_store(home, tmp_path):
    """`dbt source freshness` on a store just built: every raw feed was loaded within its
    warn_after (models/staging/_staging__sources.yml), so all pass."""
    from core.settings import DBT_PROJECT_DIR

    dbt = Path(sys.executable).parent / "dbt"
    done = subprocess.run(
        [str(dbt), "source", "freshness", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        env={**os.environ, "SEGMENTA_HOME": str(home)}, capture_output=True, text=True,
        check=False, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    results = json.loads((tmp_path / "target" / "sources.json").read_text())["results"]
    assert {r["unique_id"].split(".")[-1]: r["status"] for r in results} == {
        feed: "pass" for feed in ("orders", "events", "customers", "products", "weather")}


def test_dbt_assets_carry_row_counts_and_column_schemas(home):
    """Each dbt model's materialization in the run's Dagster instance carries its row count
    (tables; views have none) and its columns with DuckDB's types and the yml's descriptions."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        def latest(key: list[str]) -> dict:
            event = instance.get_latest_materialization_event(dg.AssetKey(key))
            assert event is not None, key
            return event.asset_materialization.metadata

        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
            for schema, name in (("marts", "customer_rfm"), ("marts", "fct_orders"),
                                 ("marts", "segment_summary"),
                                 ("intermediate", "int_customer_activity_daily")):
                metadata = latest([schema, name])
                rows = con.execute(f"select count(*) from {schema}.{name}").fetchone()[0]
                assert rows > 0 and metadata["dagster/row_count"].value == rows, name
                columns = con.execute(
                    "select column_name, data_type from information_schema.columns where "
                    "table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, name]).fetchall()
                shown = metadata["dagster/column_schema"].value.columns
                assert [(c.name, c.type) for c in shown] == columns, name
                assert metadata["dagster/table_name"].value == f"{schema}.{name}"
        rfm = {c.name: c for c in latest(["marts", "customer_rfm"])["dagster/column_schema"]
               .value.columns}
        assert rfm["recency_days"].description.startswith("Days from the last completed order")
        view = latest(["staging", "stg_shop__customers"])  # a view, counted in its time limit
        assert view["dagster/row_count"].value == _query(
            home, "select count(*) as n from staging.stg_shop__customers")["n"][0]
        assert view["dagster/column_schema"].value.columns
        summary = latest(["marts", "segment_summary"])["preview"].value
        assert "| segment | type | customers | share | net revenue (EUR) |" in summary
        assert "| Champions | rfm |" in summary
        published = latest(["published", "marts"])["preview"].value
        assert "| customer_rfm |" in published and "| customer_clv |" in published
        assert "customer_contacts" not in published
        clusters = latest(["ml", "customer_clusters"])  # trained in the first run
        assert clusters["mlflow_run"].value == \
            f"http://127.0.0.1:5000/#/runs/{clusters['mlflow_run_id'].value}"


def test_the_segment_mix_and_model_plots_are_pictures_in_the_materializations(home):
    """The segment mix on marts/segment_summary is the picture of the mart's rows (drawn again
    from them, the same PNG), also written to reports/; each trained model shows the plots its
    MLflow run logged (the same bytes)."""
    import dagster as dg
    import mlflow

    from core.plots import PNG_SIGNATURE, png_bytes
    from segments.report import COLUMNS, segment_mix_figure
    from tests.test_report_plots import decoded_png

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        def latest(key: list[str]) -> dict:
            return instance.get_latest_materialization_event(
                dg.AssetKey(key)).asset_materialization.metadata

        summary = latest(["marts", "segment_summary"])
        png = decoded_png(summary["segment_mix_plot"].value)
        assert png.startswith(PNG_SIGNATURE) and 10_000 < len(png) < 150_000
        assert Path(summary["segment_mix_plot_path"].value) == home / "reports" / "segment_mix.png"
        assert (home / "reports" / "segment_mix.png").read_bytes() == png
        rows = _query(home, f"select {', '.join(COLUMNS)}, as_of_date from marts.segment_summary")
        assert png_bytes(segment_mix_figure(
            rows, f"Segment mix as of {rows['as_of_date'].max():%Y-%m-%d}")) == png

        mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
        try:
            for key, plots in ((["ml", "customer_clusters"],
                                {"cluster_profiles_plot": "cluster_profiles.png"}),
                               (["ml", "customer_recommendations"],
                                {"recommender_vs_baselines_plot": "model_vs_baselines.png"}),
                               (["ml", "customer_clv"],
                                {"clv_calibration_plot": "holdout_predicted_vs_actual.png"})):
                metadata = latest(key)
                if "trained_version" not in metadata:
                    assert key == ["ml", "customer_clv"], key  # a store too young for CLV
                    continue
                for entry, artifact in plots.items():
                    shown = decoded_png(metadata[entry].value)
                    assert shown.startswith(PNG_SIGNATURE) and 5_000 < len(shown) < 150_000
                    logged = mlflow.artifacts.download_artifacts(
                        run_id=metadata["mlflow_run_id"].value, artifact_path=artifact,
                        dst_path=str(home / "downloaded" / entry))
                    assert Path(logged).read_bytes() == shown, entry  # drawn once
        finally:
            mlflow.set_tracking_uri(None)


def test_second_run_changes_nothing(home):
    warehouse = home / "warehouse.duckdb"
    before = warehouse.stat().st_mtime_ns
    again = _segmenta(home, "run")
    assert "Everything is up to date" in again.stdout
    assert warehouse.stat().st_mtime_ns == before


def test_backfill_reloads_a_range_in_one_run_without_duplicates(home):
    before = _query(home, "select count(*) as n from raw.orders")["n"][0]
    manifest = json.loads((home / "generator" / "manifest.json").read_text())
    # the store's last week (a whole-history range proves no more and took twice as long)
    end = dt.date.fromisoformat(manifest["end_date"])
    start = (end - dt.timedelta(days=6)).isoformat()
    done = _segmenta(home, "backfill", "--from", start, "--to", end.isoformat())
    assert f"landing days {start}..{end.isoformat()}" in done.stdout
    assert _query(home, "select count(*) as n from raw.orders")["n"][0] == before
    again = _segmenta(home, "run")
    assert "Everything is up to date" in again.stdout


def test_memberships_unite_rfm_rule_and_ml_segments(home):
    kinds = _query(home, "select segment_type, count(distinct segment_key) as n "
                         "from marts.segment_memberships group by 1")
    counts = dict(zip(kinds["segment_type"], kinds["n"], strict=True))
    assert counts["rfm"] >= 5 and counts["rule"] >= 5 and counts["ml"] >= 2
    rfm = _query(home, "select count(*) as n from marts.segment_memberships "
                       "where segment_type = 'rfm'")["n"][0]
    assert rfm == _query(home, "select count(*) as n from marts.customer_rfm")["n"][0]


def test_fairness_report_covers_every_segment_and_audience_and_its_check_agrees(home):
    """marts.segment_fairness (segments/fairness.py): every segment and demo audience x
    attribute, its counts adding up to the selection and to all customers, flags that follow
    the ratios, the non-blocking check failing exactly when an audience is flagged, the
    published copy and the summary's section."""
    import dagster as dg

    from dagster_project.defs.segments.fairness import FAIRNESS_CHECK
    from segments.fairness import ATTRIBUTES

    report = _query(home, "select * from marts.segment_fairness")
    sizes = _query(home, "select segment_key, count(*) as n from marts.segment_memberships "
                         "group by 1").set_index("segment_key")["n"]
    n_customers = _query(home, "select count(*) as n from marts.dim_customers")["n"][0]
    covered = report.groupby(["selection_type", "selection_key"])["attribute"].agg(set)
    assert set(covered["segment"].index) == set(sizes.index)
    assert set(covered["audience"].index) == {"champions_newsletter", "at_risk_winback",
                                              "cart_abandoners"}
    assert all(attributes == set(ATTRIBUTES) for attributes in covered)
    per = report.groupby(["selection_type", "selection_key", "attribute"])
    assert (per["n_group"].sum() == n_customers).all()
    segments = report[report["selection_type"] == "segment"]
    selected = segments.groupby(["selection_key", "attribute"])["n_selected"].sum()
    assert (selected == selected.index.get_level_values(0).map(sizes)).all()
    # an audience selects its segment's members in the target arm: fewer than the segment
    audiences = report[report["selection_type"] == "audience"].groupby(
        ["selection_key", "segment_key"])["n_selected_total"].first()
    assert all(0 < n < sizes[segment] for (_, segment), n in audiences.items())
    genders = set(report.loc[report["attribute"] == "gender", "group_value"])
    assert {"female", "male", "unknown"} <= genders

    expected = report["is_assessed"] & (report["ratio_to_most_selected"] < report["threshold"])
    assert (report["is_flagged"] == expected).all()
    assert report["is_flagged"].any() and report["threshold"].eq(0.8).all()
    assert (report.loc[report["is_assessed"], "n_group"] >= 50).all()

    flagged_audiences = set(report.loc[report["is_flagged"]
                                       & (report["selection_type"] == "audience"),
                                       "selection_key"])
    key = dg.AssetCheckKey(dg.AssetKey(["marts", "segment_fairness"]), FAIRNESS_CHECK)
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = record.evaluation
    assert evaluation.passed == (not flagged_audiences)
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["flagged_audiences"].value == len(flagged_audiences)
    assert all(audience in evaluation.description for audience in flagged_audiences)

    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from marts.segment_fairness").fetchone()[0] == len(
            report)
    assert "Fairness (marts.segment_fairness" in (home / "first_run_output.txt").read_text()


def test_checks_on_models_and_audiences_pass_on_the_built_store(home):
    """Every ML output scored once, stamped and by its resolved champion; every demo audience x
    destination within its segment, consenting and holding out its share (the checks' own
    failing cases: tests/test_output_checks.py)."""
    import dagster as dg

    from activation.audiences import load_audiences
    from core.settings import PROJECT_ROOT
    from dagster_project.defs.activation import checks as audience_checks
    from dagster_project.defs.activation.assets import sync_asset
    from dagster_project.defs.ml import checks as ml_checks

    keys = [spec.key for spec in ml_checks.SPECS]
    for audience in load_audiences(PROJECT_ROOT / "segments" / "audiences.demo.yml"):
        keys += [dg.AssetCheckKey(sync_asset(audience, target).key, name) for target
                 in audience.targets for name in (audience_checks.SIZE,
                                                  audience_checks.CONSENT_CHECK,
                                                  audience_checks.HOLDOUT)]
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    assert len(keys) == 9 + 30 and set(latest) == set(keys)
    failed = {f"{key.asset_key.to_user_string()}:{key.name}": record.evaluation.description
              for key, record in latest.items() if not record.evaluation.passed}
    assert not failed
    assert all(record.evaluation.severity == dg.AssetCheckSeverity.WARN
               for record in latest.values())


@pytest.fixture(scope="module")
def new_rule_refresh(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A refresh after a new YAML rule, while an analyst queries the published copy in a loop
    (the refresh rebuilds the segment marts and replaces the copy)."""
    import threading

    from segments.rules import RULES_FILE

    rules = tmp_path_factory.mktemp("rules") / "rules.yml"
    rules.write_text(RULES_FILE.read_text() + """
  - key: e2e_spain
    name: Everyone in Spain
    kind: geographic
    condition: country = 'ES'
""")
    published = home / "published" / "marts.duckdb"
    answers, errors, stop = [], [], threading.Event()

    def analyst() -> None:
        while not stop.is_set():
            try:
                with duckdb.connect(str(published), read_only=True) as con:
                    answers.append(con.execute(
                        "select count(*) from marts.segment_summary").fetchone()[0])
            except Exception as exc:  # noqa: BLE001 - every failure is what the test counts
                errors.append(repr(exc))

    reader = threading.Thread(target=analyst)
    reader.start()
    published_before = published.stat().st_ino
    versions_before = _model_versions(home)
    try:
        _segmenta(home, "run", rules=rules)
    finally:
        stop.set()
        reader.join()
    return {"rules": rules, "answers": answers, "errors": errors,
            "replaced": published.stat().st_ino != published_before,
            "versions": (versions_before, _model_versions(home))}


def _model_versions(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "mlflow" / "mlflow.db") as con:
        return dict(con.execute("select name, count(*) from model_versions group by name"))


def test_a_refresh_of_the_same_data_scores_with_the_champions_and_trains_nothing(
        home, new_rule_refresh):
    """The retraining policy (ml/retraining.py): the refresh after a rule change has the same
    orders and events, so no model retrains and every table is scored by its champion."""
    before, after = new_rule_refresh["versions"]
    assert before == after and len(before) == 3, (before, after)
    from ml.registry import CHAMPION

    with sqlite3.connect(home / "mlflow" / "mlflow.db") as con:
        champions = dict(con.execute("select name, version from registered_model_aliases "
                                     f"where alias = '{CHAMPION}'"))
    for table, model in (("ml.customer_clusters", "customer_segmenter"),
                         ("ml.customer_clv", "customer_lifetime_value"),
                         ("ml.customer_recommendations", "product_recommender")):
        scored = _query(home, f"select distinct model_version from {table}")["model_version"]
        if model in champions:
            assert scored.tolist() == [str(champions[model])], table
    # a run that trains nothing shows the champion's plot, read from its MLflow run
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        clusters = instance.get_latest_materialization_event(dg.AssetKey(
            ["ml", "customer_clusters"])).asset_materialization.metadata
    assert "trained_version" not in clusters
    assert (f"(champion v{champions['customer_segmenter']}, from its MLflow run)"
            in clusters["cluster_profiles_plot"].value)


RESCORE_EVERYONE = """
import dagster as dg
from core.settings import HOME
from core.warehouse import Warehouse
from dagster_project.definitions import defs

with Warehouse(HOME.warehouse).connect() as con:  # forget what was scored: score everyone
    con.execute("drop table ml.recommendation_inputs")
keys = [dg.AssetKey(["ml", name])
        for name in ("customer_recommendations", "item_similarities", "cart_complements")]
with dg.DagsterInstance.get() as instance:
    defs.resolve_job_def("refresh_all").execute_in_process(instance=instance,
                                                           asset_selection=keys)
"""


def test_recommendations_kept_for_unchanged_customers_equal_scoring_everyone(
        home, new_rule_refresh):
    """A refresh scores only the customers whose history changed (ml.recommendation_inputs);
    the lists it kept are exactly what scoring everyone again gives."""
    columns = "customer_id, rank, product_id, score, reason, model_name, model_version"
    kept = _query(home, "select count(*) as n from ml.recommendation_inputs where personal")
    assert kept["n"][0] > 100
    incremental = _query(home, f"select {columns} from ml.customer_recommendations order by all")
    env = {**os.environ, "SEGMENTA_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run([sys.executable, "-c", RESCORE_EVERYONE], env=env, check=False,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    everyone = _query(home, f"select {columns} from ml.customer_recommendations order by all")
    assert len(incremental) > 1000
    pd.testing.assert_frame_equal(incremental, everyone)


def test_analysts_query_the_published_copy_while_a_refresh_runs(new_rule_refresh):
    assert new_rule_refresh["replaced"], "the refresh did not publish a new copy"
    assert not new_rule_refresh["errors"], new_rule_refresh["errors"][:3]
    answers = new_rule_refresh["answers"]
    assert len(answers) > 10 and min(answers) > 0


def test_a_new_yaml_rule_appears_after_a_refresh_and_a_broken_one_is_named(home,
                                                                          new_rule_refresh):
    rules = new_rule_refresh["rules"]
    members = _query(home, "select count(*) as n from marts.segment_memberships "
                           "where segment_key = 'rule_e2e_spain'")["n"][0]
    spain = _query(home, "select count(*) as n from marts.dim_customers "
                         "where country = 'ES'")["n"][0]
    assert members == spain > 0
    summary = _query(home, "select n_customers from marts.segment_summary "
                           "where segment_key = 'rule_e2e_spain'")
    assert summary["n_customers"].tolist() == [spain]

    rules.write_text(rules.read_text() + """
  - key: e2e_broken
    name: Broken
    kind: hybrid
    condition: favourite_colour = 'red'
""")
    failed = _segmenta(home, "run", rules=rules, expect_failure=True)
    assert "segment 'e2e_broken' has a bad condition" in failed.stdout + failed.stderr
    still = _query(home, "select count(*) as n from marts.segment_memberships "
                         "where segment_key = 'rule_e2e_spain'")["n"][0]
    assert still == spain


def _traces_in_warehouse(path: Path, needles: list[str], token: str) -> list[str]:
    """Every table and column of a DuckDB file that holds one of `needles` (as a substring) or
    `token` (as a whole token): 'schema.table.column'."""
    import re

    found = []
    pattern = f"(^|[^A-Za-z0-9_-]){re.escape(token)}($|[^A-Za-z0-9_-])"
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute("""
            select table_schema, table_name, column_name from information_schema.columns
            where table_catalog = current_database()""").fetchall()
        for schema, table, column in columns:
            value = f'cast("{column}" as varchar)'
            conditions = " or ".join([f"contains(lower({value}), ?)" for _ in needles]
                                     + [f"regexp_matches({value}, ?)"])
            hit = con.execute(f'select count(*) from "{schema}"."{table}" where {conditions}',
                              [n.lower() for n in needles] + [pattern]).fetchone()[0]
            if hit:
                found.append(f"{schema}.{table}.{column}")
    return found


def test_an_erasure_leaves_no_trace_in_the_home(home):
    """One request, one run: the person's id, email, phone and the hashes the ad platforms got
    are nowhere in SEGMENTA_HOME (every DuckDB table and column, every other file: landing,
    exports, MLflow, Dagster storage, logs) but under the pseudonymous key (docs/privacy.md)."""
    import re

    from activation.normalize import google_email, google_phone, meta_email, meta_phone, sha256_hex
    from core.privacy import customer_key

    person = _query(home, """
        select c.customer_id, c.email, c.phone, c.country from raw.customers c
        join activation.sync_state s using (customer_id)
        where c.email is not null and c.phone is not null and not coalesce(c.is_deleted, false)
          and s.destination = 'file'
          and c.customer_id in (select customer_id from raw.orders)
        order by c.customer_id limit 1""").iloc[0]
    customer, email, phone = person["customer_id"], person["email"], person["phone"]
    hashes = {sha256_hex(v) for v in (meta_email(email), meta_phone(phone, person["country"]),
                                      google_email(email), google_phone(phone, person["country"]))
              if v}
    digits = re.sub(r"\D", "", phone)
    request_erasure(home, customer)
    # the landing files are rewritten on the sweep (SEGMENTA_ERASURE_SWEEP_DAYS, 7 days by
    # default, tests/test_privacy.py); here at once
    _segmenta(home, "run", "--demo-destinations", env_vars={"SEGMENTA_ERASURE_SWEEP_DAYS": "0"})

    needles = [email.lower(), *hashes]
    in_tables = {name: _traces_in_warehouse(home / name, needles, customer)
                 for name in ("warehouse.duckdb", "published/marts.duckdb")}
    assert in_tables == {"warehouse.duckdb": [], "published/marts.duckdb": []}
    token = re.compile(rf"(^|[^A-Za-z0-9_-]){re.escape(customer)}($|[^A-Za-z0-9_-])".encode())
    in_files = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        if (path.suffix in (".duckdb", ".wal") or path.name == "first_run_output.txt"
                or path.relative_to(home).parts[0] == "generator"):
            continue  # the DuckDB files were searched table by table; generator/ is the sample
            # store's answer key (its hidden personas), which a real store does not have
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            import gzip
            data = gzip.decompress(data)
        low = data.lower()
        if (any(n.encode() in low for n in (email.lower(), phone, digits, *hashes))
                or token.search(data)):
            in_files.append(str(path.relative_to(home)))
    assert in_files == []
    report = _query(home, "select table_name, action from audit.erasure_report "
                          f"where customer_key = '{customer_key(customer)}'")
    assert {"raw.customers", "raw.orders"} <= set(report["table_name"])
