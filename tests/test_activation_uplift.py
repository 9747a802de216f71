"""marts.audience_uplift on hand-made data: the arms' outcomes since the first sync, on the
store's clock, and the migration of an older `activation.sync_runs`."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pandas as pd
import pytest

from activation.state import ensure_tables
from activation.uplift import build_uplift


def test_uplift_compares_synced_and_holdout_customers_after_the_first_sync(tmp_path):
    first_sync = dt.datetime(2026, 10, 1, 6)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_tables(con)
        con.execute("create schema marts")
        # 100 synced customers, 20 of whom buy once for 50 after the sync; 100 in the holdout,
        # 10 of whom buy once for 50; an order before the first sync does not count
        arms = pd.DataFrame({"audience_key": "vip",
                             "customer_id": [f"t{i}" for i in range(100)]
                             + [f"h{i}" for i in range(100)],
                             "arm": ["target"] * 100 + ["holdout"] * 100,
                             "holdout_share": 0.5, "first_assigned_at": first_sync})
        orders = pd.DataFrame({
            "order_id": [f"o{i}" for i in range(31)],
            "customer_id": [f"t{i}" for i in range(20)] + [f"h{i}" for i in range(10)] + ["h50"],
            "ordered_at": [first_sync + dt.timedelta(days=3)] * 30
                          + [first_sync - dt.timedelta(days=3)],
            "is_completed": True, "net_revenue": 50.0})
        orders["order_date"] = orders["ordered_at"].dt.date
        con.register("_arms", arms)
        con.register("_orders", orders)
        con.execute("insert into activation.audience_assignments select * from _arms")
        con.execute("create table marts.fct_orders as select * from _orders")
        # email: the synced open 4 times and click twice; the holdout open 4 times, click once
        con.execute("create schema intermediate")
        con.execute("create table intermediate.int_customer_activity_daily as select * from ("
                    "values ('t1', date '2026-10-02', 2, 2), ('t2', date '2026-10-03', 2, 0), "
                    "('h1', date '2026-10-02', 4, 1), ('t3', date '2026-09-02', 9, 9)) "
                    "as t(customer_id, activity_date, n_email_opens, n_email_clicks)")
        con.execute("create schema ml")
        con.execute("create table ml.customer_clv as select 't' || i as customer_id, "
                    "100.0 as expected_value_90d from range(100) as r(i)")
        con.execute("insert into activation.sync_runs (run_id, audience_key, destination, mode, "
                    "status, started_at) values ('r1', 'vip', 'file', 'first_sync', "
                    "'succeeded', ?), ('r0', 'vip', 'file', 'dry_run', 'dry_run', ?)",
                    [first_sync, first_sync - dt.timedelta(days=10)])
        assert build_uplift(con) == 1
        row = con.execute("select * from marts.audience_uplift").df().iloc[0]
    assert (row["n_synced"], row["n_holdout"]) == (100, 100)
    assert row["first_synced_at"] == pd.Timestamp(first_sync)
    assert row["conversion_rate_synced"] == pytest.approx(0.2)
    assert row["conversion_rate_holdout"] == pytest.approx(0.1)
    margin = 1.96 * math.sqrt(0.2 * 0.8 / 100 + 0.1 * 0.9 / 100)
    assert row["conversion_uplift_ci_low"] == pytest.approx(0.1 - margin)
    assert row["conversion_uplift_ci_high"] == pytest.approx(0.1 + margin)
    assert row["revenue_per_customer_uplift"] == pytest.approx(5.0)
    assert row["aov_synced"] == pytest.approx(50.0) and row["aov_holdout"] == pytest.approx(50.0)
    # every order is worth 50: the delta-method interval of the AOV difference is a point
    assert row["aov_uplift_ci_low"] == pytest.approx(0) == row["aov_uplift_ci_high"]
    assert row["email_ctr_synced"] == pytest.approx(0.5)  # the opens before the sync left out
    assert row["email_ctr_holdout"] == pytest.approx(0.25)
    low, high = row["email_ctr_uplift_ci_low"], row["email_ctr_uplift_ci_high"]
    assert low < 0.25 < high and high - low == pytest.approx(2 * 1.96 * math.sqrt(
        ((1 ** 2 + 1 ** 2) / 99 / 100) / (4 / 100) ** 2))  # delta method; the holdout's is 0
    assert row["predicted_value_90d_uplift"] == pytest.approx(100.0)  # unscored holdout: 0
    assert row["predicted_value_90d_uplift_ci_low"] == pytest.approx(100.0)
    # no store clock on the rows (recorded before as_of_date): the wall-clock day stands in
    assert row["first_sync_as_of_date"] == pd.Timestamp(2026, 10, 1)
    assert row["days_since_first_sync"] == 4  # the newest order (Oct 4) + 1 - Oct 1


def test_outcomes_are_counted_from_the_stores_as_of_date_not_the_wall_clock(tmp_path):
    """A sync run on 2026-12-01 of data up to 2026-09-30: orders from Oct 1 on are outcomes."""
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_tables(con)
        con.execute("create schema marts")
        con.execute("insert into activation.audience_assignments select 'vip', 'c' || i, "
                    "case when i < 50 then 'target' else 'holdout' end, 0.5, "
                    "timestamp '2026-12-01 06:00' from range(100) as r(i)")
        con.execute("create table marts.fct_orders as select 'o' || i as order_id, "
                    "'c' || i as customer_id, true as is_completed, 10.0 as net_revenue, "
                    "date '2026-10-01' + cast(i % 5 as integer) as order_date "
                    "from range(20) as r(i)")
        con.execute("insert into activation.sync_runs (run_id, audience_key, destination, mode, "
                    "status, started_at, finished_at, as_of_date) values ('r1', 'vip', 'file', "
                    "'first_sync', 'succeeded', timestamp '2026-12-01 06:00', "
                    "timestamp '2026-12-01 06:05', date '2026-10-01')")
        # a customer who joined in a later run (minutes later on the wall clock) is not compared
        con.execute("insert into activation.audience_assignments values ('vip', 'c1000', "
                    "'target', 0.5, timestamp '2026-12-01 06:30')")
        build_uplift(con)
        row = con.execute("select * from marts.audience_uplift").df().iloc[0]
    assert row["first_sync_as_of_date"] == pd.Timestamp(2026, 10, 1)
    assert row["store_as_of_date"] == pd.Timestamp(2026, 10, 6)
    assert row["days_since_first_sync"] == 5
    assert (row["n_synced"], row["n_holdout"]) == (50, 50)
    assert row["conversion_rate_synced"] == pytest.approx(0.4)  # c0..c19 of c0..c49
    assert row["conversion_rate_holdout"] == pytest.approx(0.0)
    assert pd.isna(row["email_ctr_synced"])  # no events table, no opens


def test_no_interval_from_an_arm_too_small_for_the_normal_approximation(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_tables(con)
        con.execute("create schema marts")
        # 30 synced customers, 2 held out (both buy): a difference, but no interval
        con.execute("insert into activation.audience_assignments select 'vip', 'c' || i, "
                    "case when i < 30 then 'target' else 'holdout' end, 0.1, "
                    "timestamp '2026-12-01 06:00' from range(32) as r(i)")
        con.execute("create table marts.fct_orders as select 'o' || i as order_id, "
                    "'c' || i as customer_id, true as is_completed, 10.0 as net_revenue, "
                    "date '2026-10-02' as order_date from range(25, 32) as r(i)")
        con.execute("insert into activation.sync_runs (run_id, audience_key, destination, mode, "
                    "status, started_at, as_of_date) values ('r1', 'vip', 'file', 'first_sync', "
                    "'succeeded', timestamp '2026-12-01 06:00', date '2026-10-01')")
        build_uplift(con)
        row = con.execute("select * from marts.audience_uplift").df().iloc[0]
    assert row["conversion_uplift"] == pytest.approx(5 / 30 - 1)
    assert pd.isna(row["conversion_uplift_ci_low"]) and pd.isna(row["conversion_uplift_ci_high"])
    assert pd.isna(row["revenue_per_customer_uplift_ci_low"])


def test_an_older_sync_runs_table_gets_the_store_clock_column(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema activation")
        con.execute("create table activation.sync_runs (run_id varchar, audience_key varchar, "
                    "destination varchar, mode varchar, status varchar, started_at timestamp)")
        con.execute("insert into activation.sync_runs values ('r1', 'vip', 'file', "
                    "'first_sync', 'succeeded', timestamp '2026-10-01 06:00')")
        ensure_tables(con)
        ensure_tables(con)  # idempotent
        rows = con.execute("select run_id, n_resumed, as_of_date from activation.sync_runs"
                           ).fetchall()
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_name = 'sync_runs'").fetchall())
    assert rows == [("r1", None, None)]
    assert types["as_of_date"] == "DATE"
