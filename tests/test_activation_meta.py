"""Meta Custom Audiences destination against its emulator over HTTP (127.0.0.1)."""

from __future__ import annotations

import json

import pytest
import requests

from activation.destinations.base import (
    Batch,
    BatchRejected,
    Contact,
    FatalError,
    RemovalsNotAllowed,
    RetryableError,
    Row,
)
from activation.destinations.meta import MetaDestination
from activation.emulators.base import Response
from activation.emulators.meta import MetaEmulator, graph_error
from activation.normalize import META_SCHEMA, is_sha256_hex, meta_identifiers, sha256_hex

MARY = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"   # sha256(mary@...)
PHONE = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"  # sha256(15559876543)


@pytest.fixture(scope="module")
def server():
    with MetaEmulator() as emu:
        yield emu


@pytest.fixture
def emulator(server):
    server.reset()
    server.min_audience_size = 0
    return server


@pytest.fixture
def audience(emulator) -> dict:
    return {"audience_id": emulator.audience_id}


def destination(emulator, run_id: str = "run-1", timeout: float = 5.0) -> MetaDestination:
    dest = MetaDestination(MetaEmulator.token, base_url=emulator.url, timeout=timeout)
    dest.open({}, run_id, full_refresh=False)
    return dest


def contact(i: int) -> Contact:
    return Contact(customer_id=f"C{i}", email=f" User{i}@Example.com ",
                   phone=f"+1 (555) 010-{i:04d}", first_name="José", last_name="O'Neil",
                   country="US")


def rows_for(dest: MetaDestination, ids) -> list[Row]:
    return [Row(f"C{i}", dest.payload(contact(i), [])) for i in ids]


def email_hash(i: int) -> str:
    return sha256_hex(f"user{i}@example.com")


def batch(operation: str, number: int = 1, total: int = 1, key: str | None = None) -> Batch:
    return Batch(operation, number, total, key or f"aud/meta/run/{operation}/{number}")


# ---- normalization and hashing ------------------------------------------------------------------

def test_payload_matches_metas_published_vectors():
    dest = MetaDestination("t", base_url="http://127.0.0.1:9")
    row = dest.payload(Contact("C1", email="  Mary@Example.COM ", phone="+1 (555) 987-6543",
                               first_name="Mary", country="US"), ["first_name"])
    assert row["EMAIL"] == MARY
    assert row["PHONE"] == PHONE
    assert row["FN"] == sha256_hex("mary")
    assert row["LN"] == ""
    assert row["COUNTRY"] == sha256_hex("us")
    assert list(row) == META_SCHEMA


def test_contact_without_email_or_phone_has_no_payload():
    dest = MetaDestination("t", base_url="http://127.0.0.1:9")
    assert dest.payload(Contact("C1", first_name="Ann", country="US"), []) is None


def test_requests_carry_only_hashes_and_no_raw_pii(emulator, audience):
    dest = destination(emulator)
    dest.add(audience, rows_for(dest, range(5)), batch("add"))
    (request,) = emulator.mutating_requests()
    assert request.path == f"/v25.0/{audience['audience_id']}/users"
    assert request.body["payload"]["schema"] == META_SCHEMA
    values = [value for row in request.body["payload"]["data"] for value in row]
    assert values and all(value == "" or is_sha256_hex(value) for value in values)
    raw = request.raw.decode().lower()
    for i in range(5):
        assert f"user{i}@example.com" not in raw
        assert f"155501{i:04d}" not in raw
    assert "jose" not in raw and "neil" not in raw
    assert "access_token" not in request.query            # the token is not in the URL


# ---- add, remove, sessions ----------------------------------------------------------------------

def test_add_then_remove_changes_membership(emulator, audience):
    dest = destination(emulator)
    first = dest.add(audience, rows_for(dest, range(3)), batch("add", 1, 2))
    dest.add(audience, rows_for(dest, range(3, 5)), batch("add", 2, 2))
    assert first.rejected == {} and first.request_id
    assert emulator.members(audience["audience_id"]) == {email_hash(i) for i in range(5)}

    outcome = dest.remove(audience, rows_for(dest, [1, 3]), batch("remove"))
    assert outcome.rejected == {}
    assert emulator.members(audience["audience_id"]) == {email_hash(i) for i in (0, 2, 4)}

    adds = [r.body["session"] for r in emulator.requests if r.method == "POST"]
    (remove,) = [r.body["session"] for r in emulator.requests if r.method == "DELETE"]
    assert [s["batch_seq"] for s in adds] == [1, 2]
    assert [s["last_batch_flag"] for s in adds] == [False, True]
    assert adds[0]["session_id"] == adds[1]["session_id"] != remove["session_id"]
    assert adds[0]["estimated_num_total"] == 6


def test_session_id_is_deterministic_per_run(emulator):
    assert (destination(emulator, "run-7").session_id("A", "add")
            == destination(emulator, "run-7").session_id("A", "add"))
    assert (destination(emulator, "run-7").session_id("A", "add")
            != destination(emulator, "run-8").session_id("A", "add"))
    assert 0 < destination(emulator, "run-7").session_id("A", "add") < 2 ** 63
    with pytest.raises(FatalError):
        MetaDestination("t", base_url=emulator.url).session_id("A", "add")


