"""Benchmark the whole pipeline: a store's first `segmenta run` vs the daily refresh after it.

    .venv/bin/python benchmarks/pipeline.py --home ../bench100k --customers 100000 --days 365

Generates the sample store into <home>/landing unless it is there, and holds its last
`--held-back` days out of the landing zone (in <home>/held_back). Then:

1. the full build: `segmenta run` on a fresh home (every landing day loaded, every dbt model
   built from all history, every model trained, segments, publish and syncs);
2. the daily refresh: the next held-back day is put into the landing zone, as the store's
   nightly export would, and `segmenta run` runs again.

`--refresh-only` skips the full build and measures the next daily refresh of a home built
before (one held-back day per call).

Both runs are separate processes, measured the same way: wall time, and the peak resident
memory of the whole process tree (the run, dbt, every child) sampled every 0.2 s. The time of
each stage comes from the Dagster run's step events; a stage's peak memory is the highest
sample taken while one of its steps ran. Prints a Markdown table per run and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
SEGMENTA = [sys.executable, "-m", "dagster_project.cli"]
STAGES = ("ingestion", "dbt", "models", "segments", "publish", "syncs", "checks")


def stage_of(step_key: str) -> str:
    """The pipeline stage a Dagster step belongs to (its asset's layer)."""
    if step_key.startswith("raw_"):
        return "ingestion"
    if step_key.startswith("dbt_models"):
        return "dbt"
    if step_key.startswith(("ml__", "product_recommendations")):
        return "models"
    if "segment" in step_key:
        return "segments"
    if step_key.startswith("published__"):
        return "publish"
    if step_key.startswith("activation__") or "uplift" in step_key:
        return "syncs"
    return "checks"


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants, from /proc."""
    children, rss = defaultdict(list), {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children[int(fields[1])].append(int(entry.name))
        rss[int(entry.name)] = int(fields[21]) * PAGE
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


def measured_run(home: Path, *args: str) -> tuple[float, list[tuple[float, int]], str]:
    """Run `segmenta run ARGS` on `home`: (wall seconds, [(epoch, tree RSS bytes)], output)."""
    log = home / "bench_logs" / f"run-{dt.datetime.now():%Y%m%dT%H%M%S}.log"
    log.parent.mkdir(exist_ok=True)
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen([*SEGMENTA, "run", *args], stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "SEGMENTA_HOME": str(home)})
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                samples.append((time.time(), tree_rss(process.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        done.set()
        sampler.join()
    seconds = time.monotonic() - started
    if code:
        sys.exit(f"segmenta run exited {code}; its output is in {log}:\n"
                 + log.read_text()[-3000:])
    return seconds, samples, log.read_text()


def step_intervals(home: Path, since: float) -> dict[str, list[tuple[float, float]]]:
    """stage -> [(start, end)] of every step of the Dagster runs that started after `since`."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    import dagster as dg

    intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        for record in instance.get_run_records():
            if record.create_timestamp.timestamp() < since:
                continue
            starts = {}
            for entry in instance.all_logs(record.dagster_run.run_id):
                event = entry.dagster_event
                if event is None or not entry.step_key:
                    continue
                if event.event_type_value == "STEP_START":
                    starts[entry.step_key] = entry.timestamp
                elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                    began = starts.pop(entry.step_key, entry.timestamp)
                    intervals[stage_of(entry.step_key)].append((began, entry.timestamp))
    return intervals


def report(home: Path, label: str, since: float, seconds: float,
           samples: list[tuple[float, int]]) -> dict[str, tuple[float, float]]:
    """stage -> (seconds, peak GiB), with "whole run" for the process as a whole."""
    intervals = step_intervals(home, since)
    rows = {}
    for stage in STAGES:
        spans = intervals.get(stage, [])
        busy = sum(end - start for start, end in spans)
        peak = max((rss for at, rss in samples for start, end in spans if start <= at <= end),
                   default=0)
        rows[stage] = (busy, peak / 2**30)
    steps = sum(busy for busy, _ in rows.values())
    spans = [span for stage in intervals.values() for span in stage]
    outside = max((rss for at, rss in samples
                   if not any(start <= at <= end for start, end in spans)), default=0)
    rows["start-up, planning, summary"] = (seconds - steps, outside / 2**30)
    rows["whole run"] = (seconds, max((rss for _, rss in samples), default=0) / 2**30)
    print(f"\n{label}: {seconds / 60:.1f} min, peak RSS {rows['whole run'][1]:.1f} GiB", flush=True)
    return rows


def hold_back(home: Path, days: int) -> None:
    """Move the last `days` landing days of every feed into <home>/held_back."""
    last = sorted({p.name for p in (home / "landing").glob("*/dt=*")})[-days:]
    for folder in sorted((home / "landing").glob("*/dt=*")):
        if folder.name in last:
            target = home / "held_back" / folder.parent.name / folder.name
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(target)


def deliver_next(home: Path) -> str:
    """Put the earliest held-back day back into the landing zone; returns its folder name."""
    held = sorted({p.name for p in (home / "held_back").glob("*/dt=*")})
    if not held:
        sys.exit(f"no held-back day left in {home / 'held_back'}: generate a new home")
    for folder in sorted((home / "held_back").glob(f"*/{held[0]}")):
        target = home / "landing" / folder.parent.name / folder.name
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
    return held[0]


def table(full: dict | None, daily: dict) -> str:
    lines = ["| stage | full build | peak RSS | daily refresh | peak RSS | refresh / full |",
             "|---|---:|---:|---:|---:|---:|"]
    for stage, (seconds, peak) in daily.items():
        if full is None:
            lines.append(f"| {stage} | | | {seconds:,.0f} s | {peak:.1f} GiB | |")
            continue
        full_s, full_peak = full[stage]
        ratio = f"{seconds / full_s:.0%}" if full_s >= 1 else ""
        lines.append(f"| {stage} | {full_s:,.0f} s | {full_peak:.1f} GiB | {seconds:,.0f} s | "
                     f"{peak:.1f} GiB | {ratio} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--home", type=Path, required=True,
                        help="a scratch SEGMENTA_HOME (its landing zone is reused if present)")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--gzip", action="store_true", help="write gzip landing files")
    parser.add_argument("--held-back", type=int, default=3, metavar="DAYS",
                        help="last days kept out of the full build, one delivered per daily "
                             "refresh (default 3)")
    parser.add_argument("--refresh-only", action="store_true",
                        help="measure the next daily refresh of a home this script built")
    args = parser.parse_args()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    full = None
    if not args.refresh_only:
        if not (home / "landing").exists() and not (home / "held_back").exists():
            started = time.monotonic()
            subprocess.run([*SEGMENTA, "generate", "--customers", str(args.customers),
                            "--days", str(args.days), *(["--gzip"] if args.gzip else []),
                            "--home", str(home)], check=True)
            print(f"generated in {(time.monotonic() - started) / 60:.1f} min", flush=True)
        if not (home / "held_back").exists():
            hold_back(home, args.held_back)
        for stale in ("warehouse.duckdb", "warehouse.duckdb.wal", "published", "mlflow",
                      "dagster", "dbt", "exports"):
            path = home / stale
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        since = time.time()
        seconds, samples, _ = measured_run(home)
        full = report(home, "full build", since, seconds, samples)
    day = deliver_next(home)
    since = time.time()
    seconds, samples, _ = measured_run(home)
    daily = report(home, f"daily refresh ({day})", since, seconds, samples)
    days = len({p.name for p in (home / "landing").glob("orders/dt=*")})
    print(f"\n{args.customers if not args.refresh_only else 'the'} customers, {days} landing "
          f"days, daily refresh of {day}; {dt.date.today()}, {os.cpu_count()} cores\n")
    print(table(full, daily))
    if full:
        ratio = daily["whole run"][0] / full["whole run"][0]
        print(f"\ndaily refresh / full build: {ratio:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
