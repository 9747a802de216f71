import datetime as dt

import dagster as dg

from dagster_project import landing
from dagster_project.partitions import daily_partitions
from dagster_project.resources import HomeResource, WarehouseResource

DESCRIPTIONS = {
    "orders": "Order lines as delivered by the shop, one row per order line and delivery.",
    "events": "Web and app events (Segment track/page/identify), one row per delivered event.",
    "customers": "Customer profile snapshots, one row per snapshot; the newest wins downstream.",
    "products": "Product catalogue snapshots, one row per product and snapshot.",
}


def _metadata(report: landing.LoadReport) -> dict[str, dg.MetadataValue]:
    rows = "\n".join(
        f"| {day} | {report.read[day]} | {report.loaded[day]} | {report.quarantined[day]} |"
        for day in sorted(report.read)
    )
    return {
        **{key: dg.MetadataValue.int(value) for key, value in report.totals.items()},
        "reconciles": dg.MetadataValue.bool(report.reconciles),
        "quarantine_reasons": dg.MetadataValue.json(dict(report.reasons)),
        "per_day": dg.MetadataValue.md(
            "| day | read | loaded | quarantined |\n|---|---|---|---|\n" + rows),
    }


def _partitioned_feed_asset(feed: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", feed],
        description=DESCRIPTIONS[feed],
        group_name="ingest",
        kinds={"duckdb", "python"},
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="duckdb",
    )
    def _asset(context: dg.AssetExecutionContext, home: HomeResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
        days = [dt.date.fromisoformat(key) for key in context.partition_keys]
        report = landing.load_days(warehouse.warehouse, home.home.landing, feed, days)
        context.log.info(f"{feed}: {report.totals} over {len(days)} day(s)")
        return dg.MaterializeResult(metadata=_metadata(report))

    return _asset


def _snapshot_feed_asset(feed: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", feed],
        description=DESCRIPTIONS[feed],
        group_name="ingest",
        kinds={"duckdb", "python"},
        pool="duckdb",
    )
    def _asset(context: dg.AssetExecutionContext, home: HomeResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
        report = landing.load_all_days(warehouse.warehouse, home.home.landing, feed)
        context.log.info(f"{feed}: {report.totals}")
        return dg.MaterializeResult(metadata=_metadata(report))

    return _asset


raw_orders = _partitioned_feed_asset("orders")
raw_events = _partitioned_feed_asset("events")
raw_customers = _snapshot_feed_asset("customers")
raw_products = _snapshot_feed_asset("products")
