"""Crash recovery: what a killed run leaves behind, found and released without hands.

A run killed with SIGKILL stays "started" in Dagster's run storage, its steps keep their slots
of the `duckdb` pool (so every later run waits for them forever), and files it was writing stay
half-written. `find` lists these leftovers; `repair` releases them. `segmenta run`, `segmenta
sync` and `segmenta backfill` repair before they start, the landing sensor at every tick in the
UI, `make ui` before the UI starts, and `segmenta doctor` shows (and with `--repair` releases)
them by hand.

A run counts as dead when the process that executes it is gone:
- runs of the command line carry the tags `segmenta/pid` and `segmenta/pid_started` (their
  re-executions from the UI inherit them, and are judged as the UI's runs);
- runs launched by the UI's run launcher are alive while a process of this SEGMENTA_HOME has the
  run id on its command line (`dagster api execute_run ...`), or while they are still starting.
Dagster's own run monitoring (dagster.yaml) frees the slots of runs that ended and fails runs
stuck in "starting"; a dead run that still says "started" is what it cannot see.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES, DagsterRunStatus, RunsFilter

from core import processes
from core.settings import Home
from personalization.cache import cache_path

PID_TAG = "segmenta/pid"
PID_STARTED_TAG = "segmenta/pid_started"
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
STARTING_GRACE_SECONDS = 180  # a UI run may take this long from "starting" to its process
POOL = "duckdb"
PARENT_RUN_TAG = "dagster/parent_run_id"


def owner_tags() -> dict[str, str]:
    """Tags that tie a run to this process, so that a later recovery can tell if it died."""
    return {PID_TAG: str(os.getpid()), PID_STARTED_TAG: str(processes.start_time(os.getpid()))}


@dataclass
class Finding:
    """One leftover: what it is, and what repairing it does (or did)."""

    problem: str
    repair: str
    repaired: bool = False


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    live_runs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for finding in self.findings:
            mark = "repaired" if finding.repaired else "found"
            out.append(f"  {mark}: {finding.problem} -> {finding.repair}")
        return out


def _run_is_alive(run: dg.DagsterRun, home_processes: list[processes.Process],
                  updated: float) -> bool:
    # A re-execution from the UI copies its parent's tags, the command line's pid among them:
    # that pid is the parent's, the re-execution runs in the launcher's process.
    if PID_TAG in run.tags and PARENT_RUN_TAG not in run.tags:
        started = run.tags.get(PID_STARTED_TAG)
        return processes.is_alive(int(run.tags[PID_TAG]),
                                  int(started) if started and started != "None" else None)
    if any(run.run_id in process.cmdline for process in home_processes):
        return True
    return (run.status == DagsterRunStatus.STARTING
            and time.time() - updated < STARTING_GRACE_SECONDS)


def _describe(run: dg.DagsterRun) -> str:
    trigger = run.tags.get("segmenta/trigger") or run.tags.get("dagster/sensor_name") or \
        run.tags.get("dagster/schedule_name") or "the UI"
    return f"run {run.run_id[:8]} ({trigger})"


def find_and_repair(instance: dg.DagsterInstance, home: Home, repair: bool = True) -> Report:
    """Find what killed runs left in `instance` and under `home`; release it when `repair`."""
    report = Report()
    home_processes = processes.home_processes(home.root)

    # 1. runs that say they are in progress but whose process is gone
    for record in instance.get_run_records(RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        if _run_is_alive(run, home_processes, record.update_timestamp.timestamp()):
            report.live_runs.append(run.run_id)
            continue
        finding = Finding(f"{_describe(run)} is {run.status.value.lower()} but its process is "
                          "gone (killed?)", "mark it failed and free its pool slots")
        if repair:
            instance.report_run_failed(run, message=(
                "Marked failed by Segmenta's recovery: the process that ran it is gone "
                "(killed, or the machine restarted). The next run redoes its work."))
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            finding.repaired = True
        report.findings.append(finding)

    # 2. pool slots (and queued steps) held by runs that are over or unknown
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        for run_id in sorted(holders - set(report.live_runs)):
            run = instance.get_run_by_id(run_id)
            if run is not None and run.status not in FINISHED_STATUSES:
                continue  # in progress and alive, or repaired above
            finding = Finding(
                f"pool '{POOL}' slot held by {'a deleted run' if run is None else _describe(run)}"
                f" that {'no longer exists' if run is None else 'has ' + run.status.value.lower()}",
                "free the slot")
            if repair:
                storage.free_concurrency_slots_for_run(run_id)
                finding.repaired = True
            report.findings.append(finding)

    # 3. dbt and step processes whose run is gone: their parent died (adopted by init) or their
    #    run is not alive (dbt runs inside its step's process today; this also catches a dbt
    #    started by hand or by an older version)
    live = set(report.live_runs)
    for process in home_processes:
        is_worker = ("dbt" in process.cmdline.split(" ", 1)[0].rsplit("/", 1)[-1]
                     or "execute_step" in process.cmdline or "execute_run" in process.cmdline)
        if not is_worker or any(run_id in process.cmdline for run_id in live):
            continue
        if processes.is_alive(process.ppid) and process.ppid != 1:
            continue
        finding = Finding(f"orphaned process {process.pid} ({process.cmdline[:80]}) whose run is "
                          "gone", "kill it (it may hold the warehouse's write lock)")
        if repair:
            processes.kill(process.pid)
            finding.repaired = True
        report.findings.append(finding)

    # 4. half-written files of processes that are gone
    leftovers = list(home.published.parent.glob(f".{home.published.name}.*.tmp"))
    leftovers += list(home.dbt_target.glob(".partial_parse.msgpack.*.tmp"))
    cache = cache_path(home)  # the personalization API's cache, built under a temporary name
    leftovers += list(cache.parent.glob(f".{cache.name}.*.tmp"))
    if not live:
        leftovers += list(home.exports.rglob(".*.partial"))
    for path in leftovers:
        pid = path.name.rsplit(".", 2)[-2]
        if pid.isdigit() and processes.is_alive(int(pid)):
            continue
        finding = Finding(f"half-written file {path.relative_to(home.root)}", "delete it")
        if repair:
            path.unlink(missing_ok=True)
            finding.repaired = True
        report.findings.append(finding)
    return report


def pool_status(instance: dg.DagsterInstance) -> str:
    """`duckdb: 1 / 1 slots occupied (run abcd1234 step raw__events)`, as the UI shows it."""
    info = instance.event_log_storage.get_concurrency_info(POOL)
    limit = info.limit if info.limit is not None else info.slot_count
    holders = ", ".join(f"run {slot.run_id[:8]} step {slot.step_key}"
                        for slot in info.claimed_slots)
    return (f"pool '{POOL}': {len(info.claimed_slots)} / {limit} slots occupied"
            + (f" ({holders})" if holders else "")
            + (f", {info.pending_step_count} steps waiting" if info.pending_step_count else ""))


def warehouse_lock_holder(home: Home) -> str | None:
    """Who holds the warehouse's lock, when something does (from DuckDB's own message)."""
    import duckdb

    if not home.warehouse.exists():
        return None
    try:
        duckdb.connect(str(home.warehouse)).close()
    except duckdb.IOException as exc:
        message = str(exc).splitlines()[0]
        return message if "lock" in message.lower() else None
    return None


def doctor(home: Home, repair: bool) -> int:
    """`segmenta doctor`: print what killed runs left behind; release it with `repair`."""
    with dg.DagsterInstance.get() as instance:
        report = find_and_repair(instance, home, repair=repair)
        status = pool_status(instance)
    print(f"Dagster instance: {home.dagster_home}")
    print(f"  {status}")
    print(f"  runs in progress and alive: "
          f"{', '.join(run_id[:8] for run_id in report.live_runs) or 'none'}")
    if not report.live_runs:
        holder = warehouse_lock_holder(home)
        print(f"  warehouse: {'locked: ' + holder if holder else 'not locked'}")
        if holder:
            print("    (an open connection of another process: close it; analysts read "
                  f"{home.published} instead)")
    if not report.findings:
        print("Nothing left behind by a killed run.")
        return 0
    print("Left behind by killed runs:")
    print("\n".join(report.lines()))
    if not repair:
        print("Run `segmenta doctor --repair` to release them (any segmenta run does too).")
        return 1
    return 0


def repair_before_run(instance: dg.DagsterInstance, home: Home) -> None:
    """Release what killed runs left, and say so; used by the command line before each run."""
    report = find_and_repair(instance, home, repair=True)
    if report.findings:
        print("Recovered from a killed run:\n" + "\n".join(report.lines()))
    if report.live_runs:
        print(f"Waiting for run(s) {', '.join(r[:8] for r in report.live_runs)} in progress "
              f"(they hold the warehouse; {pool_status(instance)}).")
