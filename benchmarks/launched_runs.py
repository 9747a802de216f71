"""Benchmark runs that `make ui`'s daemon launches against `segmenta run`, on the same daily work.

    .venv/bin/python benchmarks/launched_runs.py --home ../bench-ui --rounds 2

Builds the sample store (2,000 customers, 120 days; generated unless <home>/landing exists) with
`2 x rounds` days held back, then alternates, A B A B: a held-back day is delivered and
refreshed by `segmenta run` (A, what `make run` does), the next is delivered and refreshed by
the run that the landing sensor launches in `dg dev` (B, what `make ui` and the schedule do:
the daemon starts a run worker process and the run's executor runs the steps). B's day is
delivered once `dg dev` is up and settled, as a store's daily files reach a running daemon.
Each refresh loads one day and rebuilds everything downstream: the same selection on both
sides.

Both are timed the same way, from the Dagster run record: creation to end (B's includes the
queue and the run worker's start-up, A's only the run inside `segmenta run`); A's whole
process (start-up, planning, the run, the summary: what `make run` makes you wait for) is
printed too. Prints each round and the median ratios B / A.
Set SEGMENTA_EXECUTOR to compare executors (dagster_project/defs/resources.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline import SEGMENTA, deliver_next, hold_back  # benchmarks/pipeline.py

ROOT = Path(__file__).resolve().parent.parent
UI_SETTLE_SECONDS = 30


def env(home: Path) -> dict[str, str]:
    """What `make ui` sets: the home, and the project's tools first on PATH."""
    venv = Path(sys.executable).parent
    return {**os.environ, "SEGMENTA_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
            "VIRTUAL_ENV": str(venv.parent), "PATH": f"{venv}:{os.environ.get('PATH', '')}"}


def run_records(home: Path, trigger: str, since: float) -> list:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        return [record for record in instance.get_run_records(
                    filters=dg.RunsFilter(tags={"segmenta/trigger": trigger}))
                if record.create_timestamp.timestamp() >= since]


def seconds_of(records: list) -> float:
    """Creation of the first run to the end of the last one."""
    first = min(record.create_timestamp.timestamp() for record in records)
    return max(record.end_time for record in records) - first


def refresh_by_make_run(home: Path) -> tuple[float, float]:
    """(the run's creation to its end, the whole `segmenta run` process)."""
    deliver_next(home)
    since, started = time.time(), time.monotonic()
    done = subprocess.run([*SEGMENTA, "run"], env=env(home), capture_output=True, text=True,
                          check=False)
    wall = time.monotonic() - started
    if done.returncode:
        sys.exit(f"segmenta run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds_of(run_records(home, "make run", since)), wall


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(port: int, log_path: Path, timeout: float) -> None:
    """Until the webserver answers and the daemon has settled (its start-up, the webserver's
    and the code server's load both cores for a while: not what a run launched from a UI that
    is up pays)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if "Error loading repository location" in log_path.read_text():
            sys.exit(f"dg dev could not load the code location; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                break
        except OSError:
            time.sleep(1)
    else:
        sys.exit(f"dg dev did not answer within {timeout:.0f} s; see {log_path}")
    time.sleep(UI_SETTLE_SECONDS)


def refresh_by_the_sensor(home: Path, timeout: float) -> float:
    """With the sensor's cursor on everything loaded so far, start `dg dev`, deliver the next
    day once it is up, wait for the runs the sensor launches, stop `dg dev`."""
    sys.path.insert(0, str(ROOT))
    from ingest import landing

    loaded = landing.landing_fingerprints(home / "landing")
    subprocess.run([str(Path(sys.executable).parent / "dagster"), "sensor", "cursor",
                    "landing_sensor", "--set", json.dumps(loaded),
                    "-m", "dagster_project.definitions"],
                   env=env(home), cwd=ROOT, check=True, capture_output=True)
    day = min({p.name for p in (home / "held_back").glob("*/dt=*")})  # the next to deliver
    log_path = home / "bench_logs" / f"dg-dev-{day}.log"
    log = log_path.open("w")
    port = free_port()
    ui = subprocess.Popen([str(Path(sys.executable).parent / "dg"), "dev", "--host", "127.0.0.1",
                           "--port", str(port)], env=env(home), cwd=ROOT,
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(port, log_path, timeout)
        deliver_next(home)  # to a UI that is up, as a store's daily files reach it
        since = time.time()
        deadline = time.time() + timeout
        while time.time() < deadline:
            time.sleep(5)
            if "Error loading repository location" in log_path.read_text():
                sys.exit(f"dg dev could not load the code location; see {log_path}")
            records = run_records(home, "landing_sensor", since)
            if records and all(record.dagster_run.is_finished for record in records):
                time.sleep(70)  # the sensor's next tick must request nothing more
                records = run_records(home, "landing_sensor", since)
                if all(record.dagster_run.is_finished for record in records):
                    break
        else:
            sys.exit(f"the sensor's runs did not finish within {timeout:.0f} s; see {log.name}")
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # whatever of it is left
            os.killpg(ui.pid, signal.SIGKILL)
        ui.wait()
    failed = [r.dagster_run.run_id for r in records if r.dagster_run.status.value != "SUCCESS"]
    if failed:
        sys.exit(f"sensor-launched runs failed: {failed}; see {log.name}")
    # what the sensor loaded is loaded: the next `segmenta run` must not load it again
    state_path = home / "dagster" / "segmenta_run_state.json"
    state = json.loads(state_path.read_text())
    state["landing"] = landing.landing_fingerprints(home / "landing")
    state_path.write_text(json.dumps(state) + "\n")
    return seconds_of(records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--home", type=Path, required=True, help="a scratch SEGMENTA_HOME")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs (default 2)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds to wait for a sensor-launched refresh (default 3600)")
    args = parser.parse_args()
    home = args.home.resolve()
    if not (home / "held_back").exists():
        if not (home / "landing").exists():
            subprocess.run([*SEGMENTA, "generate", "--customers", str(args.customers),
                            "--days", str(args.days), "--home", str(home)], check=True,
                           env=env(home))
        hold_back(home, 2 * args.rounds)
        print("building the store (segmenta run) ...", flush=True)
        subprocess.run([*SEGMENTA, "run"], env=env(home), check=True, capture_output=True)
    (home / "bench_logs").mkdir(exist_ok=True)
    executor = os.environ.get("SEGMENTA_EXECUTOR", "in_process")
    made, walls, launched = [], [], []
    for number in range(1, args.rounds + 1):
        run_seconds, wall = refresh_by_make_run(home)
        made.append(run_seconds)
        walls.append(wall)
        launched.append(refresh_by_the_sensor(home, args.timeout))
        print(f"round {number}: segmenta run {made[-1]:.0f} s (its process {wall:.0f} s), "
              f"sensor-launched run ({executor} executor) {launched[-1]:.0f} s", flush=True)
    ratio = statistics.median(b / a for a, b in zip(made, launched))
    wall_ratio = statistics.median(b / a for a, b in zip(walls, launched))
    print(f"\nmedian sensor-launched run / segmenta run's run: {ratio:.2f}x; / the whole "
          f"segmenta run process: {wall_ratio:.2f}x (medians: segmenta run's run "
          f"{statistics.median(made):.0f} s, its process {statistics.median(walls):.0f} s, "
          f"sensor-launched {statistics.median(launched):.0f} s; {args.rounds} rounds, "
          f"{executor} executor)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
