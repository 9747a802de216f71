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


def scrub(message: str | None) -> str | None:
    """An error message safe for the audit log: emails and phone-like digit runs replaced."""
    if message is None:
        return None
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", str(message)))[:500]


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
