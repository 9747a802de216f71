"""marts.audience_uplift on hand-made data: the arms' outcomes since the first sync."""

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
        con.register("_arms", arms)
        con.register("_orders", orders)
        con.execute("insert into activation.audience_assignments select * from _arms")
        con.execute("create table marts.fct_orders as select * from _orders")
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
