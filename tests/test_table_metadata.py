"""Row counts and column schemas of the tables dbt built (defs/transform/table_metadata.py), read
from a real DuckDB file as a dbt step reads them after its invocation."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.defs.transform.table_metadata import table_metadata, with_table_metadata


def _node(name: str, schema: str, materialized: str = "table", resource_type: str = "model",
          columns: dict | None = None) -> dict:
    return {"unique_id": f"{resource_type}.segmenta.{name}", "resource_type": resource_type,
            "name": name, "alias": name, "schema": schema,
            "config": {"materialized": materialized}, "columns": columns or {}}


def _warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema staging")
        con.execute("create table marts.rfm as select range::varchar as customer_id, "
                    "(range * 1.5)::decimal(18, 2) as monetary, date '2026-01-01' as as_of_date from range(7)")
        con.execute("delete from marts.rfm where customer_id = '3'")  # counted, not estimated
        con.execute("create view staging.stg as select * from marts.rfm")
    return path


def test_tables_and_quick_views_get_exact_counts_missing_ones_nothing(tmp_path):
    rfm = _node("rfm", "marts", columns={"monetary": {"description": "Net revenue, EUR."}})
    nodes = [rfm, _node("stg", "staging", "view"), _node("never_built", "marts"),
             {**_node("a_test", "marts"), "resource_type": "test"}]
    metadata = table_metadata(_warehouse(tmp_path), nodes)

    assert set(metadata) == {"model.segmenta.rfm", "model.segmenta.stg"}
    table = metadata["model.segmenta.rfm"]
    assert table["dagster/row_count"].value == 6
    assert table["dagster/table_name"].value == "marts.rfm"
    columns = table["dagster/column_schema"].value.columns
    assert [(c.name, c.type, c.description) for c in columns] == [
        ("customer_id", "VARCHAR", None), ("monetary", "DECIMAL(18,2)", "Net revenue, EUR."),
        ("as_of_date", "DATE", None)]
    view = metadata["model.segmenta.stg"]
    assert view["dagster/row_count"].value == 6  # a view that counts within its time limit
    assert [c.name for c in view["dagster/column_schema"].value.columns] == [
        "customer_id", "monetary", "as_of_date"]


def test_only_outputs_of_built_nodes_get_the_metadata(tmp_path):
    manifest = {"nodes": {node["unique_id"]: node for node in [_node("rfm", "marts")]}}
    output = dg.Output(None, output_name="marts_rfm",
                       metadata={"unique_id": "model.segmenta.rfm", "Execution Duration": 0.526491})
    other = dg.Output(None, output_name="x", metadata={"unique_id": "model.segmenta.gone"})
    check = dg.AssetCheckResult(passed=True, asset_key=dg.AssetKey(["marts", "rfm"]))
    events = with_table_metadata([output, other, check], manifest, _warehouse(tmp_path))

    assert events[0].metadata["dagster/row_count"].value == 6
    assert events[0].metadata["Execution Duration"].value == 0.53  # seconds, rounded
    assert events[1] is other and events[2] is check


def test_key_marts_get_a_preview_by_segment_with_units_and_rounding(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.dim_products as select 'EUR' as currency")
        con.execute("""create table marts.customer_rfm as select * from (values
            ('c1', 3, 5, 2500.456::decimal(18, 2), 'Champions'),
            ('c2', 9, 4, 1200.00::decimal(18, 2), 'Champions'),
            ('c3', 300, 1, 20.00::decimal(18, 2), 'Lost'))
            t(customer_id, recency_days, frequency, monetary, rfm_segment)""")
    metadata = table_metadata(path, [_node("customer_rfm", "marts")])["model.segmenta.customer_rfm"]
    preview = metadata["preview"].value
    assert "| RFM segment | customers | share | median recency (days) |" in preview
    assert "avg spend in window (EUR)" in preview
    assert "| Champions | 2 | 66.7 % | 3 | 4.50 | 1,850.23 |" in preview
    assert "| Lost | 1 | 33.3 % | 300 | 1.00 | 20.00 |" in preview
    assert "c1" not in preview  # no customer's id in the event log


def test_a_slow_view_is_interrupted_and_shows_columns_without_a_count(tmp_path):
    path = _warehouse(tmp_path)
    with duckdb.connect(str(path)) as con:  # a count of about 10 s
        con.execute("create view staging.slow as select a.range as x from range(40000) a, "
                    "range(40000) b where a.range * b.range % 7 = 3")
    started = time.monotonic()
    metadata = table_metadata(path, [_node("slow", "staging", "view"), _node("rfm", "marts")])
    assert time.monotonic() - started < 2
    slow = metadata["model.segmenta.slow"]
    assert "dagster/row_count" not in slow
    assert [c.name for c in slow["dagster/column_schema"].value.columns] == ["x"]
    assert metadata["model.segmenta.rfm"]["dagster/row_count"].value == 6
