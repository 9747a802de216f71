"""The sync engine against every platform's emulator: the same audience, each platform's API."""

from __future__ import annotations

import duckdb
import pytest

from activation.audiences import Audience, Target
from activation.destinations.google import GoogleDataManagerDestination
from activation.destinations.hubspot import HubSpotDestination
from activation.destinations.klaviyo import KlaviyoDestination
from activation.destinations.meta import MetaDestination
from activation.emulators.google import GoogleEmulator
from activation.emulators.hubspot import HubSpotEmulator
from activation.emulators.klaviyo import KlaviyoEmulator
from activation.emulators.meta import MetaEmulator
from activation.engine import SyncOptions, sync
from activation.normalize import google_email, meta_email, sha256_hex
from core.privacy import customer_key
from tests.test_activation_engine import make_warehouse

N = 40


def email(i: int) -> str:
    return f"person.{i}@example.com"


PLATFORMS = {
    # name: (emulator factory, destination factory, target, member key of customer i)
    "hubspot": (lambda: HubSpotEmulator(list_id="101"),
                lambda e: HubSpotDestination(e.token, base_url=e.url),
                {"list_id": "101"}, email, lambda e: e.members("101")),
    "klaviyo": (lambda: KlaviyoEmulator(list_id="Y6nRLr"),
                lambda e: KlaviyoDestination(e.token, base_url=e.url, poll_interval=0.01),
                {"list_id": "Y6nRLr"}, email, lambda e: e.members("Y6nRLr")),
    "meta": (lambda: MetaEmulator(audience_id="2385"),
             lambda e: MetaDestination(e.token, base_url=e.url),
             {"audience_id": "2385"}, lambda i: sha256_hex(meta_email(email(i))),
             lambda e: e.members("2385")),
    "google": (lambda: GoogleEmulator(user_list_id="987", operating_account_id="123"),
               lambda e: GoogleDataManagerDestination(e.token, base_url=e.url),
               {"operating_account_id": "123", "user_list_id": "987"},
               lambda i: sha256_hex(google_email(email(i))),
               lambda e: e.members("987", kind="emailAddress")),
}


def run(db, platform: str, emulator, run_id: str, **options):
    _, make_destination, target, _, _ = PLATFORMS[platform]
    audience = Audience("vip", "rfm_champions", ("first_name", "top_3_recommendations")
                        if platform in ("hubspot", "klaviyo") else (), 0.0,
                        (Target(platform, platform, target),))
    with duckdb.connect(str(db)) as con:
        if platform in ("hubspot", "klaviyo"):
            con.execute("create or replace table marts.customer_product_recommendations as "
                        "select customer_id, r as rank, 'Product ' || r as product_name "
                        "from marts.customer_contacts, range(1, 4) t(r)")
        return sync(con, audience, audience.targets[0], make_destination(emulator), run_id,
                    SyncOptions(sleep=lambda s: None, **options), log=lambda m: None)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_each_platform_syncs_changes_only_and_drops_withdrawn_consent(tmp_path, platform):
    make_emulator, _, _, key, members = PLATFORMS[platform]
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=N)
    with make_emulator() as emulator:
        report = run(db, platform, emulator, "run1")
        assert members(emulator) == {key(i) for i in range(N)}
        assert report.n_added == N and report.status == "succeeded"

        # a day later: one customer withdraws consent, one is erased, one new member joins
        make_warehouse(db, n=N + 1, no_consent={3})
        with duckdb.connect(str(db)) as con:
            con.execute("delete from marts.customer_contacts where customer_id = 'c004'")
        writes = len(emulator.mutating_requests())
        report = run(db, platform, emulator, "run2")
        assert members(emulator) == {key(i) for i in range(N + 1)} - {key(3), key(4)}
        assert (report.n_added, report.n_removed) == (1, 2)

        # nothing changed: nothing is written
        writes = len(emulator.mutating_requests())
        report = run(db, platform, emulator, "run3")
        assert len(emulator.mutating_requests()) == writes
        assert (report.n_to_add, report.n_to_remove, report.n_to_update) == (0, 0, 0)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_each_platform_survives_a_throttling_storm(tmp_path, platform):
    make_emulator, _, _, key, members = PLATFORMS[platform]
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=N)
    with make_emulator() as emulator:
        emulator.inject("rate_limit", times=2, retry_after=0)
        emulator.inject("server_error", times=2)
        report = run(db, platform, emulator, "run1")
        assert members(emulator) == {key(i) for i in range(N)}
        assert report.n_retries == 4 and report.status == "succeeded"


def test_meta_refusing_removals_switches_the_sync_to_add_only(tmp_path):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=N)
    with MetaEmulator(audience_id="2385", min_audience_size=1000) as emulator:
        run(db, "meta", emulator, "run1")
        make_warehouse(db, n=N + 2, members=range(2, N + 2))
        report = run(db, "meta", emulator, "run2")
        assert report.status == "add_only" and "add-only" in report.message
        assert (report.n_added, report.n_removed) == (2, 0)
        assert len(emulator.members("2385")) == N + 2      # nothing removed, the adds landed
        with duckdb.connect(str(db)) as con:
            skipped = con.execute("select count(*) from activation.sync_log where run_id = "
                                  "'run2' and status = 'skipped'").fetchone()[0]
            confirmed = con.execute("select count(*) from activation.sync_state").fetchone()[0]
        assert skipped == 2 and confirmed == N + 2       # the removals wait for a later run


