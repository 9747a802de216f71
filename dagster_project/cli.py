"""`segmenta`: generate sample data, bring every asset up to date, and print a summary.

`segmenta run` is what `make run` calls. It materializes, in one Dagster run recorded in
SEGMENTA_HOME/dagster (so it shows in the UI's run history), the landing days that are new or
changed since the last run and everything downstream of them. When nothing changed (no landing
file and no pipeline code) it says so and changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.settings import DBT_PROJECT_DIR, HOME, PROJECT_ROOT, Home
from core.warehouse import Warehouse
from dagster_project import demo_campaign
from ingest import landing
from ml import retraining

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
CODE_GLOBS = ("dagster_project/**/*.py", "core/**/*.py", "ingest/**/*.py", "generator/**/*.py",
              "segments/*.py", "ml/**/*.py", "activation/**/*.py", "segments/*.yml",
              "dbt_project/models/**/*",
              "dbt_project/seeds/**/*", "dbt_project/macros/**/*", "dbt_project/*.yml")


def code_fingerprint() -> str:
    """A hash of the pipeline's code, dbt project and segment rules: a change means rebuild."""
    from segments.rules import RULES_FILE

    digest = hashlib.sha256()
    if RULES_FILE.exists():
        digest.update(RULES_FILE.read_bytes())
    for pattern in CODE_GLOBS:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            # not dbt's own `.user.yml` (written by its first run) or other hidden files: the
            # first run of a fresh clone must not see its own side effect as new code
            if (path.is_file() and "__pycache__" not in path.parts
                    and not any(part.startswith(".") for part in
                                path.relative_to(PROJECT_ROOT).parts)):
                digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_dbt_manifest() -> None:
    """Run `dbt parse` when the manifest is missing or older than a dbt source file."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    sources = [p for p in DBT_PROJECT_DIR.rglob("*")
               if p.is_file() and "target" not in p.parts and "logs" not in p.parts]
    if manifest.exists() and all(p.stat().st_mtime <= manifest.stat().st_mtime for p in sources):
        return
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run([str(dbt if dbt.exists() else "dbt"), "parse", "--quiet",
                    "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
                   check=True)


RFM_LOOKBACK_ENV = "SEGMENTA_RFM_LOOKBACK_DAYS"


def settings() -> dict[str, str]:
    """The run settings that change what the marts hold without a code change (a change means
    rebuild): the RFM look-back (dbt var `rfm_lookback_days`, from SEGMENTA_RFM_LOOKBACK_DAYS
    or `segmenta run --rfm-lookback-days`; dbt_project.yml reads the variable)."""
    return {"rfm_lookback_days": os.environ.get(RFM_LOOKBACK_ENV, "")}


def with_empty_gaps(days: list[str], occupied: set[str]) -> list[str]:
    """`days` plus the days between two of them that no landing file and no earlier load ever
    touched (`occupied`: days with files now or at the last run). Loading such a day changes
    nothing, and including it keeps a store that has no orders at weekends (or a gap in a
    history) in one range, so in one run and one check of the loaded days, rather than one run
    per week."""
    result = set(days)
    ordered = sorted(days)
    for first, last in itertools.pairwise(ordered):
        start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        gap = [(start + dt.timedelta(days=i)).isoformat() for i in range(1, (end - start).days)]
        if gap and not occupied.intersection(gap):
            result.update(gap)
    return sorted(result)


def plan(home: Home, force: bool) -> tuple[list[str], bool, bool, dict]:
    """(partition days to load: the changed ones and the empty days between them, whether
    unpartitioned assets must run, whether the incremental dbt models must be rebuilt from all
    history, the new state). `unchanged_feeds(old, new)` tells which daily feeds need no load."""
    state_path = home.run_state
    old = json.loads(state_path.read_text()) if state_path.exists() and not force else {}
    new = {"landing": landing.landing_fingerprints(home.landing), "code": code_fingerprint(),
           "settings": settings()}
    old_landing = old.get("landing", {})
    changed_days = sorted({
        day
        for feed in ("orders", "events")
        for day, fingerprint in new["landing"][feed].items()
        if old_landing.get(feed, {}).get(day) != fingerprint
    })
    removed_days = sorted({  # days that disappeared from the landing zone must be emptied too
        day
        for feed in ("orders", "events")
        for day in old_landing.get(feed, {})
        if day not in new["landing"][feed]
    })
    changed_days = sorted(set(changed_days) | set(removed_days))
    occupied = {day for state in (old_landing, new["landing"]) for feed in ("orders", "events")
                for day in state.get(feed, {})}
    changed_days = with_empty_gaps(changed_days, occupied)
    # New pipeline code may compute the incremental models differently: rebuild them from all
    # history. Changed and removed days need no rebuild: the change logs carry them.
    full_refresh = bool(old) and old.get("code") != new["code"]
    rest_changed = (
        not home.warehouse.exists()
        or old.get("code") != new["code"]
        or old.get("settings", {"rfm_lookback_days": ""}) != new["settings"]
        or any(old_landing.get(f) != new["landing"][f] for f in landing.SNAPSHOT_FEEDS)
        or bool(changed_days)
        or landing.erasure_sweep_due(home.landing)  # the profiles' load sweeps (privacy.md)
    )
    return changed_days, rest_changed, full_refresh or force, new


def unchanged_feeds(home: Home, new_state: dict) -> frozenset[str]:
    """The daily feeds none of whose landing days changed since the last run (a late orders
    file, a store without events): loading their days again would replace their rows with the
    same rows (and log every visitor or order of those days as changed, for the incremental
    models to rebuild), so the run leaves them out. None without a last run: its load also
    creates the feed's tables, which dbt reads (a store without events has an empty one)."""
    state_path = home.run_state
    old = json.loads(state_path.read_text()).get("landing", {}) if state_path.exists() else {}
    return frozenset(feed for feed in ("orders", "events")
                     if feed in old and old[feed] == new_state["landing"][feed])


