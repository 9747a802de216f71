"""The webhook destination: changes POSTed as JSON to the store's own endpoint.

Each request is one batch:

    POST <url>
    Idempotency-Key: <batch key>          (the same batch re-sent after a crash has the same key)
    X-Segmenta-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + raw body>
    {"audience": "...", "operation": "add" | "remove", "batch": {"key", "number", "total"},
     "members": [{"customer_id": "...", "email": "...", <fields>}, ...]}

The signature follows the convention Stripe documents: the timestamp is signed with the body,
so a receiver that checks it (`verify`) refuses a request replayed later than `TOLERANCE`
seconds, and one whose body or timestamp was altered.

The receiver answers 2xx with `{"rejected": [{"customer_id", "code", "message"}]}` for rows it
refuses (the rest count as confirmed), 429/5xx to be retried, 400/413/422 to have the batch
split. Any other status (404 or 410 for a wrong URL, 405, ...) stops the sync with the status
and the URL to check; the batch stays pending for the next run.
Target settings: none (the URL and secret are the resource's, from environment variables).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests

from activation.destinations.base import (
    Batch,
    BatchOutcome,
    BatchRejected,
    Contact,
    Destination,
    FatalError,
    Row,
)
from activation.destinations.http import call, checked_url, request_id_of

SIGNATURE_HEADER = "X-Segmenta-Signature"
TOLERANCE = 300  # seconds a receiver accepts between signing and receiving
SPLIT_STATUSES = (400, 413, 422)  # the batch's content: split it to find the bad rows


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value: `t=<unix seconds>,v1=<hex HMAC-SHA256>`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float | None = None,
           tolerance: int = TOLERANCE) -> bool:
    """What a receiver does: the signature matches the body and its timestamp, and the
    timestamp is within `tolerance` seconds of now (an older request is a replay)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), _mac(secret, timestamp, body))


class WebhookDestination(Destination):
    platform = "webhook"
    consent = "email"
    max_batch = 1_000
    max_remove_batch = 1_000

    def __init__(self, url: str, secret: str, timeout: float = 30.0):
        if not secret:
            raise ValueError("webhook destination: a signing secret is required "
                             "(SEGMENTA_WEBHOOK_SECRET)")
        self.url = checked_url("SEGMENTA_WEBHOOK_URL", url)
        self.secret, self.timeout = secret, timeout
        self.session = requests.Session()

    def payload(self, contact: Contact, fields: list[str]) -> dict | None:
        if not contact.email:
            return None
        values = {name: getattr(contact, name) if name in ("first_name", "last_name", "country")
                  else contact.properties.get(name) for name in fields}
        return {"email": contact.email.strip().lower(), **values}

    def _post(self, target: dict, operation: str, rows: list[Row], batch: Batch) -> BatchOutcome:
        members = [{"customer_id": r.customer_id, **({} if operation == "remove" else r.payload)}
                   for r in rows]
        body = json.dumps({
            "audience": target.get("audience_key"), "operation": operation,
            "batch": {"key": batch.key, "number": batch.number, "total": batch.total},
            "members": members}, separators=(",", ":")).encode()
        response = call(self.session, "POST", self.url, data=body, timeout=self.timeout,
                        headers={"Content-Type": "application/json",
                                 "Idempotency-Key": batch.key,
                                 SIGNATURE_HEADER: signature(self.secret, body)})
        request_id = request_id_of(response)
        if response.status_code in SPLIT_STATUSES:
            raise BatchRejected(f"webhook refused the batch ({response.status_code})",
                                f"http_{response.status_code}", request_id)
        if not response.ok:
            raise FatalError(f"webhook answered {response.status_code} at {self.url}: check "
                             "SEGMENTA_WEBHOOK_URL (a 404 or 410 is a wrong or retired URL)",
                             f"http_{response.status_code}", request_id)
        answer = response.json() if response.content else {}
        rejected = {str(r["customer_id"]): (str(r.get("code", "rejected")),
                                            str(r.get("message", "")))
                    for r in answer.get("rejected", [])}
        return BatchOutcome(request_id, rejected)

    def add(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        return self._post(target, "add", rows, batch)

    def remove(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        return self._post(target, "remove", rows, batch)
