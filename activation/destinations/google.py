"""Google Data Manager API: Customer Match user lists (Google Ads, Display & Video 360).

Documented API (https://developers.google.com/data-manager/api/reference/rest/v1):

    POST https://datamanager.googleapis.com/v1/audienceMembers:ingest
        {"destinations": [{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "..."},
                           "productDestinationId": "<user list id>"}],
         "audienceMembers": [{"userData": {"userIdentifiers": [{"emailAddress": "<sha256 hex>"},
                                                               {"phoneNumber": "<sha256 hex>"}]},
                              "consent": {"adUserData": "CONSENT_GRANTED",
                                          "adPersonalization": "CONSENT_GRANTED"}}],
         "encoding": "HEX", "validateOnly": false,
         "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"}}
        -> {"requestId": "..."}
    POST https://datamanager.googleapis.com/v1/audienceMembers:remove
        (the same without consent and termsOfService) -> {"requestId": "..."}

Auth is an OAuth 2 access token (scope https://www.googleapis.com/auth/datamanager) as a Bearer
header. Limits (https://developers.google.com/data-manager/api/limits): 10,000 members per
request, 300 requests per minute per Cloud project (else 429 RESOURCE_EXHAUSTED), so the client
paces itself with a token bucket. Errors follow Google's model: {"error": {"code", "message",
"status", "details": [ErrorInfo, BadRequest{fieldViolations: [{"field":
"audience_members.audience_members[3]", "reason", "description"}]}]}}.

Google refuses the WHOLE request when any member is invalid (400 INVALID_ARGUMENT naming the
members' indices). This client then records the named members as rejected and re-sends the rest
itself within the same `add()`/`remove()` call, so one bad row costs one extra request instead of
the engine's log2(n) splits. A 400 that names no member raises `BatchRejected` (the engine
splits); a 400 about the list, account or terms of service raises `FatalError` (configuration).

Processing diagnostics (`GET /v1/requestStatus:retrieve?requestId=`) come ~30 minutes later, give
counts, not rows, and are exposed as `request_status()` for operators only.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import requests

from activation.destinations.base import (
    Batch,
    BatchOutcome,
    BatchRejected,
    Contact,
    Destination,
    DestinationError,
    FatalError,
    Row,
)
from activation.destinations.http import DEFAULT_TIMEOUT, call, checked_url, request_id_of
from activation.normalize import google_identifiers

BASE_URL = "https://datamanager.googleapis.com"
GRANTED = {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"}
_MEMBER_INDEX = re.compile(r"audience_members\[(\d+)\]")
# Reasons that no content change can fix: the list, the account or the terms are wrong.
CONFIG_REASONS = {"INVALID_USER_LIST_ID", "INVALID_USER_LIST_TYPE", "INVALID_DESTINATION",
                  "TERMS_AND_CONDITIONS_NOT_SIGNED", "DATA_PARTNER_USER_LIST_MUTATE_NOT_ALLOWED",
                  "PERMISSION_DENIED", "NOT_FOUND",
                  "DIFFERENT_LOGIN_ACCOUNTS_NOT_ALLOWED_FOR_DATA_PARTNER"}


class TokenBucket:
    """Client-side pacing: at most `per_minute` requests a minute on average, bursts of
    `burst`. `acquire()` sleeps until a token is free."""

    def __init__(self, per_minute: float, burst: int = 10,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock, self.sleep = clock, sleep
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait


class GoogleDataManagerDestination(Destination):
    """Customer Match user list via the Data Manager API.

    `target` keys (audiences YAML):
      - `operating_account_id` (required): the account that owns the list, digits only
        (a Google Ads customer id without dashes);
      - `user_list_id` (required): the Customer Match user list id (`productDestinationId`);
      - `account_type` (default "GOOGLE_ADS"; also DISPLAY_VIDEO_ADVERTISER, ...);
      - `login_account_id` / `login_account_type` (optional): the manager account the token's
        user signs in through, when it is not a user of the operating account;
      - `linked_account_id` / `linked_account_type` (optional, data partners).

    `payload` is `{"userData": {"userIdentifiers": [...]}}` with Google-normalized SHA-256 hex
    email and phone only (Google takes no other fields, so `fields` is ignored). Members are added with ads consent granted (the engine only sends
    customers with `ads_consent`). No record ids: `destination_ids` stays empty; removals send
    the same hashed identifiers. The access token is an OAuth 2 access token (about an hour
    long); whoever builds this client refreshes it, an expired one raises `FatalError`.
    """

    platform = "google"
    consent = "ads"
    max_batch = 10_000
    max_remove_batch = 10_000

    def __init__(self, access_token: str, base_url: str = BASE_URL,
                 timeout: float = DEFAULT_TIMEOUT, requests_per_minute: float | None = 300,
                 validate_only: bool = False):
        self.base_url = checked_url("SEGMENTA_GOOGLE_URL", base_url).rstrip("/")
        self.timeout = timeout
        self.validate_only = validate_only
        self.rate_limiter = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {access_token}",
                                     "Content-Type": "application/json"})

    # ---- contract -----------------------------------------------------------------------------
    def payload(self, contact: Contact, fields: list[str]) -> dict | None:
        user_data = google_identifiers(contact.email, contact.phone, contact.country)
        return {"userData": user_data} if user_data else None

    def add(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        return self._send("audienceMembers:ingest", target, rows, ingest=True)

    def remove(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        return self._send("audienceMembers:remove", target, rows, ingest=False)

    def request_status(self, request_id: str) -> dict:
        """Google's processing diagnostics for an accepted request (counts per destination)."""
        response = self._call("GET", "requestStatus:retrieve", params={"requestId": request_id})
        if response.status_code != 200:
            raise DestinationError(f"requestStatus:retrieve: HTTP {response.status_code}",
                                   _status(response), request_id_of(response))
        return response.json()

    # ---- requests -----------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        return call(self.session, method, f"{self.base_url}/v1/{path}", timeout=self.timeout,
                    **kwargs)

    def _body(self, target: dict, rows: list[Row], ingest: bool) -> dict:
        members = [dict(row.payload, consent=GRANTED) if ingest else dict(row.payload)
                   for row in rows]
        body = {"destinations": [destination(target)], "audienceMembers": members,
                "encoding": "HEX", "validateOnly": self.validate_only}
        if ingest:
            body["termsOfService"] = {"customerMatchTermsOfServiceStatus": "ACCEPTED"}
        return body

    def _send(self, path: str, target: dict, rows: list[Row], ingest: bool) -> BatchOutcome:
        """Send `rows`; when Google refuses the request naming members, record those as
        rejected and send the others again (each round removes at least one row)."""
        outcome = BatchOutcome()
        pending = list(rows)
        while pending:
            response = self._call("POST", path, json=self._body(target, pending, ingest))
            if response.status_code == 200:
                outcome.request_id = (_json(response).get("requestId")
                                      or request_id_of(response))
                return outcome
            refused = _refused_members(response, len(pending))
            for index, (code, message) in refused.items():
                outcome.rejected[pending[index].customer_id] = (code, message)
            pending = [row for i, row in enumerate(pending) if i not in refused]
        return outcome