def run(force: bool = False, full_refresh: bool = False, strict: bool = False,
        force_removals: bool = False, short_summary: bool = False) -> int:
    """Bring everything up to date and print the summary. A model without a champion or a
    refused sync does not stop the run (the summary says what is missing and why); `strict`
    turns them into exit code 1. `short_summary`: one line on the syncs instead (the demo's
    run before its campaign's days)."""
    home = HOME.ensure()
    if not any(home.landing.glob("*/dt=*/*")):
        import generator

        print(f"No landing files in {home.landing}: generating the sample store.")
        generator.generate(home.landing, home.generator, progress=sys.stderr.isatty())

    changed_days, rest_changed, rebuild, new_state = plan(home, force)
    if not changed_days and not rest_changed:
        print("Everything is up to date: no landing file or pipeline code changed since the "
              "last run (use --force to rebuild anyway).\n")
        print(summary(home))
        return strict_code(home, strict)

    code = materialize(home, changed_days, trigger="make run", full_refresh=rebuild or full_refresh,
                       force_removals=force_removals,
                       skip_feeds=frozenset() if force else unchanged_feeds(home, new_state))
    if code == 0:
        adopt_erasure_rewrites(home, new_state)
        home.run_state.write_text(json.dumps(new_state) + "\n")
        print(demo_campaign.before_campaign_line(home) if short_summary else summary(home))
        code = strict_code(home, strict)
    return code


def adopt_erasure_rewrites(home: Home, state: dict) -> None:
    """Days whose files this run's erasures rewrote (docs/privacy.md) are loaded as they are
    now: record their new fingerprint, so the next run does not load them again. A day that
    changed again since (a new delivery) keeps its old fingerprint and is loaded next time."""
    current = landing.landing_fingerprints(home.landing)
    for feed, days in landing.rewritten_days(home.landing).items():
        for day, fingerprint in days.items():
            if current.get(feed, {}).get(day) == fingerprint:
                state["landing"].setdefault(feed, {})[day] = fingerprint


def strict_code(home: Home, strict: bool) -> int:
    """1 when `strict` and the current state is degraded (see `degradations`), else 0."""
    if not strict:
        return 0
    problems = degradations(home)
    for problem in problems:
        print(f"strict: {problem}", file=sys.stderr)
    return 1 if problems else 0


def backfill(first: str, last: str) -> int:
    """Reload the landing days first..last and rebuild everything downstream, in one run."""
    home = HOME.ensure()
    os.environ[landing.RELOAD_SNAPSHOTS_ENV] = "1"  # also the days loaded as they are now
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    code = materialize(home, days, trigger="segmenta backfill")
    if code == 0:
        state_path = home.run_state
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        current = landing.landing_fingerprints(home.landing)
        for feed in ("orders", "events"):
            known = state.setdefault("landing", {}).setdefault(feed, {})
            for day in days:
                if day in current[feed]:
                    known[day] = current[feed][day]
                else:
                    known.pop(day, None)
        state_path.write_text(json.dumps(state) + "\n")
        print(summary(home))
    return code


def contiguous_ranges(days: list[str]) -> list[tuple[str, str]]:
    """Sorted days as (first, last) runs of consecutive days."""
    ranges: list[tuple[str, str]] = []
    for day in sorted(days):
        if ranges and dt.date.fromisoformat(day) - dt.date.fromisoformat(ranges[-1][1]) == \
                dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def refresh_config(selection, full_refresh: bool, force_removals: bool) -> dict:
    """The run config of the run that refreshes the unpartitioned assets `selection`: the dbt
    steps' full refresh (one resource setting for all of them), and `force_removals` for every
    activation asset in it."""
    ops = {}
    if force_removals:
        ops.update({"__".join(key.path): {"config": {"force_removals": True}}
                    for key in selection if key.path[0] == "activation"})
    return {**QUIET_LOGS, "ops": ops,
            "resources": {"dbt_build": {"config": {"full_refresh": full_refresh}}}}


