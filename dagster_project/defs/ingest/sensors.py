import hashlib
import json
from collections import defaultdict
from pathlib import Path

import dagster as dg

from dagster_project import recovery
from dagster_project.defs.alerts.freshness import FRESHNESS_SELECTION
from dagster_project.partitions import daily_partitions
from dagster_project.resources import HomeResource
from ingest import landing

PARTITIONED_FEEDS = ("orders", "events")
SNAPSHOT_FEEDS = landing.SNAPSHOT_FEEDS  # customers, products, weather


def landing_run_requests(old: dict, new: dict, known_days: set[str],
                         downstream: list[dg.AssetKey] = ()) -> tuple[list[dg.RunRequest],
                                                                      list[str]]:
    """Run requests for exactly the landing days that arrived or changed, and days skipped.

    Contiguous changed days become one single-run backfill over that range (the feeds that
    changed over the same range share one run); changed snapshot feeds (profiles, catalogue)
    reload in the newest range's run, or in a run of their own when no day changed. Each run
    also refreshes `downstream` (every unpartitioned asset below ingestion), so new and late
    files reach the marts, models and audiences in the same run. The run key names the files'
    fingerprints, so the same files are never requested twice.
    """
    requests, skipped = [], []
    by_range: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for feed in PARTITIONED_FEEDS:
        old_days, new_days = old.get(feed, {}), new[feed]
        for first, last in landing.changed_day_ranges(old_days, new_days):
            days = [d for d in sorted(set(old_days) | set(new_days)) if first <= d <= last]
            if not set(days) <= known_days:
                skipped += [d for d in days if d not in known_days]
                continue
            marks = ",".join(f"{d}={new_days.get(d, 'gone')}" for d in days)
            by_range[(first, last)].append((feed, marks))
    snapshots = [(feed, hashlib.sha256(",".join(
                     f"{d}={fp}" for d, fp in sorted(new[feed].items())).encode()).hexdigest()[:16])
                 for feed in SNAPSHOT_FEEDS if old.get(feed) != new[feed] and new[feed]]
    ranges = sorted(by_range.items())
    for number, ((first, last), feeds) in enumerate(ranges, start=1):
        # changed profiles or catalogue load in the newest range's run (a daily delivery brings
        # a day of orders, events and profiles: one run refreshes everything downstream once)
        extra = snapshots if number == len(ranges) else []
        requests.append(dg.RunRequest(
            run_key=";".join([*(f"{feed}:{marks}" for feed, marks in feeds),
                              *(f"{feed}:{mark}" for feed, mark in extra)]),
            asset_selection=[*(key for feed, _ in feeds for key in _feed_keys(feed)),
                             *(dg.AssetKey(["raw", feed]) for feed, _ in extra), *downstream],
            tags={"dagster/asset_partition_range_start": first,
                  "dagster/asset_partition_range_end": last,
                  "segmenta/trigger": "landing_sensor"},
        ))
    if snapshots and not ranges:
        requests.append(dg.RunRequest(
            run_key=";".join(f"{feed}:{mark}" for feed, mark in snapshots),
            asset_selection=[*(dg.AssetKey(["raw", feed]) for feed, _ in snapshots), *downstream],
            tags={"segmenta/trigger": "landing_sensor"},
        ))
    return requests, skipped


def _feed_keys(feed: str) -> list[dg.AssetKey]:
    keys = [dg.AssetKey(["raw", feed])]
    if feed in landing.CHANGE_LOGS:
        keys.append(dg.AssetKey(["raw", f"{feed}_changes"]))
    return keys


def downstream_of_ingestion(context: dg.SensorEvaluationContext) -> list[dg.AssetKey]:
    """Every asset below the ingestion group that has no partitions (marts, models, audiences,
    the published copy); none when the sensor runs without its code location (unit tests)."""
    if context.repository_def is None:
        return []
    graph = context.repository_def.asset_graph
    ingest = {key for key in graph.get_all_asset_keys() if graph.get(key).group_name == "ingest"}
    below = (dg.AssetSelection.groups("ingest").downstream()
             .required_multi_asset_neighbors().resolve(graph))
    return sorted((key for key in below if key not in ingest
                   and graph.get(key).is_executable and graph.get(key).partitions_def is None),
                  key=lambda key: key.to_user_string())


