"""Per-platform normalization before hashing: the published vectors and the documented rules."""

from __future__ import annotations

import pytest

from activation import normalize as n

MARY = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"
PHONE = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"


def test_published_vectors():
    assert n.sha256_hex(n.meta_email("  Mary@Example.COM ")) == MARY
    assert n.sha256_hex(n.google_email(" mary@example.com")) == MARY
    assert n.sha256_hex(n.meta_phone("+1 (555) 987-6543")) == PHONE
    assert n.meta_identifiers(email="Mary@example.com", phone="+1 555 987 6543")[:2] == [MARY, PHONE]


@pytest.mark.parametrize(("raw", "country", "meta", "google"), [
    ("+34 600 000 000", None, "34600000000", "+34600000000"),
    ("0034 600-000-000", None, "34600000000", "+34600000000"),
    ("0612 345 678", "NL", "31612345678", "+31612345678"),
    ("(555) 987-6543", "US", "15559876543", "+15559876543"),
    ("12345", "US", None, None),                 # too short to be a phone number
    ("0612 345 678", None, None, None),          # national number, country unknown
])
def test_phones(raw, country, meta, google):
    assert n.meta_phone(raw, country) == meta
    assert n.google_phone(raw, country) == google


def test_gmail_dots_and_tags_only_for_google_and_only_on_gmail():
    assert n.google_email("John.Doe+shop@GoogleMail.com") == "johndoe@googlemail.com"
    assert n.google_email("john.doe+shop@example.com") == "john.doe+shop@example.com"
    assert n.meta_email("John.Doe+shop@gmail.com") == "john.doe+shop@gmail.com"
    assert n.google_email("j o h n@gmail.com") == "john@gmail.com"


def test_meta_names_country_zip():
    assert n.meta_name(" José-Luis ") == "joseluis"
    assert n.meta_name("O'Brien") == "obrien"
    assert n.meta_country(" ES ") == "es" and n.meta_country("Spain") is None
    assert n.meta_zip("94105-1234", "US") == "94105" and n.meta_zip("SW1A 1AA", "GB") == "sw1a1aa"


def test_nothing_to_match_gives_none_and_unknown_values_stay_empty():
    assert n.meta_identifiers(first_name="Ann") is None
    assert n.google_identifiers() is None
    row = n.meta_identifiers(email="a@b.co", country="Spain")
    assert row[1:] == ["", "", "", ""] and all(v == "" or n.is_sha256_hex(v) for v in row)
    google = n.google_identifiers(email="a@b.co", phone="+44 20 7946 0000")
    assert [list(i) for i in google["userIdentifiers"]] == [["emailAddress"], ["phoneNumber"]]
    assert all(n.is_sha256_hex(v) for i in google["userIdentifiers"] for v in i.values())