def materialize(home: Home, days: list[str], trigger: str, full_refresh: bool = False,
                force_removals: bool = False, skip_feeds: frozenset[str] = frozenset()) -> int:
    """In-process Dagster runs (recorded in DAGSTER_HOME) that load exactly the daily
    partitions `days`, one single-run backfill per range of consecutive days, and refresh every
    unpartitioned asset downstream in the last one. The incremental dbt models follow what the
    loads logged (or rebuild all history with `full_refresh`); `force_removals` goes to every
    activation asset. Exit code 1 only when a step failed (a blocking check, an error): a
    non-blocking check that failed (a model without a champion, a refused sync) is printed."""
    ensure_dbt_manifest()

    from core import preload
    from dagster_project.definitions import defs
    from dagster_project.defs.transform.assets import preparse
    from dagster_project.partitions import daily_partitions
    from dagster_project.run_display import RunDisplay

    known = set(daily_partitions.get_partition_keys())
    outside = [day for day in days if day not in known]
    if outside:
        print(f"error: landing days {outside[0]}..{outside[-1]} ({len(outside)} days) are outside "
              f"the daily partitions ({daily_partitions.start.date()} to yesterday). Set "
              "SEGMENTA_START_DATE to the first day of data, or remove future-dated folders.",
              file=sys.stderr)
        return 2

    job = defs.resolve_job_def("refresh_all")
    graph = defs.resolve_asset_graph()
    partitioned = {key for key in graph.get_all_asset_keys()
                   if graph.get(key).partitions_def is not None}
    # raw/<feed> and raw/<feed>_changes of a daily feed whose days did not change
    skipped = {key for key in partitioned if key.path[-1].removesuffix("_changes") in skip_feeds}
    ranges = contiguous_ranges(days)
    runs = [(partitioned - skipped, {"dagster/asset_partition_range_start": first,
                                     "dagster/asset_partition_range_end": last})
            for first, last in ranges[:-1]]
    last_tags = ({"dagster/asset_partition_range_start": ranges[-1][0],
                  "dagster/asset_partition_range_end": ranges[-1][1]} if ranges else {})
    runs.append((graph.get_all_asset_keys() - skipped if ranges else
                 {key for key in graph.get_all_asset_keys() if key not in partitioned},
                 last_tags))
    what = (f"landing days {', '.join(f'{a}..{b}' for a, b in ranges)} and everything "
            "downstream" if days else
            "every unpartitioned asset (snapshots, marts, models, exports)")
    if full_refresh:
        what += "; incremental dbt models rebuilt from all history"
    display = RunDisplay(home)
    display.say(f"Materializing {what}: {len(runs)} run(s) in {home.dagster_home}.")
    display.say(f"Full logs: {display.path}")
    if ranges and skip_feeds:
        display.say(f"Not loaded again (no landing day changed): "
                    f"{', '.join(sorted(skip_feeds))}.")
    run_config = refresh_config(runs[-1][0], full_refresh, force_removals)
    # the model and check steps' libraries, and dbt's parse of the project, imported and made
    # while ingestion loads the day (core/preload.py); done before this returns
    preload.arm(tasks=(preparse,))
    try:
        return _runs(job, runs, run_config, trigger, home, display)
    finally:
        preload.wait()
        display.finish()


def _runs(job, runs: list, run_config: dict, trigger: str, home: Home, display) -> int:
    """Execute `runs` (asset selection, tags) in turn; the exit code of `materialize`. Their
    logs go to `display`'s file, the terminal shows their progress (run_display.py)."""
    import uuid

    import dagster as dg

    from dagster_project import origin, recovery

    started = time.monotonic()
    for number, (selection, tags) in enumerate(runs, start=1):
        run_id = str(uuid.uuid4())
        display.start_run(len(list(job.get_subset(asset_selection=set(selection))
                                   .graph.iterate_node_handles())))
        if len(runs) > 1:
            display.say(f"Run {number} of {len(runs)} ({run_id}):")
        with dg.DagsterInstance.get() as instance:
            recovery.repair_before_run(instance, home)  # its report stays on the terminal
            instance.add_event_listener(run_id, display.on_event)
            origin.attach_runs_to_code_location(instance, job.name)
            with display.capture():
                result = job.execute_in_process(
                    instance=instance, asset_selection=list(selection), run_id=run_id,
                    tags={**tags, "segmenta/trigger": trigger, **recovery.owner_tags()},
                    run_config=run_config if number == len(runs) else QUIET_LOGS,
                    raise_on_error=False)
        if not result.success:
            for evaluation in result.get_asset_check_evaluations():
                if not evaluation.passed:
                    details = evaluation.metadata.get("result")
                    display.say(f"check failed: {evaluation.asset_key.to_user_string()} "
                                f"{evaluation.check_name}\n{details.value if details else ''}\n",
                                error=True)
            failures = [event for event in result.all_events if event.is_step_failure]
            for event in failures:
                error = event.step_failure_data.error if event.step_failure_data else None
                display.say(f"error: {event.step_key}: "
                            f"{error.message.strip() if error else 'failed'}", error=True)
            display.say(f"error: run {result.run_id} failed in "
                        f"{', '.join(e.step_key for e in failures) or 'a step'}; the warehouse "
                        "keeps its last good state and the next run resumes. Full logs: "
                        f"{display.path} (and the run's logs in the UI: make ui).", error=True)
            return 1
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            display.say(f"warning: check {evaluation.asset_key.to_user_string()}:"
                        f"{evaluation.check_name} failed ({evaluation.severity.value}, "
                        "non-blocking)"
                        + (f": {evaluation.description}" if evaluation.description else ""),
                        error=True)
    display.say(f"Done in {time.monotonic() - started:.0f} s (run {result.run_id}). "
                f"Full logs: {display.path}\n")
    return 0


