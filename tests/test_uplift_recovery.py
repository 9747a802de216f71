"""marts.audience_uplift recovers a simulated campaign's true effect, and finds none at zero.

One small store (1,200 customers, 35 days, no defects) with two campaigns starting on
`START`: `winback` (half of its target arm buys once more within 14 days) and `placebo` (true
effect 0), both on the same segment (customers who bought, a rule) with a 50 % holdout, the
share that gives the narrowest intervals. `segmenta run` loads the days before `START` and syncs
to the file destination (the first sync is stamped with the store's as-of date, `START`), the
later days are delivered and `segmenta run` runs again. The true effect on each audience's
members is known exactly: `campaign_orders.csv` holds both arms' campaign orders, so each
member's outcome with and without the campaign is known (`generator.campaigns.true_effect`).

Why seed 11 is not cherry-picked: `benchmarks/uplift_coverage.py` runs the same estimator on
the same store size over 40 seeds per effect (docs/benchmarks.md): the intervals cover the true
effect at about the nominal 95 %, and at a conversion effect of 0.5 the conversion interval
excludes 0 in every seed. The fixed seed keeps the test deterministic. 1,200 customers, not
1,000: since the sample's weather moves demand, the 1,000-customer stores of seeds 11 and 12
have a day with a fifth or less of the usual order lines, which raw/orders' blocking volume
check stops.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from generator.campaigns import true_effect

pytestmark = pytest.mark.e2e

START = dt.date(2026, 10, 18)  # the store ends 2026-10-31: 14 days of outcomes
SEED = 11
AUDIENCES = """
audiences:
  - key: winback
    segment: rule_buyers
    holdout: 0.5
    destinations: [file]
  - key: placebo
    segment: rule_buyers
    holdout: 0.5
    destinations: [file]
"""
RULES = """
segments:
  - key: buyers
    name: Buyers
    kind: purchase
    description: Customers with at least one order.
    condition: n_orders >= 1
"""


def _segmenta(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEGMENTA_HOME": str(home),
           "SEGMENTA_AUDIENCES": str(home / "audiences.yml"),
           "SEGMENTA_RULES": str(home / "rules.yml")}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=env,
                          check=False, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _query(home: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).df()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("uplift_home")
    (home / "audiences.yml").write_text(AUDIENCES)
    (home / "rules.yml").write_text(RULES)
    # the holdout shares come from the audiences file (SEGMENTA_AUDIENCES)
    _segmenta(home, "generate", "--customers", "1200", "--days", "35", "--seed", str(SEED),
              "--defect-rate", "0",
              "--campaign", f"audience=winback,start={START},conversion=0.5",
              "--campaign", f"audience=placebo,start={START},conversion=0")
    later = home / "held_back"
    for folder in sorted((home / "landing").glob("*/dt=*")):
        if dt.date.fromisoformat(folder.name[3:]) >= START:
            (later / folder.parent.name).mkdir(parents=True, exist_ok=True)
            folder.rename(later / folder.parent.name / folder.name)
    _segmenta(home, "run")
    (home / "first_sync.csv").write_text(_query(
        home, "select audience_key, as_of_date, started_at from activation.sync_runs"
    ).to_csv(index=False))
    for folder in sorted(later.glob("*/dt=*")):  # the store delivers the campaign's days
        folder.rename(home / "landing" / folder.parent.name / folder.name)
    shutil.rmtree(later)
    second = _segmenta(home, "run")
    (home / "second_run.txt").write_text(second.stdout)
    return home


def _truth(home: Path, audience: str) -> dict[str, float]:
    members = _query(home, """
        select customer_id from activation.audience_assignments
        where audience_key = ? and first_assigned_at <= (
            select max(finished_at) from activation.sync_runs where run_id = (
                select arg_min(run_id, started_at) from activation.sync_runs
                where audience_key = ?))
    """, [audience, audience])["customer_id"].tolist()
    orders = _query(home, "select order_id, customer_id, order_date from marts.fct_orders "
                          "where is_completed")
    records = pd.read_csv(home / "generator" / "campaign_orders.csv")
    return true_effect(records, audience, members, orders, START)


def _row(home: Path, audience: str) -> pd.Series:
    return _query(home, "select * from marts.audience_uplift where audience_key = ?",
                  [audience]).iloc[0]


def test_the_first_sync_is_stamped_with_the_stores_clock(home):
    first = pd.read_csv(home / "first_sync.csv")
    assert set(first["audience_key"]) == {"winback", "placebo"}
    assert (pd.to_datetime(first["as_of_date"]).dt.date == START).all()
    # the wall clock says today, years or days away from the store's data
    assert (pd.to_datetime(first["started_at"]).dt.date != START).all()
    row = _row(home, "winback")
    assert row["first_sync_as_of_date"].date() == START
    assert row["days_since_first_sync"] == 14


def test_a_positive_effect_is_recovered_inside_the_95_percent_interval(home):
    truth, row = _truth(home, "winback"), _row(home, "winback")
    assert row["n_synced"] > 20 and row["n_holdout"] > 20
    assert truth["conversion"] > 0.2  # the campaign made a real difference to these members
    assert row["conversion_uplift_ci_low"] <= truth["conversion"] <= row[
        "conversion_uplift_ci_high"]
    assert row["conversion_uplift_ci_low"] > 0  # and the estimate finds it
    assert row["revenue_per_customer_uplift_ci_low"] <= truth["revenue_per_customer"] <= row[
        "revenue_per_customer_uplift_ci_high"]
    # the campaign's orders came through an email click: more clicks per open in the target arm
    assert row["email_ctr_synced"] > row["email_ctr_holdout"]


def test_a_zero_effect_is_not_found(home):
    truth, row = _truth(home, "placebo"), _row(home, "placebo")
    assert truth == {"conversion": 0.0, "revenue_per_customer": 0.0}
    assert row["n_synced"] > 20 and row["n_holdout"] > 20
    assert row["conversion_uplift_ci_low"] <= 0 <= row["conversion_uplift_ci_high"]
    assert row["revenue_per_customer_uplift_ci_low"] <= 0 <= row[
        "revenue_per_customer_uplift_ci_high"]


def test_the_summary_shows_the_uplift(home):
    text = (home / "second_run.txt").read_text()
    assert "Uplift (marts.audience_uplift" in text
    assert any(line.strip().startswith("winback") and "14 days" in line
               for line in text.splitlines())
