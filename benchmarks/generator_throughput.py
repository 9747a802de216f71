"""Benchmark the sample-store generator: wall time, peak memory, rows and bytes written.

    .venv/bin/python benchmarks/generator_throughput.py --customers 1000000 --days 365 --gzip

Runs the generator in a child process (into a scratch SEGMENTA_HOME unless --home is given)
and prints one Markdown table row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--gzip", action="store_true", help="write .gz files")
    parser.add_argument("--home", type=Path, help="where to write (default: a scratch folder)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="segmenta_bench_"))
    command = [sys.executable, "-m", "generator", "--home", str(home),
               "--customers", str(args.customers), "--days", str(args.days), "--force"]
    if args.gzip:
        command.append("--gzip")
    started = time.monotonic()
    subprocess.run(command, check=True, env={**os.environ, "SEGMENTA_HOME": str(home)})
    seconds = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    manifest = json.loads((home / "generator" / "manifest.json").read_text())
    rows = {feed: sum(days.values()) for feed, days in manifest["rows"].items()}
    size_gib = sum(p.stat().st_size for p in (home / "landing").rglob("*") if p.is_file()) / 2**30
    print("| customers | days | order lines | events | profiles | wall time | events/s | "
          "peak RSS | landing size |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.customers:,} | {args.days} | {rows['orders']:,} | {rows['events']:,} | "
          f"{rows['customers']:,} | {seconds / 60:.1f} min | {rows['events'] / seconds:,.0f} | "
          f"{peak_mib:,.0f} MiB | {size_gib:.1f} GiB{' (gzip)' if args.gzip else ''} |")
    if args.home is None and not args.keep:
        subprocess.run(["rm", "-rf", str(home)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