ML_CHECKS = (("ml/customer_clusters", "customer_segmenter", "ML clusters"),
             ("ml/customer_clv", "customer_lifetime_value", "Lifetime value"),
             ("ml/customer_recommendations", "product_recommender", "Recommendations"))
NOT_SYNCED = ("refused", "failed")


def failed_model_checks(home: Home) -> dict[str, tuple[str, str]]:
    """The ML assets whose latest `champion` check failed: asset key -> (severity, why), from
    the Dagster instance (what the UI shows)."""
    if not (home.dagster_home / "dagster.yaml").exists():
        return {}
    import dagster as dg

    from dagster_project.defs.ml.assets import CHAMPION_CHECK

    keys = [dg.AssetCheckKey(dg.AssetKey.from_user_string(key), CHAMPION_CHECK)
            for key, _, _ in ML_CHECKS]
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    failed = {}
    for key, record in latest.items():
        evaluation = record.evaluation if record.status.value == "FAILED" else None
        if evaluation is not None:
            failed[key.asset_key.to_user_string()] = (evaluation.severity.value,
                                                      evaluation.description or "")
    return failed


def _latest_syncs(con) -> list[tuple]:
    """The last real (not dry-run) sync of each audience x destination."""
    return con.execute("""
        select audience_key, destination, status, n_desired, n_holdout, n_added, n_removed,
               n_rejected, coalesce(message, '')
        from activation.sync_runs where mode <> 'dry_run'
        qualify row_number() over (partition by audience_key, destination
                                   order by started_at desc) = 1
        order by 1, 2
    """).fetchall()


def degradations(home: Home) -> list[str]:
    """What the current state lacks although the run succeeded: models without a champion
    (their table is empty) and audiences whose last sync was refused or failed (those of the
    audiences file in use). `--strict` exits 1 on any."""
    from activation.audiences import load_audiences

    problems = [f"{key}: {why}" for key, (severity, why) in failed_model_checks(home).items()
                if severity == "ERROR"]
    if not home.warehouse.exists():
        return problems
    audiences_file = Path(os.environ.get("SEGMENTA_AUDIENCES")
                          or PROJECT_ROOT / "segments" / "audiences.yml")
    configured = ({(a.key, t.name) for a in load_audiences(audiences_file) for t in a.targets}
                  if audiences_file.exists() else set())
    with Warehouse(home.warehouse).connect(read_only=True) as con:
        exists = con.execute("select count(*) from information_schema.tables where "
                             "table_schema = 'activation' and table_name = 'sync_runs'"
                             ).fetchone()[0]
        syncs = _latest_syncs(con) if exists else []
    problems += [f"sync {audience} -> {destination} {status}: {message}"
                 for audience, destination, status, *_, message in syncs
                 if status in NOT_SYNCED and (audience, destination) in configured]
    return problems


