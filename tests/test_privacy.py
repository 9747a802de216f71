"""Erasure requests in the warehouse: exact, complete in raw and quarantine, also for files that
arrive after the request, reported without the id."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.privacy import customer_key
from core.warehouse import Warehouse
from ingest import landing
from tests.test_landing import DAY, HEADER, _write


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture(autouse=True)
def sweep_at_once(monkeypatch):
    """The landing files are rewritten in the load that applies a request (the sweep's own
    test sets the default delay)."""
    monkeypatch.setenv(landing.SWEEP_ENV, "0")

PROFILE = ("customer_id,email,phone,first_name,last_name,birth_date,gender,city,region,"
           "postal_code,country,signup_at,email_consent,ads_consent,updated_at,is_deleted,"
           "loyalty_note")


def _profiles(tmp_path, erase: bool) -> None:
    _write(tmp_path, "customers", "c.csv", f"{PROFILE}\n"
           "C1,ana@example.com,+351911111111,Ana,Silva,1990-01-01,female,Lisbon,,1000,PT,"
           "2026-01-01T00:00:00Z,true,true,2026-05-01T00:00:00Z,false,ana likes tea\n"
           "C10,bo@example.com,,Bo,Li,1980-01-01,male,Porto,,4000,PT,2026-01-01T00:00:00Z,"
           "true,true,2026-05-01T00:00:00Z,false,bo likes coffee\n"
           "C1,ana@example.com,,Ana,,,,,,,,,true,true,not-a-date,false,\n"        # quarantined
           "C10,bo@example.com,,Bo,,,,,,,,,true,true,not-a-date,false,\n")        # quarantined
    if erase:
        _write(tmp_path, "customers", "c.csv", f"{PROFILE}\n"
               "C1,,,,,,,,,,PT,,false,false,2026-05-02T00:00:00Z,true,\n", DAY + dt.timedelta(1))


def _events(tmp_path, day: dt.date) -> None:
    identify = {"type": "identify", "messageId": f"m-{day}", "userId": "C1", "anonymousId": "a1",
                "timestamp": f"{day}T10:00:00Z", "traits": {"email": "ana@example.com"}}
    other = dict(identify, messageId=f"n-{day}", userId="C10", anonymousId="a10",
                 traits={"email": "bo@example.com"})
    broken = '{"type": "identify", "userId": "C1", "traits": {"email": "ana@example.com"'
    _write(tmp_path, "events", "events.jsonl",
           "\n".join([json.dumps(identify), json.dumps(other), broken]) + "\n", day)


def _dump(warehouse, table: str) -> str:
    with warehouse.connect() as con:
        return " ".join(str(v) for row in con.execute(f"select * from {table}").fetchall()
                        for v in row)


def test_an_erasure_is_exact_and_reaches_extra_fields_traits_quarantine_and_models(
        tmp_path, warehouse):
    _profiles(tmp_path, erase=False)
    _events(tmp_path, DAY)
    _write(tmp_path, "orders", "orders.csv", f"{HEADER},gift_note\n"
           "O1,1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,PT,0,for ana@example.com\n"
           "O2,1,C10,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,PT,0,for bo\n")
    landing.load_all_days(warehouse, tmp_path, "customers")
    for feed in ("orders", "events"):
        landing.load_days(warehouse, tmp_path, feed, [DAY])
    with warehouse.transaction() as con:  # what the model steps wrote for both
        con.execute("create schema ml")
        con.execute("create table ml.customer_clv as select * from (values ('C1', 1.0), "
                    "('C10', 2.0)) t(customer_id, expected_value_90d)")

    _profiles(tmp_path, erase=True)
    report = landing.load_all_days(warehouse, tmp_path, "customers")
    assert report.erased_customers == 1
    everything = " ".join(_dump(warehouse, t) for t in (
        "raw.customers", "quarantine.customers", "raw.orders", "raw.events", "quarantine.events",
        "ml.customer_clv"))
    for trace in ("ana@example.com", "+351911111111", "Silva", "ana likes tea", "Lisbon"):
        assert trace not in everything, trace
    for kept in ("bo@example.com", "bo likes coffee", "for bo", "Porto"):  # C10 is not C1
        assert kept in everything, kept
    assert warehouse.query_df("select customer_id from ml.customer_clv")["customer_id"].tolist() \
        == ["C10"]
    # the order facts stay (accounting) under a pseudonymous key, without the free-form fields;
    # the events too, and both are in the change logs for the incremental models
    orders = warehouse.query_df("select customer_id, unit_price, _extra from raw.orders "
                                "order by order_id")
    assert orders["customer_id"].tolist() == [customer_key("C1"), "C10"]
    assert orders["_extra"].isna().tolist() == [True, False]
    users = warehouse.query_df("select distinct user_id from raw.events order by 1")
    assert users["user_id"].tolist() == ["C10", customer_key("C1")]
    logged = warehouse.query_df("select order_id from raw.orders_changes where change_id = "
                                "(select max(change_id) from raw.orders_changes)")
    assert logged["order_id"].tolist() == ["O1"]
    visitors = warehouse.query_df("select user_id from raw.events_changes where change_id = "
                                  "(select max(change_id) from raw.events_changes) order by 1")
    assert visitors["user_id"].tolist() == ["C1", customer_key("C1")]  # before and after

    erasures = warehouse.query_df("select * from audit.erasure_report")
    assert set(erasures["customer_key"]) == {customer_key("C1")}
    assert {"raw.customers", "quarantine.customers", "raw.orders", "raw.events",
            "quarantine.events", "ml.customer_clv"} <= set(erasures["table_name"])
    assert "C1" not in " ".join(erasures.astype(str).values.ravel())

    # the landing files name her no more either (the malformed event line included), and
    # still load as they did
    import re
    files = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()
             and p.suffix in (".csv", ".jsonl")}
    for path, text in files.items():
        for trace in ("ana@example.com", "+351911111111", "Silva", "ana likes tea", "Lisbon"):
            assert trace not in text, (path, trace)
        assert not re.search(r"(^|[^A-Za-z0-9_-])C1($|[^A-Za-z0-9_-])", text), path
    assert "bo@example.com" in " ".join(files.values())
    before = warehouse.query_df("select * exclude (_loaded_at) from raw.events order by all")
    events = landing.load_days(warehouse, tmp_path, "events", [DAY])
    assert events.reconciles
    after = warehouse.query_df("select * exclude (_loaded_at) from raw.events order by all")
    assert after.equals(before)

    # applied again: nothing new to do, nothing reported twice
    landing.load_all_days(warehouse, tmp_path, "customers")
    assert len(warehouse.query_df("select * from audit.erasure_report")) == len(erasures)


def test_the_files_found_as_rows_move_are_those_a_search_of_every_table_finds(
        tmp_path, warehouse, monkeypatch):
    """The profiles' load asks `erased_files` to leave the order lines and events out and adds
    their files as `apply_erasures` moves the rows: the same files and ids as a search of
    every table, with the request named on two days of events and in the orders."""
    from core import privacy

    _profiles(tmp_path, erase=False)
    for day in (DAY, DAY - dt.timedelta(days=1)):
        _events(tmp_path, day)
    _write(tmp_path, "orders", "orders.csv", f"{HEADER}\n"
           "O1,1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,PT,0\n"
           "O2,1,C10,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,PT,0\n")
    landing.load_all_days(warehouse, tmp_path, "customers")
    landing.load_days(warehouse, tmp_path, "orders", [DAY])
    landing.load_days(warehouse, tmp_path, "events", [DAY - dt.timedelta(days=1), DAY])
    searched, moved = {}, {}

    def erased_files(con, *args, **kwargs):
        searched.update(privacy.erased_files(con))  # every table searched (no side effects)
        assert kwargs == {"moved_later": True}
        return privacy.erased_files(con, *args, **kwargs)

    def apply_erasures(con, *args, found=None, **kwargs):
        erased = privacy.apply_erasures(con, *args, found=found, **kwargs)
        moved.update(found)
        return erased

    monkeypatch.setattr(landing, "erased_files", erased_files)
    monkeypatch.setattr(landing, "apply_erasures", apply_erasures)
    _profiles(tmp_path, erase=True)
    assert landing.load_all_days(warehouse, tmp_path, "customers").erased_customers == 1
    assert {path.split("/")[0] for path in searched} == {"customers", "orders", "events"}
    assert len([path for path in searched if path.startswith("events/")]) == 2
    assert moved == searched and set().union(*searched.values()) == {"C1"}


def test_a_day_delivered_after_the_request_is_scrubbed_as_it_lands(tmp_path, warehouse):
    _profiles(tmp_path, erase=True)
    landing.load_all_days(warehouse, tmp_path, "customers")
    late = DAY - dt.timedelta(days=5)
    _events(tmp_path, late)
    landing.load_days(warehouse, tmp_path, "events", [late])
    dump = _dump(warehouse, "raw.events") + _dump(warehouse, "quarantine.events")
    assert "ana@example.com" not in dump and "bo@example.com" in dump
    assert "'C1'" not in repr(warehouse.query_df("select user_id from raw.events")
                              ["user_id"].tolist())
    logged = warehouse.query_df("select distinct user_id from raw.events_changes order by 1")
    assert logged["user_id"].tolist() == ["C10", customer_key("C1")]
    # its file was rewritten right after the day's commit, and left the sweep's list
    delivered = next((tmp_path / "events").glob("dt=*/events.jsonl")).read_text()
    assert "ana@example.com" not in delivered and '"C1"' not in delivered
    assert "bo@example.com" in delivered
    assert landing.pending_erasures(tmp_path)["files"] == {}


def test_a_rewrite_that_fails_after_the_commit_leaves_the_file_to_the_sweep(
        tmp_path, warehouse, monkeypatch):
    """The landing files of a day loaded after a request are rewritten after the day commits,
    beside the next days' loading: a rewrite that fails (or a run killed before it) leaves the
    file on the sweep's list, and the load says so."""
    _profiles(tmp_path, erase=True)
    landing.load_all_days(warehouse, tmp_path, "customers")
    late = DAY - dt.timedelta(days=5)
    _events(tmp_path, late)
    real = landing.rewrite_erased

    def fails(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(landing, "rewrite_erased", fails)
    with pytest.raises(OSError, match="disk full"):
        landing.load_days(warehouse, tmp_path, "events", [late])
    assert "'C1'" not in repr(warehouse.query_df("select user_id from raw.events")
                              ["user_id"].tolist())  # the day committed, scrubbed
    waiting = landing.pending_erasures(tmp_path)["files"]
    assert list(waiting) == [f"events/dt={late}/events.jsonl"] and waiting[
        f"events/dt={late}/events.jsonl"] == ["C1"]
    monkeypatch.setattr(landing, "rewrite_erased", real)
    assert landing.sweep_landing_erasures(tmp_path) == [f"events/dt={late}/events.jsonl"]
    assert "ana@example.com" not in (tmp_path / f"events/dt={late}/events.jsonl").read_text()
    assert landing.pending_erasures(tmp_path)["files"] == {}


def test_audience_files_lose_erased_customers_also_when_the_audience_is_retired(
        tmp_path, warehouse):
    import os
    import stat

    import pandas as pd

    from core.privacy import scrub_exports

    _profiles(tmp_path, erase=True)
    landing.load_all_days(warehouse, tmp_path, "customers")
    folder = tmp_path / "exports" / "audiences"
    folder.mkdir(parents=True)
    pd.DataFrame({"customer_id": ["C1", "C10"], "email": ["ana@example.com", "bo@example.com"]}
                 ).to_csv(folder / "retired_audience.csv", index=False)
    pd.DataFrame({"customer_id": ["C10"], "email": ["bo@example.com"]}).to_parquet(
        folder / "other.parquet", index=False)
    with warehouse.connect() as con:
        assert scrub_exports(con, folder) == 1
    retired = pd.read_csv(folder / "retired_audience.csv")
    assert retired["customer_id"].tolist() == ["C10"]
    assert stat.S_IMODE(os.stat(folder / "retired_audience.csv").st_mode) == 0o600
    assert pd.read_parquet(folder / "other.parquet")["customer_id"].tolist() == ["C10"]


def test_rewritten_days_are_recorded_with_their_new_fingerprint(tmp_path, warehouse):
    _profiles(tmp_path, erase=False)
    _events(tmp_path, DAY)
    landing.load_all_days(warehouse, tmp_path, "customers")
    landing.load_days(warehouse, tmp_path, "events", [DAY])
    _profiles(tmp_path, erase=True)
    landing.load_all_days(warehouse, tmp_path, "customers")
    record = landing.rewritten_days(tmp_path)
    assert record["events"] == {DAY.isoformat(): landing.day_fingerprint(
        tmp_path, landing.FEEDS["events"], DAY)}
    assert DAY.isoformat() in record["customers"]
    # the record is no landing file: it changes no fingerprint and loads as nothing
    assert set(landing.landing_fingerprints(tmp_path)) == set(landing.FEEDS)


def test_the_erased_profiles_are_collected_again_when_profiles_or_requests_change(tmp_path):
    """`_erased_profiles` is kept on the connection between the days of a load, and computed
    again as soon as a profile or a request on record changes."""
    import duckdb

    from core import privacy
    from ingest import landing

    def erased(con) -> list[str]:
        privacy._collect_erased(con)
        return sorted(row[0] for row in con.execute("select customer_id from _erased").fetchall())

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        landing.ensure_tables(con, landing.FEEDS["customers"])
        con.execute("insert into raw.customers (customer_id, is_deleted) "
                    "values ('C1', false), ('C2', false)")
        assert erased(con) == [] and erased(con) == []
        con.execute("insert into raw.customers (customer_id, is_deleted) values ('C1', true)")
        assert erased(con) == ["C1"]
        con.execute("insert into audit.erasure_requests values (?, current_timestamp)",
                    [privacy.customer_key("C2")])
        assert erased(con) == ["C1", "C2"]
        con.execute("update raw.customers set customer_id = ? where customer_id = 'C1'",
                    [privacy.customer_key("C1")])
        assert erased(con) == ["C2"]


def test_a_rewrite_finds_every_line_naming_an_id_and_only_those(tmp_path):
    """One search of the whole file, then each match's line: ids at the start and end of lines,
    next to each other and inside other ids."""
    lines = [
        json.dumps({"type": "identify", "userId": "C1", "anonymousId": "a1",
                    "traits": {"email": "ana@example.com"}, "context": {"ip": "10.0.0.1"}}),
        json.dumps({"type": "identify", "userId": "C10", "anonymousId": "C1x"}),   # untouched
        'C1 not json, and names C2',                           # a broken line starting with an id
        'C2',                                                  # a line that is only an id
        json.dumps({"type": "track", "userId": "C3", "properties": {"ref": "C2"}}),  # names C2
        json.dumps({"type": "identify", "userId": "C2"}) + "\r",
    ]
    path = tmp_path / "events" / f"dt={DAY}" / "events.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    assert landing.rewrite_erased(tmp_path, f"events/dt={DAY}/events.jsonl", {"C1", "C2"})
    out = path.read_bytes().decode().split("\n")
    first = json.loads(out[0])
    assert first["userId"] == customer_key("C1") and "traits" not in first
    assert "ip" not in first["context"]
    assert out[1] == lines[1]
    assert out[2] == out[3] == out[4] == '{"erased": true}'
    assert json.loads(out[5]) == {"type": "identify", "userId": customer_key("C2")}
    assert out[5].endswith("\r") and out[6] == ""
    assert not landing.rewrite_erased(tmp_path, f"events/dt={DAY}/events.jsonl", {"C1", "C2"})


@pytest.mark.parametrize("profiles_first", [True, False])
def test_a_warehouse_rebuilt_from_a_rewritten_landing_zone_still_erases(tmp_path,
                                                                       profiles_first):
    """A load stopped after the erasure rewrote the profile files (the request now names the
    customer by key only) leaves order and event files that still name her; a warehouse
    rebuilt from that landing zone, whatever feed loads first, must still scrub them."""
    _profiles(tmp_path, erase=True)
    _events(tmp_path, DAY)
    _write(tmp_path, "orders", "orders.csv", f"{HEADER}\n"
           "O1,1,C1,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,PT,0\n"
           "O2,1,C10,2026-05-01T10:00:00Z,P1,1,9.50,EUR,completed,web,PT,0\n")
    landing.load_all_days(Warehouse(tmp_path / "first.duckdb"), tmp_path, "customers")
    assert "ana@example.com" in (tmp_path / "events" / f"dt={DAY}" / "events.jsonl").read_text()

    rebuilt = Warehouse(tmp_path / "rebuilt.duckdb")
    if profiles_first:
        landing.load_all_days(rebuilt, tmp_path, "customers")
    for feed in ("orders", "events"):
        landing.load_days(rebuilt, tmp_path, feed, [DAY])
    if not profiles_first:
        landing.load_all_days(rebuilt, tmp_path, "customers")

    orders = rebuilt.query_df("select customer_id from raw.orders order by order_id")
    assert orders["customer_id"].tolist() == [customer_key("C1"), "C10"]
    users = rebuilt.query_df("select distinct user_id from raw.events order by 1")
    assert users["user_id"].tolist() == ["C10", customer_key("C1")]
    everything = " ".join(_dump(rebuilt, t) for t in ("raw.events", "quarantine.events"))
    assert "ana@example.com" not in everything and "bo@example.com" in everything
    requests = rebuilt.query_df("select customer_key from audit.erasure_requests")
    assert requests["customer_key"].tolist() == [customer_key("C1")]
    for path in (tmp_path / "events").rglob("*.jsonl"):
        assert "ana@example.com" not in path.read_text()


def test_landing_files_wait_for_the_sweep_the_warehouse_does_not(tmp_path, warehouse,
                                                                 monkeypatch):
    """With the default sweep (7 days) a request scrubs the warehouse in its load and puts the
    landing files that name the person on the sweep's list; the sweep rewrites them when due,
    goes on where it stopped after a failure, and a reload of the swept files changes nothing."""
    monkeypatch.setenv(landing.SWEEP_ENV, "7")
    _profiles(tmp_path, erase=False)
    for day in (DAY, DAY + dt.timedelta(1)):
        _events(tmp_path, day)
    landing.load_all_days(warehouse, tmp_path, "customers")
    landing.load_days(warehouse, tmp_path, "events", [DAY, DAY + dt.timedelta(1)])
    _profiles(tmp_path, erase=True)
    landing.load_snapshot_days(warehouse, tmp_path, "customers")

    everything = " ".join(_dump(warehouse, t) for t in ("raw.customers", "raw.events"))
    assert "ana@example.com" not in everything and "bo@example.com" in everything
    named = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.*sv*")) + sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl"))
    pending = landing.pending_erasures(tmp_path)
    assert pending["files"] == {relative: ["C1"] for relative in named}
    assert all(re.search(r"\bC1\b", (tmp_path / relative).read_text()) for relative in named)
    since = dt.datetime.fromisoformat(pending["since"])
    assert not landing.erasure_sweep_due(tmp_path, since + dt.timedelta(days=6, hours=23))
    assert landing.erasure_sweep_due(tmp_path, since + dt.timedelta(days=7))
    assert landing.sweep_landing_erasures(tmp_path) == []  # not due yet

    rewrite = landing.rewrite_erased
    calls = []

    def stopped_at_the_second(root, relative, ids, text=None):
        calls.append(relative)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return rewrite(root, relative, ids, text)

    monkeypatch.setattr(landing, "rewrite_erased", stopped_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        landing.sweep_landing_erasures(tmp_path, force=True)
    assert sorted(landing.pending_erasures(tmp_path)["files"]) == named[1:]
    monkeypatch.setattr(landing, "rewrite_erased", rewrite)
    assert landing.sweep_landing_erasures(tmp_path, force=True) == named[1:]
    assert not (tmp_path / landing.PENDING_FILE).exists()
    for relative in named:
        assert not re.search(r"\bC1\b", (tmp_path / relative).read_text()), relative
    assert set(landing.rewritten_days(tmp_path)["events"]) == {
        DAY.isoformat(), (DAY + dt.timedelta(1)).isoformat()}

    def rows() -> list:
        return warehouse.query_df("""
            select 'customers', customer_id, email, updated_at, is_deleted from raw.customers
            union all select 'events', user_id, message_id, timestamp, null from raw.events
            order by all""").values.tolist()

    before = rows()
    landing.load_snapshot_days(warehouse, tmp_path, "customers")  # the swept days load again
    landing.load_days(warehouse, tmp_path, "events", [DAY, DAY + dt.timedelta(1)])
    assert rows() == before


@pytest.mark.parametrize("value", ["weekly", "-1", "45"])
def test_a_sweep_delay_that_is_no_legal_number_of_days_is_refused(monkeypatch, value):
    monkeypatch.setenv(landing.SWEEP_ENV, value)
    with pytest.raises(ValueError, match=f"SEGMENTA_ERASURE_SWEEP_DAYS='{value}'"):
        landing.sweep_days()


@settings(max_examples=300, deadline=None)
@given(ids=st.sets(st.text(alphabet="C1-x._", min_size=1, max_size=3), min_size=1, max_size=4),
       text=st.text(alphabet="C1-x._ \n{}\"0", max_size=60))
def test_id_tokens_are_found_where_the_look_behind_pattern_finds_them(ids, text):
    """`_IdTokens` (the ids first, the character before checked in Python) against the plain
    pattern with a look-behind, on ids and texts made of token and non-token characters."""
    import re

    plain = re.compile("(?<![A-Za-z0-9_-])(?:" + "|".join(map(re.escape, sorted(ids)))
                       + ")(?![A-Za-z0-9_-])")
    tokens = landing._IdTokens(ids)
    assert list(tokens.starts(text)) == [match.start() for match in plain.finditer(text)]
    assert tokens.search(text) == bool(plain.search(text))


@settings(max_examples=300, deadline=None)
@given(ids=st.sets(st.text(alphabet="C1-xé_ü", min_size=1, max_size=3), min_size=1, max_size=4),
       text=st.text(alphabet="C1-xé_ü \n{}\"0", max_size=60))
def test_id_tokens_in_bytes_are_the_matches_in_text(ids, text):
    """An events file is searched in its UTF-8 bytes: the same matches as in its text, ids
    with non-ASCII characters included (at the byte offsets of the text's)."""
    in_text = list(landing._IdTokens(ids).starts(text))
    in_bytes = list(landing._IdTokens(ids, binary=True).starts(text.encode()))
    assert in_bytes == [len(text[:at].encode()) for at in in_text]


def test_a_rewrite_uses_the_loads_bytes_only_while_the_file_is_the_one_read(tmp_path):
    """After a day's commit the load hands the rewrite the file's bytes it inflated; a file
    delivered again since (another inode, size or time) is read from disk instead: the new
    delivery is what gets rewritten, never the old bytes written over it."""
    import gzip

    from ingest.landing import _file_id, _Text

    path = tmp_path / "events" / f"dt={DAY}" / "events.jsonl.gz"
    path.parent.mkdir(parents=True)
    relative = f"events/dt={DAY}/events.jsonl.gz"
    old = (json.dumps({"type": "identify", "userId": "C1", "messageId": "old"}) + "\n").encode()
    path.write_bytes(gzip.compress(old))
    read = _Text(_file_id(path.stat()), old)
    # the same file: the bytes the load read give the rewrite a plain read gives
    twin = tmp_path / "twin"
    shutil.copytree(tmp_path / "events", twin / "events")
    assert landing.rewrite_erased(tmp_path, relative, {"C1"}, read)
    assert landing.rewrite_erased(twin, relative, {"C1"})
    assert gzip.decompress(path.read_bytes()) == gzip.decompress(
        (twin / relative).read_bytes())
    # delivered again after the load read it: the new file is rewritten
    new = (json.dumps({"type": "identify", "userId": "C1", "messageId": "new"}) + "\n"
           + json.dumps({"type": "track", "userId": "C7", "messageId": "kept"}) + "\n").encode()
    path.write_bytes(gzip.compress(new))
    stale = _Text(read.file_id, old)
    assert landing.rewrite_erased(tmp_path, relative, {"C1"}, stale)
    rows = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert [row["messageId"] for row in rows] == ["new", "kept"]
    assert rows[0]["userId"] == customer_key("C1") and rows[1]["userId"] == "C7"
