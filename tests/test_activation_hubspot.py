"""HubSpot destination against the local HubSpot emulator (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

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
from activation.destinations.hubspot import HubSpotDestination, safe_message
from activation.emulators.hubspot import MAX_BATCH_INPUTS, MAX_MEMBERSHIP_IDS, HubSpotEmulator

LIST = "101"
TARGET = {"list_id": LIST}
FIELDS = ["first_name", "recommended_products"]


def batch(operation: str = "add", number: int = 1, total: int = 1) -> Batch:
    return Batch(operation, number, total, f"aud:hubspot:run1:{operation}:{number}")


def contact(n: int, email: str | None = None, **properties) -> Contact:
    return Contact(customer_id=f"C{n}", email=email or f"customer{n}@example.com",
                   first_name=f"Name{n}", properties=properties)


@pytest.fixture(scope="module")
def server():
    with HubSpotEmulator(list_id=LIST) as running:
        yield running


@pytest.fixture
def emulator(server):
    server.reset(list_id=LIST)
    server.timeout_hold_seconds = HubSpotEmulator.timeout_hold_seconds
    return server


@pytest.fixture
def hubspot(emulator) -> HubSpotDestination:
    return HubSpotDestination(HubSpotEmulator.token, base_url=emulator.url, timeout=5)


def rows_for(destination: HubSpotDestination, contacts: list[Contact],
             fields: list[str] = FIELDS) -> list[Row]:
    return [Row(c.customer_id, destination.payload(c, fields)) for c in contacts]


def test_payload_is_the_email_and_the_audience_fields_as_hubspot_properties(hubspot):
    mary = Contact("C1", email="  Mary@Example.COM ", first_name="Mary", last_name="Major",
                   properties={"recommended_products": ["P1", "P2", "P3"], "score": float("nan"),
                               "is_vip": True})
    payload = hubspot.payload(mary, ["first_name", "last_name", "recommended_products", "score",
                                     "is_vip", "missing"])
    assert payload == {"email": "mary@example.com",
                       "properties": {"firstname": "Mary", "lastname": "Major",
                                      "recommended_products": "P1;P2;P3", "is_vip": "true"}}
    assert hubspot.payload(Contact("C2", email=None), FIELDS) is None
    assert hubspot.payload(Contact("C3", email="no-at-sign"), FIELDS) is None


def test_add_upserts_contacts_and_sets_list_membership_then_remove_by_record_id(emulator,
                                                                               hubspot):
    contacts = [contact(n, recommended_products=[f"P{n}", "P9"]) for n in range(1, 4)]
    hubspot.open(TARGET, "run1", full_refresh=False)
    outcome = hubspot.add(TARGET, rows_for(hubspot, contacts), batch())

    emails = {c.email for c in contacts}
    assert outcome.rejected == {}
    assert emulator.members(LIST) == emails
    assert outcome.destination_ids == {c.customer_id: emulator.record_id(c.email)
                                       for c in contacts}
    assert emulator.properties_of("customer2@example.com")["recommended_products"] == "P2;P9"
    assert emulator.properties_of("customer2@example.com")["firstname"] == "Name2"
    assert outcome.request_id
    upsert = next(r for r in emulator.requests if r.path.endswith("/batch/upsert"))
    assert {i["idProperty"] for i in upsert.body["inputs"]} == {"email"}

    removals = [Row(c.customer_id, hubspot.payload(c, FIELDS),
                    outcome.destination_ids[c.customer_id]) for c in contacts[:2]]
    removed = hubspot.remove(TARGET, removals, batch("remove"))

    assert removed.rejected == {}
    assert emulator.members(LIST) == {"customer3@example.com"}
    assert not any(r.path.endswith("/batch/read") for r in emulator.requests)
    membership = [r.body for r in emulator.requests if r.path.endswith("/add-and-remove")]
    assert membership[-1] == {"recordIdsToAdd": [],
                              "recordIdsToRemove": [outcome.destination_ids["C1"],
                                                    outcome.destination_ids["C2"]]}


def test_remove_without_record_id_finds_the_contact_by_email(emulator, hubspot):
    contacts = [contact(1), contact(2)]
    hubspot.add(TARGET, rows_for(hubspot, contacts), batch())
    never_sent = contact(3)

    outcome = hubspot.remove(TARGET, rows_for(hubspot, [contacts[0], never_sent]),
                             batch("remove"))

    assert outcome.rejected == {}          # a contact HubSpot never had is not in the list
    assert emulator.members(LIST) == {"customer2@example.com"}
    assert sum(r.path.endswith("/batch/read") for r in emulator.requests) == 1


def test_resending_an_add_updates_the_contact_without_duplicating_it(emulator, hubspot):
    first = [contact(1, recommended_products=["P1"])]
    hubspot.add(TARGET, rows_for(hubspot, first), batch())
    again = [contact(1, recommended_products=["P7"])]
    outcome = hubspot.add(TARGET, rows_for(hubspot, again), batch())

    assert len(emulator.contacts) == 1
    assert emulator.members(LIST) == {"customer1@example.com"}
    assert emulator.properties_of("customer1@example.com")["recommended_products"] == "P7"
    assert emulator.add_count(LIST, "customer1@example.com") == 2
    assert outcome.destination_ids["C1"] == emulator.record_id("customer1@example.com")


def test_two_customers_sharing_an_email_are_sent_once_and_both_confirmed(emulator, hubspot):
    twins = [contact(1, email="shared@example.com"), contact(2, email="Shared@Example.com")]
    outcome = hubspot.add(TARGET, rows_for(hubspot, twins), batch())

    upsert = next(r for r in emulator.requests if r.path.endswith("/batch/upsert"))
    assert len(upsert.body["inputs"]) == 1
    record = emulator.record_id("shared@example.com")
    assert outcome.destination_ids == {"C1": record, "C2": record}


def test_a_rejected_row_comes_back_alone_while_the_rest_of_the_batch_lands(emulator, hubspot):
    emulator.reject("blocked@example.com")
    contacts = [contact(1), contact(2, email="blocked@example.com"),
                contact(3, email="broken@nowhere"), contact(4)]

    outcome = hubspot.add(TARGET, rows_for(hubspot, contacts), batch())

    assert set(outcome.rejected) == {"C2", "C3"}
    assert {code for code, _ in outcome.rejected.values()} == {"INVALID_EMAIL"}
    for _, message in outcome.rejected.values():
        assert "@" not in message and "<email>" in message
    assert emulator.members(LIST) == {"customer1@example.com", "customer4@example.com"}
    assert set(outcome.destination_ids) == {"C1", "C4"}


def test_the_emulator_refuses_batches_over_the_documented_limits(emulator, hubspot):
    assert HubSpotDestination.max_batch == MAX_BATCH_INPUTS == 100
    too_many = [contact(n) for n in range(MAX_BATCH_INPUTS + 1)]
    with pytest.raises(BatchRejected):
        hubspot.add(TARGET, rows_for(hubspot, too_many), batch())
    assert emulator.contacts == {} and emulator.members(LIST) == set()

    response = requests.put(
        f"{emulator.url}/crm/v3/lists/{LIST}/memberships/add-and-remove",
        json={"recordIdsToAdd": [str(i) for i in range(MAX_MEMBERSHIP_IDS + 1)],
              "recordIdsToRemove": []},
        headers={"Authorization": f"Bearer {HubSpotEmulator.token}"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_ten_secondly_rate_limit_is_retryable_with_retry_after(emulator, hubspot):
    hubspot.open(TARGET, "run1", full_refresh=False)
    emulator.inject("rate_limit", retry_after=0.25)

    with pytest.raises(RetryableError) as caught:
        hubspot.add(TARGET, rows_for(hubspot, [contact(1)]), batch())

    assert caught.value.retry_after == 0.25
    assert "TEN_SECONDLY_ROLLING" in str(caught.value)
    assert emulator.contacts == {}
    hubspot.add(TARGET, rows_for(hubspot, [contact(1)]), batch())   # the retry lands
    assert emulator.members(LIST) == {"customer1@example.com"}


def test_daily_rate_limit_stops_the_sync(emulator, hubspot):
    hubspot.open(TARGET, "run1", full_refresh=False)
    emulator.rate_limit_policy = "DAILY"
    emulator.inject("rate_limit", retry_after=0)

    with pytest.raises(FatalError) as caught:
        hubspot.add(TARGET, rows_for(hubspot, [contact(1)]), batch())

    assert caught.value.code == "rate_limited_daily"
    assert "daily" in str(caught.value).lower()


def test_expired_or_wrong_token_is_fatal(emulator, hubspot):
    emulator.inject("expired_token")
    with pytest.raises(FatalError) as caught:
        hubspot.add(TARGET, rows_for(hubspot, [contact(1)]), batch())
    assert caught.value.code == "http_401"
    assert emulator.contacts == {}

    wrong = HubSpotDestination("pat-na1-revoked", base_url=emulator.url, timeout=5)
    with pytest.raises(FatalError) as caught:
        wrong.open(TARGET, "run1", full_refresh=False)
    assert caught.value.code == "http_401"


def test_server_errors_and_timeouts_are_retryable(emulator):
    emulator.timeout_hold_seconds = 1.0
    hubspot = HubSpotDestination(HubSpotEmulator.token, base_url=emulator.url, timeout=0.2)
    hubspot.open(TARGET, "run1", full_refresh=False)
    emulator.inject("server_error")
    with pytest.raises(RetryableError):
        hubspot.add(TARGET, rows_for(hubspot, [contact(1)]), batch())
    emulator.inject("timeout")
    with pytest.raises(RetryableError) as caught:
        hubspot.add(TARGET, rows_for(hubspot, [contact(1)]), batch())
    assert caught.value.code == "timeout"


def test_only_manual_contact_lists_are_accepted(emulator, hubspot):
    dynamic = emulator.create_list("Active customers", "DYNAMIC")
    with pytest.raises(FatalError) as caught:
        hubspot.open({"list_id": dynamic}, "run1", full_refresh=False)
    assert caught.value.code == "list_not_manual"
    with pytest.raises(FatalError) as caught:
        hubspot.open({"list_id": "999"}, "run1", full_refresh=False)
    assert caught.value.code == "list_not_found"

    hubspot.add(TARGET, rows_for(hubspot, [contact(1)]), batch())
    record = emulator.record_id("customer1@example.com")
    response = requests.put(
        f"{emulator.url}/crm/v3/lists/{dynamic}/memberships/add-and-remove",
        json={"recordIdsToAdd": [record], "recordIdsToRemove": []},
        headers={"Authorization": f"Bearer {HubSpotEmulator.token}"}, timeout=5)
    assert response.status_code == 400
    assert emulator.members(dynamic) == set()


def test_a_property_missing_in_hubspot_stops_the_sync_and_names_it(emulator, hubspot):
    emulator.reset(list_id=LIST, properties={"recommended_products"})
    rows = rows_for(hubspot, [contact(1, favourite_colour="blue")], ["favourite_colour"])
    with pytest.raises(FatalError) as caught:
        hubspot.add(TARGET, rows, batch())
    assert caught.value.code == "property_doesnt_exist"
    assert "favourite_colour" in str(caught.value)
    assert emulator.contacts == {}

    renamed = {"list_id": LIST, "property_names": {"favourite_colour": "recommended_products"}}
    outcome = hubspot.add(renamed, rows, batch())
    assert outcome.rejected == {}
    assert emulator.properties_of("customer1@example.com")["recommended_products"] == "blue"


def test_a_record_deleted_in_hubspot_counts_as_removed(emulator, hubspot):
    outcome = hubspot.add(TARGET, rows_for(hubspot, [contact(1)]), batch())
    record = outcome.destination_ids["C1"]
    emulator.delete_contact("customer1@example.com")

    removed = hubspot.remove(TARGET, [Row("C1", {"email": "customer1@example.com"}, record)],
                             batch("remove"))
    assert removed.rejected == {}
    assert emulator.members(LIST) == set()


def test_safe_message_hides_emails():
    assert safe_message('Email address "Mary.Major+x@Example.com" is invalid') == \
        'Email address "<email>" is invalid'
