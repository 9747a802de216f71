"""Ingestion into raw.<feed>: typed rows in, bad rows quarantined, days replaced, bad files refused."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dagster_project import landing
from dagster_project.warehouse import Warehouse

DAY = dt.date(2026, 5, 1)
HEADER = ("order_id,line_number,customer_id,ordered_at,product_id,quantity,unit_price,currency,"
          "status,channel,shipping_country,discount_amount")


def _write(landing_dir: Path, feed: str, name: str, text: str, day: dt.date = DAY) -> Path:
    path = landing_dir / feed / f"dt={day.isoformat()}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


def test_orders_load_typed_with_load_columns_and_bad_rows_quarantined(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv", "\n".join([  # noqa: FLY002 - one line per row
        HEADER,
        "O1,1,C1,2026-05-01T10:00:00+02:00,P1,2,9.50,EUR,completed,web,ES,0",
        "O1,2,,2026-05-01T10:00:00+02:00,P2,1,5,EUR,completed,web,ES,",
        "O2,1,C2,yesterday,P1,1,9.50,EUR,completed,web,ES,0",
        "O3,1,C3,2026-05-01T11:00:00Z,,1,9.50,EUR,completed,web,ES,0",
    ]) + "\n")
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals == {"rows_read": 4, "rows_loaded": 2, "rows_quarantined": 2, "files": 1}
    assert report.reconciles and dict(report.reasons) == {"bad_timestamp": 1,
                                                          "missing_required_field": 1}
    rows = warehouse.query_df("select * from raw.orders order by line_number")
    assert rows["ordered_at"][0] == dt.datetime(2026, 5, 1, 8, 0)  # +02:00 stored as UTC
    assert rows["customer_id"].isna().tolist() == [False, True]  # guest checkout kept
    assert rows["_source_line"].tolist() == [2, 3]
    assert rows["_source_file"][0] == "orders/dt=2026-05-01/orders.csv"
    bad = warehouse.query_df("select * from quarantine.orders order by _source_line")
    assert bad["reason"].tolist() == ["bad_timestamp", "missing_required_field"]
    assert json.loads(bad["raw_record"][0])["ordered_at"] == "yesterday"


def test_reloading_a_day_replaces_it(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv",
           HEADER + "\nO1,1,C1,2026-05-01T10:00:00Z,P1,1,3,EUR,completed,web,ES,0\n")
    other_day = DAY + dt.timedelta(days=1)
    _write(tmp_path, "orders", "orders.csv",
           HEADER + "\nO9,1,C1,2026-05-02T10:00:00Z,P1,1,3,EUR,completed,web,ES,0\n", other_day)
    landing.load_days(warehouse, tmp_path, "orders", [DAY, other_day])
    landing.load_days(warehouse, tmp_path, "orders", [DAY])
    landing.load_days(warehouse, tmp_path, "orders", [DAY])
    counts = warehouse.query_df(
        "select _partition_date, count(*) as n from raw.orders group by 1 order by 1")
    assert counts["n"].tolist() == [1, 1]


def test_events_jsonl_with_malformed_line(tmp_path, warehouse):
    good = {"type": "track", "event": "Product Viewed", "messageId": "m1",
            "timestamp": "2026-05-01T09:00:00.000Z", "userId": None, "anonymousId": "a1",
            "properties": {"product_id": "P1"}, "context": {"device": {"type": "mobile"}}}
    _write(tmp_path, "events", "events.jsonl",
           json.dumps(good) + "\n{not json\n" + json.dumps({**good, "messageId": "m2"}) + "\n")
    report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert report.totals["rows_loaded"] == 2 and dict(report.reasons) == {"malformed_json": 1}
    row = warehouse.query_df("select * from raw.events where message_id = 'm1'").iloc[0]
    assert json.loads(row["properties"]) == {"product_id": "P1"}
    assert row["anonymous_id"] == "a1" and row["_source_line"] == 1
    assert warehouse.query_df("select _source_line from quarantine.events")["_source_line"][0] == 2


def test_unreadable_file_fails_with_its_name_and_leaves_warehouse_as_it_was(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv",
           HEADER + "\nO1,1,C1,2026-05-01T10:00:00Z,P1,1,3,EUR,completed,web,ES,0\n")
    landing.load_days(warehouse, tmp_path, "orders", [DAY])
    _write(tmp_path, "orders", "z_broken.csv", "order_id,quantity\nO2,1\n")
    with pytest.raises(landing.LandingFileError, match=r"orders/dt=2026-05-01/z_broken.csv: "
                                                       r"missing required column\(s\) line_number"):
        landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert warehouse.query_df("select order_id from raw.orders")["order_id"].tolist() == ["O1"]


def test_snapshot_feed_reloads_every_day(tmp_path, warehouse):
    header = ("customer_id,email,phone,first_name,last_name,birth_date,gender,city,region,"
              "postal_code,country,signup_at,email_consent,ads_consent,updated_at,is_deleted")
    row = "C1,a@example.com,,Ana,Silva,1990-01-01,female,Lisbon,,1000,PT,2026-01-01T00:00:00Z,"
    _write(tmp_path, "customers", "c.csv",
           f"{header}\n{row}true,false,2026-05-01T00:00:00Z,false\n")
    _write(tmp_path, "customers", "c.csv",
           f"{header}\n{row}false,false,2026-05-02T00:00:00Z,false\n", DAY + dt.timedelta(days=1))
    for _ in range(2):
        report = landing.load_all_days(warehouse, tmp_path, "customers")
    assert report.totals["rows_loaded"] == 2
    assert warehouse.query_df("select count(*) as n from raw.customers")["n"][0] == 2
