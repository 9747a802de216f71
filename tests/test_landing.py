"""Ingestion into raw.<feed>: typed rows in, bad rows quarantined, days replaced, bad files refused."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from core.privacy import PII_COLUMNS, customer_key
from core.warehouse import Warehouse
from ingest import landing

DAY = dt.date(2026, 5, 1)
HEADER = ("order_id,line_number,customer_id,ordered_at,product_id,quantity,unit_price,currency,"
          "status,channel,shipping_country,discount_amount")


def _write(landing_dir: Path, feed: str, name: str, text: str | bytes,
           day: dt.date = DAY) -> Path:
    """A landing file: text is written as UTF-8, bytes as they are."""
    path = landing_dir / feed / f"dt={day.isoformat()}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
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


GOOD_LINE = "O{n},1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,ES,0"


def test_one_of_every_defect_is_quarantined_with_its_reason(tmp_path, warehouse):
    orders = {
        "missing_required_field": "O10,1,C1,2026-05-01T10:00:00Z,,1,9.50,EUR,completed,web,ES,0",
        "bad_timestamp": "O11,1,C1,31/12/2026,P1,1,9.50,EUR,completed,web,ES,0",
        "future_timestamp": "O12,1,C1,2030-01-01T00:00:00Z,P1,1,9.50,EUR,completed,web,ES,0",
        "bad_number": "O13,1,C1,2026-05-01T10:00:00Z,P1,two,9.50,EUR,completed,web,ES,0",
        "negative_price": "O14,1,C1,2026-05-01T10:00:00Z,P1,1,-9.50,EUR,completed,web,ES,0",
        "negative_discount": "O15,1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,ES,-1",
        "unknown_currency": "O16,1,C1,2026-05-01T10:00:00Z,P1,1,9.50,XXX,completed,web,ES,0",
        "invalid_value": "O17,1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,shipped,web,ES,0",
        "timestamp_without_offset": "O18,1,C1,2026-05-01T10:00:00,P1,1,9.50,EUR,completed,web,"
                                    "ES,0",
        "ragged_row": "O19,1,C1,2026-05-01T10:00:00Z,P1,1,1,234.50,EUR,completed,web,ES,0",
        "malformed_csv": 'O20,1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,"completed"x,web,ES,0',
        "bad_encoding": "O21,1,Jos\xe9,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,ES,0",
        "duplicate_key": GOOD_LINE.format(n=1),
    }
    good = [GOOD_LINE.format(n=1), GOOD_LINE.format(n=2), GOOD_LINE.format(n=3)]
    _write(tmp_path, "orders", "orders.csv",
           ("\n".join([HEADER, *good, *orders.values()]) + "\n").encode("latin-1"))
    event = {"type": "track", "event": "Product Viewed", "messageId": "m1",
             "timestamp": "2026-05-01T09:00:00Z", "userId": "C1", "anonymousId": "a1",
             "properties": {}, "context": {}}
    events = {
        "malformed_json": '{"type": "track", "messageId": ',
        "unknown_event_type": json.dumps({**event, "type": "screen", "messageId": "m2"}),
        "missing_required_field": json.dumps({**event, "userId": None, "anonymousId": None,
                                              "messageId": "m3"}),
        "bad_timestamp": json.dumps({**event, "timestamp": "soon", "messageId": "m4"}),
        "bad_json_type": json.dumps({**event, "properties": "P1", "messageId": "m5"}),
        "duplicate_key": json.dumps(event),
    }
    _write(tmp_path, "events", "events.jsonl", "\n".join([json.dumps(event), *events.values()]))

    header = ("customer_id,email,phone,first_name,last_name,birth_date,gender,city,region,"
              "postal_code,country,signup_at,email_consent,ads_consent,updated_at,is_deleted")
    profile = "C{n},a@example.com,,Ana,,{birth},,,,,PT,,{consent},true,2026-05-01T00:00:00Z,false"
    customers = {
        "bad_boolean": profile.format(n=2, birth="1990-01-01", consent="maybe"),
        "bad_date": profile.format(n=3, birth="31/02/1990", consent="true"),
    }
    _write(tmp_path, "customers", "c.csv", "\n".join(
        [header, profile.format(n=1, birth="1990-01-01", consent="true"), *customers.values()]))

    weather_header = ("date,city,country,kind,condition,precipitation_mm,temp_min_c,temp_max_c,"
                      "issued_at")
    sky = "2026-05-01,Madrid,ES,observed,rain,{mm},11,19,2026-05-01T23:00:00Z"
    weather = {"negative_precipitation": sky.format(mm=-2).replace("Madrid", "Bilbao")}
    _write(tmp_path, "weather", "weather.csv",
           "\n".join([weather_header, sky.format(mm=3), *weather.values()]))

    order_report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    event_report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    customer_report = landing.load_all_days(warehouse, tmp_path, "customers")
    weather_report = landing.load_all_days(warehouse, tmp_path, "weather")

    assert dict(weather_report.reasons) == {reason: 1 for reason in weather}
    assert order_report.totals["rows_loaded"] == 3 and event_report.totals["rows_loaded"] == 1
    assert dict(order_report.reasons) == {reason: 1 for reason in orders}
    assert dict(event_report.reasons) == {reason: 1 for reason in events}
    assert order_report.reconciles and event_report.reconciles
    assert dict(customer_report.reasons) == {reason: 1 for reason in customers}
    assert customer_report.totals["rows_loaded"] == 1
    every_reason = (set(order_report.reasons) | set(event_report.reasons) | set(customers)
                    | set(weather))
    assert every_reason == set(landing.REASONS), "one defect of every documented kind"
    quarantined = warehouse.query_df("select reason, raw_record from quarantine.orders")
    by_reason = dict(zip(quarantined["reason"], quarantined["raw_record"], strict=True))
    assert json.loads(by_reason["unknown_currency"])["currency"] == "XXX"


def test_duplicates_across_days_and_late_files_load_once(tmp_path, warehouse, monkeypatch):
    day2 = DAY + dt.timedelta(days=1)
    _write(tmp_path, "orders", "a.csv", f"{HEADER}\n{GOOD_LINE.format(n=1)}\n")
    _write(tmp_path, "orders", "a.csv",
           f"{HEADER}\n{GOOD_LINE.format(n=1)}\n{GOOD_LINE.format(n=2)}\n", day2)
    first = landing.load_days(warehouse, tmp_path, "orders", [DAY, day2])
    assert first.totals == {"rows_read": 3, "rows_loaded": 2, "rows_quarantined": 1, "files": 2}

    # a late file for the first day, then the same day loaded again: exact counts, no doubles
    _write(tmp_path, "orders", "b_late.csv",
           f"{HEADER}\n{GOOD_LINE.format(n=3)}\n{GOOD_LINE.format(n=2)}\n")
    again = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    monkeypatch.setenv(landing.RELOAD_SNAPSHOTS_ENV, "1")  # loaded again although unchanged
    again = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert again.totals == {"rows_read": 3, "rows_loaded": 2, "rows_quarantined": 1, "files": 2}
    loaded = warehouse.query_df("select order_id from raw.orders order by 1")["order_id"]
    assert loaded.tolist() == ["O1", "O2", "O3"]
    bad = warehouse.query_df("select reason, count(*) as n from quarantine.orders group by 1")
    assert dict(zip(bad["reason"], bad["n"], strict=True)) == {"duplicate_key": 2}


def test_gzip_parquet_and_jsonl_for_one_feed_with_extra_columns_kept(tmp_path, warehouse):
    import gzip

    import duckdb as ddb

    text = f"{HEADER},gift_wrap\n{GOOD_LINE.format(n=1)},yes\n"
    gz = tmp_path / "orders" / f"dt={DAY}" / "part1.csv.gz"
    gz.parent.mkdir(parents=True)
    gz.write_bytes(gzip.compress(text.encode()))
    with ddb.connect() as con:
        con.execute(f"copy (select 'O2' as order_id, 1 as line_number, 'C2' as customer_id, "
                    f"'2026-05-01T11:00:00Z' as ordered_at, 'P2' as product_id, 2 as quantity, "
                    f"3.5 as unit_price, 'EUR' as currency, 'completed' as status) "
                    f"to '{gz.parent / 'part2.parquet'}' (format parquet)")
    row = {"order_id": "O3", "line_number": 1, "ordered_at": "2026-05-01T12:00:00Z",
           "product_id": "P3", "quantity": 1, "unit_price": 1.0, "currency": "EUR",
           "status": "completed", "coupon": "SPRING"}
    _write(tmp_path, "orders", "part3.jsonl", json.dumps(row) + "\n")
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals == {"rows_read": 3, "rows_loaded": 3, "rows_quarantined": 0, "files": 3}
    assert set(report.extra_columns) == {"gift_wrap", "coupon"}
    extras = warehouse.query_df("select order_id, _extra from raw.orders order by 1")
    assert json.loads(extras["_extra"][0]) == {"gift_wrap": "yes"}
    assert json.loads(extras["_extra"][2]) == {"coupon": "SPRING"}
    assert extras["_extra"].isna().tolist() == [False, True, False]


def test_erasure_request_leaves_no_pii_but_keeps_the_request(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv(landing.SWEEP_ENV, "0")  # the landing files too, in the same load
    header = ("customer_id,email,phone,first_name,last_name,birth_date,gender,city,region,"
              "postal_code,country,signup_at,email_consent,ads_consent,updated_at,is_deleted")
    base = "C1,ana@example.com,+351 1,Ana,Silva,1990-01-01,female,Lisbon,,1000,PT,2026-01-01T00:00:00Z,"
    _write(tmp_path, "customers", "c.csv", f"{header}\n{base}true,true,2026-05-01T00:00:00Z,false\n"
           "C2,bo@example.com,,Bo,Li,1980-01-01,male,Porto,,4000,PT,2026-01-01T00:00:00Z,"
           "true,true,2026-05-01T00:00:00Z,false\n"
           "C1,ana@example.com,,Ana,,,,,,,,,true,true,not-a-date,false\n")
    _write(tmp_path, "customers", "c.csv", f"{header}\n"
           "C1,,,,,,,,,,PT,,false,false,2026-05-02T00:00:00Z,true\n", DAY + dt.timedelta(days=1))
    report = landing.load_all_days(warehouse, tmp_path, "customers")
    assert report.erased_customers == 1
    # the request stays, under the pseudonymous key only
    stored = warehouse.query_df("select * from raw.customers where customer_id = ?",
                                [customer_key("C1")])
    assert len(stored) == 2 and stored["is_deleted"].any()
    assert warehouse.query_df("select count(*) as n from raw.customers "
                              "where customer_id = 'C1'")["n"][0] == 0
    for column in PII_COLUMNS:
        assert stored[column].isna().all(), column
    with warehouse.connect() as con:
        dump = " ".join(str(v) for row in con.execute(
            "select * from raw.customers union all by name select * from quarantine.customers"
        ).fetchall() for v in row)
    assert "ana@example.com" not in dump and "Silva" not in dump
    assert "bo@example.com" in dump
    # ... and the landing files no longer name her either
    files = " ".join(p.read_text() for p in (tmp_path / "customers").rglob("*.csv"))
    assert "ana@example.com" not in files and "Silva" not in files and "C1," not in files
    assert "bo@example.com" in files
    # loaded again from the rewritten files: the same warehouse
    again = landing.load_all_days(warehouse, tmp_path, "customers")
    assert again.reconciles and again.erased_customers == 0
    assert len(warehouse.query_df("select * from raw.customers where customer_id = ?",
                                  [customer_key("C1")])) == 2


def test_a_failing_day_keeps_the_days_before_it_committed(tmp_path, warehouse):
    day2 = DAY + dt.timedelta(days=1)
    _write(tmp_path, "orders", "a.csv", f"{HEADER}\n{GOOD_LINE.format(n=1)}\n")
    _write(tmp_path, "orders", "a.csv", "order_id\nO2\n", day2)
    with pytest.raises(landing.LandingFileError,
                       match=r"1 earlier day\(s\) of this load, 2026-05-01 to 2026-05-01, were "
                             r"loaded and committed; 2026-05-02 and later were not"):
        landing.load_days(warehouse, tmp_path, "orders", [DAY, day2])
    assert warehouse.query_df("select order_id from raw.orders")["order_id"].tolist() == ["O1"]


def test_the_duplicate_check_compares_keys_not_only_their_hashes(tmp_path, warehouse):
    """Loaded keys are found by their hash first; a hash that matches a different key (a
    collision, forced here) does not make a row a duplicate."""
    _write(tmp_path, "orders", "a.csv", f"{HEADER}\n{GOOD_LINE.format(n=1)}\n")
    landing.load_days(warehouse, tmp_path, "orders", [DAY])
    day2 = DAY + dt.timedelta(days=1)
    _write(tmp_path, "orders", "a.csv", f"{HEADER}\n{GOOD_LINE.format(n=2)}\n", day2)
    with warehouse.connect() as con:  # O1's stored hash now equals O2's
        con.execute("update raw.orders set _key_hash = hash('O2', 1)")
    report = landing.load_days(warehouse, tmp_path, "orders", [day2])
    assert report.totals["rows_loaded"] == 1 and not report.reasons
    loaded = warehouse.query_df("select order_id, _partition_date from raw.orders order by 1")
    assert loaded["order_id"].tolist() == ["O1", "O2"]
    assert [d.date() for d in loaded["_partition_date"]] == [DAY, day2]


def test_a_whole_day_sent_again_under_another_day_is_quarantined_row_for_row(tmp_path,
                                                                           warehouse):
    """More re-sent keys than fit a literal list (10,000) take the join on the keys."""
    lines = "\n".join(GOOD_LINE.format(n=n) for n in range(12_000))
    _write(tmp_path, "orders", "a.csv", f"{HEADER}\n{lines}\n")
    _write(tmp_path, "orders", "a.csv", f"{HEADER}\n{lines}\n{GOOD_LINE.format(n='new')}\n",
           DAY + dt.timedelta(days=1))
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY, DAY + dt.timedelta(days=1)])
    assert report.loaded == {DAY.isoformat(): 12_000, (DAY + dt.timedelta(days=1)).isoformat(): 1}
    assert dict(report.reasons) == {"duplicate_key": 12_000}


def test_a_warehouse_from_before_the_key_hash_gets_it_and_still_finds_duplicates(tmp_path,
                                                                               warehouse):
    _write(tmp_path, "orders", "a.csv", f"{HEADER}\n{GOOD_LINE.format(n=1)}\n")
    landing.load_days(warehouse, tmp_path, "orders", [DAY])
    with warehouse.connect() as con:
        con.execute("alter table raw.orders drop column _key_hash")
    _write(tmp_path, "orders", "a.csv", f"{HEADER}\n{GOOD_LINE.format(n=1)}\n",
           DAY + dt.timedelta(days=1))
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY + dt.timedelta(days=1)])
    assert dict(report.reasons) == {"duplicate_key": 1}
    assert warehouse.query_df("select count(*) as n from raw.orders "
                              "where _key_hash is distinct from hash(order_id, line_number)"
                              )["n"][0] == 0


CUSTOMER_HEADER = ("customer_id,email,phone,first_name,last_name,birth_date,gender,city,region,"
                   "postal_code,country,signup_at,email_consent,ads_consent,updated_at,is_deleted")


def _profile(customer: str, updated: str) -> str:
    return (f"{customer},{customer.lower()}@example.com,,,,,,,,,PT,,true,true,"
            f"{updated}T00:00:00Z,false")


def test_a_snapshot_feed_loads_only_its_new_and_changed_days_and_equals_a_reload(tmp_path):
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    for n, day in enumerate(days):
        _write(tmp_path, "customers", "c.csv",
               f"{CUSTOMER_HEADER}\n{_profile(f'C{n}', day.isoformat())}\n", day)
    incremental = Warehouse(tmp_path / "incremental.duckdb")
    first = landing.load_snapshot_days(incremental, tmp_path, "customers")
    assert first.totals["rows_loaded"] == 3 and first.totals["files"] == 3

    nothing = landing.load_snapshot_days(incremental, tmp_path, "customers")
    assert nothing.totals == {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0,
                              "files": 0}

    # a new day, a day delivered again with one more profile and one bad row, a day gone
    new_day = DAY + dt.timedelta(days=3)
    _write(tmp_path, "customers", "c.csv",
           f"{CUSTOMER_HEADER}\n{_profile('C3', new_day.isoformat())}\n", new_day)
    _write(tmp_path, "customers", "c.csv", f"{CUSTOMER_HEADER}\n{_profile('C1', '2026-05-02')}\n"
           f"{_profile('C9', '2026-05-02')}\n{_profile('C8', 'never')}\n", days[1])
    for path in (tmp_path / "customers" / f"dt={days[2]}").iterdir():
        path.unlink()
    (tmp_path / "customers" / f"dt={days[2]}").rmdir()
    second = landing.load_snapshot_days(incremental, tmp_path, "customers")
    assert second.totals == {"rows_read": 4, "rows_loaded": 3, "rows_quarantined": 1, "files": 2}

    reloaded = Warehouse(tmp_path / "reloaded.duckdb")
    landing.load_all_days(reloaded, tmp_path, "customers")
    for table in ("raw.customers", "quarantine.customers"):
        columns = "customer_id, _partition_date, _source_line" if table.startswith("raw") else \
            "raw_record, reason, _partition_date, _source_line"
        query = f"select {columns} from {table} order by all"
        assert incremental.query_df(query).equals(reloaded.query_df(query)), table
    assert sorted(incremental.query_df("select customer_id from raw.customers")["customer_id"]) \
        == ["C0", "C1", "C3", "C9"]


def test_a_warehouse_without_snapshot_fingerprints_reloads_the_feed_whole(tmp_path, warehouse):
    _write(tmp_path, "customers", "c.csv", f"{CUSTOMER_HEADER}\n{_profile('C1', '2026-05-01')}\n")
    landing.load_snapshot_days(warehouse, tmp_path, "customers")
    with warehouse.connect() as con:  # as a warehouse from before raw.snapshot_days
        con.execute("drop table raw.snapshot_days")
        con.execute("insert into raw.customers (customer_id, _partition_date) "
                    "values ('stale', '2020-01-01')")
    report = landing.load_snapshot_days(warehouse, tmp_path, "customers")
    assert report.totals["rows_loaded"] == 1
    assert warehouse.query_df("select customer_id from raw.customers")["customer_id"].tolist() \
        == ["C1"]


@pytest.mark.parametrize("variant", ["lf", "crlf", "bom", "blank_lines", "no_final_break",
                                     "gzip", "gzip_crlf_two_members"])
def test_a_clean_json_lines_file_splits_as_the_line_by_line_reader_does(tmp_path, variant,
                                                                        monkeypatch):
    """The verifying pass keeps a clean file's text and Arrow splits it into lines; a file over
    KEEP_TEXT_BYTES is read again by DuckDB. Both give every line, its number and its fields."""
    import gzip

    import duckdb

    events = [json.dumps({"messageId": f"m{i}", "anonymousId": f"a{i}", "type": "track",
                          "event": "Product Viewed", "timestamp": "2026-06-01T10:00:00Z",
                          "properties": {"product_id": f"P{i}", "note": "é ✓"}})
              for i in range(5)]
    newline = "\r\n" if "crlf" in variant else "\n"
    body = events[:2] + (["", "  "] if variant == "blank_lines" else []) + events[2:]
    text = newline.join(body) + ("" if variant == "no_final_break" else newline)
    data = (b"\xef\xbb\xbf" if variant == "bom" else b"") + text.encode()
    name = "events.jsonl"
    if variant.startswith("gzip"):
        half = len(data) // 2
        data = (gzip.compress(data[:half]) + gzip.compress(data[half:])
                if "two_members" in variant else gzip.compress(data))
        name += ".gz"
    path = tmp_path / name
    path.write_bytes(data)
    read = {}
    for keep in (landing.KEEP_TEXT_BYTES, 0):
        monkeypatch.setattr(landing, "KEEP_TEXT_BYTES", keep)
        with duckdb.connect() as con:
            records, text = landing._stage_json(con, landing.FEEDS["events"], path, name,
                                                "jsonl")
            # the bytes kept for the erasure rewrite are the file's, inflated
            assert text is None or text.data == (gzip.decompress(data) if name.endswith(".gz")
                                                  else data)
            read[keep] = (records, con.execute(
                "select _line_number, _line, _is_json, _obj::varchar, _unknown "
                "from _landing_text order by _line_number").fetchall())
    kept, reread = read.values()
    assert kept == reread
    assert kept[0] == 5 and [row[1] for row in kept[1]] == events
    assert kept[1][-1][0] == (7 if variant == "blank_lines" else 5)


def test_a_day_loaded_as_it_is_is_not_loaded_again_unless_asked(tmp_path, warehouse,
                                                                 monkeypatch):
    """What a killed run committed stays: the next load of the same days skips the days whose
    files and loading code are unchanged (their rows, load times and change log as they were),
    loads a changed day again, and reloads everything when asked (`--force`, backfills)."""
    other_day = DAY + dt.timedelta(days=1)
    for day, order in ((DAY, "O1"), (other_day, "O2")):
        _write(tmp_path, "orders", "orders.csv",
               HEADER + f"\n{order},1,C1,{day}T10:00:00Z,P1,1,3,EUR,completed,web,ES,0\n", day)
    first = landing.load_days(warehouse, tmp_path, "orders", [DAY, other_day])
    assert first.resumed == [] and first.totals["rows_loaded"] == 2

    def state():
        return warehouse.query_df(
            "select (select list(_loaded_at order by _partition_date)::varchar from raw.orders) "
            "as at, (select count(*) from raw.orders_changes) as changes").iloc[0].tolist()

    before = state()
    again = landing.load_days(warehouse, tmp_path, "orders", [DAY, other_day])
    assert again.resumed == [DAY, other_day] and again.totals["rows_read"] == 0
    assert state() == before

    _write(tmp_path, "orders", "orders.csv",  # a re-delivery of the second day, one line more
           HEADER + f"\nO2,1,C1,{other_day}T10:00:00Z,P1,1,3,EUR,completed,web,ES,0"
           f"\nO3,1,C2,{other_day}T11:00:00Z,P1,1,3,EUR,completed,web,ES,0\n", other_day)
    changed = landing.load_days(warehouse, tmp_path, "orders", [DAY, other_day])
    assert changed.resumed == [DAY] and changed.totals["rows_loaded"] == 2

    monkeypatch.setenv(landing.RELOAD_SNAPSHOTS_ENV, "1")
    forced = landing.load_days(warehouse, tmp_path, "orders", [DAY, other_day])
    assert forced.resumed == [] and forced.totals["rows_loaded"] == 3
    monkeypatch.delenv(landing.RELOAD_SNAPSHOTS_ENV)
    monkeypatch.setattr(landing, "loader_fingerprint", lambda: "new code")
    assert landing.load_days(warehouse, tmp_path, "orders", [DAY]).resumed == []


def test_a_large_file_lands_in_line_order_with_its_bad_rows_and_duplicates(tmp_path, warehouse):
    """raw and quarantine keep a file's line order without sorting (the insert has no ORDER
    BY): over many Arrow batches, with bad rows and duplicates among the good ones."""
    good = {"type": "track", "event": "Product Viewed", "timestamp": "2026-05-01T09:00:00Z",
            "anonymousId": "a1", "properties": {"product_id": "P1"}, "context": {}}
    lines = []
    for number in range(1, 3 * landing.ARROW_BATCH_ROWS + 1):
        if number % 997 == 0:
            lines.append("{not json")
        elif number % 991 == 0:  # the messageId of the line before: a duplicate
            lines.append(json.dumps({**good, "messageId": f"m{number - 1}"}))
        else:
            lines.append(json.dumps({**good, "messageId": f"m{number}"}))
    _write(tmp_path, "events", "events.jsonl", "\n".join(lines) + "\n")
    report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert report.reconciles and set(report.reasons) == {"malformed_json", "duplicate_key"}
    for table in ("raw.events", "quarantine.events"):
        stored = warehouse.query_df(f"select _source_line from {table} order by rowid")
        assert stored["_source_line"].is_monotonic_increasing and len(stored) > 100, table
