"""Bad landing files, one case each, loaded for real into a DuckDB file: what loads, what is
quarantined with which reason, and which files fail their day with which error.

A file is read whole or not at all (a truncated or corrupt gzip fails the day and leaves it as it
was); a fault in one row stays in that row (quarantined with its line number and reason); an
empty or header-only file is a day without rows; and every error names the file, the position,
the cause and the fix (docs/data-contract.md).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core.settings import DBT_PROJECT_DIR
from core.warehouse import Warehouse
from ingest import landing
from tests.test_landing import DAY, GOOD_LINE, HEADER, _write

EVENT = {"type": "track", "event": "Product Viewed", "messageId": "m1",
         "timestamp": "2026-05-01T09:00:00.000Z", "userId": None, "anonymousId": "a1",
         "properties": {"product_id": "P1"}, "context": {"device": {"type": "mobile"}}}
CUSTOMER_HEADER = ("customer_id,email,phone,first_name,last_name,birth_date,gender,city,region,"
                   "postal_code,country,signup_at,email_consent,ads_consent,updated_at,is_deleted")
CUSTOMER = "C{n},c{n}@example.com,,Ana,,1990-01-01,,Lisboa,,,PT,,true,true,{updated},false"
PRODUCT_HEADER = "product_id,sku,name,category,subcategory,brand,price,currency,is_active,updated_at"
PRODUCT = "P{n},SKU{n},Coffee {n},Grocery,Coffee,Acme,9.10,EUR,true,2026-05-01T00:00:00Z"


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


def _orders(n: int, start: int = 0) -> str:
    return HEADER + "\n" + "".join(GOOD_LINE.format(n=i) + "\n" for i in range(start, start + n))


def _events(n: int, start: int = 0) -> str:
    return "".join(json.dumps({**EVENT, "messageId": f"m{i}",
                               "properties": {"product_id": f"P{i % 40}", "pad": "x" * (i % 60)}})
                   + "\n" for i in range(start, start + n))


def _customers(n: int) -> str:
    return CUSTOMER_HEADER + "\n" + "".join(
        CUSTOMER.format(n=i, updated="2026-05-01T00:00:00Z") + "\n" for i in range(n))


def _products(n: int) -> str:
    return PRODUCT_HEADER + "\n" + "".join(PRODUCT.format(n=i) + "\n" for i in range(n))


def _load(warehouse: Warehouse, landing_dir: Path, feed: str) -> landing.LoadReport:
    if landing.FEEDS[feed].partitioned:
        return landing.load_days(warehouse, landing_dir, feed, [DAY])
    return landing.load_all_days(warehouse, landing_dir, feed)


def _rows(warehouse: Warehouse, sql: str) -> list[tuple]:
    with warehouse.connect(read_only=True) as con:
        return con.execute(sql).fetchall()


def _quarantine(warehouse: Warehouse, feed: str) -> list[tuple]:
    return _rows(warehouse, f"select _source_line, reason, detail, raw_record "
                            f"from quarantine.{feed} order by _source_line")


def _state(warehouse: Warehouse, feed: str) -> list:
    """Everything ingestion wrote for the feed (to show that a failed load changed nothing)."""
    tables = [f"raw.{feed}", f"quarantine.{feed}"]
    if feed in landing.CHANGE_LOGS:
        tables.append(landing.CHANGE_LOGS[feed][0])
    return [sorted(map(str, _rows(warehouse, f"select * from {table}"))) for table in tables]


# ---------------------------------------------------------------------------------------------
# Files that cannot be read completely fail their day; nothing of it changes

TRUNCATED = {  # feed: (file name, its full text, its records)
    "orders": ("orders.csv.gz", _orders(840), 840),
    "events": ("events.jsonl.gz", _events(671), 671),
    "customers": ("customers.csv.gz", _customers(300), 300),
    "products": ("products.csv.gz", _products(300), 300),
}


@pytest.mark.parametrize("feed", sorted(TRUNCATED))
def test_truncated_gzip_fails_the_day_with_file_and_position_and_loads_nothing(
        tmp_path, warehouse, feed):
    name, text, records = TRUNCATED[feed]
    # the day as it was: the complete file and a second, good file beside it
    _write(tmp_path, feed, name, gzip.compress(text.encode()))
    other = {"orders": _orders(3, start=5000), "events": _events(3, start=5000),
             "customers": CUSTOMER_HEADER + "\n" + CUSTOMER.format(
                 n=5000, updated="2026-05-01T00:00:00Z") + "\n",
             "products": PRODUCT_HEADER + "\n" + PRODUCT.format(n=5000) + "\n"}[feed]
    _write(tmp_path, feed, "a_other." + ("jsonl" if feed == "events" else "csv"), other)
    before = _load(warehouse, tmp_path, feed)
    assert before.totals["rows_read"] == records + 1 + (2 if feed in ("orders", "events") else 0)
    state = _state(warehouse, feed)

    complete = gzip.compress(text.encode())
    cut = complete[: int(len(complete) * 0.6)]  # an upload that stopped at 60 %
    _write(tmp_path, feed, name, cut)
    with pytest.raises(landing.LandingFileError) as failed:
        _load(warehouse, tmp_path, feed)
    message = str(failed.value)
    assert message.startswith(f"{feed}/dt=2026-05-01/{name}: cannot be read to its end: "
                              "it is truncated")
    assert f"stops at byte {len(cut):,} (the end of the file)" in message
    assert "uncompressed bytes (in line " in message
    assert "Re-deliver the complete file" in message
    assert _state(warehouse, feed) == state  # the day (or the snapshot feed) is as it was


def test_truncated_gzip_names_the_line_it_stopped_in(tmp_path, warehouse):
    text = _events(671)
    complete = gzip.compress(text.encode())
    _write(tmp_path, "events", "events.jsonl.gz", complete[: int(len(complete) * 0.6)])
    with pytest.raises(landing.LandingFileError) as failed:
        landing.load_days(warehouse, tmp_path, "events", [DAY])
    message = str(failed.value)
    stopped = int(message.split("after ")[1].split(" uncompressed")[0].replace(",", ""))
    line = text.encode()[:stopped].count(b"\n") + 1
    assert 0 < stopped < len(text) and f"(in line {line:,})" in message
    assert _rows(warehouse, "select count(*) from raw.events") == [(0,)]


def test_corrupt_gzip_fails_its_crc_check(tmp_path, warehouse):
    data = bytearray(gzip.compress(_orders(200).encode()))
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the compressed stream
    _write(tmp_path, "orders", "orders.csv.gz", bytes(data))
    with pytest.raises(landing.LandingFileError,
                       match=r"orders/dt=2026-05-01/orders.csv.gz: cannot be read to its end: its "
                             r"gzip data is corrupt \(.*\), detected in compressed bytes 0 to "):
        landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert _rows(warehouse, "select count(*) from raw.orders") == [(0,)]


def test_a_file_named_gz_that_is_not_gzip(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv.gz", _orders(2))
    with pytest.raises(landing.LandingFileError,
                       match="its name ends in .gz but it is not gzip data"):
        landing.load_days(warehouse, tmp_path, "orders", [DAY])


def test_a_10_mb_line_fails_with_the_maximum_line_size_cause(tmp_path, warehouse):
    big = {**EVENT, "messageId": "m2", "properties": {"blob": "x" * 10_000_000}}
    _write(tmp_path, "events", "events.jsonl", _events(1) + json.dumps(big) + "\n" + _events(1, 3))
    with pytest.raises(landing.LandingFileError) as failed:
        landing.load_days(warehouse, tmp_path, "events", [DAY])
    message = str(failed.value)
    assert message.startswith("events/dt=2026-05-01/events.jsonl: line 2 is over the maximum line "
                              "size of 2,097,152 bytes (DuckDB's max_line_size")
    assert "re-deliver the file with one record per line" in message
    assert len(message) < 1000  # the line itself is never pasted into the message
    assert _rows(warehouse, "select count(*) from raw.events") == [(0,)]


def test_a_latin1_header_fails_naming_the_encoding(tmp_path, warehouse):
    _write(tmp_path, "customers", "c.csv",
           "customer_id,émail,email_consent,ads_consent,updated_at\n".encode("latin-1"))
    with pytest.raises(landing.LandingFileError,
                       match=r"customers/dt=2026-05-01/c.csv: not UTF-8 at byte 12 \(line 1, the "
                             r"header\): re-export the file as UTF-8"):
        landing.load_all_days(warehouse, tmp_path, "customers")


def test_utf16_fails_naming_the_encoding(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv", _orders(1).encode("utf-16"))
    with pytest.raises(landing.LandingFileError, match=r"orders.csv: is UTF-16 .* re-export it "
                                                       "as UTF-8"):
        landing.load_days(warehouse, tmp_path, "orders", [DAY])


def test_a_file_without_header_says_so(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv", _orders(2).split("\n", 1)[1])
    with pytest.raises(landing.LandingFileError,
                       match=r"orders.csv: its first line \(line 1\) names none of the orders "
                             r"feed's columns, so it has no header row"):
        landing.load_days(warehouse, tmp_path, "orders", [DAY])


def test_a_missing_column_is_named_with_what_the_header_has(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv", "order_id,quantity\nO1,1\n")
    with pytest.raises(landing.LandingFileError,
                       match=r"missing required column\(s\) line_number, ordered_at, product_id, "
                             r"unit_price, currency, status\..* the header \(line 1\) has: "
                             r"order_id, quantity\."):
        landing.load_days(warehouse, tmp_path, "orders", [DAY])


# ---------------------------------------------------------------------------------------------
# A fault in one row stays in that row


def test_ragged_row_is_quarantined_and_the_rest_loads(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv",
           _orders(2) + "O7,1,C1\n" + GOOD_LINE.format(n=8) + ",extra\n" + GOOD_LINE.format(n=9))
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals == {"rows_read": 5, "rows_loaded": 3, "rows_quarantined": 2, "files": 1}
    assert report.reconciles
    bad = _quarantine(warehouse, "orders")
    assert [row[:3] for row in bad] == [
        (4, "ragged_row", "expected 12 fields (as in the header), found 3"),
        (5, "ragged_row", ("expected 12 fields (as in the header), found 13: a value with an "
                           "unquoted delimiter (such as 1,234.50) splits in two; quote such "
                           "values or drop the thousands separator"))]
    assert bad[0][3] == "O7,1,C1"  # the line as delivered
    assert _rows(warehouse, "select _source_line from raw.orders order by 1") == [(2,), (3,), (6,)]


def test_unquoted_thousands_separator_is_a_ragged_row(tmp_path, warehouse):
    line = "O5,1,C1,2026-05-01T10:00:00Z,P1,1,1,234.50,EUR,completed,web,ES,0"
    quoted = 'O6,1,C1,2026-05-01T10:00:00Z,P1,1,"1234.50",EUR,completed,web,ES,0'
    _write(tmp_path, "orders", "orders.csv", _orders(2) + line + "\n" + quoted + "\n")
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals["rows_loaded"] == 3 and dict(report.reasons) == {"ragged_row": 1}
    (bad,) = _quarantine(warehouse, "orders")
    assert bad[:2] == (4, "ragged_row") and "found 13" in bad[2] and "1,234.50" in bad[2]
    assert bad[3] == line
    assert _rows(warehouse, "select unit_price from raw.orders where order_id = 'O6'") == [(1234.5,)]


def test_misplaced_quote_is_malformed_csv(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv", _orders(1)
           + 'O5,1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,"completed"x,web,ES,0\n'
           + GOOD_LINE.format(n=6) + "\n")
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals["rows_loaded"] == 2 and report.reconciles
    (bad,) = _quarantine(warehouse, "orders")
    assert bad[:2] == (3, "malformed_csv") and bad[2].startswith("not valid CSV (")


def test_latin1_row_is_bad_encoding_with_its_byte_and_line(tmp_path, warehouse):
    before = (_orders(2)).encode()
    line = GOOD_LINE.format(n=7).replace("C1", "José").encode("latin-1")
    _write(tmp_path, "orders", "orders.csv", before + line + b"\n" + _orders(1, 8).split("\n", 1)[1]
           .encode())
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals == {"rows_read": 4, "rows_loaded": 3, "rows_quarantined": 1, "files": 1}
    (bad,) = _quarantine(warehouse, "orders")
    byte = len(before) + line.index(b"\xe9")
    assert bad[:3] == (4, "bad_encoding",
                       f"not UTF-8 at byte {byte:,} (line 4): re-export the file as UTF-8")
    assert "Jos\\xe9" in bad[3]  # the raw bytes, shown


def test_latin1_json_line_is_bad_encoding(tmp_path, warehouse):
    line = json.dumps({**EVENT, "messageId": "m9", "properties": {"q": "café"}},
                      ensure_ascii=False).encode("latin-1")
    _write(tmp_path, "events", "events.jsonl.gz",
           gzip.compress(_events(2).encode() + line + b"\n" + _events(1, 3).encode()))
    report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert report.totals == {"rows_read": 4, "rows_loaded": 3, "rows_quarantined": 1, "files": 1}
    (bad,) = _quarantine(warehouse, "events")
    assert bad[:2] == (3, "bad_encoding") and bad[2].startswith("not UTF-8 at byte ")
    assert "(line 3)" in bad[2]


@pytest.mark.parametrize("name, content", [
    ("orders.csv", b""), ("orders.csv.gz", gzip.compress(b"")), ("orders.jsonl", b""),
    ("orders.csv", (HEADER + "\n").encode()), ("orders.csv", HEADER.encode()),
    ("orders.csv.gz", gzip.compress((HEADER + "\r\n").encode())),
], ids=["empty_csv", "empty_csv_gz", "empty_jsonl", "header_only", "header_only_no_newline",
        "header_only_gz_crlf"])
def test_empty_or_header_only_file_is_a_day_without_rows(tmp_path, warehouse, name, content):
    _write(tmp_path, "orders", name, content)
    _write(tmp_path, "orders", "z_more.csv", _orders(2))
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals == {"rows_read": 2, "rows_loaded": 2, "rows_quarantined": 0, "files": 2}
    assert report.read == {"2026-05-01": 2} and report.reconciles


def test_empty_events_file_alone_is_a_valid_empty_day(tmp_path, warehouse):
    _write(tmp_path, "events", "events.jsonl", b"")
    report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert report.totals == {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0, "files": 1}
    assert report.read == {"2026-05-01": 0} and report.reconciles


@pytest.mark.parametrize("bom, newline", [(True, "\n"), (False, "\r\n"), (True, "\r\n")],
                         ids=["bom", "crlf", "bom_crlf"])
def test_bom_and_crlf_load_normally(tmp_path, warehouse, bom, newline):
    text = _orders(3).replace("\n", newline)
    _write(tmp_path, "orders", "orders.csv", (b"\xef\xbb\xbf" if bom else b"") + text.encode())
    events = _events(2).replace("\n", newline)
    _write(tmp_path, "events", "events.jsonl", (b"\xef\xbb\xbf" if bom else b"") + events.encode())
    orders = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert orders.totals == {"rows_read": 3, "rows_loaded": 3, "rows_quarantined": 0, "files": 1}
    assert _rows(warehouse, "select order_id, discount_amount, _source_line from raw.orders "
                            "order by 3") == [("O0", 0.0, 2), ("O1", 0.0, 3), ("O2", 0.0, 4)]
    report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert report.totals == {"rows_read": 2, "rows_loaded": 2, "rows_quarantined": 0, "files": 1}


def test_mixed_line_ends_and_blank_lines_load_with_their_line_numbers(tmp_path, warehouse):
    _write(tmp_path, "events", "events.jsonl",
           _events(1) + "\r\n".join(_events(2, 1).splitlines()) + "\n\n  \n" + _events(1, 3))
    report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert report.totals == {"rows_read": 4, "rows_loaded": 4, "rows_quarantined": 0, "files": 1}
    assert _rows(warehouse, "select message_id, _source_line from raw.events order by 2") == [
        ("m0", 1), ("m1", 2), ("m2", 3), ("m3", 6)]


def test_quoted_newline_is_one_row(tmp_path, warehouse):
    quoted = 'O5,1,C1,2026-05-01T10:00:00Z,"P\n5",1,9.50,EUR,completed,web,ES,0\n'
    _write(tmp_path, "orders", "orders.csv", _orders(1) + quoted + GOOD_LINE.format(n=6) + "\n")
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    # the independent count is of records, not lines: 3 records on 4 lines
    assert report.totals == {"rows_read": 3, "rows_loaded": 3, "rows_quarantined": 0, "files": 1}
    assert report.reconciles
    assert _rows(warehouse, "select order_id, product_id, _source_line from raw.orders "
                            "order by 3") == [("O0", "P1", 2), ("O5", "P\n5", 3), ("O6", "P1", 5)]


# ---------------------------------------------------------------------------------------------
# Contract violations in a value: quarantined with their own reason


@pytest.mark.parametrize("properties, detail", [
    ("P1", "properties is a string, not a JSON object"),
    (["P1", "P2"], "properties is an array, not a JSON object"),
], ids=["string_properties", "array_properties"])
def test_properties_that_are_not_an_object_are_bad_json_type(tmp_path, warehouse, properties,
                                                              detail):
    odd = {**EVENT, "messageId": "m9", "properties": properties}
    nothing = {**EVENT, "messageId": "m10", "properties": None}  # null is fine
    _write(tmp_path, "events", "events.jsonl",
           _events(1) + json.dumps(odd) + "\n" + json.dumps(nothing) + "\n")
    report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert report.totals["rows_loaded"] == 2 and dict(report.reasons) == {"bad_json_type": 1}
    (bad,) = _quarantine(warehouse, "events")
    assert bad[:3] == (2, "bad_json_type", detail)
    assert json.loads(bad[3])["properties"] == properties


def test_timestamps_without_offset_are_quarantined(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv", _orders(1) + "\n".join([  # noqa: FLY002
        "O5,1,C1,2026-05-01T10:00:00,P1,1,9.50,EUR,completed,web,ES,0",
        "O6,1,C1,2026-05-01 10:00:00,P1,1,9.50,EUR,completed,web,ES,0",
        "O7,1,C1,2026-05-01,P1,1,9.50,EUR,completed,web,ES,0",
        "O8,1,C1,2026-05-01T10:00:00+0200,P1,1,9.50,EUR,completed,web,ES,0",
        "O9,1,C1,2026-05-01T10:00:00-05,P1,1,9.50,EUR,completed,web,ES,0",
    ]) + "\n")
    _write(tmp_path, "events", "events.jsonl", _events(1) + json.dumps(
        {**EVENT, "messageId": "m9", "timestamp": "2026-05-01T09:00:00.000"}) + "\n")
    _write(tmp_path, "customers", "c.csv", CUSTOMER_HEADER + "\n"
           + CUSTOMER.format(n=1, updated="2026-05-01T00:00:00Z") + "\n"
           + CUSTOMER.format(n=2, updated="2026-05-01T00:00:00") + "\n")
    orders = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    events = landing.load_days(warehouse, tmp_path, "events", [DAY])
    customers = landing.load_all_days(warehouse, tmp_path, "customers")
    assert dict(orders.reasons) == {"timestamp_without_offset": 3}
    assert _rows(warehouse, "select order_id, ordered_at from raw.orders order by 1") == [
        ("O0", dt.datetime(2026, 5, 1, 10)), ("O8", dt.datetime(2026, 5, 1, 8)),
        ("O9", dt.datetime(2026, 5, 1, 15))]
    assert {row[2] for row in _quarantine(warehouse, "orders")} == {
        "ordered_at has no UTC offset (write e.g. +02:00 or Z)"}
    assert dict(events.reasons) == dict(customers.reasons) == {"timestamp_without_offset": 1}
    assert _quarantine(warehouse, "events")[0][2].startswith("timestamp has no UTC offset")
    assert _quarantine(warehouse, "customers")[0][2].startswith("updated_at has no UTC offset")


def test_over_return_loads_at_ingestion(tmp_path, warehouse):
    """Returns are their own lines (negative quantity), often on a later day: no single row is
    wrong, so ingestion loads them and the mart check `returns_exceed_units` warns (below)."""
    _write(tmp_path, "orders", "orders.csv", HEADER + "\n"
           + "O1,1,C1,2026-05-01T10:00:00Z,P1,1,22682.64,EUR,completed,web,ES,0\n"
           + "O1,2,C1,2026-05-01T10:00:00Z,P1,-2,22682.64,EUR,completed,web,ES,0\n")
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals == {"rows_read": 2, "rows_loaded": 2, "rows_quarantined": 0, "files": 1}


# ---------------------------------------------------------------------------------------------
# How a file is read: DuckDB for clean files, Python for files with row-level faults


def test_clean_files_are_read_by_duckdb_and_counted_independently(tmp_path, warehouse,
                                                                   monkeypatch):
    def no_python(*args, **kwargs):
        raise AssertionError("a clean file is read by DuckDB")

    monkeypatch.setattr(landing, "_csv_in_python", no_python)
    monkeypatch.setattr(landing, "_lines", no_python)
    _write(tmp_path, "orders", "orders.csv.gz", gzip.compress(_orders(50).encode()))
    _write(tmp_path, "events", "events.jsonl.gz", gzip.compress(_events(50).encode()))
    assert landing.load_days(warehouse, tmp_path, "orders", [DAY]).reconciles
    assert landing.load_days(warehouse, tmp_path, "events", [DAY]).reconciles

    # `rows read` is the verifying pass's count: a reader that lost a row would not reconcile
    monkeypatch.undo()
    monkeypatch.setattr(landing._Scan, "records", property(lambda scan: 51))
    monkeypatch.setenv(landing.RELOAD_SNAPSHOTS_ENV, "1")  # the loaded day, read again
    report = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert report.totals["rows_read"] == 51 and report.totals["rows_loaded"] == 50
    assert not report.reconciles


@pytest.mark.parametrize("feed", ["orders", "events", "customers"])
def test_duckdb_and_python_readers_load_the_same_rows(tmp_path, feed, monkeypatch):
    text = {"orders": _orders(30) + 'O99,1,C1,2026-05-01T10:00:00Z,"P,1",1,9.50,EUR,completed,'
                                    'web,ES,"0"\n',
            "events": _events(30), "customers": _customers(30)}[feed]
    _write(tmp_path, feed, "f." + ("jsonl" if feed == "events" else "csv"), text)
    loads = []
    for simple in (True, False):
        if not simple:
            monkeypatch.setattr(landing._Scan, "simple", property(lambda scan: False))
        warehouse = Warehouse(tmp_path / f"w_{simple}.duckdb")
        report = _load(warehouse, tmp_path, feed)
        assert report.reconciles and report.totals["rows_quarantined"] == 0
        loads.append(_rows(warehouse, f"select * exclude (_loaded_at) from raw.{feed} "
                                      "order by _source_line"))
    assert loads[0] == loads[1] and len(loads[0]) == 31 - (feed != "orders")


def test_header_names_match_the_contract_without_case(tmp_path, warehouse):
    _write(tmp_path, "orders", "orders.csv",
           HEADER.replace("order_id", "Order_ID").replace("channel", "CHANNEL") + "\n"
           + GOOD_LINE.format(n=1) + "\n")
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals["rows_loaded"] == 1 and not report.extra_columns
    assert _rows(warehouse, "select order_id, channel from raw.orders") == [("O1", "web")]


def test_odd_header_names_are_quoted_not_pasted_into_sql(tmp_path, warehouse):
    odd = 'x"); drop table raw.orders; --'
    _write(tmp_path, "orders", "orders.csv",
           HEADER + ',"' + odd.replace('"', '""') + '"\n' + GOOD_LINE.format(n=1) + ",yes\n")
    report = landing.load_days(warehouse, tmp_path, "orders", [DAY])
    assert report.totals["rows_loaded"] == 1 and set(report.extra_columns) == {odd}
    assert json.loads(_rows(warehouse, "select _extra from raw.orders")[0][0]) == {odd: "yes"}


# ---------------------------------------------------------------------------------------------
# Checks on the marts: warnings, not quarantine reasons


def _dbt_build(home: Path) -> dict[str, dict]:
    """Build the order marts and run their warning checks; the results by node name."""
    selected = ("stg_shop__order_lines stg_shop__products fct_orders fct_order_items dim_products "
                + " ".join(landing.MART_WARNINGS))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--select", selected,
         "--indirect-selection", "cautious", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(home / "dbt_target"),
         "--log-path", str(home / "dbt_logs")],
        env={**os.environ, "SEGMENTA_HOME": str(home)}, capture_output=True, text=True,
        check=False)
    assert done.returncode == 0, done.stdout[-3000:]  # warnings do not fail the build
    results = json.loads((home / "dbt_target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r for r in results}


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """Two days of orders with an over-return and a product the catalogue lacks, built."""
    home = tmp_path_factory.mktemp("marts")
    day2 = DAY + dt.timedelta(days=1)
    _write(home / "landing", "orders", "orders.csv", HEADER + "\n"
           + "O1,1,C1,2026-05-01T10:00:00Z,P1,2,10.00,EUR,completed,web,ES,0\n"  # 2 sold,
           + "O2,1,C1,2026-05-01T11:00:00Z,P1,1,22682.64,EUR,completed,web,ES,0\n"  # 1 sold,
           + "O3,1,C2,2026-05-01T12:00:00Z,P404,1,5.00,EUR,completed,web,ES,0\n")  # no catalogue
    _write(home / "landing", "orders", "orders.csv", HEADER + "\n"
           + "O1,2,C1,2026-05-02T10:00:00Z,P1,-1,10.00,EUR,completed,web,ES,0\n"  # 1 back: fine
           + "O2,2,C1,2026-05-02T11:00:00Z,P1,-2,22682.64,EUR,completed,web,ES,0\n",  # 2 back
           day2)
    _write(home / "landing", "products", "products.csv", _products(2))
    warehouse = Warehouse(home / "warehouse.duckdb")
    landing.load_days(warehouse, home / "landing", "orders", [DAY, day2])
    landing.load_all_days(warehouse, home / "landing", "products")
    return home, _dbt_build(home)


def _failing_rows(home: Path, check: str) -> list[tuple]:
    compiled = home / "dbt_target" / "compiled" / "segmenta" / "tests" / f"{check}.sql"
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(compiled.read_text()).fetchall()


def test_over_return_warns_on_the_mart(marts):
    home, results = marts
    assert results["returns_exceed_units"]["status"] == "warn"
    assert results["returns_exceed_units"]["failures"] == 1
    assert _failing_rows(home, "returns_exceed_units") == [("O2", "P1", 1, 2)]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        net = con.execute("select net_revenue from marts.fct_orders where order_id = 'O2'")
        assert float(net.fetchone()[0]) == -22682.64  # what the warning is about


def test_a_daily_run_checks_the_orders_it_wrote_and_warns_about_a_late_over_return(
        marts, tmp_path):
    """After the full build (the `marts` fixture, on a copy of its home), an incremental run
    reads the rows it wrote: a return delivered days later that makes its order over-returned
    warns, the order that warned in the full build is not warned about again, and the order
    lines' relationship test reads the newest change."""
    built, full = marts
    home = tmp_path / "home"
    shutil.copytree(built, home)

    def compiled(prefix: str, *words: str) -> str:  # a generic test's compiled SQL (dbt
        # names a long test's file by a hash)
        (sql,) = [text for path in (home / "dbt_target" / "compiled").rglob(f"{prefix}*.sql")
                  if all(word in (text := path.read_text()) for word in words)]
        return sql

    def channel_test() -> str:
        return compiled("accepted_values", "channel", "stg_shop__order_lines")

    assert full["returns_exceed_units"]["failures"] == 1  # O2, in the full build
    assert "where true)" in channel_test()  # before fct_order_items' first run: every line

    day3 = DAY + dt.timedelta(days=2)
    _write(home / "landing", "orders", "orders.csv", HEADER + "\n"
           + "O1,3,C1,2026-05-03T09:00:00Z,P1,-2,10.00,EUR,completed,web,ES,0\n"  # 3 back of 2
           + "O5,1,C3,2026-05-03T10:00:00Z,P1,1,10.00,EUR,completed,web,ES,0\n", day3)
    landing.load_days(Warehouse(home / "warehouse.duckdb"), home / "landing", "orders", [day3])
    daily = _dbt_build(home)
    assert daily["returns_exceed_units"]["status"] == "warn"
    assert _failing_rows(home, "returns_exceed_units") == [("O1", "P1", 2, 3)]
    (relationships,) = [r for r in daily.values()
                        if ".relationships_fct_order_items_order_id" in r["unique_id"]]
    assert relationships["status"] == "pass"
    assert "change_id = (select max(change_id) from" in compiled(
        "relationships", "fct_order_items", "fct_orders")
    # the staging view's row-by-row checks read the day loaded since fct_order_items ran
    assert "landed_on in (select day from" in channel_test()
    tests = {r["unique_id"].split(".")[2]: r["status"] for r in daily.values()
             if r["unique_id"].startswith("test.") and "stg_shop__order_lines" in r["unique_id"]}
    assert len(tests) == 5 and set(tests.values()) == {"pass"}, tests
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        newest = con.execute("select order_id from marts.fct_order_items where change_id = "
                             "(select max(change_id) from marts.fct_order_items) "
                             "group by 1 order by 1").fetchall()
    assert newest == [("O1",), ("O5",)]  # what the daily checks read


def test_unknown_product_warns_on_the_mart(marts):
    home, results = marts
    assert results["unknown_product"]["status"] == "warn"
    assert results["unknown_product"]["failures"] == 1
    (row,) = _failing_rows(home, "unknown_product")
    assert row[:3] == ("P404", 1, "O3")
    # the lines load and count: the catalogue may arrive later
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from quarantine.orders").fetchone() == (0,)


def test_every_mart_warning_is_a_dbt_test_with_severity_warn():
    for check in landing.MART_WARNINGS:
        sql = (DBT_PROJECT_DIR / "tests" / f"{check}.sql").read_text()
        assert "severity='warn'" in sql and "fct_order_items" in sql, check
        assert check not in landing.REASONS  # a warning on the marts, never a quarantine reason
