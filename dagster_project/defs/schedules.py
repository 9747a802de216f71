import datetime as dt

import dagster as dg

from dagster_project.defs.alerts.freshness import FRESHNESS_SELECTION
from dagster_project.partitions import daily_partitions
from dagster_project.resources import HomeResource
from ingest import landing

refresh_all = dg.define_asset_job(
    name="refresh_all",
    # the freshness checks run at their deadline (freshness_deadline), not in the run they judge
    selection=dg.AssetSelection.all() - FRESHNESS_SELECTION,
    partitions_def=daily_partitions,
    description="Load a day's landing files, rebuild marts, models and audiences, and export.",
)


@dg.schedule(
    job=refresh_all,
    name="daily_refresh",
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 05:00 UTC: yesterday's landing day in, everything downstream "
                "rebuilt; skipped (and says why) while yesterday has no landing files.",
)
def daily_refresh(context: dg.ScheduleEvaluationContext,
                  home: HomeResource) -> dg.RunRequest | dg.SkipReason:
    """Yesterday's partition of refresh_all, once its landing files are there."""
    day = (context.scheduled_execution_time - dt.timedelta(days=1)).date()
    delivered = [feed for feed in ("orders", "events")
                 if landing.day_files(home.home.landing, landing.FEEDS[feed], day)]
    if not delivered:
        return dg.SkipReason(f"No orders or events landing files for {day} in "
                             f"{home.home.landing}: nothing to refresh. A file that arrives "
                             "later is picked up by landing_sensor.")
    if day.isoformat() not in daily_partitions.get_partition_keys(
            current_time=context.scheduled_execution_time):
        return dg.SkipReason(f"{day} is before the first daily partition "
                             f"({daily_partitions.start.date()}).")
    return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat(),
                         tags={"segmenta/trigger": "daily_refresh"})
