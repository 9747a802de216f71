"""A webhook receiver that checks the timestamped HMAC signature (refusing replays) and keeps the
membership it was sent."""

from __future__ import annotations

from collections import Counter

from activation.destinations.webhook import SIGNATURE_HEADER, verify
from activation.emulators.base import Emulator, Request, Response, route


class WebhookEmulator(Emulator):
    platform = "webhook"

    def __init__(self, secret: str = "test-secret", strict: bool = False):
        super().__init__()
        self.secret = secret
        self.strict = strict        # refuse the whole batch (400) when one member is bad
        self.audiences: dict[str, dict[str, dict]] = {}
        self.applied: Counter = Counter()       # (audience, operation, customer) -> times applied

    def authorized(self, request: Request) -> bool:
        return verify(self.secret, request.headers.get(SIGNATURE_HEADER.lower(), ""),
                      request.raw)

    def members(self, audience: str) -> set[str]:
        with self.lock:
            return set(self.audiences.get(audience, {}))

    @route("POST", "/hooks/audiences")
    def receive(self, request: Request) -> Response:
        body = request.body or {}
        if not request.headers.get("idempotency-key"):
            return Response(400, {"message": "Idempotency-Key header required"})
        operation, audience = body.get("operation"), body.get("audience")
        if operation not in ("add", "remove") or not audience:
            return Response(400, {"message": "operation must be add or remove, audience set"})
        members = body.get("members")
        if not isinstance(members, list) or len(members) > 1000:
            return Response(400, {"message": "members must be a list of at most 1000"})
        current = self.audiences.setdefault(audience, {})
        if self.strict and any(self.is_rejected(m.get("customer_id")) for m in members):
            return Response(400, {"message": "the batch holds an invalid member"})
        rejected = []
        for member in members:
            customer = member.get("customer_id")
            if self.is_rejected(customer, member.get("email")):
                rejected.append({"customer_id": customer, "code": "invalid_member",
                                 "message": "the receiver refused this member"})
                continue
            self.applied[(audience, operation, customer)] += 1
            if operation == "add":
                current[customer] = member
            else:
                current.pop(customer, None)
        return Response(200, {"received": len(members), "rejected": rejected})