def starting_cursor(home: HomeResource) -> dict:
    """What the warehouse already holds: the landing files of the last `segmenta run`, so a
    first `make ui` after `make run` requests nothing."""
    state = home.home.run_state
    if state.exists() and home.home.warehouse.exists():
        return json.loads(state.read_text()).get("landing", {})
    return {}


# The cursor the UI shows is short: the state's digest and a summary (`3f2a9c1e0b7d4e21: orders
# 92 days, events 92 days, ...`). The state itself (each landing day's file fingerprint, tens of
# kB: it pushed the tick history off the sensor's page) is kept under SEGMENTA_HOME, one file per
# digest, the newest KEPT_STATES of them (a tick evaluated again from an older cursor finds it).
KEPT_STATES = 10


def _states_dir(home: HomeResource) -> Path:
    return home.home.dagster_home / "landing_sensor"


def save_cursor(home: HomeResource, state: dict) -> str:
    """Keep `state` under SEGMENTA_HOME and return the short cursor that names it."""
    text = json.dumps(state, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = _states_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.json"
    if not path.exists():
        staged = folder / f".{digest}.json.tmp"
        staged.write_text(text)
        staged.replace(path)
    path.touch()  # the newest state is kept longest
    for older in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)[:-KEPT_STATES]:
        older.unlink(missing_ok=True)
    sizes = ", ".join(f"{feed} {len(days)} day{'s' if len(days) != 1 else ''}"
                      for feed, days in sorted(state.items()) if days)
    return f"{digest}: {sizes or 'no landing files'}"


def load_cursor(home: HomeResource, cursor: str | None) -> dict:
    """The landing state a cursor names: a short cursor's kept file, a whole state as JSON (the
    cursors of earlier versions), or, with none or its file gone, what the last `segmenta
    run` loaded (`starting_cursor`)."""
    if not cursor:
        return starting_cursor(home)
    if cursor.lstrip().startswith("{"):
        return json.loads(cursor)
    path = _states_dir(home) / f"{cursor.split(':', 1)[0]}.json"
    return json.loads(path.read_text()) if path.exists() else starting_cursor(home)


@dg.sensor(
    name="landing_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    # the freshness checks run at their deadline (freshness_deadline), not in the loads
    asset_selection=dg.AssetSelection.all() - FRESHNESS_SELECTION,
    description="New or late landing files: loads exactly those days and refreshes everything "
                "downstream in the same run.",
)
def landing_sensor(context: dg.SensorEvaluationContext,
                   home: HomeResource) -> dg.SensorResult:
    """Watches SEGMENTA_HOME/landing; the cursor names each day's file fingerprint, kept under
    SEGMENTA_HOME/dagster/landing_sensor (`save_cursor`). Each tick first releases what a
    killed run left (its pool slots would block every request)."""
    recovered = recovery.find_and_repair(context.instance, home.home, repair=True)
    for line in recovered.lines():
        context.log.warning(f"recovered from a killed run: {line.strip()}")
    old = load_cursor(home, context.cursor)
    new = landing.landing_fingerprints(home.home.landing)
    # days an erasure rewrote (docs/privacy.md) hold what the warehouse holds: not a delivery
    for feed, days in landing.rewritten_days(home.home.landing).items():
        for day, fingerprint in days.items():
            if new.get(feed, {}).get(day) == fingerprint and feed in old:
                old[feed][day] = fingerprint
    known = set(daily_partitions.get_partition_keys())
    requests, skipped = landing_run_requests(old, new, known, downstream_of_ingestion(context))
    if skipped:
        context.log.warning(f"landing days outside the daily partitions, not loaded: "
                            f"{skipped[0]}..{skipped[-1]} ({len(skipped)} days); set "
                            "SEGMENTA_START_DATE or wait until the day is over")
        for feed in PARTITIONED_FEEDS:  # retry those days on a later tick
            new[feed] = {d: fp for d, fp in new[feed].items() if d not in skipped}
    return dg.SensorResult(run_requests=requests, cursor=save_cursor(home, new))
