"""Identifier normalization and hashing, per platform (one hash never serves two platforms).

Meta (Custom Audiences, "Customer information parameters"):
  email trimmed and lowercased; phone digits only, with country code, no "+" or leading zeros;
  first/last name lowercase a-z only; country lowercase ISO-2; zip first 5 digits in the US.
Google (Data Manager API, "Format user data"):
  email lowercased with all whitespace removed, and for gmail.com / googlemail.com the dots and
  any "+suffix" before the "@" removed; phone E.164 with the "+"; names lowercased, whitespace
  trimmed; country ISO-2 upper case, not hashed.
Both then hash with SHA-256, lowercase hex.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata

_NOT_DIGIT = re.compile(r"\D")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# Country calling codes for the countries the sample store sells in, for phones written in
# national format ("0612 345 678"); international numbers ("+34 ...", "0034 ...") need none.
CALLING_CODES = {"US": "1", "CA": "1", "GB": "44", "DE": "49", "FR": "33", "ES": "34",
                 "IT": "39", "NL": "31", "AU": "61", "NZ": "64", "BR": "55", "ZA": "27",
                 "MX": "52", "IN": "91", "SG": "65", "AR": "54", "SE": "46", "JP": "81"}


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    return bool(_HEX64.match(value or ""))


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def phone_digits(phone: str | None, country: str | None = None) -> str | None:
    """Digits of a phone number with its country code and no "+" ("+1 (555) 987-6543" ->
    "15559876543"). A national number ("0612 345 678") gets the country's calling code; a number
    that cannot be made international returns None."""
    if _blank(phone):
        return None
    raw = str(phone).strip()
    digits = _NOT_DIGIT.sub("", raw)
    if raw.startswith("+"):
        pass
    elif digits.startswith("00"):
        digits = digits[2:]
    else:
        code = CALLING_CODES.get(str(country or "").strip().upper())
        if code is None:
            return None
        national = digits.lstrip("0")
        digits = national if code == "1" and national.startswith("1") and len(national) == 11 \
            else code + national
    return digits if 8 <= len(digits) <= 15 else None


# ---- Meta -------------------------------------------------------------------------------------

def meta_email(email: str | None) -> str | None:
    if _blank(email):
        return None
    value = str(email).strip().lower()
    return value if "@" in value else None


def meta_phone(phone: str | None, country: str | None = None) -> str | None:
    return phone_digits(phone, country)


def meta_name(name: str | None) -> str | None:
    """Lowercase a-z only: accents folded ("José" -> "jose"), punctuation and spaces dropped."""
    if _blank(name):
        return None
    folded = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    value = re.sub(r"[^a-z]", "", folded.lower())
    return value or None


def meta_country(country: str | None) -> str | None:
    if _blank(country):
        return None
    value = re.sub(r"[^a-z]", "", str(country).lower())
    return value if len(value) == 2 else None


def meta_zip(zip_code: str | None, country: str | None = None) -> str | None:
    if _blank(zip_code):
        return None
    value = re.sub(r"\s", "", str(zip_code).lower())
    if str(country or "").strip().upper() == "US":
        digits = _NOT_DIGIT.sub("", value)[:5]
        return digits if len(digits) == 5 else None
    return value or None


META_SCHEMA = ["EMAIL", "PHONE", "FN", "LN", "COUNTRY"]


def meta_identifiers(email=None, phone=None, first_name=None, last_name=None,
                     country=None) -> list[str] | None:
    """One row of Meta's multi-key schema `META_SCHEMA`, each value normalized and hashed ("" when
    unknown); None when the customer has neither an email nor a phone (nothing Meta can match)."""
    values = [meta_email(email), meta_phone(phone, country), meta_name(first_name),
              meta_name(last_name), meta_country(country)]
    if values[0] is None and values[1] is None:
        return None
    return [sha256_hex(v) if v else "" for v in values]


# ---- Google -----------------------------------------------------------------------------------

GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


def google_email(email: str | None) -> str | None:
    if _blank(email):
        return None
    value = re.sub(r"\s", "", str(email)).lower()
    if value.count("@") != 1:
        return None
    local, domain = value.split("@")
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
    return f"{local}@{domain}" if local and domain else None


def google_phone(phone: str | None, country: str | None = None) -> str | None:
    digits = phone_digits(phone, country)
    return f"+{digits}" if digits else None


def google_name(name: str | None) -> str | None:
    if _blank(name):
        return None
    return re.sub(r"\s", "", str(name)).lower() or None


def google_identifiers(email=None, phone=None, country=None) -> dict | None:
    """Google's `userIdentifiers` for one audience member (hashed email and phone), or None when
    there is nothing Google can match."""
    identifiers = []
    if (value := google_email(email)) is not None:
        identifiers.append({"emailAddress": sha256_hex(value)})
    if (value := google_phone(phone, country)) is not None:
        identifiers.append({"phoneNumber": sha256_hex(value)})
    return {"userIdentifiers": identifiers} if identifiers else None