def destination(target: dict) -> dict:
    """The `Destination` object for a target from the audiences YAML."""
    missing = [k for k in ("operating_account_id", "user_list_id") if not target.get(k)]
    if missing:
        raise FatalError(f"google target is missing {', '.join(missing)}", "bad_target")
    result = {"operatingAccount": _account(target, "operating", "GOOGLE_ADS"),
              "productDestinationId": str(target["user_list_id"])}
    for role in ("login", "linked"):
        if target.get(f"{role}_account_id"):
            result[f"{role}Account"] = _account(target, role, "GOOGLE_ADS")
    return result


def _account(target: dict, role: str, default_type: str) -> dict:
    key = "account_type" if role == "operating" else f"{role}_account_type"
    account_id = str(target[f"{role}_account_id"]).replace("-", "")
    return {"accountType": target.get(key) or default_type, "accountId": account_id}


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _status(response: requests.Response) -> str:
    return (_json(response).get("error") or {}).get("status") or f"http_{response.status_code}"


def _refused_members(response: requests.Response, n_rows: int) -> dict[int, tuple[str, str]]:
    """Row index -> (reason, description) for a 400 that names members; raises for any other
    refusal. Messages carry Google's reason and description, never the sent values."""
    error = _json(response).get("error") or {}
    status = error.get("status") or f"http_{response.status_code}"
    request_id = request_id_of(response)
    details = error.get("details") or []
    reasons = {d.get("reason") for d in details if d.get("reason")}
    violations = [v for d in details for v in d.get("fieldViolations") or []]
    reasons |= {v.get("reason") for v in violations if v.get("reason")}
    summary = f"Google {response.status_code} {status}: {error.get('message', '')}".strip()
    if response.status_code == 404 or reasons & CONFIG_REASONS:
        raise FatalError(f"{summary} ({', '.join(sorted(reasons & CONFIG_REASONS)) or status}); "
                         "check the target's account and user list ids and the Customer Match "
                         "terms", status, request_id)
    refused: dict[int, tuple[str, str]] = {}
    for violation in violations:
        match = _MEMBER_INDEX.search(violation.get("field", ""))
        if match is None or int(match.group(1)) >= n_rows:
            refused = {}
            break
        refused.setdefault(int(match.group(1)), (
            violation.get("reason") or status,
            violation.get("description") or "Google refused this audience member"))
    if not refused:
        raise BatchRejected(f"{summary} (no member named)", status, request_id)
    return refused
