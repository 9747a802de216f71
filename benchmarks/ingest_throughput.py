"""Benchmark ingestion: load every landing day of a SEGMENTA_HOME into a fresh warehouse.

    .venv/bin/python benchmarks/ingest_throughput.py --home /path/to/generated/home

Loads orders and events (one transaction each, as a single-run backfill does) and the snapshot
feeds, then prints a Markdown table: rows read, loaded, quarantined, wall time, rows/s and the
peak memory of this process.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from core.warehouse import Warehouse
from ingest import landing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a SEGMENTA_HOME with landing/")
    parser.add_argument("--warehouse", type=Path,
                        help="warehouse file to create (default: <home>/bench_warehouse.duckdb)")
    args = parser.parse_args()
    target = args.warehouse or args.home / "bench_warehouse.duckdb"
    target.unlink(missing_ok=True)
    warehouse = Warehouse(target)
    lines = ["| feed | files | rows read | loaded | quarantined | wall time | rows/s |",
             "|---|---|---|---|---|---|---|"]
    for feed in ("customers", "products", "orders", "events"):
        started = time.monotonic()
        if landing.FEEDS[feed].partitioned:
            days = landing.landing_days(args.home / "landing", feed)
            report = landing.load_days(warehouse, args.home / "landing", feed, days)
        else:
            report = landing.load_all_days(warehouse, args.home / "landing", feed)
        seconds = time.monotonic() - started
        t = report.totals
        lines.append(f"| {feed} | {t['files']} | {t['rows_read']:,} | {t['rows_loaded']:,} | "
                     f"{t['rows_quarantined']:,} | {seconds / 60:.1f} min | "
                     f"{t['rows_read'] / max(seconds, 1e-9):,.0f} |")
        print(lines[-1], flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = target.stat().st_size / 2**30
    print("\n".join(lines))
    print(f"\npeak RSS {peak:,.0f} MiB; warehouse {size:.1f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