def summary(home: Home) -> str:
    """Segment sizes, model outputs (or why they are absent), syncs (and what was refused),
    table sizes and where things are."""
    if not home.warehouse.exists():
        return f"No warehouse at {home.warehouse} yet: run `make run`."
    tables = ("raw.orders", "raw.events", "raw.customers", "raw.products", "raw.weather",
              "quarantine.orders", "quarantine.events", "quarantine.customers",
              "quarantine.products", "quarantine.weather", "marts.customer_rfm",
              "ml.customer_clusters",
              "ml.customer_clv", "ml.customer_recommendations")
    with Warehouse(home.warehouse).connect(read_only=True) as con:
        existing = {f"{schema}.{name}" for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in tables if t in existing}
        segments = con.execute("""
            select rfm_segment, count(*) as customers, round(sum(monetary)) as revenue,
                   max(as_of_date)
            from marts.customer_rfm group by 1 order by 2 desc, 1
        """).fetchall() if "marts.customer_rfm" in existing else []
        clusters = con.execute("""
            select cluster_name, count(*), any_value(model_version)
            from ml.customer_clusters group by 1 order by 2 desc, 1
        """).fetchall() if "ml.customer_clusters" in existing else []
        clv = con.execute("""
            select count(*), any_value(model_version), sum(expected_value_90d),
                   avg(probability_alive)
            from ml.customer_clv
        """).fetchone() if "ml.customer_clv" in existing else None
        recs = con.execute("""
            select count(*), count(distinct customer_id), any_value(model_version)
            from ml.customer_recommendations
        """).fetchone() if "ml.customer_recommendations" in existing else None
        rules = con.execute("""
            select segment_name, n_customers, n_reachable_email, n_reachable_ads
            from marts.segment_summary where segment_type = 'rule' order by 2 desc, 1
        """).fetchall() if "marts.segment_summary" in existing else []
        syncs = _latest_syncs(con) if "activation.sync_runs" in existing else []
        uplift = (demo_campaign.uplift_lines(con) if "marts.audience_uplift" in existing
                  else [])
        fair = (con.execute("select * from marts.segment_fairness").df()
                if "marts.segment_fairness" in existing else None)
    failed_checks = failed_model_checks(home)
    names = [f"{a} -> {d}" for a, d, *_ in syncs]
    width = max((len(row[0]) for row in segments + clusters + rules), default=10)
    width = max([width, *map(len, names)])
    lines = []
    if segments:
        lines.append(f"RFM segments as of {segments[0][3]}:")
        lines += [f"  {name:<{width}}  {n:>7,} customers  {revenue:>12,.0f} net revenue"
                  for name, n, revenue, _ in segments]

    def absent(asset: str, model: str, title: str, missing: str = "") -> str:
        _, why = failed_checks.get(asset, ("", ""))
        return (f"{title}: none this refresh{missing}: {why or f'no {model} output yet'} "
                f"(check {asset}:champion failed, non-blocking)")

    if clusters:
        lines.append(f"ML clusters (customer_segmenter v{clusters[0][2]}):")
        lines += [f"  {name:<{width}}  {n:>7,} customers" for name, n, _ in clusters]
    elif "ml.customer_clusters" in existing:
        lines.append(absent(*ML_CHECKS[0], missing=", so no ML segments"))
    if rules:
        lines.append("Rule segments (segments/rules.yml):")
        lines += [f"  {name:<{width}}  {n:>7,} customers  {email:>7,} by email  {ads:>7,} by ads"
                  for name, n, email, ads in rules]
    if clv and clv[0]:
        lines.append(f"Lifetime value (customer_lifetime_value v{clv[1]}): {clv[0]:,} buyers "
                     f"scored, expected value next 90 days {clv[2]:,.0f}, "
                     + (f"mean P(alive) {clv[3]:.2f}" if clv[3] is not None else
                        "churn not identified (no P(alive), no churn segments)"))
    elif clv is not None:
        lines.append(absent(*ML_CHECKS[1], missing=", so no predictive segments"))
    if recs and recs[0]:
        lines.append(f"Recommendations (product_recommender v{recs[2]}): {recs[0]:,} rows for "
                     f"{recs[1]:,} customers")
    elif recs is not None:
        lines.append(absent(*ML_CHECKS[2]))
    for asset, model, title in ML_CHECKS:  # a rejected retrain: the champion stays
        severity, why = failed_checks.get(asset, ("", ""))
        if severity == "WARN":
            lines.append(f"  note: {model}: {why}")
    if syncs:
        lines.append("Audiences (segments/audiences.yml; last sync of each destination):")
        lines += [f"  {name:<{width}}  {status:<9} {n:>7,} members {holdout:>5,} held out  "
                  f"+{added:,} -{removed:,} ({rejected:,} rejected)"
                  for name, (_, _, status, n, holdout, added, removed, rejected, _)
                  in zip(names, syncs, strict=True)]
        refused = [(name, row) for name, row in zip(names, syncs, strict=True)
                   if row[2] in NOT_SYNCED]
        if refused:
            lines.append("Not synced (nothing sent; the rest of the run went ahead; "
                         "activation.sync_runs has the reason):")
            lines += [f"  {name} {row[2]}: {row[8]}" for name, row in refused]
    lines += uplift
    if fair is not None:
        from segments.fairness import summary_lines

        lines += summary_lines(fair)
    published = ""
    if home.published.exists():
        import duckdb

        with duckdb.connect(str(home.published), read_only=True) as con:
            n_tables = con.execute("select count(*) from information_schema.tables"
                                   ).fetchone()[0]
        stamp = dt.datetime.fromtimestamp(home.published.stat().st_mtime, dt.UTC)
        published = f" ({n_tables} tables, published {stamp:%Y-%m-%d %H:%M} UTC)"
    lines += [
        "Rows: " + ", ".join(f"{t} {counts[t]:,}" if t in counts else f"{t} missing"
                             for t in tables),
        f"Warehouse:  {home.warehouse}",
        f"Analysts:   duckdb -readonly {home.published}{published}",
        f"Audiences:  {home.exports / 'audiences'} (segmenta sync --dry-run shows what changes)",
        f"MLflow:     {home.mlflow_db}",
        "Dagster UI: make ui, then open http://127.0.0.1:3000",
    ]
    return "\n".join(lines)


