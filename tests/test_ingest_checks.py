"""Blocking ingestion checks: a day with too many bad rows stops everything downstream."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs.ingest.assets import raw_orders
from dagster_project.resources import ExpectationsResource, HomeResource, WarehouseResource
from ingest.quality import SUITES_DIR

HEADER = ("order_id,line_number,customer_id,ordered_at,product_id,quantity,unit_price,currency,"
          "status,channel,shipping_country,discount_amount")


@dg.asset(deps=[dg.AssetKey(["raw", "orders"])])
def downstream_segments() -> None:
    """Stands in for the marts and exports that must not refresh on bad data."""


def _run(tmp_path, bad_rows: int, cancelled: int = 0) -> dg.ExecuteInProcessResult:
    day = tmp_path / "landing" / "orders" / "dt=2026-05-01"
    day.mkdir(parents=True, exist_ok=True)
    good = [f"O{i},1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,ES,0" for i in range(40)]
    bad = [f"B{i},1,C1,2026-05-01T10:00:00Z,P1,1,-1,EUR,completed,web,ES,0"
           for i in range(bad_rows)]
    cancelled_lines = [f"X{i},1,C1,2026-05-01T10:00:00Z,P1,1,9.5,EUR,cancelled,web,ES,0"
                       for i in range(cancelled)]
    (day / "orders.csv").write_text("\n".join([HEADER, *good, *bad, *cancelled_lines]) + "\n")
    return dg.materialize(
        [raw_orders, downstream_segments], partition_key="2026-05-01", raise_on_error=False,
        resources={"home": HomeResource(root=str(tmp_path)),
                   "expectations": ExpectationsResource(suites_dir=str(SUITES_DIR)),
                   "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))},
    )


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def test_clean_day_passes_and_downstream_refreshes(tmp_path):
    result = _run(tmp_path, bad_rows=1)  # 1 of 41 rows is 2.4 %
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"rows_reconcile": True, "quarantine_share": True,
                      "great_expectations": True}
    assert "downstream_segments" in _materialized(result)


def test_failing_blocking_check_stops_downstream(tmp_path):
    result = _run(tmp_path, bad_rows=5)  # 5 of 45 rows is 11 %
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"rows_reconcile": True, "quarantine_share": False,
                      "great_expectations": False}
    assert "raw/orders" in _materialized(result)
    assert "downstream_segments" not in _materialized(result)
    assert not result.success


def test_failing_expectation_alone_stops_downstream_and_shows_offending_values(tmp_path):
    result = _run(tmp_path, bad_rows=0, cancelled=60)  # 60 % of the day's lines cancelled
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["quarantine_share"].passed and not evaluations["great_expectations"].passed
    report = evaluations["great_expectations"].metadata["result"].value
    assert "expect_column_values_to_be_in_set" in report and "cancelled" in report
    assert "downstream_segments" not in _materialized(result)


def test_the_rows_suite_validates_a_sample_of_the_days_loaded_not_of_the_table(tmp_path,
                                                                                monkeypatch):
    """The rows expectations run on a sample of the days just loaded. DuckDB samples a FROM
    clause before its WHERE: a sample of the table filtered to the day held 562 of a day's
    270k events at 1M customers. Only the columns the suite reads are read."""
    import datetime as dt
    from types import SimpleNamespace

    from core.warehouse import Warehouse
    from dagster_project.defs.ingest import assets
    from ingest import landing

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.connect() as con:
        con.execute("create schema raw")
        con.execute("""create table raw.events as
            select 'm' || i as message_id, 'track' as type, 'a' || i as anonymous_id,
                   '{"x": 1}' as properties, null::varchar as _extra,
                   date '2026-06-01' + (i % 4)::int as _partition_date
            from range(1200) as t(i)""")
    monkeypatch.setattr(assets, "GE_SAMPLE_ROWS", 100)
    day = dt.date(2026, 6, 2)
    report = landing.LoadReport("events")
    report.read[day.isoformat()] = report.loaded[day.isoformat()] = 300
    queries = []
    query_df = warehouse.query_df
    monkeypatch.setattr(warehouse, "query_df", lambda sql, *a: queries.append(sql) or query_df(
        sql, *a))
    result = assets._expectations(SimpleNamespace(warehouse=warehouse),
                                  ExpectationsResource(suites_dir=str(SUITES_DIR)), report,
                                  [day])
    assert result.passed
    assert result.metadata["rows_validated"].value == 100  # of the day's 300
    assert "properties" not in queries[0] and "message_id" in queries[0]
