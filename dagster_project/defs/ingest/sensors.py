import hashlib
import json

import dagster as dg

from dagster_project.partitions import daily_partitions
from dagster_project.resources import HomeResource
from ingest import landing

PARTITIONED_FEEDS = ("orders", "events")
SNAPSHOT_FEEDS = ("customers", "products")


def landing_run_requests(old: dict, new: dict,
                         known_days: set[str]) -> tuple[list[dg.RunRequest], list[str]]:
    """Run requests for exactly the landing days that arrived or changed, and days skipped.

    Contiguous changed days of a feed become one single-run backfill over that range; a changed
    snapshot feed reloads once. The run key names the files' fingerprints, so the same files are
    never requested twice.
    """
    requests, skipped = [], []
    for feed in PARTITIONED_FEEDS:
        old_days, new_days = old.get(feed, {}), new[feed]
        for first, last in landing.changed_day_ranges(old_days, new_days):
            days = [d for d in sorted(set(old_days) | set(new_days)) if first <= d <= last]
            if not set(days) <= known_days:
                skipped += [d for d in days if d not in known_days]
                continue
            marks = ",".join(f"{d}={new_days.get(d, 'gone')}" for d in days)
            requests.append(dg.RunRequest(
                run_key=f"{feed}:{marks}",
                asset_selection=[dg.AssetKey(["raw", feed])],
                tags={"dagster/asset_partition_range_start": first,
                      "dagster/asset_partition_range_end": last,
                      "segmenta/trigger": "landing_sensor"},
            ))
    for feed in SNAPSHOT_FEEDS:
        if old.get(feed) != new[feed] and new[feed]:
            marks = ",".join(f"{d}={fp}" for d, fp in sorted(new[feed].items()))
            requests.append(dg.RunRequest(
                run_key=f"{feed}:{hashlib.sha256(marks.encode()).hexdigest()[:16]}",
                asset_selection=[dg.AssetKey(["raw", feed])],
                tags={"segmenta/trigger": "landing_sensor"},
            ))
    return requests, skipped


@dg.sensor(
    name="landing_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.groups("ingest"),
    description="Requests the ingestion partitions of landing days that arrived or got late files.",
)
def landing_sensor(context: dg.SensorEvaluationContext,
                   home: HomeResource) -> dg.SensorResult:
    """Watches SEGMENTA_HOME/landing; the cursor holds each day's file fingerprint."""
    old = json.loads(context.cursor) if context.cursor else {}
    new = landing.landing_fingerprints(home.home.landing)
    known = set(daily_partitions.get_partition_keys())
    requests, skipped = landing_run_requests(old, new, known)
    if skipped:
        context.log.warning(f"landing days outside the daily partitions, not loaded: "
                            f"{skipped[0]}..{skipped[-1]} ({len(skipped)} days); set "
                            "SEGMENTA_START_DATE or wait until the day is over")
        for feed in PARTITIONED_FEEDS:  # retry those days on a later tick
            new[feed] = {d: fp for d, fp in new[feed].items() if d not in skipped}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(new))