def test_a_batch_resent_after_a_lost_answer_is_not_applied_twice(emulator, audience):
    dest = destination(emulator, timeout=0.5)
    rows = rows_for(dest, range(3))
    emulator.hang_after(1)                      # applied, then the answer never comes
    with pytest.raises(RetryableError) as lost:
        dest.add(audience, rows, batch("add"))
    assert lost.value.code == "timeout"
    emulator.release()

    resumed = destination(emulator)             # a fresh process resuming the same run
    outcome = resumed.add(audience, rows, batch("add"))
    assert outcome.rejected == {}
    assert len(emulator.mutating_requests()) == 2
    assert all(emulator.add_counts[email_hash(i)] == 1 for i in range(3))

    destination(emulator, "run-2").add(audience, rows, batch("add"))   # another run: applied
    assert emulator.add_counts[email_hash(0)] == 2


def test_emulator_refuses_more_than_10000_rows(emulator, audience):
    dest = destination(emulator)
    rows = [Row(f"C{i}", {"EMAIL": sha256_hex(f"u{i}@x.com")}) for i in range(10_001)]
    with pytest.raises(BatchRejected) as refused:
        dest.add(audience, rows, batch("add"))
    assert refused.value.code == "meta_100"
    assert emulator.members(audience["audience_id"]) == set()

    dest.add(audience, rows[:10_000], batch("add", key="second"))
    assert len(emulator.members(audience["audience_id"])) == 10_000


def test_a_rejected_row_comes_back_while_the_rest_lands(emulator, audience):
    dest = destination(emulator)
    emulator.reject(email_hash(2))
    outcome = dest.add(audience, rows_for(dest, range(4)), batch("add"))
    assert set(outcome.rejected) == {"C2"}
    code, message = outcome.rejected["C2"]
    assert code == "invalid_entry" and "EMAIL" in message
    assert emulator.members(audience["audience_id"]) == {email_hash(i) for i in (0, 1, 3)}


def test_more_invalid_rows_than_samples_makes_the_engine_split(emulator, audience):
    dest = destination(emulator)
    rows = [Row(f"C{i}", {"EMAIL": sha256_hex(f"u{i}@x.com")}) for i in range(150)]
    for row in rows[:101]:
        emulator.reject(row.payload["EMAIL"])
    with pytest.raises(BatchRejected) as refused:     # 101 invalid, Meta samples only 100
        dest.add(audience, rows, batch("add", 1, 1))
    assert refused.value.code == "invalid_entries"
    halves = [dest.add(audience, rows[:75], batch("add", 1, 1, key="k/a")),
              dest.add(audience, rows[75:], batch("add", 1, 1, key="k/b"))]
    assert set(halves[0].rejected) | set(halves[1].rejected) == {f"C{i}" for i in range(101)}
    # the halves got their own batch_seq: neither was answered with the other's replay
    seqs = [r.body["session"]["batch_seq"] for r in emulator.mutating_requests()]
    assert len(set(seqs)) == 3
    assert len(emulator.members(audience["audience_id"])) == 49


def test_emulator_counts_badly_hashed_values_as_invalid_entries(emulator, audience):
    body = {"access_token": MetaEmulator.token,
            "payload": {"schema": ["EMAIL", "PHONE"],
                        "data": [["mary@example.com", ""], [MARY, ""], ["", PHONE.upper()]]},
            "session": {"session_id": 42, "batch_seq": 1, "last_batch_flag": True}}
    answer = requests.post(f"{emulator.url}/v25.0/{audience['audience_id']}/users", json=body,
                           timeout=5).json()
    assert answer["num_received"] == 3 and answer["num_invalid_entries"] == 2
    assert answer["invalid_entry_samples"] == {"mary@example.com": "EMAIL",
                                               PHONE.upper(): "PHONE"}
    assert emulator.members(audience["audience_id"]) == {MARY}

    body["payload"]["schema"] = ["EMAIL", "SSN"]
    body["session"]["batch_seq"] = 2
    refused = requests.post(f"{emulator.url}/v25.0/{audience['audience_id']}/users", json=body,
                            timeout=5)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 100


# ---- errors -------------------------------------------------------------------------------------

def test_throttle_is_retryable_after_the_time_meta_gives(emulator, audience):
    dest = destination(emulator)
    emulator.inject("rate_limit", retry_after=120)
    with pytest.raises(RetryableError) as throttled:
        dest.add(audience, rows_for(dest, [1]), batch("add"))
    assert throttled.value.code == "meta_80003_2446079"
    assert throttled.value.retry_after == 120.0
    assert throttled.value.request_id
    assert emulator.members(audience["audience_id"]) == set()
    dest.add(audience, rows_for(dest, [1]), batch("add"))          # the retry lands
    assert emulator.members(audience["audience_id"]) == {email_hash(1)}


