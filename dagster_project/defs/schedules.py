import dagster as dg

from dagster_project.partitions import daily_partitions

refresh_all = dg.define_asset_job(
    name="refresh_all",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    description="Load a day's landing files, rebuild marts, models and audiences, and export.",
)

daily_refresh = dg.build_schedule_from_partitioned_job(
    refresh_all,
    name="daily_refresh",
    hour_of_day=5,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 05:00 UTC: yesterday's landing day in, everything downstream rebuilt.",
)
