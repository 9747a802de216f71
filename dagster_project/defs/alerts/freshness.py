"""Freshness checks (`fresh`) on the raw feeds and the key marts, run by their own job at the
deadline (schedule `freshness_deadline`, 07:00 UTC by default).

A raw feed is fresh when every day due is loaded (ingest/freshness.py says what "due" means on
the wall clock and on the store's own clock, used for a historical sample). A mart is fresh when
the orders and events feeds are, and it was rebuilt after their newest load. The checks are
non-blocking and not part of `refresh_all`: a run does not judge its own lateness; the schedule
looks at the deadline, and a failed check shows on the asset page and in the Overview (a failed
check does not fail the run, so `run_failure_alert` does not post it). Severity WARN: the syncs
refuse to send segments whose marts' latest check failed with an ERROR, and late data is no
reason to stop sending the last good segments.
"""

import datetime as dt

import dagster as dg

from dagster_project.resources import HomeResource, WarehouseResource
from ingest import freshness, landing

CHECK_NAME = "fresh"
DAILY_FEEDS = ("orders", "events")
SNAPSHOT_FEEDS = landing.SNAPSHOT_FEEDS
KEY_MARTS = ("marts/customer_360", "marts/segment_memberships", "published/marts")


def _loaded_days(warehouse: WarehouseResource, feed: str) -> set[dt.date]:
    """The days of a feed the warehouse holds (raw.loaded_days / raw.snapshot_days); none
    before the first load."""
    table = landing.SNAPSHOT_DAYS if feed in SNAPSHOT_FEEDS else landing.LOADED_DAYS
    store = warehouse.warehouse
    if not store.path.exists():
        return set()
    with store.connect() as con:
        schema, name = table.split(".")
        exists = con.execute("select count(*) from information_schema.tables "
                             "where table_schema = ? and table_name = ?", [schema, name]).fetchone()
        if not exists[0]:
            return set()
        return {row[0] for row in con.execute(
            f"select distinct day from {table} where feed = ?", [feed]).fetchall()}


def feed_freshness(home: HomeResource, warehouse: WarehouseResource, feed: str,
                   now: dt.datetime | None = None) -> freshness.FeedFreshness:
    """The freshness of one raw feed now, judged by the environment's policy."""
    policy = freshness.FreshnessPolicy.from_env()
    landing_dir = home.home.landing
    newest = max((day for name in DAILY_FEEDS for day in landing.landing_days(landing_dir, name)),
                 default=None)
    due, clock = policy.due_through(now or dt.datetime.now(dt.UTC), newest)
    judge = (freshness.snapshot_feed_freshness if feed in SNAPSHOT_FEEDS
             else freshness.daily_feed_freshness)
    return judge(feed, set(landing.landing_days(landing_dir, feed)),
                 _loaded_days(warehouse, feed), due, clock)


def _feed_result(report: freshness.FeedFreshness) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=CHECK_NAME, passed=report.fresh, severity=dg.AssetCheckSeverity.WARN,
        description=report.describe(),
        metadata={"clock": dg.MetadataValue.text(report.clock),
                  "due_through": dg.MetadataValue.text(str(report.due_through or "nothing due")),
                  "newest_loaded": dg.MetadataValue.text(str(report.newest_loaded or "none")),
                  "missing_days": dg.MetadataValue.int(len(report.missing)),
                  "delivered_not_loaded": dg.MetadataValue.int(len(report.not_loaded))})


def _feed_check(feed: str) -> dg.AssetChecksDefinition:
    kind = "snapshot: every delivered day due" if feed in SNAPSHOT_FEEDS else \
        "daily: every day from the first through the day due, none missing"

    @dg.asset_check(
        asset=dg.AssetKey(["raw", feed]), name=CHECK_NAME, blocking=False, pool="duckdb",
        description=f"raw/{feed} is loaded up to date ({kind}); due: the day before today by "
                    "07:00 UTC on the wall clock, or the newest delivered day on the store's "
                    "clock for a historical sample (SEGMENTA_FRESHNESS_CLOCK, _DEADLINE, "
                    "_LAG_DAYS).",
    )
    def _check(home: HomeResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _feed_result(feed_freshness(home, warehouse, feed))

    return _check


def _latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey) -> float | None:
    event = instance.get_latest_materialization_event(key)
    return event.timestamp if event else None


def _mart_check(path: str) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(path.split("/"))

    @dg.asset_check(
        asset=key, name=CHECK_NAME, blocking=False, pool="duckdb",
        description=f"{path} is up to date: raw/orders and raw/events are fresh (see their "
                    "`fresh` checks) and it was rebuilt after their newest load.",
    )
    def _check(context: dg.AssetCheckExecutionContext, home: HomeResource,
               warehouse: WarehouseResource) -> dg.AssetCheckResult:
        stale = [report for report in (feed_freshness(home, warehouse, feed)
                                       for feed in DAILY_FEEDS) if not report.fresh]
        built = _latest_materialization(context.instance, key)
        loads = [t for feed in DAILY_FEEDS
                 if (t := _latest_materialization(context.instance,
                                                  dg.AssetKey(["raw", feed]))) is not None]
        behind = built is None or (loads and built < max(loads))
        problems = [report.describe() for report in stale]
        if built is None:
            problems.append(f"{path} was never materialized")
        elif behind:
            problems.append(f"{path} was built before the newest raw load")
        fmt = (lambda t: dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
               if t else "never")
        return dg.AssetCheckResult(
            passed=not problems, severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(problems) or f"{path} rebuilt after the newest raw load and "
                                                "the raw feeds are fresh",
            metadata={"last_built": dg.MetadataValue.text(fmt(built)),
                      "newest_raw_load": dg.MetadataValue.text(fmt(max(loads, default=None))),
                      "stale_feeds": dg.MetadataValue.text(
                          ", ".join(r.feed for r in stale) or "none")})

    return _check


freshness_checks = [*(_feed_check(feed) for feed in (*DAILY_FEEDS, *SNAPSHOT_FEEDS)),
                    *(_mart_check(path) for path in KEY_MARTS)]
FRESHNESS_SELECTION = dg.AssetSelection.checks(*freshness_checks)

freshness_job = dg.define_asset_job(
    name="freshness_checks", selection=FRESHNESS_SELECTION,
    description="The `fresh` checks of the raw feeds and key marts (materializes nothing).")

_deadline = freshness.FreshnessPolicy.from_env().deadline


@dg.schedule(
    job=freshness_job, name="freshness_deadline",
    cron_schedule=f"{_deadline.minute} {_deadline.hour} * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At the freshness deadline (SEGMENTA_FRESHNESS_DEADLINE, 07:00 UTC): the "
                "`fresh` checks of the raw feeds and key marts.",
)
def freshness_deadline(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """One run of the freshness checks per day."""
    return dg.RunRequest(run_key=context.scheduled_execution_time.date().isoformat(),
                         tags={"segmenta/trigger": "freshness_deadline"})