DEMO_AUDIENCES = PROJECT_ROOT / "segments" / "audiences.demo.yml"


@contextlib.contextmanager
def demo_destinations(home: Home):
    """Local emulators of every platform for the demo audiences, the destinations pointed at them
    through the environment; they start empty, so the state of the non-file destinations is
    cleared first (every platform gets a first sync)."""
    os.environ["SEGMENTA_AUDIENCES"] = str(DEMO_AUDIENCES)
    from activation.audiences import load_audiences
    from activation.emulators.demo import demo_environment
    from activation.state import ensure_tables

    emulators, variables = demo_environment(load_audiences(DEMO_AUDIENCES))
    os.environ.update(variables)
    if home.warehouse.exists():
        with Warehouse(home.warehouse).transaction() as con:
            ensure_tables(con)
            for table in ("sync_state", "sync_pending"):
                con.execute(f"delete from activation.{table} where destination <> 'file'")
    print("Demo destinations: local emulators of HubSpot, Klaviyo, Meta, Google and a webhook "
          f"on 127.0.0.1 for the audiences of {DEMO_AUDIENCES.relative_to(PROJECT_ROOT)}.")
    try:
        yield emulators
    finally:
        for name, emulator in emulators.items():
            print(f"  {name:8s} emulator at {emulator.url}: "
                  f"{len(emulator.mutating_requests())} write requests received")
            emulator.stop()


def sync(dry_run: bool = False, full_refresh: bool = False, force_removals: bool = False,
         only: list[str] | None = None, strict: bool = False) -> int:
    """Materialize the activation assets (every audience x destination, or `only` these
    audiences) in one run, with the sync options. A refused or failed sync is reported and
    leaves the others going; exit code 1 on it only when `strict`."""
    home = HOME.ensure()
    ensure_dbt_manifest()
    import dagster as dg

    from activation.audiences import AUDIENCES_FILE
    from dagster_project import origin, recovery
    from dagster_project.definitions import defs
    from dagster_project.run_display import RunDisplay

    graph = defs.resolve_asset_graph()
    # an activation asset's tag `audience` names its audience (its key names the destination too)
    keys = [key for key in graph.get_all_asset_keys()
            if key.path[0] == "activation"
            and (not only or graph.get(key).tags.get("audience") in only)]
    if not keys:
        print(f"error: no audience {', '.join(only or [])} in {AUDIENCES_FILE}",
              file=sys.stderr)
        return 2
    uplift = dg.AssetKey(["marts", "audience_uplift"])
    config = {"dry_run": dry_run, "full_refresh": full_refresh, "force_removals": force_removals}
    run_config = {**QUIET_LOGS, "ops": {"__".join(key.path): {"config": config} for key in keys}}
    job = defs.resolve_job_def("refresh_all")
    # Dagster's and the sync engine's lines go to the run's log file; the terminal gets the
    # report (run_display.py)
    display = RunDisplay(home)
    display.say(f"Syncing {len(keys)} audience export(s){' (dry run)' if dry_run else ''}. "
                f"Full logs: {display.path}")
    try:
        with dg.DagsterInstance.get() as instance:
            recovery.repair_before_run(instance, home)
            origin.attach_runs_to_code_location(instance, job.name)
            with display.capture():
                result = job.execute_in_process(
                    instance=instance, asset_selection=keys + ([] if dry_run else [uplift]),
                    tags={"segmenta/trigger": "segmenta sync", **recovery.owner_tags()},
                    run_config=run_config,
                    raise_on_error=False)
    finally:
        display.finish()
    print(sync_report(home, result.run_id))
    if dry_run:
        for event in result.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            sample = materialization.metadata.get("dry_run_sample")
            if sample is not None:
                print(f"\n{materialization.asset_key.to_user_string()}: first changes "
                      f"(hashed keys)\n{sample.value}")
        print("\nDry run: nothing was sent and no state changed.")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                error = event.step_failure_data.error
                print(f"error: {event.step_key}: {error.message.strip() if error else ''}",
                      file=sys.stderr)
        return 1
    if strict:
        with Warehouse(home.warehouse).connect(read_only=True) as con:
            not_synced = con.execute(
                "select audience_key || ' -> ' || destination, status from activation.sync_runs "
                f"where run_id = ? and status in {NOT_SYNCED}", [result.run_id]).fetchall()
        for name, status in not_synced:
            print(f"strict: sync {name} {status}", file=sys.stderr)
        return 1 if not_synced else 0
    return 0


