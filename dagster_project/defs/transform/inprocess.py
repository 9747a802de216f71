"""dbt in the step's own process.

dagster-dbt runs each `dbt build` as a subprocess: a fresh interpreter importing dbt (about 2 s
of CPU) and loading the project's parse (about 1 s) before the first model, three times a run.
On the 600-customer test store that was a quarter of a `segmenta run` (a one-model build took
4.0 s as a process and 0.4 s in process). Here dbt runs through its programmatic entry point
(`dbtRunner`) in the process that runs the step: imported once, the project parsed once per
process and handed to every later invocation, and the results turned into Dagster events by
dagster-dbt's own translation (`DbtCoreCliEventMessage.to_default_asset_events`), with the
subset selection dagster-dbt computes for the step (`get_updated_cli_invocation_params_for_context`).
Both are dagster-dbt functions outside its documented API: `requirements.lock` pins the
version; check them on an upgrade.

dbt runs in the step's main thread, so stopping a run from the UI interrupts dbt as it would a
dbt process (dbt cancels its queries), and a killed run takes dbt with it: no dbt process can be
left behind holding the warehouse's lock. The step's Dagster events follow when dbt is done; the
models' progress shows in the step's log as dbt writes it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator

from core import preload
from core.settings import DBT_PROJECT_DIR, ENGINE, HOME
from dagster_project.defs.transform.table_metadata import with_table_metadata

# What a parse depends on besides the project's files: the profile (it names the home's
# warehouse) and the environment variables the project reads.
PARSE_ENV = ("SEGMENTA_HOME", "SEGMENTA_ENGINE", "SEGMENTA_RFM_LOOKBACK_DAYS",
             "SEGMENTA_DUCKDB_MEMORY_LIMIT")
RESULT_EVENTS = {"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"}

_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # dbt's terminal colours
_parsed: dict[tuple, Any] = {}  # (project dir, PARSE_ENV values) -> dbt's Manifest
_lock = threading.Lock()  # one dbt invocation at a time per process (dbt keeps global state)


def _parse_key(project_dir: Path) -> tuple:
    return (str(project_dir.resolve()), *(os.environ.get(name) for name in PARSE_ENV))


def _invoke(argv: list[str], manifest: Any = None, callbacks: list | None = None) -> Any:
    """One dbt invocation in this process; closes dbt-duckdb's database afterwards (it keeps it
    open between invocations, and the other steps of the run open the warehouse themselves)."""
    preload.wait()  # dbt's imports and the background ones overlap (core/preload.py)
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    if ENGINE == "spark" and argv[0] != "parse":
        # dbt-spark's session mode takes the process's session (getOrCreate): start it here,
        # with the home's metastore and warehouse (core/spark.py), before dbt asks for one
        from core.spark import session

        session()
    try:
        return dbtRunner(manifest=manifest, callbacks=callbacks or []).invoke(argv)
    finally:
        with DuckDBConnectionManager._LOCK:
            if DuckDBConnectionManager._ENV is not None:
                DuckDBConnectionManager._ENV.close()
                DuckDBConnectionManager._ENV = None
        if ENGINE == "spark" and argv[0] != "parse":
            from core.spark_bridge import invalidate

            invalidate()  # the Python steps' view of Spark's tables (core/spark_bridge.py)


def parsed_manifest(project_dir: Path, common: list[str]) -> Any:
    """dbt's parse of the project for this process and environment, made once (from the
    partial parse in the invocation's target folder, when there is one)."""
    key = _parse_key(project_dir)
    if key not in _parsed:
        result = _invoke(["parse", *common])
        if not result.success:
            raise dg.Failure(f"dbt could not parse the project in {project_dir}: "
                             f"{result.exception}")
        _parsed[key] = result.result
    return _parsed[key]


def parse_ahead(common: list[str]) -> None:
    """`parsed_manifest` of the project in place, under the lock of the invocations (called
    ahead of the first dbt step, from a background thread: `assets.preparse`)."""
    with _lock:
        parsed_manifest(DBT_PROJECT_DIR, common)


def build_events(args: list[str], context: dg.AssetExecutionContext,
                 translator: DagsterDbtTranslator, target: Path,
                 profiles_dir: Path) -> Iterator[Any]:
    """Run `dbt <args>` on the step's selection in this process; yield its Dagster events
    (Output per model, seed and snapshot, AssetCheckResult per test). Raises dg.Failure naming
    dbt's errors when the invocation fails, after the events of what succeeded."""
    from dagster_dbt.asset_utils import (
        extract_runtime_selection_from_args,
        get_updated_cli_invocation_params_for_context,
    )
    from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
    from dbt_common.events.functions import msg_to_dict

    cleaned, selects, excludes = extract_runtime_selection_from_args(args)
    params = get_updated_cli_invocation_params_for_context(
        context=context, manifest={}, dagster_dbt_translator=translator,
        runtime_selects=selects, runtime_excludes=excludes)
    project_dir = Path(params.dbt_project.project_dir if params.dbt_project else DBT_PROJECT_DIR)
    common = ["--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir),
              "--target-path", str(target), "--log-path", str(target)]
    argv = [*cleaned, *params.selection_args, *common, "--no-write-json"]
    if params.indirect_selection:
        argv += ["--indirect-selection", params.indirect_selection]
    context.log.info("dbt %s", " ".join(argv))

    results: list[dict] = []
    errors: list[str] = []

    def collect(msg: Any) -> None:  # called on dbt's threads
        if msg.info.name in RESULT_EVENTS:
            results.append(msg_to_dict(msg))
        elif msg.info.level == "error" and msg.info.msg:
            errors.append(_COLOURS.sub("", msg.info.msg))

    with _lock:
        # a project dagster-dbt copied (its generated selector for a large selection) is parsed
        # by the invocation itself; the project in place is parsed once per process
        manifest = (parsed_manifest(project_dir, common)
                    if project_dir.resolve() == DBT_PROJECT_DIR.resolve() else None)
        done = _invoke(argv, manifest, [collect])
    events = [dagster_event for raw in results
              for dagster_event in DbtCoreCliEventMessage(
                  raw_event=raw, event_history_metadata={}).to_default_asset_events(
                  manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator,
                  context=context, target_path=target, project=params.dbt_project)]
    try:  # row counts and column schemas (table_metadata.py); the run goes on without them
        events = with_table_metadata(events, params.manifest, HOME.warehouse, HOME.reports)
    except Exception as exc:  # noqa: BLE001
        context.log.warning("no row counts or column schemas for this step's dbt models: %s",
                            exc)
    yield from events
    if not done.success:
        cause = "\n".join(errors) or str(done.exception or "see the step's log")
        raise dg.Failure(f"dbt {' '.join(cleaned)} failed (log: {target / 'dbt.log'}):\n{cause}")
