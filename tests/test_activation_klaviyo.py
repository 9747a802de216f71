"""Klaviyo destination against the Klaviyo emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import requests

from activation.destinations.base import (
    Batch,
    BatchRejected,
    Contact,
    FatalError,
    RetryableError,
    Row,
)
from activation.destinations.klaviyo import KlaviyoDestination
from activation.emulators.klaviyo import KlaviyoEmulator

LIST = "Y6nRLr"
TARGET = {"list_id": LIST}
FIELDS = ["first_name", "country", "top_products"]


@pytest.fixture
def emulator():
    with KlaviyoEmulator(list_id=LIST) as emu:
        yield emu


def client(emu: KlaviyoEmulator, **kwargs) -> KlaviyoDestination:
    options = {"poll_interval": 0.001, "poll_timeout": 2.0, "timeout": 2.0} | kwargs
    return KlaviyoDestination(emu.token, base_url=emu.url, **options)


def batch(operation: str = "add", number: int = 1, key: str | None = None) -> Batch:
    return Batch(operation, number, 1, key or f"aud:klaviyo:run1:{operation}:{number}")


def contact(i: int, **kwargs) -> Contact:
    values = {"customer_id": f"C{i}", "email": f"  Shopper{i}@Example.com ",
              "first_name": f"Ann{i}", "last_name": "Lee", "country": "ES",
              "properties": {"top_products": [f"P{i}", "P2", "P3"], "segment": "vip"}} | kwargs
    return Contact(**values)


def rows_for(dest: KlaviyoDestination, contacts: list[Contact]) -> list[Row]:
    return [Row(c.customer_id, dest.payload(c, FIELDS)) for c in contacts]


def email(i: int) -> str:
    return f"shopper{i}@example.com"


# ---- payload ----------------------------------------------------------------------------------

OFFLINE = KlaviyoDestination("pk_unused", base_url="http://127.0.0.1:9")


def test_payload_is_email_plus_requested_fields_as_klaviyo_profile_attributes():
    dest = OFFLINE
    assert dest.payload(contact(1), FIELDS) == {
        "email": "shopper1@example.com", "first_name": "Ann1", "location": {"country": "ES"},
        "properties": {"top_products": ["P1", "P2", "P3"]}}
    # only what the audience asks for: no last name, no unrequested property
    assert dest.payload(contact(1), []) == {"email": "shopper1@example.com"}
    assert dest.payload(contact(1, first_name="  ", properties={}), FIELDS) == {
        "email": "shopper1@example.com", "location": {"country": "ES"}}


def test_payload_values_are_json_ready():
    person = contact(1, properties={"top_products": np.array(["P1", "P2"]), "orders": np.int64(3),
                                    "last_order": pd.Timestamp("2026-01-02")})
    payload = OFFLINE.payload(person, ["top_products", "orders", "last_order"])
    assert json.loads(json.dumps(payload))["properties"] == {
        "top_products": ["P1", "P2"], "orders": 3, "last_order": "2026-01-02T00:00:00"}


@pytest.mark.parametrize("value", [None, "", "   ", "not-an-email", "a b@example.com"])
def test_payload_is_none_without_a_usable_email(value):
    assert OFFLINE.payload(contact(1, email=value), FIELDS) is None


# ---- add and remove ---------------------------------------------------------------------------

def test_add_then_remove_changes_list_membership(emulator):
    dest = client(emulator)
    rows = rows_for(dest, [contact(i) for i in range(5)])
    added = dest.add(TARGET, rows, batch())

    assert added.rejected == {}
    assert emulator.members(LIST) == {email(i) for i in range(5)}
    assert added.destination_ids == {f"C{i}": emulator.profile(email(i))["id"] for i in range(5)}
    assert added.request_id in emulator.jobs
    stored = emulator.profile(email(2))
    assert stored["first_name"] == "Ann2" and stored["location"] == {"country": "ES"}
    assert stored["properties"] == {"top_products": ["P2", "P2", "P3"]}

    removals = [Row(f"C{i}", {}, added.destination_ids[f"C{i}"]) for i in (1, 3)]
    removed = dest.remove(TARGET, removals, batch("remove"))
    assert removed.rejected == {}
    assert removed.request_id
    assert emulator.members(LIST) == {email(i) for i in (0, 2, 4)}
    # removal takes the profile off the list; the profile itself stays in Klaviyo
    assert emulator.profile(email(1)) is not None


def test_requests_carry_the_documented_headers_and_json_api_body(emulator):
    dest = client(emulator)
    dest.add(TARGET, rows_for(dest, [contact(1)]), batch())
    post = emulator.mutating_requests()[0]
    assert post.path == "/api/profile-bulk-import-jobs"
    assert post.headers["authorization"] == f"Klaviyo-API-Key {emulator.token}"
    assert post.headers["revision"] == "2026-04-15"
    assert post.headers["content-type"] == "application/vnd.api+json"
    data = post.body["data"]
    assert data["type"] == "profile-bulk-import-job"
    assert data["relationships"] == {"lists": {"data": [{"type": "list", "id": LIST}]}}
    assert data["attributes"]["profiles"]["data"][0]["type"] == "profile"
    assert all(r.headers.get("revision") == "2026-04-15" for r in emulator.requests)


def test_emulator_refuses_requests_without_revision_header(emulator):
    response = requests.get(f"{emulator.url}/api/profile-bulk-import-jobs/x",
                            headers={"Authorization": f"Klaviyo-API-Key {emulator.token}"},
                            timeout=5)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "revision"}


def test_large_job_maps_every_profile_id_across_pages(emulator):
    dest = client(emulator)
    rows = rows_for(dest, [contact(i) for i in range(250)])
    outcome = dest.add(TARGET, rows, batch())
    assert len(outcome.destination_ids) == 250 and outcome.rejected == {}
    assert len(set(outcome.destination_ids.values())) == 250
    pages = [r for r in emulator.requests if r.path.endswith("/profiles")]
    assert len(pages) == 3                                   # 100 + 100 + 50


def test_readding_updates_the_profile_without_a_second_list_entry(emulator):
    dest = client(emulator)
    first = dest.add(TARGET, rows_for(dest, [contact(1)]), batch())
    renamed = contact(1, first_name="Anna")
    second = dest.add(TARGET, rows_for(dest, [renamed]), batch(number=2))
    assert first.destination_ids == second.destination_ids
    assert emulator.profile(email(1))["first_name"] == "Anna"
    assert emulator.members(LIST) == {email(1)}
    assert emulator.add_count(LIST, email(1)) == 2


# ---- polling ----------------------------------------------------------------------------------

def test_add_polls_the_job_until_complete(emulator):
    emulator.complete_after_polls = 3
    dest = client(emulator)
    outcome = dest.add(TARGET, rows_for(dest, [contact(1), contact(2)]), batch())
    job_path = f"/api/profile-bulk-import-jobs/{outcome.request_id}"
    polls = [r for r in emulator.requests if r.method == "GET" and r.path == job_path]
    assert len(polls) == 3
    assert set(outcome.destination_ids) == {"C1", "C2"}


def test_unfinished_job_is_retryable_and_the_retry_resumes_it_without_reimporting(emulator):
    emulator.complete_after_polls = 50
    dest = client(emulator, poll_interval=0.001, poll_timeout=0.0)
    rows = rows_for(dest, [contact(1), contact(2)])
    with pytest.raises(RetryableError) as caught:
        dest.add(TARGET, rows, batch())
    assert caught.value.code == "job_pending"

    emulator.complete_after_polls = 0
    outcome = dest.add(TARGET, rows, batch())
    assert set(outcome.destination_ids) == {"C1", "C2"}
    assert len(emulator.mutating_requests()) == 1            # one import job, polled twice
    assert emulator.add_count(LIST, email(1)) == 1


def test_throttled_polling_is_retried_locally(emulator):
    emulator.inject("rate_limit", times=2, retry_after=0, path=r"/api/profile-bulk-import-jobs/.+")
    dest = client(emulator)
    outcome = dest.add(TARGET, rows_for(dest, [contact(1)]), batch())
    assert set(outcome.destination_ids) == {"C1"}
    assert len(emulator.mutating_requests()) == 1


# ---- per-row refusals -------------------------------------------------------------------------

def test_rejected_row_comes_back_alone_while_the_rest_lands(emulator, caplog):
    caplog.set_level(logging.DEBUG)
    emulator.reject(email(2))
    dest = client(emulator)
    outcome = dest.add(TARGET, rows_for(dest, [contact(i) for i in range(4)]), batch())

    assert set(outcome.rejected) == {"C2"}
    code, message = outcome.rejected["C2"]
    assert code == "invalid" and "@" not in message
    assert set(outcome.destination_ids) == {"C0", "C1", "C3"}
    assert emulator.members(LIST) == {email(0), email(1), email(3)}
    assert "@" not in caplog.text


def test_import_error_is_mapped_by_email_even_when_rows_are_reordered(emulator):
    dest = client(emulator)
    rows = [Row("C1", {"email": "shopper1@example.com"}),
            Row("BAD", {"email": "no-dot@localhost"}),
            Row("C3", {"email": "shopper3@example.com"})]
    outcome = dest.add(TARGET, rows, batch())
    assert set(outcome.rejected) == {"BAD"}
    assert set(outcome.destination_ids) == {"C1", "C3"}


def test_oversized_profile_is_rejected_before_sending(emulator):
    dest = client(emulator)
    big = contact(9, properties={"top_products": ["x" * 200_000]})
    outcome = dest.add(TARGET, rows_for(dest, [contact(1), big]), batch())
    assert outcome.rejected["C9"][0] == "profile_too_large"
    assert emulator.members(LIST) == {email(1)}


def test_remove_without_a_profile_id_is_rejected_not_confirmed(emulator):
    dest = client(emulator)
    added = dest.add(TARGET, rows_for(dest, [contact(1)]), batch())
    outcome = dest.remove(TARGET, [Row("C1", {}, added.destination_ids["C1"]), Row("C2", {})],
                          batch("remove"))
    assert set(outcome.rejected) == {"C2"}
    assert outcome.rejected["C2"][0] == "no_profile_id"
    assert emulator.members(LIST) == set()


# ---- limits -----------------------------------------------------------------------------------

def test_emulator_refuses_an_import_over_10000_profiles(emulator):
    dest = client(emulator)
    rows = [Row(f"C{i}", {"email": f"s{i}@example.com"}) for i in range(10_001)]
    with pytest.raises(BatchRejected):
        dest.add(TARGET, rows, batch())
    assert emulator.members(LIST) == set() and emulator.jobs == {}
    outcome = dest.add(TARGET, rows[:10_000], batch(number=2))
    assert len(outcome.destination_ids) == 10_000


def test_emulator_refuses_a_removal_over_1000_profiles(emulator):
    dest = client(emulator)
    added = dest.add(TARGET, rows_for(dest, [contact(1)]), batch())
    rows = [Row("C1", {}, added.destination_ids["C1"])]
    rows += [Row(f"X{i}", {}, f"P{i}") for i in range(1_000)]
    with pytest.raises(BatchRejected):
        dest.remove(TARGET, rows, batch("remove"))
    assert emulator.members(LIST) == {email(1)}
    dest.remove(TARGET, rows[:1_000], batch("remove", 2))
    assert emulator.members(LIST) == set()


def test_payload_over_5_mb_is_refused_as_a_batch_to_split(emulator):
    dest = client(emulator)
    rows = [Row(f"C{i}", {"email": f"s{i}@example.com", "properties": {"blob": "x" * 60_000}})
            for i in range(100)]
    with pytest.raises(BatchRejected) as caught:
        dest.add(TARGET, rows, batch())
    assert caught.value.code == "payload_too_large"
    assert emulator.requests == []


def test_emulator_refuses_an_oversized_body_with_413(emulator):
    body = json.dumps({"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {
        "data": [{"type": "profile", "attributes": {"email": "a@b.co", "x": "y" * 6_000_000}}]}}}})
    response = requests.post(f"{emulator.url}/api/profile-bulk-import-jobs", data=body, timeout=10,
                             headers={"Authorization": f"Klaviyo-API-Key {emulator.token}",
                                      "revision": "2026-04-15"})
    assert response.status_code == 413
    assert emulator.jobs == {}


# ---- errors -----------------------------------------------------------------------------------

def test_429_is_retryable_with_retry_after(emulator):
    emulator.inject("rate_limit", retry_after=7)
    dest = client(emulator)
    with pytest.raises(RetryableError) as caught:
        dest.add(TARGET, rows_for(dest, [contact(1)]), batch())
    assert caught.value.retry_after == 7
    assert emulator.members(LIST) == set()
    assert set(dest.add(TARGET, rows_for(dest, [contact(1)]), batch()).destination_ids) == {"C1"}


def test_429_on_removal_is_retryable(emulator):
    dest = client(emulator)
    added = dest.add(TARGET, rows_for(dest, [contact(1)]), batch())
    emulator.inject("rate_limit", retry_after=0)
    with pytest.raises(RetryableError) as caught:
        dest.remove(TARGET, [Row("C1", {}, added.destination_ids["C1"])], batch("remove"))
    assert caught.value.retry_after == 0
    assert emulator.members(LIST) == {email(1)}


def test_server_error_is_retryable(emulator):
    emulator.inject("server_error")
    dest = client(emulator)
    with pytest.raises(RetryableError):
        dest.add(TARGET, rows_for(dest, [contact(1)]), batch())


def test_expired_key_is_fatal(emulator):
    emulator.inject("expired_token")
    dest = client(emulator)
    with pytest.raises(FatalError):
        dest.add(TARGET, rows_for(dest, [contact(1)]), batch())


def test_wrong_key_is_fatal(emulator):
    dest = KlaviyoDestination("pk_wrong", base_url=emulator.url, timeout=2.0)
    with pytest.raises(FatalError):
        dest.add(TARGET, rows_for(dest, [contact(1)]), batch())
    assert emulator.members(LIST) == set()


def test_unknown_list_is_fatal(emulator):
    dest = client(emulator)
    with pytest.raises(FatalError) as caught:
        dest.add({"list_id": "NoSuch"}, rows_for(dest, [contact(1)]), batch())
    assert caught.value.code == "not_found"
    with pytest.raises(FatalError):
        dest.add({}, rows_for(dest, [contact(1)]), batch())
