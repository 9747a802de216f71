"""Emulator of the Google Data Manager API's audience endpoints (Customer Match user lists).

Speaks the documented REST shapes (https://developers.google.com/data-manager/api/reference/rest/v1):

    POST /v1/audienceMembers:ingest  {"destinations": [Destination], "audienceMembers":
        [{"userData": {"userIdentifiers": [{"emailAddress": hex}, {"phoneNumber": hex}]},
          "consent": {"adUserData": ..., "adPersonalization": ...}}],
        "consent", "validateOnly", "encoding": "HEX", "termsOfService":
        {"customerMatchTermsOfServiceStatus": "ACCEPTED"}}          -> {"requestId": "..."}
    POST /v1/audienceMembers:remove  {"destinations", "audienceMembers", "validateOnly",
        "encoding"}                                                 -> {"requestId": "..."}
    GET  /v1/requestStatus:retrieve?requestId=...                   -> {"requestStatusPerDestination"}

    Destination = {"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "..."},
                   "productDestinationId": "<user list id>", "loginAccount"?, "linkedAccount"?}

Errors use Google's status shape, {"error": {"code", "message", "status", "details": [...]}}, with
an `ErrorInfo` and, for invalid content, a `BadRequest` whose `fieldViolations` name the member
("audience_members.audience_members[3]"), as in the quickstart's documented responses. Google
refuses the whole request when any member is invalid, and so does this emulator: nothing of a
refused request is applied. Limits (https://developers.google.com/data-manager/api/limits):
10,000 members per request, 10 identifiers per member, 10 destinations, 300 requests per minute
(429 RESOURCE_EXHAUSTED). Stricter than Google on one point: hashes must be lowercase hex.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, deque

from activation.emulators.base import Emulator, Request, Response, route
from activation.normalize import google_email, is_sha256_hex, sha256_hex

MAX_MEMBERS = 10_000
MAX_IDENTIFIERS = 10
MAX_DESTINATIONS = 10
ACCOUNT_TYPES = {"GOOGLE_ADS", "DISPLAY_VIDEO_PARTNER", "DISPLAY_VIDEO_ADVERTISER", "DATA_PARTNER"}
CONSENT_VALUES = {"CONSENT_STATUS_UNSPECIFIED", "CONSENT_GRANTED", "CONSENT_DENIED"}
IDENTIFIER_KINDS = ("emailAddress", "phoneNumber")
_HEX = set("0123456789abcdefABCDEF")


def google_error(code: int, status: str, message: str, reason: str | None = None,
                 violations: list[dict] | None = None, extra: list[dict] | None = None) -> dict:
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason or status,
                "domain": "datamanager.googleapis.com"}]
    if violations:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": violations})
    details.extend(extra or [])
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


def _invalid(violations: list[dict], reason: str = "INVALID_ARGUMENT") -> Response:
    return Response(400, google_error(400, "INVALID_ARGUMENT",
                                      "There was a problem with the request.", reason, violations))


def _violation(field: str, reason: str, description: str) -> dict:
    return {"field": field, "reason": reason, "description": description}


class GoogleEmulator(Emulator):
    """Google's Data Manager API for Customer Match user lists, with one list pre-created.

    Accessors: `members(list_id, kind=None)` (the hashed identifiers in a list, optionally only
    "emailAddress" or "phoneNumber"), `add_counts(list_id)` (how many accepted ingest requests
    carried each hash: >1 means a duplicate send), `reject_email(email)` (refuse every member
    carrying this address, matched by its Google hash), `create_user_list(...)`, `reset()`.
    """

    platform = "google"

    def __init__(self, user_list_id: str = "9876543210", operating_account_id: str = "1234567890",
                 account_type: str = "GOOGLE_ADS", requests_per_minute: int = 300):
        super().__init__()
        self.requests_per_minute = requests_per_minute
        self._lists: dict[str, tuple[str, str]] = {}        # list id -> (account type, id)
        self._members: dict[str, set[str]] = {}
        self._adds: dict[str, Counter] = {}
        self._statuses: dict[str, list[dict]] = {}
        self._recent: deque[float] = deque()
        self._initial_list = (user_list_id, operating_account_id, account_type)
        self.create_user_list(*self._initial_list)

    def reset(self) -> None:
        """Back to a fresh emulator with only the initial list, empty, and no request log,
        faults or rejections (lets a test module share one server)."""
        with self.lock:
            self.requests.clear()
            self._faults.clear()
            self._rejected_values.clear()
            self._replies.clear()
            self._hang_at = None
            self._lists.clear()
            self._members.clear()
            self._adds.clear()
            self._statuses.clear()
            self._recent.clear()
            self.create_user_list(*self._initial_list)

    # ---- test accessors -----------------------------------------------------------------------
    def create_user_list(self, user_list_id: str, operating_account_id: str,
                         account_type: str = "GOOGLE_ADS") -> None:
        with self.lock:
            self._lists[user_list_id] = (account_type, operating_account_id)
            self._members.setdefault(user_list_id, set())
            self._adds.setdefault(user_list_id, Counter())

    def members(self, user_list_id: str, kind: str | None = None) -> set[str]:
        with self.lock:
            return {value.split(":", 1)[1] for value in self._members[user_list_id]
                    if kind is None or value.startswith(f"{kind}:")}

    def add_counts(self, user_list_id: str) -> Counter:
        with self.lock:
            return Counter({key.split(":", 1)[1]: n for key, n in self._adds[user_list_id].items()})

    def reject_email(self, email: str) -> None:
        self.reject(sha256_hex(google_email(email)))

    # ---- platform shapes ----------------------------------------------------------------------
    def idempotency_key(self, request: Request) -> str | None:
        return None                   # the API takes no idempotency key; ingest is set-like

    def render_rate_limit(self, retry_after: float | None) -> Response:
        # like Google: the delay is a RetryInfo detail in the body, not a Retry-After header
        extra, headers = [], {}
        if retry_after is not None:
            extra = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                      "retryDelay": f"{retry_after:g}s"}]
        body = google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded: requests per minute.",
                            "RESOURCE_EXHAUSTED", extra=extra)
        return Response(429, body, headers)

    def render_unauthorized(self) -> Response:
        return Response(401, google_error(
            401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected "
            "OAuth 2 access token, login cookie or other valid authentication credential.",
            "ACCESS_TOKEN_EXPIRED"))

    def render_server_error(self) -> Response:
        return Response(500, google_error(500, "INTERNAL", "Internal error encountered.",
                                          "INTERNAL_ERROR"))

    def _throttled(self) -> bool:
        now = time.monotonic()
        with self.lock:
            while self._recent and now - self._recent[0] >= 60:
                self._recent.popleft()
            if len(self._recent) >= self.requests_per_minute:
                return True
            self._recent.append(now)
            return False

    # ---- validation ---------------------------------------------------------------------------
    def _check_destinations(self, body: dict) -> tuple[list[str], Response | None]:
        destinations = body.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            return [], _invalid([_violation("destinations", "REQUIRED_FIELD_MISSING",
                                            "At least one destination is required.")])
        if len(destinations) > MAX_DESTINATIONS:
            return [], _invalid([_violation("destinations", "TOO_MANY_DESTINATIONS",
                                            "At most 10 destinations per request.")])
        list_ids = []
        for i, destination in enumerate(destinations):
            field = f"destinations[{i}]"
            destination = destination if isinstance(destination, dict) else {}
            account = destination.get("operatingAccount") or {}
            if not account.get("accountId") or not destination.get("productDestinationId"):
                return [], _invalid([_violation(field, "REQUIRED_FIELD_MISSING",
                                                "operatingAccount.accountId and "
                                                "productDestinationId are required.")])
            account_type = account.get("accountType") or account.get("product")
            if account_type not in ACCOUNT_TYPES:
                return [], _invalid([_violation(f"{field}.operating_account.account_type",
                                                "INVALID_ENUM_VALUE", "Unknown account type.")])
            list_id = str(destination["productDestinationId"])
            if self._lists.get(list_id) != (account_type, str(account["accountId"])):
                return [], _invalid([_violation(f"{field}.product_destination_id",
                                                "INVALID_USER_LIST_ID",
                                                "User list is not valid.")],
                                    "INVALID_USER_LIST_ID")
            list_ids.append(list_id)
        return list_ids, None

    def _member_violations(self, i: int, member: object) -> list[dict]:
        field = f"audience_members.audience_members[{i}]"
        if not isinstance(member, dict):
            return [_violation(field, "INVALID_AUDIENCE_MEMBER", "Not an audience member.")]
        identifiers = (member.get("userData") or {}).get("userIdentifiers")
        if not isinstance(identifiers, list) or not identifiers:
            return [_violation(f"{field}.user_data.user_identifiers", "REQUIRED_FIELD_MISSING",
                               "At least one user identifier is required.")]
        if len(identifiers) > MAX_IDENTIFIERS:
            return [_violation(f"{field}.user_data.user_identifiers",
                               "TOO_MANY_USER_IDENTIFIERS", "At most 10 user identifiers.")]
        for identifier in identifiers:
            identifier = identifier if isinstance(identifier, dict) else {}
            kind = next((k for k in IDENTIFIER_KINDS if k in identifier), None)
            value = str(identifier.get(kind, "")) if kind else ""
            if kind is None or not value:
                return [_violation(f"{field}.user_data.user_identifiers", "INVALID_FORMAT",
                                   "Unsupported or empty user identifier.")]
            if not set(value) <= _HEX:
                return [_violation(f"{field}.user_data.user_identifiers", "INVALID_HEX_ENCODING",
                                   "Identifier is not hex encoded.")]
            if not is_sha256_hex(value):
                return [_violation(field, "INVALID_SHA256_FORMAT",
                                   "Identifier is not a lowercase hex SHA-256 hash.")]
            if self.is_rejected(value):
                return [_violation(field, "INVALID_AUDIENCE_MEMBER",
                                   "This audience member is not valid.")]
        consent = member.get("consent") or {}
        if any(v not in CONSENT_VALUES for v in consent.values()):
            return [_violation(f"{field}.consent", "INVALID_ENUM_VALUE", "Unknown consent.")]
        return []

    def _validate(self, request: Request, ingest: bool):
        """(list ids, members, None) for a valid request, else (.., .., the error response)."""
        body = request.body if isinstance(request.body, dict) else {}
        if self._throttled():
            return [], [], self.render_rate_limit(None)
        list_ids, error = self._check_destinations(body)
        if error is not None:
            return [], [], error
        members = body.get("audienceMembers")
        if not isinstance(members, list) or not members:
            return [], [], _invalid([_violation("audience_members", "REQUIRED_FIELD_MISSING",
                                                "At least one audience member is required.")])
        if len(members) > MAX_MEMBERS:
            return [], [], _invalid([_violation(
                "audience_members", "TOO_MANY_AUDIENCE_MEMBERS",
                "Maximum number of audience members allowed per request is 10,000.")],
                "TOO_MANY_AUDIENCE_MEMBERS")
        if body.get("encoding") != "HEX":
            return [], [], _invalid([_violation("encoding", "REQUIRED_FIELD_MISSING",
                                                "encoding must be HEX for these uploads.")])
        if ingest and (body.get("termsOfService") or {}).get(
                "customerMatchTermsOfServiceStatus") != "ACCEPTED":
            return [], [], _invalid([_violation(
                "terms_of_service", "TERMS_AND_CONDITIONS_NOT_SIGNED",
                "Required terms and conditions are not accepted.")],
                "TERMS_AND_CONDITIONS_NOT_SIGNED")
        violations = [v for i, m in enumerate(members) for v in self._member_violations(i, m)]
        if violations:
            return [], [], _invalid(violations)
        return list_ids, members, None

    # ---- routes -------------------------------------------------------------------------------
    def _apply(self, request: Request, ingest: bool) -> Response:
        list_ids, members, error = self._validate(request, ingest)
        if error is not None:
            return error
        if request.body.get("validateOnly"):
            return Response(200, {})
        keys = [f"{kind}:{identifier[kind]}" for member in members
                for identifier in member["userData"]["userIdentifiers"]
                for kind in IDENTIFIER_KINDS if kind in identifier]
        for list_id in list_ids:
            if ingest:
                self._members[list_id].update(keys)
                self._adds[list_id].update(keys)
            else:
                self._members[list_id].difference_update(keys)
        request_id = uuid.uuid4().hex
        kind = "audienceMembersIngestionStatus" if ingest else "audienceMembersRemovalStatus"
        data = "userDataIngestionStatus" if ingest else "userDataRemovalStatus"
        self._statuses[request_id] = [
            {"destination": destination, "requestStatus": "SUCCESS",
             kind: {data: {"recordCount": str(len(members)),
                           "userIdentifierCount": str(len(keys))}}}
            for destination in request.body["destinations"]]
        return Response(200, {"requestId": request_id})

    @route("POST", r"/v1/audienceMembers:ingest")
    def ingest(self, request: Request) -> Response:
        return self._apply(request, ingest=True)

    @route("POST", r"/v1/audienceMembers:remove")
    def remove(self, request: Request) -> Response:
        return self._apply(request, ingest=False)

    @route("GET", r"/v1/requestStatus:retrieve")
    def request_status(self, request: Request) -> Response:
        statuses = self._statuses.get(request.query.get("requestId", ""))
        if statuses is None:
            return Response(404, google_error(404, "NOT_FOUND", "Request not found.",
                                              "NOT_FOUND"))
        return Response(200, {"requestStatusPerDestination": statuses})
