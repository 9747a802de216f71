"""How often marts.audience_uplift's 95 % intervals cover a simulated campaign's true effect.

For each seed, a small sample store is generated with a campaign (`generator.campaigns`); an
audience is taken as the customers with email consent who bought before the campaign's start
(the test's `rule_buyers` audience at the file destination; the arms are a hash, independent of
who is in it), split into arms with
`core.holdout.in_holdout`, and the estimator's own SQL (`activation.uplift.build_uplift`) runs on
the store's orders, order lines summed to orders as `fct_orders` does. The true effect on the
audience is known exactly (`generator.campaigns.true_effect`: both arms' potential campaign
orders are on record). Counts per effect size: intervals that cover the true effect (about 95 %
expected) and, for a positive effect, intervals above 0 (the power).

The full pipeline runs once in tests/test_uplift_recovery.py (seed `TEST_SEED`); this script
shows that seed is not a lucky one: run it with the test's store size.

    .venv/bin/python benchmarks/uplift_coverage.py --seeds 40
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activation.state import ensure_tables
from activation.uplift import build_uplift
from core.holdout import in_holdout
from generator import generate
from generator.campaigns import Campaign, true_effect

# the recovery test's store (tests/test_uplift_recovery.py)
CUSTOMERS, DAYS, END = 1200, 35, dt.date(2026, 10, 31)
START = END - dt.timedelta(days=13)
HOLDOUT = 0.5
TEST_SEED = 11


def orders_of(landing: Path) -> pd.DataFrame:
    """The landing zone's order lines summed to orders: completed ones, net of discounts."""
    lines = pd.concat([pd.read_csv(f, dtype={"customer_id": str})
                       for f in sorted(landing.glob("orders/dt=*/*.csv"))])
    lines["net"] = lines["quantity"] * lines["unit_price"] - lines["discount_amount"]
    orders = lines.groupby("order_id").agg(
        customer_id=("customer_id", "first"), ordered_at=("ordered_at", "min"),
        status=("status", "first"), net_revenue=("net", "sum")).reset_index()
    orders["order_date"] = pd.to_datetime(orders["ordered_at"].str[:10]).dt.date
    orders["is_completed"] = orders["status"] == "completed"
    return orders[orders["customer_id"].notna()]


def email_consented(landing: Path, before: dt.date) -> set[str]:
    """Customers whose newest profile delivered before `before` has email consent."""
    profiles = pd.concat([pd.read_csv(f, dtype=str) for f in sorted(landing.glob(
        "customers/dt=*/*.csv")) if dt.date.fromisoformat(f.parent.name[3:]) < before])
    newest = profiles.sort_values("updated_at", kind="stable").groupby("customer_id").tail(1)
    return set(newest.loc[(newest["email_consent"] == "true")
                          & (newest["is_deleted"] != "true"), "customer_id"])


def one_store(seed: int, conversion: float, folder: Path) -> dict:
    campaign = Campaign("winback", START, conversion, HOLDOUT, days=14)
    generate(folder / "landing", folder / "generator", CUSTOMERS, DAYS, END, seed,
             progress=False, defect_rate=0.0, campaigns=(campaign,))
    orders = orders_of(folder / "landing")
    completed = orders[orders["is_completed"]]
    members = sorted(set(completed.loc[completed["order_date"] < START, "customer_id"])
                     & email_consented(folder / "landing", START))
    records = pd.read_csv(folder / "generator" / "campaign_orders.csv")
    truth = true_effect(records, "winback", members, completed, START)
    with duckdb.connect() as con:
        ensure_tables(con)
        con.execute("create schema marts")
        con.register("_orders", orders)
        con.execute("create table marts.fct_orders as select * from _orders")
        arms = pd.DataFrame({"audience_key": "winback", "customer_id": members,
                             "arm": ["holdout" if in_holdout("winback", c, HOLDOUT) else "target"
                                     for c in members],
                             "holdout_share": HOLDOUT,
                             "first_assigned_at": dt.datetime(2026, 12, 1)})
        con.register("_arms", arms)
        con.execute("insert into activation.audience_assignments select * from _arms")
        con.execute("insert into activation.sync_runs (run_id, audience_key, destination, mode, "
                    "status, started_at, as_of_date) values ('r', 'winback', 'file', "
                    "'first_sync', 'succeeded', timestamp '2026-12-01', ?)", [START])
        build_uplift(con)
        row = con.execute("select * from marts.audience_uplift").df().iloc[0]
    return {"seed": seed, "conversion_effect": conversion, "members": len(members),
            "true_conversion": truth["conversion"],
            "conversion_low": row["conversion_uplift_ci_low"],
            "conversion_high": row["conversion_uplift_ci_high"],
            "true_revenue": truth["revenue_per_customer"],
            "revenue_low": row["revenue_per_customer_uplift_ci_low"],
            "revenue_high": row["revenue_per_customer_uplift_ci_high"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=40, help="stores per effect size")
    parser.add_argument("--effects", type=float, nargs="+", default=[0.0, 0.5],
                        help="campaign conversion probabilities (default: 0 and the test's 0.5)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for effect in args.effects:
            for seed in range(1, args.seeds + 1):
                rows.append(one_store(seed, effect, Path(tmp) / f"{effect}-{seed}"))
    frame = pd.DataFrame(rows)
    for metric in ("conversion", "revenue"):
        frame[f"{metric}_covered"] = ((frame[f"{metric}_low"] <= frame[f"true_{metric}"])
                                      & (frame[f"true_{metric}"] <= frame[f"{metric}_high"]))
        frame[f"{metric}_above_0"] = frame[f"{metric}_low"] > 0
    summary = frame.groupby("conversion_effect").agg(
        stores=("seed", "size"), members=("members", "mean"),
        true_conversion=("true_conversion", "mean"),
        conversion_covered=("conversion_covered", "mean"),
        conversion_above_0=("conversion_above_0", "mean"),
        revenue_covered=("revenue_covered", "mean"), revenue_above_0=("revenue_above_0", "mean"))
    print(summary.round(3).to_markdown())
    test = frame[frame["seed"] == TEST_SEED]
    if len(test):
        print(f"\nseed {TEST_SEED} (the test's):")
        print(test.round(3).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
