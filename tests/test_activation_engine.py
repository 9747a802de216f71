"""The sync engine against a real HTTP receiver (the webhook emulator) and a real DuckDB file."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from activation.audiences import Audience, AudienceError, Target, parse_audiences
from activation.destinations.file import FileDestination
from activation.destinations.webhook import WebhookDestination
from activation.emulators.webhook import WebhookEmulator
from activation.engine import SyncFailed, SyncOptions, SyncRefused, sync
from activation.plan import in_holdout

AUDIENCE = Audience("vip", "rfm_champions", ("first_name",), 0.0, (Target("webhook", "webhook"),))
FAST = {"sleep": lambda seconds: None}


def make_warehouse(path: Path, n: int = 60, members: range | None = None,
                   no_consent: set[int] = frozenset()) -> None:
    """Customers c000..c{n-1}; `members` of them in rfm_champions; email and ads consent for all
    but `no_consent`."""
    members = members if members is not None else range(n)
    contacts = pd.DataFrame({
        "customer_id": [f"c{i:03d}" for i in range(n)],
        "email": [f"person.{i}@example.com" for i in range(n)],
        "phone": [f"+34 6{i:08d}" for i in range(n)],
        "first_name": [f"Name{i}" for i in range(n)],
        "last_name": ["Doe"] * n,
        "country": ["ES"] * n,
        "has_email_consent": [i not in no_consent for i in range(n)],
        "has_ads_consent": [i not in no_consent for i in range(n)],
    })
    memberships = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in members],
                                "segment_key": "rfm_champions", "segment_name": "Champions"})
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.register("_contacts", contacts)
        con.register("_memberships", memberships)
        con.execute("create or replace table marts.customer_contacts as select * from _contacts")
        con.execute("create or replace table marts.segment_memberships as "
                    "select * from _memberships")


def run_sync(path: Path, emulator: WebhookEmulator, run_id: str, audience: Audience = AUDIENCE,
             **options):
    destination = WebhookDestination(emulator.url + "/hooks/audiences", "test-secret")
    with duckdb.connect(str(path)) as con:
        return sync(con, audience, audience.targets[0], destination, run_id,
                    SyncOptions(**{**FAST, **options}), log=lambda message: None)


def sent_members(emulator: WebhookEmulator, operation: str) -> list[str]:
    return [m["customer_id"] for r in emulator.mutating_requests()
            if r.body and r.body.get("operation") == operation for m in r.body["members"]]


@pytest.fixture
def emulator():
    with WebhookEmulator() as server:
        yield server


def test_first_sync_then_only_the_difference_then_nothing(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, members=range(40), no_consent={5})
    report = run_sync(db, emulator, "run1")
    expected = {f"c{i:03d}" for i in range(40)} - {"c005"}
    assert emulator.members("vip") == expected
    assert (report.mode, report.status, report.n_added) == ("first_sync", "succeeded", 39)

    # a day later: 10 leave, 5 join; only those 15 are sent
    make_warehouse(db, members=range(10, 45), no_consent={5})
    requests_before = len(emulator.mutating_requests())
    report = run_sync(db, emulator, "run2", max_removal_share=0.5)
    new = emulator.mutating_requests()[requests_before:]
    sent = [(r.body["operation"], m["customer_id"]) for r in new for m in r.body["members"]]
    assert sorted(sent) == sorted([("remove", f"c{i:03d}") for i in range(10) if i != 5]
                                  + [("add", f"c{i:03d}") for i in range(40, 45)])
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(10, 45)}
    assert (report.n_added, report.n_removed, report.n_updated) == (5, 9, 0)

    # the same day again: nothing to send
    before = len(emulator.mutating_requests())
    report = run_sync(db, emulator, "run3")
    assert len(emulator.mutating_requests()) == before
    assert (report.n_to_add, report.n_to_remove, report.n_to_update) == (0, 0, 0)

    with duckdb.connect(str(db)) as con:
        runs = con.execute("select run_id, mode, status, n_added, n_removed "
                           "from activation.sync_runs order by started_at").fetchall()
        log = con.execute("select operation, status, count(*) from activation.sync_log "
                          "group by all order by all").fetchall()
    assert runs == [("run1", "first_sync", "succeeded", 39, 0),
                    ("run2", "incremental", "succeeded", 5, 9),
                    ("run3", "incremental", "succeeded", 0, 0)]
    assert log == [("add", "confirmed", 44), ("remove", "confirmed", 9)]


def test_a_changed_field_is_sent_as_an_update(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=10)
    run_sync(db, emulator, "run1")
    with duckdb.connect(str(db)) as con:
        con.execute("update marts.customer_contacts set first_name = 'Renamed' "
                    "where customer_id = 'c003'")
    report = run_sync(db, emulator, "run2")
    assert (report.n_updated, report.n_added, report.n_removed) == (1, 0, 0)
    assert emulator.audiences["vip"]["c003"]["first_name"] == "Renamed"


def test_consent_withdrawn_and_erasure_remove_the_customer(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=20)
    run_sync(db, emulator, "run1")
    with duckdb.connect(str(db)) as con:
        con.execute("update marts.customer_contacts set has_email_consent = false "
                    "where customer_id = 'c007'")
        con.execute("delete from marts.customer_contacts where customer_id = 'c008'")  # erased
    run_sync(db, emulator, "run2")
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(20)} - {"c007", "c008"}


def test_a_killed_sync_resumes_without_duplicates_or_losses(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=100)
    script = textwrap.dedent(f"""
        import duckdb
        from activation.audiences import Audience, Target
        from activation.destinations.webhook import WebhookDestination
        from activation.engine import SyncOptions, sync
        WebhookDestination.max_batch = 10
        audience = Audience("vip", "rfm_champions", ("first_name",), 0.0,
                            (Target("webhook", "webhook"),))
        destination = WebhookDestination({emulator.url + "/hooks/audiences"!r}, "test-secret")
        with duckdb.connect({str(db)!r}) as con:
            sync(con, audience, audience.targets[0], destination, "killed-run", SyncOptions())
    """)
    emulator.hang_after(4)     # the 4th batch lands at the receiver, its answer never arrives
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        assert emulator.hung.wait(60), "the sync never reached its 4th batch"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        emulator.release()
    assert len(emulator.members("vip")) == 40          # 4 batches landed, 3 confirmed

    original = WebhookDestination.max_batch
    WebhookDestination.max_batch = 10
    try:
        report = run_sync(db, emulator, "next-run")
    finally:
        WebhookDestination.max_batch = original
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(100)}
    applied = [count for (_, op, _), count in emulator.applied.items() if op == "add"]
    assert len(applied) == 100 and set(applied) == {1}, "a member was applied twice"
    assert report.n_resumed == 70 and report.n_to_add == 0
    with duckdb.connect(str(db)) as con:
        statuses = dict(con.execute("select run_id, status from activation.sync_runs").fetchall())
        assert con.execute("select count(*) from activation.sync_pending").fetchone()[0] == 0
        assert con.execute("select count(*) from activation.sync_state").fetchone()[0] == 100
    assert statuses == {"killed-run": "interrupted", "next-run": "succeeded"}


def test_retry_storms_end_consistent(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=30)
    waits = []
    emulator.inject("rate_limit", times=3, retry_after=0.25)
    emulator.inject("server_error", times=3)
    destination = WebhookDestination(emulator.url + "/hooks/audiences", "test-secret",
                                     timeout=0.5)
    emulator.timeout_hold_seconds = 1.0
    emulator.inject("timeout", times=1)
    with duckdb.connect(str(db)) as con:
        report = sync(con, AUDIENCE, AUDIENCE.targets[0], destination, "storm",
                      SyncOptions(sleep=waits.append, backoff_base=0.01), log=lambda m: None)
    assert report.status == "succeeded" and report.n_retries == 7
    assert waits[:3] == [0.25, 0.25, 0.25]          # Retry-After honoured
    assert all(0 < w <= 0.64 for w in waits[3:])    # then exponential backoff with jitter
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(30)}


def test_retries_exhausted_leave_the_rest_pending_for_the_next_run(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=30)
    emulator.inject("server_error", times=50)
    with pytest.raises(SyncFailed, match="pending"):
        run_sync(db, emulator, "run1", max_attempts=3)
    assert emulator.members("vip") == set()
    emulator._faults.clear()
    report = run_sync(db, emulator, "run2")
    assert report.status == "succeeded" and report.n_resumed == 30
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(30)}


def test_one_bad_row_is_rejected_alone_and_retried_next_run(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=30)
    emulator.reject("c017")
    report = run_sync(db, emulator, "run1")
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(30)} - {"c017"}
    assert (report.n_added, report.n_rejected) == (29, 1)
    emulator.accept("c017")
    report = run_sync(db, emulator, "run2")
    assert report.n_added == 1 and "c017" in emulator.members("vip")
    with duckdb.connect(str(db)) as con:
        assert con.execute("select run_id, status, error_code from activation.sync_log "
                           "where customer_id = 'c017' order by logged_at").fetchall() == [
            ("run1", "rejected", "invalid_member"), ("run2", "confirmed", None)]


def test_a_refused_batch_is_split_to_isolate_the_bad_row(tmp_path):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=64)
    with WebhookEmulator(strict=True) as strict:
        strict.reject("c042")
        report = run_sync(db, strict, "run1")
        assert strict.members("vip") == {f"c{i:03d}" for i in range(64)} - {"c042"}
        assert report.n_rejected == 1 and report.n_added == 63
        # 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1: one refused request per level plus the good halves
        assert len(strict.mutating_requests()) == 13


def test_removal_guard_refuses_a_mass_removal_unless_forced(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=100)
    run_sync(db, emulator, "run1")
    make_warehouse(db, n=100, members=range(30))
    with pytest.raises(SyncRefused, match="would remove 70 of 100"):
        run_sync(db, emulator, "run2")
    assert len(emulator.members("vip")) == 100
    run_sync(db, emulator, "run3", force_removals=True)
    assert len(emulator.members("vip")) == 30


def _withdraw(db: Path, customers: range, consent: str = "email") -> None:
    with duckdb.connect(str(db)) as con:
        con.execute(f"update marts.customer_contacts set has_{consent}_consent = false "
                    "where customer_id in (select unnest(?))",
                    [[f"c{i:03d}" for i in customers]])


def _erase(db: Path, customers: range) -> None:
    """Erasure requests as ingestion leaves them: an is_deleted profile, gone from contacts."""
    ids = [f"c{i:03d}" for i in customers]
    with duckdb.connect(str(db)) as con:
        con.execute("create schema if not exists raw")
        con.execute("create table if not exists raw.customers "
                    "(customer_id varchar, is_deleted boolean)")
        con.execute("insert into raw.customers select unnest(?), true", [ids])
        con.execute("delete from marts.customer_contacts where customer_id in "
                    "(select unnest(?))", [ids])


def test_a_half_withdrawal_day_removes_everyone_it_must(tmp_path, emulator):
    """Withdrawals and erasures are not a broken segment: the guard does not count them."""
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=100)
    run_sync(db, emulator, "run1")
    _withdraw(db, range(45))
    _erase(db, range(45, 50))
    report = run_sync(db, emulator, "run2")
    assert (report.status, report.n_removed) == ("succeeded", 50)
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(50, 100)}


def test_required_removals_go_out_first_and_also_when_the_guard_holds_the_rest(tmp_path,
                                                                              emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=100)
    run_sync(db, emulator, "run1")
    make_warehouse(db, n=100, members=range(30))  # a broken segment: 70 would leave
    _withdraw(db, range(3))
    _erase(db, range(3, 5))
    before = len(emulator.mutating_requests())
    with pytest.raises(SyncRefused, match=r"would remove 70 of 100.*The 5 removals that "
                                          r"consent withdrawals and erasures require were sent"):
        run_sync(db, emulator, "run2")
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(5, 100)}
    sent = emulator.mutating_requests()[before:]
    # erasures first, then withdrawals, nothing else
    assert [(r.body["operation"], sorted(m["customer_id"] for m in r.body["members"]))
            for r in sent] == [("remove", ["c003", "c004"]), ("remove", ["c000", "c001", "c002"])]
    with duckdb.connect(str(db)) as con:
        status, removed = con.execute("select status, n_removed from activation.sync_runs "
                                      "where run_id = 'run2'").fetchone()
    assert (status, removed) == ("refused", 5)
    # forced, the rest follows; the required ones are not sent twice
    report = run_sync(db, emulator, "run3", force_removals=True)
    assert report.n_removed == 70 and emulator.members("vip") == {f"c{i:03d}" for i in range(5, 30)}


def test_an_empty_segment_still_lets_erasures_through(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=10)
    run_sync(db, emulator, "run1")
    make_warehouse(db, n=10, members=range(0))
    _erase(db, range(2))
    with pytest.raises(SyncRefused, match="no members"):
        run_sync(db, emulator, "run2")
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(2, 10)}


def test_new_members_wait_for_the_withdrawals_in_the_same_sync(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=20, members=range(10))
    run_sync(db, emulator, "run1")
    make_warehouse(db, n=20, members=range(20))
    _withdraw(db, range(2))
    before = len(emulator.mutating_requests())
    run_sync(db, emulator, "run2")
    operations = [r.body["operation"] for r in emulator.mutating_requests()[before:]]
    assert operations[0] == "remove" and "add" in operations


def test_an_empty_segment_is_refused(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=10)
    run_sync(db, emulator, "run1")
    make_warehouse(db, n=10, members=range(0))
    with pytest.raises(SyncRefused, match="no members"):
        run_sync(db, emulator, "run2", force_removals=True)
    assert len(emulator.members("vip")) == 10


def test_dry_run_sends_nothing_and_shows_hashed_keys(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=25)
    report = run_sync(db, emulator, "dry", dry_run=True)
    assert emulator.mutating_requests() == []
    assert (report.status, report.n_to_add, len(report.sample)) == ("dry_run", 25, 10)
    assert all(len(s["key_sha256"]) == 16 and "@" not in json.dumps(s) for s in report.sample)
    with duckdb.connect(str(db)) as con:
        assert con.execute("select count(*) from activation.sync_state").fetchone()[0] == 0


def test_holdout_is_deterministic_recorded_and_never_sent(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=400)
    audience = Audience("vip", "rfm_champions", (), 0.2, (Target("webhook", "webhook"),))
    report = run_sync(db, emulator, "run1", audience=audience)
    holdout = {f"c{i:03d}" for i in range(400) if in_holdout("vip", f"c{i:03d}", 0.2)}
    assert 50 < len(holdout) < 110 and report.n_holdout == len(holdout)
    assert emulator.members("vip") == {f"c{i:03d}" for i in range(400)} - holdout
    with duckdb.connect(str(db)) as con:
        recorded = {c for (c,) in con.execute("select customer_id from "
                                               "activation.audience_assignments "
                                               "where arm = 'holdout'").fetchall()}
    assert recorded == holdout


def test_file_destination_holds_the_confirmed_members(tmp_path):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=20, no_consent={3})
    audience = Audience("vip", "rfm_champions", ("first_name",), 0.0,
                        (Target("file", "file", {"format": "csv"}),))
    destination = FileDestination(tmp_path / "exports")
    with duckdb.connect(str(db)) as con:
        sync(con, audience, audience.targets[0], destination, "run1",
             SyncOptions(**FAST), log=lambda m: None)
    frame = pd.read_csv(tmp_path / "exports" / "vip.csv", dtype=str)
    assert set(frame["customer_id"]) == {f"c{i:03d}" for i in range(20)} - {"c003"}
    assert list(frame.columns) == ["customer_id", "email", "first_name"]


@pytest.mark.parametrize(("yaml_entry", "message"), [
    ({"key": "Bad Key", "segment": "x", "destinations": ["file"]}, "key 'Bad Key'"),
    ({"key": "a", "segment": "x", "destinations": ["fax"]}, "unknown destination 'fax'"),
    ({"key": "a", "segment": "x", "destinations": [{"hubspot": {}}]}, "hubspot needs list_id"),
    ({"key": "a", "segment": "x", "fields": ["shoe_size"], "destinations": ["file"]},
     "unknown field"),
    ({"key": "a", "segment": "x", "holdout": 0.9, "destinations": ["file"]}, "holdout"),
])
def test_audience_file_errors_name_the_audience_and_the_problem(yaml_entry, message):
    with pytest.raises(AudienceError, match=message) as info:
        parse_audiences({"audiences": [yaml_entry]}, "audiences.yml")
    assert "audiences.yml, audience" in str(info.value)


def test_an_expired_token_stops_the_sync_and_the_next_run_finishes_it(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=30)
    emulator.inject("expired_token")
    with pytest.raises(SyncFailed, match="credentials"):
        run_sync(db, emulator, "run1")
    assert emulator.members("vip") == set()
    with duckdb.connect(str(db)) as con:
        assert con.execute("select status, n_pending from activation.sync_runs").fetchall() == [
            ("failed", 30)]
    report = run_sync(db, emulator, "run2")
    assert report.n_resumed == 30 and emulator.members("vip") == {f"c{i:03d}" for i in range(30)}


def test_an_interrupted_update_of_hashed_identifiers_resumes_in_order(tmp_path):
    """Ad platforms match on hashes: a changed email is a removal of the old hash and an add of
    the new one, and a run killed between the two finishes both, in that order."""
    from activation.destinations.meta import MetaDestination
    from activation.emulators.meta import MetaEmulator
    from activation.normalize import meta_email, sha256_hex

    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=30)
    audience = Audience("vip", "rfm_champions", (), 0.0, (Target("meta", "meta",
                                                                 {"audience_id": "1"}),))
    with MetaEmulator(audience_id="1") as meta, duckdb.connect(str(db)) as con:
        destination = MetaDestination(meta.token, base_url=meta.url)
        sync(con, audience, audience.targets[0], destination, "run1", SyncOptions(**FAST),
             log=lambda m: None)
        con.execute("update marts.customer_contacts set email = 'new.' || email "
                    "where customer_id in ('c001', 'c002')")
        con.execute("delete from marts.segment_memberships where customer_id = 'c003'")
        meta.inject("server_error", times=100, path="/users$")   # every request fails ...
        with pytest.raises(SyncFailed):
            sync(con, audience, audience.targets[0], destination, "run2",
                 SyncOptions(max_attempts=2, **FAST), log=lambda m: None)
        meta._faults.clear()                                      # ... until the next run
        report = sync(con, audience, audience.targets[0], destination, "run3",
                      SyncOptions(**FAST), log=lambda m: None)
        expected = {sha256_hex(meta_email(f"person.{i}@example.com")) for i in range(30)
                    if i not in (1, 2, 3)}
        expected |= {sha256_hex(meta_email(f"new.person.{i}@example.com")) for i in (1, 2)}
        assert meta.members("1") == expected
        assert report.n_resumed == 5 and report.n_to_add == report.n_to_remove == 0


def test_the_earlier_export_log_is_kept_aside(tmp_path, emulator):
    """A warehouse from before the sync engine has the RFM export's sync_runs: it is kept as
    sync_runs_v1 and the sync works."""
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=5)
    with duckdb.connect(str(db)) as con:
        con.execute("create schema activation")
        con.execute("create table activation.sync_runs (run_id varchar, destination varchar, "
                    "audience_key varchar, n_members bigint, n_sent bigint)")
        con.execute("insert into activation.sync_runs values ('old', 'file', 'rfm_x', 3, 3)")
    assert run_sync(db, emulator, "run1").n_added == 5
    with duckdb.connect(str(db)) as con:
        assert con.execute("select run_id from activation.sync_runs_v1").fetchall() == [("old",)]
        assert con.execute("select run_id from activation.sync_runs").fetchall() == [("run1",)]


# ---------- signed and bounded outputs

def test_webhook_signatures_carry_a_timestamp_and_replays_are_refused(tmp_path, emulator):
    import requests

    from activation.destinations.webhook import SIGNATURE_HEADER, verify

    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=5)
    run_sync(db, emulator, "run1")
    sent = emulator.mutating_requests()[0]
    header = sent.headers[SIGNATURE_HEADER.lower()]
    assert re.fullmatch(r"t=\d{10},v1=[0-9a-f]{64}", header)
    assert verify("test-secret", header, sent.raw)
    assert not verify("test-secret", header, sent.raw + b" ")          # body altered
    assert not verify("other-secret", header, sent.raw)
    timestamp = int(header.split(",")[0][2:])
    assert not verify("test-secret", header, sent.raw, now=timestamp + 301)  # replayed later
    forged = header.replace(f"t={timestamp}", f"t={timestamp + 1000}")
    assert not verify("test-secret", forged, sent.raw, now=timestamp + 1000)  # re-dated
    # the receiver refuses the same request replayed with an old timestamp
    stale = header.replace(f"t={timestamp}", f"t={timestamp - 3600}")
    replay = requests.post(emulator.url + "/hooks/audiences", data=sent.raw, timeout=5,
                           headers={"Content-Type": "application/json", "Idempotency-Key": "x",
                                    SIGNATURE_HEADER: stale})
    assert replay.status_code == 401


def test_a_wrong_webhook_url_fails_the_sync_without_splitting(tmp_path, emulator):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=200)
    destination = WebhookDestination(emulator.url + "/hooks/wrong-path", "test-secret")
    with duckdb.connect(str(db)) as con, pytest.raises(
            SyncFailed, match=r"http_404: webhook answered 404 at http://127.0.0.1:\d+/hooks/"
                              r"wrong-path: check SEGMENTA_WEBHOOK_URL.*200 rows are pending"):
        sync(con, AUDIENCE, AUDIENCE.targets[0], destination, "run1",
             SyncOptions(**FAST), log=lambda message: None)
    assert len(emulator.mutating_requests()) == 1  # one request, no splitting
    with duckdb.connect(str(db)) as con:
        assert con.execute("select status from activation.sync_runs").fetchone() == ("failed",)
        assert con.execute("select count(*) from activation.sync_state").fetchone() == (0,)
    # fixed, the next run sends them all
    assert run_sync(db, emulator, "run2").n_added == 200


@pytest.mark.parametrize("url", ["http://hooks.example.com/in", "ftp://127.0.0.1/x",
                                 "http://127.0.0.1.evil.example/x", "hooks.example.com",
                                 "file:///etc/passwd", ""])
def test_destination_urls_must_be_https_unless_local(url):
    with pytest.raises(ValueError, match="must start with https://"):
        WebhookDestination(url, "secret")


@pytest.mark.parametrize("url", ["https://hooks.example.com/in", "http://127.0.0.1:8080/in",
                                 "http://localhost/in"])
def test_https_and_local_urls_are_accepted(url):
    assert WebhookDestination(url, "secret").url == url


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_audience_files_are_readable_by_their_owner_only(tmp_path, fmt):
    import os
    import stat

    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=5)
    audience = Audience("vip", "rfm_champions", (), 0.0, (Target("file", "file", {"format": fmt}),))
    folder = tmp_path / "exports" / "audiences"
    with duckdb.connect(str(db)) as con:
        sync(con, audience, audience.targets[0], FileDestination(folder), "run1",
             SyncOptions(**FAST), log=lambda message: None)
    path = folder / f"vip.{fmt}"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


@pytest.mark.parametrize(("message", "scrubbed"), [
    ("answered 404 at http://127.0.0.1:39885/hooks/x", "answered 404 at http://127.0.0.1:39885/hooks/x"),
    ("failed at 2026-12-03 14:42:06 on batch 3", "failed at 2026-12-03 14:42:06 on batch 3"),
    ("from 10.0.0.12 for +34 612 345 678", "from 10.0.0.12 for [phone]"),
    ("contact ana.lopez@example.com or 0612345678", "contact [email] or [phone]"),
    ("call +1 (555) 123-4567", "call [phone]"),
])
def test_scrub_removes_contacts_but_keeps_addresses_and_times(message, scrubbed):
    from activation.audit import scrub

    assert scrub(message) == scrubbed
