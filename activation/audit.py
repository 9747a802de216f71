"""What the state and the audit log keep of a customer without raw PII.

`payload_hash` is what `activation.sync_state` records of a confirmed payload (and what the diff
compares), `scrub` makes an error message safe for `activation.sync_log` (anything that looks like
an email address or a phone number replaced), and `now` stamps every row (naive UTC).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

_EMAIL = re.compile(r"[^\s@\"']+@[^\s@\"']+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
# what looks like a phone number but is not one: an IPv4 address (with a port), a date or a time
_NOT_A_PHONE = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?|\d{4}-\d{2}-\d{2}"
                          r"|\d{2}:\d{2}(?::\d{2})?")


def _phone(match: re.Match) -> str:
    text = match.group(0)
    rest = _NOT_A_PHONE.sub("", text)
    return text if not re.search(r"\d{3}", rest) else "[phone]"


def scrub(message: str | None) -> str | None:
    """An error message safe for the audit log: emails and phone-like digit runs replaced
    (IP addresses, dates and times are kept: they say where and when, not who)."""
    if message is None:
        return None
    return _PHONE.sub(_phone, _EMAIL.sub("[email]", str(message)))[:500]


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
