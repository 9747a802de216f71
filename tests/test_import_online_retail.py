"""Bring your own data: the UCI Online Retail file through the mapping, ingestion and the marts.

Every one of the 541,909 source rows must be loaded or quarantined with a reason, and the
published cleaned figures (../shared/data/README.md) must come out of the marts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from core.warehouse import Warehouse
from ingest import landing
from ingest.importer import MappingError, import_file

MAPPING = PROJECT_ROOT / "mappings" / "online_retail.yaml"


@pytest.mark.realdata
def test_online_retail_reconciles_and_gives_the_published_figures(shared_data, tmp_path):
    source = shared_data / "online_retail" / "online_retail_2010-12_2011-12.parquet"
    if not source.exists():
        pytest.skip(f"{source} is absent")
    report = import_file(MAPPING, source, tmp_path / "landing")
    assert report.source_rows == report.written_rows == 541_909
    assert (report.first_day, report.last_day) == ("2010-12-01", "2011-12-09")

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    days = landing.landing_days(tmp_path / "landing", "orders")
    loaded = landing.load_days(warehouse, tmp_path / "landing", "orders", days)
    assert loaded.totals["rows_read"] == 541_909 and loaded.reconciles
    assert dict(loaded.reasons) == {"negative_price": 2}  # the two "Adjust bad debt" lines
    with warehouse.transaction() as con:
        for feed in ("events", "customers", "products"):
            landing.ensure_tables(con, landing.FEEDS[feed])

    dbt = Path(sys.executable).parent / "dbt"
    built = subprocess.run(
        [str(dbt), "build", "--select", "+customer_rfm +fct_order_items",
         "--indirect-selection", "buildable", "--exclude", "test_type:unit", "--vars",
         '{"as_of_date": "2011-12-10", "rfm_lookback_days": 3650}',
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(tmp_path / "dbt_target"), "--log-path", str(tmp_path / "logs")],
        env={**os.environ, "SEGMENTA_HOME": str(tmp_path)}, capture_output=True, text=True,
        check=False)
    assert built.returncode == 0, built.stdout[-3000:]

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        cleaned = con.execute("""
            select count(*), count(distinct customer_id), count(distinct order_id),
                   count(distinct product_id)
            from marts.fct_order_items
            where is_completed and customer_id is not null and quantity > 0 and unit_price > 0
        """).fetchone()
        # the median of an even count is the mean of the middle two (674.485 here): on the
        # decimal money column DuckDB would keep two decimals and cut it to 674.48
        rfm = con.execute("""
            select median(recency_days), median(frequency), round(median(monetary::double), 2),
                   count(*)
            from marts.customer_rfm
        """).fetchone()
        guests = con.execute("select count(*) from marts.fct_orders where is_guest_checkout"
                             ).fetchone()[0]
    assert cleaned == (397_884, 4_338, 18_532, 3_665)
    assert rfm == (51, 2, 674.49, 4_338)
    assert guests > 0


def test_mapping_errors_name_the_key_to_fix(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("feed: orders\nsource: {format: csv}\npartition_by: ordered_at\n"
                   "columns:\n  ordered_at: {column: d, format: '%Y'}\n  colour: c\n")
    source = tmp_path / "x.csv"
    source.write_text("d,c\n2020,red\n")
    with pytest.raises(MappingError, match="colour is not a column of the orders feed"):
        import_file(bad, source, tmp_path / "landing")
    bad.write_text("feed: orders\nsource: {format: csv}\npartition_by: ordered_at\n"
                   "columns:\n  ordered_at: {column: d, format: '%Y'}\n")
    with pytest.raises(MappingError, match="required column order_id is not mapped"):
        import_file(bad, source, tmp_path / "landing")


def test_small_csv_export_with_status_rules(tmp_path):
    mapping = tmp_path / "shop.yaml"
    mapping.write_text("""
feed: orders
source: {format: csv}
partition_by: ordered_at
columns:
  order_id: Order
  product_id: SKU
  quantity: Qty
  unit_price: Price
  customer_id: {column: Customer, type: integer_id}
  ordered_at: {column: Date, format: "%d/%m/%Y %H:%M", timezone: Europe/Madrid}
constants: {currency: EUR}
line_number: {sequence_within: order_id}
status:
  default: completed
  rules:
    - when: {column: State, equals: "void"}
      value: cancelled
""")
    source = tmp_path / "export.csv"
    source.write_text("Order,SKU,Qty,Price,Customer,Date,State\n"
                      "A1,S1,2,3.5,101.0,01/06/2026 10:00,paid\n"
                      "A1,S2,1,9,101.0,01/06/2026 10:00,paid\n"
                      "A2,S1,1,3.5,,02/06/2026 00:30,void\n"
                      "A3,S1,1,3.5,7,not a date,paid\n")
    report = import_file(mapping, source, tmp_path / "landing")
    assert report.written_rows == report.source_rows == 4
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    days = landing.landing_days(tmp_path / "landing", "orders")
    loaded = landing.load_days(warehouse, tmp_path / "landing", "orders", days)
    assert loaded.totals["rows_read"] == 4 and dict(loaded.reasons) == {"bad_timestamp": 1}
    rows = warehouse.query_df("select order_id, line_number, customer_id, ordered_at, status, "
                              "_partition_date from raw.orders order by order_id, line_number")
    assert rows["line_number"].tolist() == [1, 2, 1]
    assert rows["customer_id"].tolist()[:2] == ["101", "101"] and rows["customer_id"].isna()[2]
    assert rows["status"].tolist() == ["completed", "completed", "cancelled"]
    # 00:30 in Madrid on 2 June is 22:30 UTC on 1 June, but the shop's day names the folder
    assert str(rows["ordered_at"][2]) == "2026-06-01 22:30:00"
    assert str(rows["_partition_date"][2])[:10] == "2026-06-02"