def sync_report(home: Home, run_id: str) -> str:
    """The run's rows of activation.sync_runs, as a table."""
    with Warehouse(home.warehouse).connect(read_only=True) as con:
        rows = con.execute("""
            select audience_key, destination, mode, status, n_desired, n_holdout, n_skipped,
                   n_added, n_updated, n_removed, n_rejected, n_to_add, n_to_remove,
                   coalesce(message, '')
            from activation.sync_runs where run_id = ? order by audience_key, destination
        """, [run_id]).fetchall()
    lines = [f"Syncs of run {run_id} (activation.sync_runs; rows: activation.sync_log):",
             (f"  {'audience':24s} {'destination':12s} {'status':10s} {'members':>8s} "
             f"{'holdout':>8s} {'added':>6s} {'updated':>8s} {'removed':>8s} {'rejected':>9s}")]
    for (audience, destination, mode, status, desired, holdout, _skipped, added, updated,
         removed, rejected, to_add, to_remove, message) in rows:
        if mode == "dry_run":
            added, removed, status = f"+{to_add}", f"-{to_remove}", "dry run"
        lines.append(f"  {audience:24s} {destination:12s} {status:10s} {desired:8,} "
                     f"{holdout:8,} {added!s:>6s} {updated:8,} {removed!s:>8s} {rejected:9,}")
        if status in NOT_SYNCED:
            lines.append(f"    {status}, nothing more sent: {message}")
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of days")
    return int(text)


