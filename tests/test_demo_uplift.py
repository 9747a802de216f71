"""The demo's uplift lines: estimates with their intervals (email CTR's too), no point estimate
from an arm too small to measure, and the simulated true effect next to the estimate, computed
from the generator's side files on a hand-made warehouse."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from activation.state import ensure_tables
from activation.uplift import build_uplift
from core.settings import Home
from dagster_project.demo_campaign import (
    before_campaign_line,
    closing_lines,
    compared_members,
    format_uplift,
    true_effects,
)


def _row(**values) -> dict:
    row = {"audience_key": "at_risk_winback", "days_since_first_sync": 22, "n_synced": 48,
           "n_holdout": 22, "conversion_uplift": 0.311, "conversion_uplift_ci_low": 0.078,
           "conversion_uplift_ci_high": 0.543, "revenue_per_customer_uplift": 163.0,
           "revenue_per_customer_uplift_ci_low": -23.0,
           "revenue_per_customer_uplift_ci_high": 350.0, "email_ctr_uplift": 0.026,
           "email_ctr_uplift_ci_low": -0.05, "email_ctr_uplift_ci_high": 0.102,
           "n_email_opens_synced": 40, "n_email_opens_holdout": 19}
    return {**row, **values}


def test_a_measured_audience_shows_each_kpi_with_its_interval():
    lines = format_uplift([_row()])
    assert lines[0].startswith("Uplift (marts.audience_uplift")
    assert lines[1].split() == ["at_risk_winback", "22", "days", "48", "synced", "/", "22",
                                "held", "out"]
    assert lines[2].split() == ["conversion", "+31.1", "pts", "[+7.8,", "+54.3]"]
    assert lines[3].split() == ["revenue/customer", "+163.00", "[-23.00,", "+350.00]"]
    assert lines[4].split() == ["email", "CTR", "+2.6", "pts", "[-5.0,", "+10.2]"]
    assert len(lines) == 5 and "true effect" not in "\n".join(lines)


def test_an_arm_under_the_minimum_size_prints_no_point_estimate():
    lines = format_uplift([_row(audience_key="cart_abandoners", n_synced=23, n_holdout=2,
                                conversion_uplift=-0.565, conversion_uplift_ci_low=None,
                                conversion_uplift_ci_high=None,
                                revenue_per_customer_uplift=-510.09,
                                revenue_per_customer_uplift_ci_low=None,
                                revenue_per_customer_uplift_ci_high=None)])
    assert len(lines) == 2
    assert lines[1].endswith("23 synced / 2 held out: holdout too small to measure (2 < 10)")
    assert "-56.5" not in lines[1] and "510" not in lines[1]
    small_synced = format_uplift([_row(n_synced=4)])[1]
    assert small_synced.endswith("synced arm too small to measure (4 < 10)")
    # with the demo's truth: an audience no campaign targeted says so
    truth = {"at_risk_winback": {"conversion": 0.0, "revenue_per_customer": 0.0,
                                 "campaign": False}}
    assert format_uplift([_row(n_holdout=3)], truth)[1].endswith(
        "holdout too small to measure (3 < 10); no campaign simulated")


def test_the_true_effect_sits_next_to_the_estimate():
    truth = {"at_risk_winback": {"conversion": 0.33, "revenue_per_customer": 120.5,
                                 "campaign": True},
             "vip": {"conversion": 0.0, "revenue_per_customer": 0.0, "campaign": False}}
    lines = format_uplift([_row(), _row(audience_key="vip")], truth)
    assert lines[2].split()[-5:] == ["true", "effect", "+33.0", "pts", "(simulated)"]
    assert lines[3].split()[-4:] == ["true", "effect", "+120.50", "(simulated)"]
    assert "true effect" not in lines[4]  # no truth for the click-through rate
    assert lines[6].endswith("true effect +0.0 pts (no campaign simulated)")


def test_email_ctr_without_opens_or_interval_says_why():
    no_opens = format_uplift([_row(email_ctr_uplift=None, email_ctr_uplift_ci_low=None,
                                   email_ctr_uplift_ci_high=None, n_email_opens_holdout=0)])
    assert no_opens[4].split()[:3] == ["email", "CTR", "-"]
    assert "no email opened by the held-out customers since the first sync" in no_opens[4]
    no_interval = format_uplift([_row(email_ctr_uplift_ci_low=None,
                                      email_ctr_uplift_ci_high=None)])
    assert no_interval[4].split()[:4] == ["email", "CTR", "+2.6", "pts"]
    assert no_interval[4].endswith("no interval: too few email opens")


def test_nothing_to_show_before_any_outcome():
    assert format_uplift([]) == []


@pytest.fixture
def campaign_home(tmp_path):
    """A home whose warehouse has one synced audience (40 target, 20 holdout customers; the
    first sync on the store's 2026-10-10) and whose generator side files record a campaign on
    it: 10 target and 5 holdout customers bought from the campaign (the holdout's never
    delivered), one of the target's buyers would have bought anyway."""
    home = Home(tmp_path)
    first_sync = dt.datetime(2026, 12, 1, 6)
    since = dt.date(2026, 10, 10)
    with duckdb.connect(str(home.warehouse)) as con:
        ensure_tables(con)
        con.execute("create schema marts")
        con.execute("insert into activation.audience_assignments select 'winback', 'c' || i, "
                    "case when i < 40 then 'target' else 'holdout' end, 0.33, ? "
                    "from range(60) as r(i)", [first_sync])
        # a customer assigned after the first sync's run is not compared
        con.execute("insert into activation.audience_assignments values ('winback', 'c99', "
                    "'target', 0.33, ?)", [first_sync + dt.timedelta(hours=2)])
        con.execute("insert into activation.sync_runs (run_id, audience_key, destination, mode, "
                    "status, started_at, finished_at, as_of_date) values ('r1', 'winback', "
                    "'file', 'first_sync', 'succeeded', ?, ?, ?)",
                    [first_sync, first_sync + dt.timedelta(minutes=5), since])
        # delivered: the target's campaign orders (c0..c9); c0 also bought on its own, and
        # c50 (holdout) bought on its own; one order before the sync does not count
        orders = pd.DataFrame({
            "order_id": [f"K{i}" for i in range(10)] + ["o1", "o2", "o3"],
            "customer_id": [f"c{i}" for i in range(10)] + ["c0", "c50", "c51"],
            "order_date": [since + dt.timedelta(days=3)] * 12 + [since - dt.timedelta(days=1)],
            "is_completed": True, "net_revenue": [100.0] * 10 + [30.0, 30.0, 30.0]})
        con.register("_orders", orders)
        con.execute("create table marts.fct_orders as select * from _orders")
        build_uplift(con)
    home.generator.mkdir(parents=True)
    (home.generator / "manifest.json").write_text(json.dumps({"campaigns": [
        {"audience": "winback", "start": since.isoformat(), "conversion": 0.25}]}))
    pd.DataFrame({
        "audience_key": "winback",
        "customer_id": [f"c{i}" for i in range(10)] + [f"c{i}" for i in range(40, 45)],
        "arm": ["target"] * 10 + ["holdout"] * 5,
        "order_id": [f"K{i}" for i in range(15)],
        "order_date": (since + dt.timedelta(days=3)).isoformat(),
        "revenue": 100.0, "delivered": [True] * 10 + [False] * 5,
    }).to_csv(home.generator / "campaign_orders.csv", index=False)
    return home


def test_the_true_effect_is_computed_on_the_members_the_estimate_compares(campaign_home):
    with duckdb.connect(str(campaign_home.warehouse), read_only=True) as con:
        members = compared_members(con, "winback")
        n_synced, n_holdout = con.execute("select n_synced, n_holdout from "
                                          "marts.audience_uplift").fetchone()
        truths = true_effects(con, campaign_home.generator)
    assert len(members) == n_synced + n_holdout == 60 and "c99" not in members
    # 15 of the 60 members buy from the campaign when treated; c0 would have bought anyway
    assert truths == {"winback": {"conversion": pytest.approx(14 / 60),
                                  "revenue_per_customer": pytest.approx(1500 / 60),
                                  "campaign": True}}


def test_the_demo_closes_with_the_uplift_and_its_truth(campaign_home):
    lines = closing_lines(campaign_home)
    assert lines[1].split()[:6] == ["winback", "4", "days", "40", "synced", "/"]
    assert lines[2].split()[:5] == ["conversion", "+20.0", "pts", "[+3.5,", "+36.5]"]
    assert lines[2].endswith("true effect +23.3 pts (simulated)")
    assert lines[3].endswith("true effect +25.00 (simulated)")
    assert "no email opened by the synced and held-out customers" in lines[4]
    assert lines[5].startswith("  (true effect: the simulated campaign's effect on the same")


def test_no_truth_for_a_store_generated_without_campaigns(campaign_home):
    (campaign_home.generator / "manifest.json").write_text(json.dumps({"rows": {}}))
    lines = closing_lines(campaign_home)
    assert len(lines) == 5 and "true effect" not in "\n".join(lines)
    assert closing_lines(Home(campaign_home.root / "elsewhere")) == []


def test_the_first_run_before_the_campaign_is_one_line(campaign_home):
    line = before_campaign_line(campaign_home)
    assert line.startswith("Before the campaign's days (store as of 2026-10-10): first syncs "
                           "of the demo audiences: 1 succeeded.")
    assert "\n" not in line


def test_the_cli_leaves_the_audiences_file_to_the_demo():
    """`activation.audiences` reads SEGMENTA_AUDIENCES when imported: importing the CLI must not
    import it, or the demo's audiences file (set later) would be ignored."""
    code = "import sys, dagster_project.cli; print('activation.audiences' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
