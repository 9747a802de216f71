import datetime as dt
import os
from pathlib import Path

import dagster as dg

from core import preload
from core.settings import ENGINE
from dagster_project.partitions import daily_partitions
from dagster_project.resources import ExpectationsResource, HomeResource, WarehouseResource
from ingest import landing, quality

DESCRIPTIONS = {
    "orders": "Order lines as delivered by the shop, one row per order line and delivery.",
    "events": "Web and app events (Segment track/page/identify), one row per delivered event.",
    "customers": "Customer profile snapshots, one row per snapshot; the newest wins downstream.",
    "products": "Product catalogue snapshots, one row per product and snapshot.",
    "weather": "Daily weather per city, observed and forecast, one row per city, day and issue.",
}


MAX_QUARANTINE_SHARE = 0.05
GE_SAMPLE_ROWS = 200_000  # rows expectations run on a reservoir sample of this size at most


def _check_specs(feed: str) -> list[dg.AssetCheckSpec]:
    key = dg.AssetKey(["raw", feed])
    return [
        dg.AssetCheckSpec("rows_reconcile", asset=key, blocking=True,
                          description="Every row read was loaded or quarantined, per day."),
        dg.AssetCheckSpec("quarantine_share", asset=key, blocking=True,
                          description=f"At most {MAX_QUARANTINE_SHARE:.0%} of a day's rows were "
                                      "quarantined (or fewer than "
                                      f"{quality.MIN_QUARANTINED_ROWS} rows); more means the "
                                      "export is broken."),
        dg.AssetCheckSpec("great_expectations", asset=key, blocking=True,
                          description=f"The suite expectations/raw_{feed}.json on the rows and "
                                      "daily volumes just loaded."),
    ]


def _expectations(warehouse: WarehouseResource, expectations: ExpectationsResource,
                  report: landing.LoadReport, days: list[dt.date] | None) -> dg.AssetCheckResult:
    """Validate the loaded rows (a sample) and, for daily feeds, each day's volume statistics."""
    table = f"raw.{report.feed}"
    # the days' rows, then the sample: DuckDB samples the FROM clause before the WHERE, so a
    # sample of the table filtered to the day validated 562 of a day's 270k events at 1M
    # customers (and read all 100M rows, 16 s). Only the columns the suite reads.
    where, params = "", []
    if days is not None:  # the range lets DuckDB skip the other days' row groups
        where = ("where _partition_date between ? and ? "
                 "and _partition_date in (select unnest(?::date[]))")
        params = [min(days, default=None), max(days, default=None), days]
    columns = quality.suite_columns(table, "rows", Path(expectations.suites_dir))
    select = "* exclude (_extra)" if columns is None else ", ".join(f'"{c}"' for c in columns)
    rows = warehouse.warehouse.query_df(
        f"select * from (select {select} from {table} {where}) "
        f"using sample reservoir({GE_SAMPLE_ROWS} rows) repeatable (7)", params)
    # no rows (a store without profile or catalogue feeds) leaves only the volume checks
    summaries = [expectations.validate(table, "rows", rows)] if len(rows) else []
    if days is not None and report.read:
        history = warehouse.warehouse.query_df(
            f"select strftime(_partition_date, '%Y-%m-%d') as day, count(*) as n_loaded "
            f"from {table} where _partition_date < ? and _partition_date >= ? - 40 group by 1",
            [min(days), min(days)])
        for day in report.read:  # days of this load count as history for the later ones
            history.loc[len(history)] = [day, report.loaded[day]]
        stats = quality.daily_stats(report.read, report.loaded, report.quarantined, history)
        summaries.append(expectations.validate(table, "daily", stats))
    summary = quality.ValidationSummary.combine(summaries)
    return dg.AssetCheckResult(
        check_name="great_expectations", passed=summary.success,
        metadata={"expectations": dg.MetadataValue.int(summary.evaluated),
                  "failed": dg.MetadataValue.int(len(summary.failures)),
                  "rows_validated": dg.MetadataValue.int(len(rows)),
                  "result": dg.MetadataValue.md(summary.markdown())},
    )


