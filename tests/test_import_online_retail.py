"""Bring your own data: mappings turn a store's export into landing files.

The whole UCI Online Retail file through the mapping, ingestion and the marts (every one of its
541,909 rows loaded or quarantined with a reason, the published cleaned figures out of the
marts) is checked on the store tests/test_online_retail_pipeline.py builds, so the file is
imported and loaded once per suite.
"""

from __future__ import annotations

import pytest

from core.settings import PROJECT_ROOT
from core.warehouse import Warehouse
from ingest import landing
from ingest.importer import MappingError, import_file

MAPPING = PROJECT_ROOT / "mappings" / "online_retail.yaml"


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
