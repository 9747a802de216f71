"""The webhook destination: changes POSTed as JSON to the store's own endpoint.

Each request is one batch:

    POST <url>
    Idempotency-Key: <batch key>          (the same batch re-sent after a crash has the same key)
    X-Segmenta-Signature: sha256=<hex HMAC-SHA256 of the raw body with the shared secret>
    {"audience": "...", "operation": "add" | "remove", "batch": {"key", "number", "total"},
     "members": [{"customer_id": "...", "email": "...", <fields>}, ...]}

The receiver answers 2xx with `{"rejected": [{"customer_id", "code", "message"}]}` for rows it
refuses (the rest count as confirmed), 429/5xx to be retried, 400 to have the batch split.
Target settings: none (the URL and secret are the resource's, from environment variables).
"""

from __future__ import annotations

import hashlib
import hmac
import json

import requests

from activation.destinations.base import (
    Batch,
    BatchOutcome,
    BatchRejected,
    Contact,
    Destination,
    Row,
)
from activation.destinations.http import call, request_id_of

SIGNATURE_HEADER = "X-Segmenta-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDestination(Destination):
    platform = "webhook"
    consent = "email"
    max_batch = 1_000
    max_remove_batch = 1_000

    def __init__(self, url: str, secret: str, timeout: float = 30.0):
        if not secret:
            raise ValueError("webhook destination: a signing secret is required "
                             "(SEGMENTA_WEBHOOK_SECRET)")
        self.url, self.secret, self.timeout = url, secret, timeout
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
        if response.status_code == 400:
            raise BatchRejected("webhook refused the batch (400)", "http_400", request_id)
        if not response.ok:
            raise BatchRejected(f"webhook answered {response.status_code}",
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