def _check_results(report: landing.LoadReport) -> list[dg.AssetCheckResult]:
    """Reconciliation and quarantine share of the days just loaded, as blocking checks."""
    unreconciled = [day for day in report.read
                    if report.read[day] != report.loaded[day] + report.quarantined[day]]
    shares = {day: report.quarantined[day] / report.read[day]
              for day in report.read if report.read[day]}
    too_bad = {day: share for day, share in shares.items()
               if share > MAX_QUARANTINE_SHARE
               and report.quarantined[day] >= quality.MIN_QUARANTINED_ROWS}
    return [
        dg.AssetCheckResult(check_name="rows_reconcile", passed=not unreconciled, metadata={
            **report.totals, "days_not_reconciling": dg.MetadataValue.json(unreconciled)}),
        dg.AssetCheckResult(check_name="quarantine_share", passed=not too_bad, metadata={
            "max_share": dg.MetadataValue.float(max(shares.values(), default=0.0)),
            "days_above_threshold": dg.MetadataValue.json(
                {day: round(share, 4) for day, share in sorted(too_bad.items())}),
            "reasons": dg.MetadataValue.json(dict(report.reasons)),
        }),
    ]


def _metadata(report: landing.LoadReport) -> dict[str, dg.MetadataValue]:
    rows = "\n".join(
        f"| {day} | {report.read[day]} | {report.loaded[day]} | {report.quarantined[day]} | "
        + ", ".join(f"{reason} {n}" for reason, n in sorted(report.reasons_by_day[day].items())
                    if reason) + " |"
        for day in sorted(report.read)
    )
    return {
        **{key: dg.MetadataValue.int(value) for key, value in report.totals.items()},
        "reconciles": dg.MetadataValue.bool(report.reconciles),
        "quarantine_reasons": dg.MetadataValue.json(dict(report.reasons)),
        "extra_columns": dg.MetadataValue.json(sorted(report.extra_columns)),
        "per_day": dg.MetadataValue.md(
            "| day | read | loaded | quarantined | reasons |\n|---|---|---|---|---|\n" + rows),
    }


def _copy_to_spark(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                   home: HomeResource, report: landing.LoadReport,
                   days: list[dt.date] | None) -> None:
    """SEGMENTA_ENGINE=spark: what the load changed replaces its days in Spark's raw.<feed> and
    quarantine.<feed> (core/spark_raw.py): the days of a daily feed's load, the new, changed and
    removed days of a snapshot feed. A feed Spark does not have yet (a home that switched
    engines), a snapshot feed reloaded whole, and a customers load that erased someone (it
    scrubs profiles, order lines and events of any day) are copied whole."""
    from core import spark_raw
    from core.spark import session

    feed, spark, scratch = report.feed, session(), home.home.spark / "scratch"
    erased = feed == "customers" and bool(report.erased_customers)
    whole = {other for other in ("orders", "events") if erased}
    if (not spark.catalog.tableExists(f"raw.{feed}") or erased
            or (days is None and os.environ.get(landing.RELOAD_SNAPSHOTS_ENV) == "1")):
        whole.add(feed)
    with warehouse.warehouse.connect(read_only=True) as con:
        if feed in whole:
            written = spark_raw.copy_feed(con, spark, feed, scratch)
        elif days is not None:
            written = spark_raw.copy_days(con, spark, feed, days, scratch)
        else:
            written = spark_raw.copy_feed(con, spark, feed, scratch, only=[
                dt.date.fromisoformat(day) for day in report.read])
        for other in sorted(whole - {feed}):
            spark_raw.copy_feed(con, spark, other, scratch)
    context.log.info(f"{feed} on Spark: {written} rows written"
                     + (f" ({', '.join(sorted(whole))} copied whole)" if whole else ""))
    if erased:  # the segment history and model outputs on Spark (core/privacy.py)
        from core.privacy import scrub_engine_tables

        with warehouse.warehouse.connect() as con:
            scrubbed = scrub_engine_tables(con)
        context.log.info(f"erasures on Spark: {sum(scrubbed.values())} rows of "
                         f"{len(scrubbed)} engine tables scrubbed")


