"""Benchmark the dbt layer: a full build over all history vs the daily incremental refresh.

    .venv/bin/python benchmarks/dbt_refresh.py --home ../bench100k --customers 100000 --days 365

Generates the sample store (unless <home>/landing exists), loads every day but the last into a
fresh warehouse and runs `dbt build --full-refresh` (the first run of a store); then loads the
last day and runs the daily `dbt build` (the incremental models follow the change logs); then
loads that day again together with a re-delivery, two weeks back, of a day without one order
line, and refreshes. Prints a Markdown table: wall time of each build, the rows of the big
tables, the rows each refresh wrote, and the slowest models of each build (from dbt's
run_results.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

import generator
from core.settings import DBT_PROJECT_DIR
from core.warehouse import Warehouse
from ingest import landing

# everything dbt builds from the landing feeds alone (segment_memberships and what follows it
# also read the ML and rule-segment assets that Dagster writes)
SELECT = ["--select", "+customer_360 +customer_rfm +fct_order_items",
          "--exclude-resource-type", "unit_test", "--indirect-selection", "cautious"]
TABLES = ("intermediate.int_events_sessionized", "marts.fct_sessions",
          "intermediate.int_customer_activity_daily", "marts.fct_orders", "marts.fct_order_items")


def dbt_build(home: Path, *extra: str) -> tuple[float, list[tuple[str, float]]]:
    target = home / "dbt_target"
    started = time.monotonic()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", *SELECT, *extra,
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(home / "dbt_logs")],
        env={**os.environ, "SEGMENTA_HOME": str(home)}, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode:
        sys.exit(done.stdout[-4000:])
    results = json.loads((target / "run_results.json").read_text())["results"]
    slowest = sorted(((r["unique_id"].split(".")[-1], r["execution_time"]) for r in results
                      if r["unique_id"].startswith("model.")), key=lambda r: -r[1])
    return seconds, slowest


def counts(home: Path) -> dict[str, tuple[int, int]]:
    """(rows, rows written by the newest run) of each big table."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return {t: con.execute(f"select count(*), count(*) filter (where change_id = "
                               f"(select max(change_id) from {t})) from {t}").fetchone()
                for t in TABLES}


def redeliver_without_a_line(home: Path, day: dt.date) -> None:
    """The store re-sends a day's orders with its first line removed (a cancelled line)."""
    for path in sorted((home / "landing" / "orders" / f"dt={day}").glob("*.csv*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as text:
            lines = text.readlines()
        with opener(path, "wt") as text:
            text.writelines(lines[:1] + lines[2:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a scratch SEGMENTA_HOME")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--gzip", action="store_true",
                        help="write gzip landing files (a 1M-customer year is 35 GiB as text)")
    args = parser.parse_args()
    home = args.home.resolve()
    if not (home / "landing").exists():
        started = time.monotonic()
        generator.generate(home / "landing", home / "generator", customers=args.customers,
                           days=args.days, compress=args.gzip)
        print(f"generated in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    (home / "warehouse.duckdb").unlink(missing_ok=True)
    warehouse = Warehouse(home / "warehouse.duckdb")
    days = landing.landing_days(home / "landing", "events")
    history, last = days[:-1], days[-1]

    started = time.monotonic()
    for feed in ("customers", "products"):
        landing.load_all_days(warehouse, home / "landing", feed)
    for feed in ("orders", "events"):
        landing.load_days(warehouse, home / "landing", feed, history)
    print(f"loaded {len(history)} days in {(time.monotonic() - started) / 60:.1f} min", flush=True)

    full_s, full_slowest = dbt_build(home, "--full-refresh")
    full = counts(home)
    print(f"full build {full_s:.0f} s", flush=True)

    for feed in ("orders", "events"):
        landing.load_days(warehouse, home / "landing", feed, [last])
    day_s, day_slowest = dbt_build(home)
    daily = counts(home)
    print(f"one-day refresh {day_s:.0f} s", flush=True)

    # yesterday's files again, and a day two weeks back re-delivered without one order line
    late = days[-15]
    redeliver_without_a_line(home, late)
    for feed in ("orders", "events"):
        landing.load_days(warehouse, home / "landing", feed, [late, last])
    late_s, late_slowest = dbt_build(home)
    late_counts = counts(home)

    print(f"\n{args.customers:,} customers, {len(days)} days ({days[0]}..{last}), "
          f"{dt.date.today()}\n")
    print("| build | wall time | " + " | ".join(t.split(".")[1] for t in TABLES) + " |")
    print("|---|---|" + "---|" * len(TABLES))
    print(f"| full build, {len(history)} days | {full_s:.0f} s | "
          + " | ".join(f"{full[t][0]:,}" for t in TABLES) + " |")
    print(f"| one-day refresh, {last} | {day_s:.0f} s | "
          + " | ".join(f"{daily[t][1]:,} written" for t in TABLES) + " |")
    print(f"| {last} again + {late} re-delivered | {late_s:.0f} s | "
          + " | ".join(f"{late_counts[t][1]:,} written" for t in TABLES) + " |")
    for name, slowest in (("full build", full_slowest), ("one-day refresh", day_slowest),
                          ("late re-delivery", late_slowest)):
        print(f"\nslowest models, {name}: "
              + ", ".join(f"{model} {seconds:.1f} s" for model, seconds in slowest[:6]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