def _day(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from exc


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM (systemd, docker stop, kill) stops a run like Ctrl-C: Dagster ends the step, its
    dbt child goes with it, and the run is recorded as failed with its slots freed."""
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    parser = argparse.ArgumentParser(
        prog="segmenta",
        description="Segmenta: customer segments and recommendations from a store's orders and "
                    f"events. Runtime home: {HOME.root} (set SEGMENTA_HOME to change it).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser(
        "run", help="bring every asset up to date and print a summary (what `make run` does)",
        description="Generate the sample store if the landing zone is empty, then materialize the "
                    "changed landing days and everything downstream in one Dagster run.")
    run_cmd.add_argument("--force", action="store_true",
                         help="rebuild everything even if nothing changed (implies --full-refresh)")
    run_cmd.add_argument("--full-refresh", action="store_true",
                         help="rebuild the incremental dbt models (events, sessions, orders) from "
                              "all history instead of the changed days")
    run_cmd.add_argument("--retrain", action="store_true",
                         help="retrain every model in this run, whatever the retraining policy "
                              "(by default a model retrains every 7 days of data or on drift and "
                              "otherwise scores with its champion: ml/retraining.py; --force "
                              "implies it)")
    run_cmd.add_argument("--demo-destinations", action="store_true",
                         help="then sync the demo audiences (segments/audiences.demo.yml) to "
                              "local emulators of HubSpot, Klaviyo, Meta, Google and a webhook")
    run_cmd.add_argument("--strict", action="store_true",
                         help="exit 1 when the run completed degraded: a sync refused or failed, "
                              "or a model without a champion (its segments absent)")
    run_cmd.add_argument("--force-removals", action="store_true",
                         help="let every audience sync remove more than 20%% of its members")
    run_cmd.add_argument("--rfm-lookback-days", type=_positive_int, metavar="DAYS",
                         help="orders of this many days before the as-of date count towards RFM "
                              f"(dbt var rfm_lookback_days, default 365; same as {RFM_LOOKBACK_ENV})")
    sync_cmd = commands.add_parser(
        "sync", help="sync the audiences (segments/audiences.yml) to their destinations",
        description="Sync every audience to its destinations: only the changes since the "
                    "destination's confirmed state are sent. Credentials come from environment "
                    "variables (README, 'Activation').")
    sync_cmd.add_argument("--dry-run", action="store_true",
                          help="show what would be added and removed; send nothing")
    sync_cmd.add_argument("--full-refresh", action="store_true",
                          help="send every member again (replace the audience where possible)")
    sync_cmd.add_argument("--force-removals", action="store_true",
                          help="allow removing more than 20%% of an audience in one run")
    sync_cmd.add_argument("--audience", action="append", metavar="KEY",
                          help="only this audience (repeatable)")
    sync_cmd.add_argument("--demo-destinations", action="store_true",
                          help="sync the demo audiences to local emulators (no credentials)")
    sync_cmd.add_argument("--strict", action="store_true",
                          help="exit 1 when a sync was refused or failed (the others still run)")
    commands.add_parser("summary", help="print segment sizes and where everything lives")
    doctor_cmd = commands.add_parser(
        "doctor", help="show (and --repair) what a killed run left behind",
        description="Show the runs that say they are in progress but whose process is gone, the "
                    "pool slots they still hold, orphaned dbt or step processes and half-written "
                    "files. Every `segmenta run`, `sync` and `backfill` repairs these before it "
                    "starts; this command shows them, and releases them with --repair.")
    doctor_cmd.add_argument("--repair", action="store_true",
                            help="mark dead runs failed, free their slots, kill orphans, delete "
                                 "half-written files")
    backfill_cmd = commands.add_parser(
        "backfill", help="reload a range of landing days and rebuild everything, in one run",
        description="Reload the orders and events of every day from FROM to TO (a single-run "
                    "backfill, however many days) and rebuild everything downstream.")
    backfill_cmd.add_argument("--from", dest="first", type=_day, required=True,
                              help="first day, YYYY-MM-DD")
    backfill_cmd.add_argument("--to", dest="last", type=_day, required=True,
                              help="last day, YYYY-MM-DD")
    import_cmd = commands.add_parser(
        "import", help="write a store's own export into the landing zone through a YAML mapping",
        description="Map an existing export (CSV or Parquet) onto a landing feed with a YAML "
                    "column mapping and write it as one CSV per day into SEGMENTA_HOME/landing. "
                    "Every source row is written; rows that break the contract are quarantined "
                    "with a reason when the days are loaded.")
    import_cmd.add_argument("--mapping", type=Path, required=True,
                            help="the YAML mapping, e.g. mappings/online_retail.yaml")
    import_cmd.add_argument("--source", type=Path, required=True, help="the export file")
    import_cmd.add_argument("--set", dest="constants", action="append", default=[],
                            metavar="COLUMN=VALUE",
                            help="a value for a contract column on every row, over the "
                                 "mapping's (repeatable), e.g. --set city=Madrid --set "
                                 "country=ES for an Open-Meteo export")
    commands.add_parser("generate", add_help=False,
                        help="write the synthetic sample store (see `segmenta generate --help`)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "generate":
        import generator

        return generator.main(rest, holdouts=demo_campaign.audience_holdouts())
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        if args.rfm_lookback_days is not None:  # dbt reads it (dbt_project.yml)
            os.environ[RFM_LOOKBACK_ENV] = str(args.rfm_lookback_days)
        lookback = os.environ.get(RFM_LOOKBACK_ENV, "")
        if not lookback:
            os.environ.pop(RFM_LOOKBACK_ENV, None)  # empty: dbt_project.yml's default
        elif not lookback.isdigit():
            parser.error(f"{RFM_LOOKBACK_ENV}={lookback!r} is not a number of days")
        try:
            retraining.Policy.from_env()
        except ValueError as exc:
            parser.error(str(exc))
        if args.retrain or args.force:  # this process runs the steps (execute_in_process)
            os.environ[retraining.EVERY_DAYS_ENV] = "0"
        if args.force:
            os.environ[landing.RELOAD_SNAPSHOTS_ENV] = "1"
        options = {"force": args.force, "full_refresh": args.full_refresh,
                   "strict": args.strict, "force_removals": args.force_removals}
    if args.command == "run" and args.demo_destinations:
        with demo_destinations(HOME.ensure()):
            held = demo_campaign.prepare(HOME)  # the demo audiences file is set from here on
            code = run(**options, short_summary=bool(held))
            if code == 0 and held:
                print(f"\nThe campaign's days: {demo_campaign.deliver(HOME)} days delivered "
                      "after the first sync, then the same run again (the segments move by "
                      "three weeks at once: removals allowed, --force-removals).")
                code = run(**{**options, "force_removals": True})
            if code == 0:
                print("\nThe same audiences synced once more: only changes are sent (none now, "
                      "unless this run found nothing new and this is the demo's first sync).")
                code = sync(force_removals=args.force_removals, strict=args.strict)
        closing = demo_campaign.closing_lines(HOME) if code == 0 else []
        if closing:  # the demo's last screen: the uplift, next to the simulated true effect
            print("\n" + "\n".join(closing))
        return code
    if args.command == "run":
        return run(**options)
    if args.command == "sync":
        options = {"dry_run": args.dry_run, "full_refresh": args.full_refresh,
                   "force_removals": args.force_removals, "only": args.audience,
                   "strict": args.strict}
        if args.demo_destinations:
            with demo_destinations(HOME.ensure()):
                return sync(**options)
        return sync(**options)
    if args.command == "backfill":
        if args.last < args.first:
            parser.error("--to is before --from")
        return backfill(args.first, args.last)
    if args.command == "doctor":
        from dagster_project import recovery

        return recovery.doctor(HOME.ensure(), repair=args.repair)
    if args.command == "import":
        from ingest.importer import MappingError, import_file

        bad = [item for item in args.constants if "=" not in item or item.startswith("=")]
        if bad:
            parser.error(f"--set takes COLUMN=VALUE, not {bad[0]!r}")
        overrides = dict(item.split("=", 1) for item in args.constants)
        try:
            report = import_file(args.mapping, args.source, HOME.ensure().landing, overrides)
        except (MappingError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {report.written_rows:,} of {report.source_rows:,} rows from {args.source} "
              f"into {report.out_dir} ({report.days} days, {report.first_day}..{report.last_day})")
        return 0
    print(summary(HOME))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