def test_ad_platforms_receive_only_hashes(tmp_path):
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=N)
    for platform in ("meta", "google"):
        make_emulator = PLATFORMS[platform][0]
        with make_emulator() as emulator:
            run(db, platform, emulator, "run1")
            sent = b"".join(r.raw for r in emulator.requests)
        assert b"@example.com" not in sent and b"+34" not in sent and b"Name1" not in sent


def _change_email(db, customer: str, new: str, consent: bool = True) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("update marts.customer_contacts set email = ?, has_email_consent = ?, "
                    "has_ads_consent = ? where customer_id = ?", [new, consent, consent, customer])


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_a_changed_email_leaves_no_old_identity_on_any_list(tmp_path, platform):
    """Consent follows the person: after an email change the platform holds the customer once,
    under the new address; after a withdrawal, under neither."""
    make_emulator, _, _, key, members = PLATFORMS[platform]
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=N)
    new = "renamed.7@example.org"
    new_key = {"hubspot": new, "klaviyo": new, "meta": sha256_hex(meta_email(new)),
               "google": sha256_hex(google_email(new))}[platform]
    with make_emulator() as emulator:
        run(db, platform, emulator, "run1")
        _change_email(db, "c007", new)
        report = run(db, platform, emulator, "run2")
        assert report.status == "succeeded"
        assert members(emulator) == {key(i) for i in range(N)} - {key(7)} | {new_key}
        if platform == "hubspot":  # the same contact, its email changed: no second contact
            assert emulator.record_id(email(7)) is None and emulator.record_id(new)
            assert len(emulator.contacts) == N
        if platform == "klaviyo":
            assert emulator.profile(email(7)) is None and len(emulator.profiles) == N
        _change_email(db, "c007", new, consent=False)
        run(db, platform, emulator, "run3")
        assert members(emulator) == {key(i) for i in range(N)} - {key(7)}


@pytest.mark.parametrize("platform", ["hubspot", "klaviyo"])
def test_a_new_email_another_contact_holds_takes_the_old_record_off_the_list(tmp_path,
                                                                            platform):
    make_emulator, _, _, key, members = PLATFORMS[platform]
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=N, members=range(10))
    with make_emulator() as emulator:
        run(db, platform, emulator, "run1")
        # customer 3 now uses an address the platform already knows from elsewhere
        if platform == "hubspot":
            emulator.contacts["shared@example.com"] = {
                "id": "999", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "x",
                "properties": {"email": "shared@example.com"}}
        else:
            emulator._by_email["shared@example.com"] = "PID999"
            emulator.profiles["PID999"] = {"email": "shared@example.com", "properties": {}}
        _change_email(db, "c003", "shared@example.com")
        report = run(db, platform, emulator, "run2")
        assert report.n_rejected == 0
        assert members(emulator) == {key(i) for i in range(10)} - {key(3)} | {
            "shared@example.com"}


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_an_erasure_deletes_the_person_where_the_platform_keeps_records(tmp_path, platform):
    """Taken off the list everywhere; HubSpot and Klaviyo also delete the contact through their
    GDPR deletion APIs, so no record of the person is left at the platform."""
    make_emulator, _, _, key, members = PLATFORMS[platform]
    db = tmp_path / "w.duckdb"
    make_warehouse(db, n=N)
    with make_emulator() as emulator:
        run(db, platform, emulator, "run1")
        record = (emulator.record_id(email(5)) if platform == "hubspot"
                  else emulator.profile(email(5))["id"] if platform == "klaviyo" else None)
        with duckdb.connect(str(db)) as con:  # as ingestion leaves an erasure request
            con.execute("create schema if not exists raw")
            con.execute("create table raw.customers as select 'c005' as customer_id, "
                        "true as is_deleted")
            con.execute("delete from marts.customer_contacts where customer_id = 'c005'")
        report = run(db, platform, emulator, "run2")
        assert report.n_removed == 1
        assert members(emulator) == {key(i) for i in range(N)} - {key(5)}
        erasing = [r for r in emulator.mutating_requests() if "gdpr" in r.path
                   or "data-privacy" in r.path]
        if platform == "hubspot":
            assert emulator.gdpr_deleted == [record] and emulator.record_id(email(5)) is None
            assert [r.body for r in erasing] == [{"objectId": record}]
        elif platform == "klaviyo":
            assert emulator.deleted == [record] and emulator.profile(email(5)) is None
            assert len(erasing) == 1
        else:
            assert erasing == []
        with duckdb.connect(str(db)) as con:
            operations = con.execute("select operation, status from activation.sync_log "
                                     "where run_id = 'run2'").fetchall()
            named = con.execute("select count(*) from activation.sync_log where customer_id = "
                                "'c005'").fetchone()[0]
            keyed = con.execute("select count(*) from activation.sync_log where customer_id = "
                                "?", [customer_key("c005")]).fetchone()[0]
        assert operations == [("erase", "confirmed")]
        assert (named, keyed) == (0, 2)  # its add and its erase, under the pseudonymous key