def _feed_asset(feed: str) -> dg.AssetsDefinition:
    """raw.<feed>: daily partitions (single-run backfills) for orders and events, with their
    change log (raw.<feed>_changes, what each load touched: the incremental models follow it);
    the snapshot feeds (customers, products, weather) load their new and changed landing days (every
    day with SEGMENTA_RELOAD_SNAPSHOTS=1, as `segmenta run --force` sets)."""
    partitioned = landing.FEEDS[feed].partitioned
    specs = [dg.AssetSpec(["raw", feed], description=DESCRIPTIONS[feed],
                          kinds={"duckdb", "python"})]
    if feed in landing.CHANGE_LOGS:
        specs.append(dg.AssetSpec(
            ["raw", f"{feed}_changes"], kinds={"duckdb", "python"},
            description=f"The {feed} change log: what each load of a day touched (before and "
                        "after), in load order; the incremental dbt models rebuild what it "
                        "names since their own last refresh."))

    @dg.multi_asset(
        name=f"raw_{feed}",
        specs=specs,
        group_name="ingest",
        partitions_def=daily_partitions if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        pool="duckdb",
        check_specs=_check_specs(feed),
    )
    def _asset(context: dg.AssetExecutionContext, home: HomeResource,
               warehouse: WarehouseResource, expectations: ExpectationsResource):
        preload.begin()  # what `segmenta run` armed, beside the load (mostly DuckDB's work)
        if partitioned:
            days = [dt.date.fromisoformat(key) for key in context.partition_keys]
            report = landing.load_days(warehouse.warehouse, home.home.landing, feed, days)
        else:
            days = None
            report = landing.load_snapshot_days(
                warehouse.warehouse, home.home.landing, feed,
                reload_all=os.environ.get(landing.RELOAD_SNAPSHOTS_ENV) == "1")
            if feed == "customers" and report.erased_customers:
                from core.privacy import scrub_exports

                with warehouse.warehouse.connect() as con:
                    dropped = scrub_exports(con, home.home.exports / "audiences")
                if dropped:
                    context.log.info(f"{dropped} rows of erased customers dropped from "
                                     "audience files")
        if ENGINE == "spark":
            _copy_to_spark(context, warehouse, home, report, days)
        context.log.info(f"{feed}: {report.totals}"
                         + (f" over {len(days)} day(s)" if days is not None else "")
                         + (f" ({len(report.resumed)} of them loaded as they are by an earlier, "
                            "interrupted run: not loaded again)" if report.resumed else "")
                         + (f", {report.erased_customers} erased" if feed == "customers" else ""))
        yield dg.MaterializeResult(
            asset_key=["raw", feed], metadata=_metadata(report),
            check_results=[*_check_results(report),
                           _expectations(warehouse, expectations, report, days)])
        if feed in landing.CHANGE_LOGS:
            table = landing.CHANGE_LOGS[feed][0]
            with warehouse.warehouse.connect(read_only=True) as con:
                entries = con.execute(f"select count(*), max(change_id) from {table}").fetchone()
            yield dg.MaterializeResult(asset_key=["raw", f"{feed}_changes"], metadata={
                "entries": dg.MetadataValue.int(int(entries[0])),
                "latest_change_id": dg.MetadataValue.int(int(entries[1] or 0))})

    return _asset


raw_orders = _feed_asset("orders")
raw_events = _feed_asset("events")
raw_customers = _feed_asset("customers")
raw_products = _feed_asset("products")
raw_weather = _feed_asset("weather")
