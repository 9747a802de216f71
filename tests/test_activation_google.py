"""Google Data Manager destination against its emulator (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json

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
from activation.destinations.google import GoogleDataManagerDestination, TokenBucket, destination
from activation.emulators.google import GoogleEmulator
from activation.normalize import google_email, meta_email, sha256_hex

LIST_ID, ACCOUNT_ID = "9876543210", "1234567890"
TARGET = {"operating_account_id": ACCOUNT_ID, "account_type": "GOOGLE_ADS",
          "user_list_id": LIST_ID}


def batch(operation: str = "add", number: int = 1, total: int = 1) -> Batch:
    return Batch(operation, number, total, f"aud:google:run:{operation}:{number}")


def contacts(n: int) -> list[Contact]:
    return [Contact(f"c{i}", email=f"Person.{i}@Example.com", phone=f"+1 555 010 {i:04d}",
                    first_name="Mary", country="US") for i in range(n)]


def email_hash(email: str) -> str:
    return sha256_hex(google_email(email))


@pytest.fixture(scope="module")
def server():
    with GoogleEmulator(LIST_ID, ACCOUNT_ID) as server:
        yield server


@pytest.fixture
def emulator(server):
    server.reset()
    return server


@pytest.fixture
def client(emulator):
    return GoogleDataManagerDestination(emulator.token, base_url=emulator.url, timeout=2.0)


@pytest.fixture
def offline():
    """A client for payload tests: nothing is sent."""
    return GoogleDataManagerDestination("unused", base_url="http://127.0.0.1:9")


def rows_for(client, people: list[Contact]) -> list[Row]:
    return [Row(c.customer_id, client.payload(c, [])) for c in people]


# ---- normalization and payload ------------------------------------------------------------------

def test_google_hash_matches_the_published_vector_and_differs_from_meta(offline):
    payload = offline.payload(Contact("c1", email=" Mary@Example.com "), [])
    assert payload == {"userData": {"userIdentifiers": [
        {"emailAddress": "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"}]}}

    gmail = offline.payload(Contact("c2", email="John.Doe+x@gmail.com"), [])
    google_hash = gmail["userData"]["userIdentifiers"][0]["emailAddress"]
    assert google_hash == sha256_hex("johndoe@gmail.com")
    assert google_hash != sha256_hex(meta_email("John.Doe+x@gmail.com"))


def test_phone_is_hashed_in_e164_with_plus(offline):
    payload = offline.payload(Contact("c1", phone="(555) 987-6543", country="US"), [])
    assert payload["userData"]["userIdentifiers"] == [{"phoneNumber": sha256_hex("+15559876543")}]


def test_payload_carries_only_hashes_and_none_without_identifier(offline):
    contact = Contact("c1", email="Mary.Jones@example.com", phone="+44 20 7946 0958",
                      first_name="Mary", last_name="Jones", country="GB",
                      properties={"top_products": ["mug"]})
    payload = offline.payload(contact, ["first_name", "top_products"])
    text = json.dumps(payload)
    for raw in ("Mary", "mary", "Jones", "example.com", "7946", "mug", "GB"):
        assert raw not in text
    values = [v for identifier in payload["userData"]["userIdentifiers"]
              for v in identifier.values()]
    assert len(values) == 2 and all(len(v) == 64 for v in values)
    assert offline.payload(Contact("c2", first_name="Mary", country="US"), []) is None
    assert offline.payload(Contact("c3", email="not-an-email", phone="12"), []) is None


# ---- add and remove -----------------------------------------------------------------------------

def test_add_then_remove_updates_the_user_list(emulator, client):
    people = contacts(5)
    rows = rows_for(client, people)
    outcome = client.add(TARGET, rows, batch())
    assert outcome.rejected == {}
    assert outcome.request_id and len(outcome.request_id) == 32
    assert emulator.members(LIST_ID, "emailAddress") == {email_hash(c.email) for c in people}
    assert len(emulator.members(LIST_ID, "phoneNumber")) == 5

    body = emulator.mutating_requests()[-1].body
    assert body["destinations"] == [{"operatingAccount": {"accountType": "GOOGLE_ADS",
                                                          "accountId": ACCOUNT_ID},
                                     "productDestinationId": LIST_ID}]
    assert body["encoding"] == "HEX" and body["validateOnly"] is False
    assert body["termsOfService"] == {"customerMatchTermsOfServiceStatus": "ACCEPTED"}
    assert all(m["consent"] == {"adUserData": "CONSENT_GRANTED",
                                "adPersonalization": "CONSENT_GRANTED"}
               for m in body["audienceMembers"])
    assert emulator.mutating_requests()[-1].headers["authorization"] == f"Bearer {emulator.token}"

    outcome = client.remove(TARGET, rows[:2], batch("remove"))
    assert outcome.rejected == {} and outcome.request_id
    assert emulator.members(LIST_ID, "emailAddress") == {email_hash(c.email) for c in people[2:]}
    assert len(emulator.members(LIST_ID)) == 6            # 3 members x (email, phone)
    removal = emulator.mutating_requests()[-1]
    assert removal.path == "/v1/audienceMembers:remove"
    assert "termsOfService" not in removal.body
    assert set(emulator.add_counts(LIST_ID).values()) == {1}

    status = client.request_status(outcome.request_id)["requestStatusPerDestination"][0]
    assert status["requestStatus"] == "SUCCESS"
    assert status["audienceMembersRemovalStatus"]["userDataRemovalStatus"]["recordCount"] == "2"


def test_no_raw_pii_reaches_the_platform(emulator, client):
    people = contacts(3)
    client.add(TARGET, rows_for(client, people), batch())
    sent = b"".join(r.raw for r in emulator.requests)
    for c in people:
        assert c.email.encode() not in sent and c.email.lower().encode() not in sent
        assert c.phone.replace(" ", "").encode() not in sent
    assert b"Mary" not in sent


def test_validate_only_changes_nothing(emulator):
    client = GoogleDataManagerDestination(emulator.token, base_url=emulator.url,
                                          validate_only=True)
    outcome = client.add(TARGET, rows_for(client, contacts(2)), batch())
    assert outcome.rejected == {}
    assert emulator.mutating_requests()[-1].body["validateOnly"] is True
    assert emulator.members(LIST_ID) == set()


def test_request_over_the_member_limit_is_refused(emulator, client):
    assert client.max_batch == client.max_remove_batch == 10_000
    rows = [Row(f"c{i}", {"userData": {"userIdentifiers": [{"emailAddress": sha256_hex(str(i))}]}})
            for i in range(10_001)]
    with pytest.raises(BatchRejected) as refused:
        client.add(TARGET, rows, batch())
    assert refused.value.code == "INVALID_ARGUMENT"
    assert emulator.members(LIST_ID) == set()
    client.add(TARGET, rows[:10_000], batch())
    assert len(emulator.members(LIST_ID)) == 10_000


# ---- per-row refusals ---------------------------------------------------------------------------

def test_rejected_member_is_reported_alone_and_the_rest_land(emulator, client):
    people = contacts(6)
    emulator.reject_email(people[3].email)
    outcome = client.add(TARGET, rows_for(client, people), batch())

    assert outcome.rejected == {"c3": ("INVALID_AUDIENCE_MEMBER",
                                       "This audience member is not valid.")}
    expected = {email_hash(c.email) for c in people if c.customer_id != "c3"}
    assert emulator.members(LIST_ID, "emailAddress") == expected
    first, second = emulator.mutating_requests()
    assert len(first.body["audienceMembers"]) == 6 and len(second.body["audienceMembers"]) == 5
    assert set(emulator.add_counts(LIST_ID).values()) == {1}      # nothing was sent twice
    assert outcome.request_id is not None


def test_malformed_hashes_are_rejected_per_row(emulator, client):
    good = rows_for(client, contacts(2))
    bad = [Row("plain", {"userData": {"userIdentifiers": [{"emailAddress": "mary@example.com"}]}}),
           Row("short", {"userData": {"userIdentifiers": [{"emailAddress": "abc123"}]}})]
    outcome = client.add(TARGET, [good[0], bad[0], bad[1], good[1]], batch())
    assert outcome.rejected["plain"][0] == "INVALID_HEX_ENCODING"
    assert outcome.rejected["short"][0] == "INVALID_SHA256_FORMAT"
    assert "mary@example.com" not in json.dumps(outcome.rejected)
    assert len(emulator.members(LIST_ID, "emailAddress")) == 2


def test_every_row_rejected_sends_no_second_request(emulator, client):
    people = contacts(2)
    for c in people:
        emulator.reject_email(c.email)
    outcome = client.add(TARGET, rows_for(client, people), batch())
    assert set(outcome.rejected) == {"c0", "c1"}
    assert len(emulator.mutating_requests()) == 1 and emulator.members(LIST_ID) == set()


# ---- throttling, outages, credentials, configuration --------------------------------------------

def test_injected_429_is_retryable_with_retry_after(emulator, client):
    emulator.inject("rate_limit", retry_after=0.25)
    with pytest.raises(RetryableError) as throttled:
        client.add(TARGET, rows_for(client, contacts(1)), batch())
    assert throttled.value.code == "rate_limited" and throttled.value.retry_after == 0.25
    assert emulator.members(LIST_ID) == set()
    client.add(TARGET, rows_for(client, contacts(1)), batch())
    assert len(emulator.members(LIST_ID, "emailAddress")) == 1


def test_emulator_enforces_requests_per_minute_in_googles_shape():
    with GoogleEmulator(LIST_ID, ACCOUNT_ID, requests_per_minute=2) as emulator:
        client = GoogleDataManagerDestination(emulator.token, base_url=emulator.url,
                                              requests_per_minute=None)
        rows = rows_for(client, contacts(1))
        client.add(TARGET, rows, batch())
        client.remove(TARGET, rows, batch("remove"))
        with pytest.raises(RetryableError) as throttled:
            client.add(TARGET, rows, batch())
        assert throttled.value.code == "rate_limited"
        raw = requests.post(f"{emulator.url}/v1/audienceMembers:ingest", json={},
                            headers={"Authorization": f"Bearer {emulator.token}"}, timeout=2)
    assert raw.status_code == 429
    assert raw.json()["error"]["code"] == 429
    assert raw.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert emulator.members(LIST_ID) == set()


def test_server_error_is_retryable(emulator, client):
    emulator.inject("server_error")
    with pytest.raises(RetryableError) as failed:
        client.remove(TARGET, rows_for(client, contacts(1)), batch("remove"))
    assert failed.value.code == "http_500"


def test_expired_or_wrong_token_is_fatal(emulator, client):
    emulator.inject("expired_token")
    with pytest.raises(FatalError):
        client.add(TARGET, rows_for(client, contacts(1)), batch())
    stranger = GoogleDataManagerDestination("not-the-token", base_url=emulator.url)
    with pytest.raises(FatalError):
        stranger.add(TARGET, rows_for(stranger, contacts(1)), batch())
    assert emulator.members(LIST_ID) == set()


def test_unknown_user_list_or_incomplete_target_is_fatal(emulator, client):
    rows = rows_for(client, contacts(1))
    with pytest.raises(FatalError) as unknown:
        client.add(dict(TARGET, user_list_id="111"), rows, batch())
    assert "INVALID_USER_LIST_ID" in str(unknown.value)
    with pytest.raises(FatalError):
        client.add({"user_list_id": LIST_ID}, rows, batch())


def test_destination_carries_login_account_when_configured():
    built = destination(dict(TARGET, operating_account_id="123-456-7890",
                             login_account_id="999-000-1111"))
    assert built == {"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
                     "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "9990001111"},
                     "productDestinationId": LIST_ID}


def test_token_bucket_paces_requests_to_the_quota():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(per_minute=300, burst=2, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits[:2] == [0.0, 0.0]                        # the burst
    assert waits[2:] == pytest.approx([0.2, 0.2, 0.2])    # then 5 per second
    assert now[0] == pytest.approx(0.6)