class ThrottleAs403(MetaEmulator):
    """Meta also sends throttles (here code 17, user request limit) as HTTP 403."""

    def render_rate_limit(self, retry_after: float | None) -> Response:
        return graph_error(403, 17, "User request limit reached", 2446079)


def test_a_throttle_sent_as_403_is_retryable_not_fatal():
    with ThrottleAs403() as emu:
        dest = destination(emu)
        emu.inject("rate_limit")
        with pytest.raises(RetryableError) as throttled:
            dest.add({"audience_id": next(iter(emu.audiences))}, rows_for(dest, [1]),
                     batch("add"))
        assert throttled.value.code == "meta_17_2446079"


def test_expired_token_is_fatal(emulator, audience):
    dest = destination(emulator)
    emulator.inject("expired_token")
    with pytest.raises(FatalError) as expired:
        dest.add(audience, rows_for(dest, [1]), batch("add"))
    assert expired.value.code == "meta_190_463"

    wrong = MetaDestination("not-the-token", base_url=emulator.url)
    wrong.open(audience, "run-1", full_refresh=False)
    with pytest.raises(FatalError):
        wrong.add(audience, rows_for(wrong, [1]), batch("add"))
    assert "not-the-token" not in str(expired.value)


def test_server_error_is_retryable(emulator, audience):
    dest = destination(emulator)
    emulator.inject("server_error")
    with pytest.raises(RetryableError) as failed:
        dest.add(audience, rows_for(dest, [1]), batch("add"))
    assert failed.value.code == "meta_2"


def test_unknown_audience_is_fatal(emulator):
    dest = destination(emulator)
    with pytest.raises(FatalError) as unknown:
        dest.add({"audience_id": "999"}, rows_for(dest, [1]), batch("add"))
    assert unknown.value.code == "meta_100_33"


def test_audience_too_small_refuses_removals(emulator, audience):
    emulator.min_audience_size = 3
    dest = destination(emulator)
    dest.add(audience, rows_for(dest, range(4)), batch("add"))
    dest.remove(audience, rows_for(dest, [0]), batch("remove", 1, 2))   # 3 left: allowed
    with pytest.raises(RemovalsNotAllowed) as refused:
        dest.remove(audience, rows_for(dest, [1]), batch("remove", 2, 2))
    assert refused.value.code == "meta_200_1870047"
    assert emulator.members(audience["audience_id"]) == {email_hash(i) for i in (1, 2, 3)}


# ---- full refresh (usersreplace) ----------------------------------------------------------------

def test_replace_session_swaps_the_audience_on_its_last_batch(emulator, audience):
    old = destination(emulator, "run-1")
    old.add(audience, rows_for(old, range(3)), batch("add"))

    dest = destination(emulator, "run-2")
    dest.replace(audience, rows_for(dest, [2, 3]), batch("replace", 1, 2))
    assert emulator.members(audience["audience_id"]) == {email_hash(i) for i in range(3)}
    dest.replace(audience, rows_for(dest, [4]), batch("replace", 2, 2))
    assert emulator.members(audience["audience_id"]) == {email_hash(i) for i in (2, 3, 4)}
    dest.close(audience, succeeded=True)

    sessions = [r.body["session"] for r in emulator.requests if r.path.endswith("usersreplace")]
    assert [(s["batch_seq"], s["last_batch_flag"]) for s in sessions] == [(1, False), (2, True)]
    assert len(sessions) == 2                    # close() had nothing left to finish


def test_a_split_last_replace_batch_is_finished_by_close(emulator, audience):
    dest = destination(emulator, "run-3")
    dest.replace(audience, rows_for(dest, [0]), batch("replace", 1, 2))
    big = [Row(f"B{i}", {"EMAIL": sha256_hex(f"b{i}@x.com")}) for i in range(10_001)]
    with pytest.raises(BatchRejected):
        dest.replace(audience, big, batch("replace", 2, 2))
    # the engine splits the refused last batch; neither piece may end the session
    dest.replace(audience, big[:5000], batch("replace", 2, 2, key="r/2/a"))
    dest.replace(audience, big[5000:], batch("replace", 2, 2, key="r/2/b"))
    assert emulator.members(audience["audience_id"]) == set()
    dest.close(audience, succeeded=True)
    assert len(emulator.members(audience["audience_id"])) == 10_002

    sessions = [r.body["session"] for r in emulator.requests if r.path.endswith("usersreplace")]
    assert [(s["batch_seq"], s["last_batch_flag"]) for s in sessions] == [
        (1, False), (2, True), (2, False), (3, False), (4, True)]   # refused, pieces, close


def test_emulator_refuses_a_replace_session_without_its_first_batch(emulator, audience):
    body = {"access_token": MetaEmulator.token, "payload": {"schema": "EMAIL", "data": [MARY]},
            "session": json.dumps({"session_id": 5, "batch_seq": 2, "last_batch_flag": True})}
    refused = requests.post(f"{emulator.url}/v25.0/{audience['audience_id']}/usersreplace",
                            json=body, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["error"]["error_subcode"] == 1870147
    assert meta_identifiers(email="mary@example.com")[0] == MARY
