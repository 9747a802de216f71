"""Meta Custom Audiences (customer list) through the Marketing API.

Documented at https://developers.facebook.com/documentation/ads-commerce/marketing-api/audiences/guides/custom-audiences
and .../marketing-api/reference/custom-audience/users, .../custom-audience/usersreplace:

- add `POST /{version}/{audience_id}/users`, remove `DELETE /{version}/{audience_id}/users`, full
  refresh `POST /{version}/{audience_id}/usersreplace`, each with
  `{"payload": {"schema": [...], "data": [[hash, ...], ...]}, "session": {"session_id",
  "batch_seq", "last_batch_flag", "estimated_num_total"}}` and at most 10,000 rows a request;
- `session_id` is a positive 64-bit integer the advertiser chooses; `batch_seq` starts at 1; on
  `usersreplace`, batch 1 starts the replace and `last_batch_flag: true` ends it (the session's
  rows become the audience; without it Meta ends the session after 90 minutes with what it got);
- answer `{"audience_id", "session_id", "num_received", "num_invalid_entries",
  "invalid_entry_samples": {string: string}}`: rows with bad hashing are counted and sampled, the
  others land;
- errors `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`, throttles as
  HTTP 400/403 with codes 4, 17, 613 or 80003 (Marketing API rate limiting:
  https://developers.facebook.com/docs/marketing-api/overview/rate-limiting; the wait is in
  `X-Business-Use-Case-Usage` -> `estimated_time_to_regain_access`, minutes), 190 for an invalid
  or expired token, 200/1870047 "Audience Size too Low" when a removal would leave too few people,
  2650/18701xx for replace sessions.

Every identifier is normalized by Meta's rules and SHA-256 hashed (`activation.normalize`); raw
contact data never leaves this module. The access token travels as the `access_token` parameter
in the JSON body (so it never appears in a URL, a log line or an exception).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import requests

from activation.destinations.base import (
    Batch,
    BatchOutcome,
    BatchRejected,
    Contact,
    Destination,
    FatalError,
    RemovalsNotAllowed,
    RetryableError,
    Row,
)
from activation.destinations.http import (
    DEFAULT_TIMEOUT,
    call,
    checked_url,
    request_id_of,
    retry_after_seconds,
)
from activation.normalize import META_SCHEMA, meta_identifiers

THROTTLE_CODES = {4, 17, 613, 80003}          # app, user, ad-account, custom-audience throttles
TRANSIENT_CODES = {1, 2}                       # "unknown error" / "service unavailable": retry
TOKEN_CODES = {102, 190}                       # session key / access token invalid or expired
AUDIENCE_TOO_SMALL = (200, 1870047)
UNKNOWN_OBJECT = (100, 33)
REPLACE_IN_PROGRESS = 1870145                  # code 2650: another update is running; wait
INVALID_MESSAGE = "Meta could not use this row's identifiers (format or hashing)"


class MetaDestination(Destination):
    """A Meta customer-list Custom Audience.

    `target` keys: `audience_id` (the Custom Audience id, subtype CUSTOM, created in Ads Manager).
    Rows carry Meta's multi-key schema `META_SCHEMA` (EMAIL, PHONE, FN, LN, COUNTRY), hashed;
    Meta takes no extra fields, so the audience's `fields` are ignored. Meta gives no record ids:
    a removal sends the same hashed row the add sent (`Row.payload`).

    `open()` must be called with the run id before the first batch: each operation of a run
    (add, remove, replace) is one Meta session whose id is derived from (run id, audience,
    operation), and `batch_seq` is the batch's number, so a retried batch carries the same
    (session_id, batch_seq) and Meta does not apply it twice.
    """

    platform = "meta"
    consent = "ads"
    max_batch = 10_000
    max_remove_batch = 10_000
    supports_replace = True

    API_URL = "https://graph.facebook.com"
    API_VERSION = "v25.0"

    def __init__(self, access_token: str, base_url: str = API_URL,
                 timeout: float = DEFAULT_TIMEOUT, api_version: str = API_VERSION):
        self._token = access_token
        self.base_url = checked_url("SEGMENTA_META_URL", base_url).rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.session = requests.Session()
        self._run_id: str | None = None
        self._sessions: dict[tuple[str, str], _Session] = {}   # (audience, operation) -> state

    # ---- the contract -------------------------------------------------------------------------
    def payload(self, contact: Contact, fields: list[str]) -> dict | None:
        hashes = meta_identifiers(email=contact.email, phone=contact.phone,
                                  first_name=contact.first_name, last_name=contact.last_name,
                                  country=contact.country)
        return None if hashes is None else dict(zip(META_SCHEMA, hashes))

    def open(self, target: dict, run_id: str, full_refresh: bool) -> None:
        self._run_id = str(run_id)
        self._sessions.clear()

    def add(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        return self._send("POST", "users", target, rows, batch)

    def remove(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        return self._send("DELETE", "users", target, rows, batch)

    def replace(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """One batch of a replace session: batch 1 starts it, the last batch (`is_last`) makes
        the union of the session's batches the audience."""
        return self._send("POST", "usersreplace", target, rows, batch)

    def close(self, target: dict, succeeded: bool) -> None:
        """After a successful full refresh whose last batch went out without
        `last_batch_flag` (it was split), end the replace session by sending its last accepted
        rows again with the flag (Meta accepts repeated rows within a replace session)."""
        state = self._sessions.get((str(target.get("audience_id")), "replace"))
        try:
            if succeeded and state is not None and state.last_data and not state.finished:
                self._post_session(state, "POST", state.last_data, None, True)
        finally:
            self._run_id = None
            self._sessions.clear()

    # ---- sessions -----------------------------------------------------------------------------
    def session_id(self, audience_id: str, operation: str) -> int:
        """Deterministic per (run, audience, operation): a positive integer below 2**60."""
        if self._run_id is None:
            raise FatalError("MetaDestination.open() was not called before the first batch",
                             "no_session")
        digest = hashlib.sha256(f"{self._run_id}|{audience_id}|{operation}".encode()).hexdigest()
        return int(digest[:15], 16) + 1

    def _session(self, audience_id: str, operation: str, edge: str) -> _Session:
        key = (audience_id, operation)
        if key not in self._sessions:
            self._sessions[key] = _Session(self.session_id(audience_id, operation), audience_id,
                                           edge)
        return self._sessions[key]

    # ---- one request --------------------------------------------------------------------------
    def _send(self, method: str, edge: str, target: dict, rows: list[Row],
              batch: Batch) -> BatchOutcome:
        if not rows:
            return BatchOutcome()
        if not self._token:
            raise FatalError("the Meta access token is empty; set it in the environment "
                             "variable", "missing_token")
        state = self._session(str(target["audience_id"]), batch.operation, edge)
        state.estimate = state.estimate or len(rows) * batch.total
        data = [[str(row.payload.get(name) or "") for name in META_SCHEMA] for row in rows]
        # A refused batch comes back in pieces: none of them may end the session early.
        last = batch.is_last and batch.number not in state.split_numbers
        try:
            answer, request_id = self._post_session(state, method, data, batch, last)
        except BatchRejected:
            state.seqs.pop(batch.key, None)        # refused: its batch_seq was not used
            state.split_numbers.add(batch.number)
            raise
        return self._outcome(answer, request_id, rows, data, f"{method} {edge}")

    def _post_session(self, state: _Session, method: str, data: list[list[str]],
                      batch: Batch | None, last: bool) -> tuple[dict, str | None]:
        body = {
            "payload": {"schema": list(META_SCHEMA), "data": data},
            "session": {"session_id": state.session_id, "batch_seq": state.batch_seq(batch),
                        "last_batch_flag": last, "estimated_num_total": state.estimate},
            "access_token": self._token,
        }
        url = f"{self.base_url}/{self.api_version}/{state.audience_id}/{state.edge}"
        answer, request_id = self._request(method, url, body,
                                           f"{method} /{state.audience_id}/{state.edge}")
        state.last_data = data
        state.finished = state.finished or last
        return answer, request_id

    def _request(self, method: str, url: str, body: dict, label: str) -> tuple[dict, str | None]:
        """One Graph call: `http.call`'s mapping, with the Graph error body read first (Meta
        sends throttles as 400/403 with a code)."""

        def graph_errors(response: requests.Response) -> None:
            error = _json(response).get("error")
            if isinstance(error, dict):
                raise _graph_error(error, response, _trace_id(response, error), label)

        response = call(self.session, method, url, json=body, timeout=self.timeout,
                        classify=graph_errors)
        answer = _json(response)
        if response.status_code >= 300 or not answer:
            raise BatchRejected(f"{label}: HTTP {response.status_code} without a Graph error",
                                f"http_{response.status_code}", _trace_id(response, {}))
        return answer, _trace_id(response, {})

    def _outcome(self, answer: dict, request_id: str | None, rows: list[Row],
                 data: list[list[str]], label: str) -> BatchOutcome:
        """Invalid entries back to customers: a sample names a value Meta could not use; every
        row carrying that value is rejected. When Meta counts more invalid rows than its
        samples name, a batch of several rows is refused so the engine splits it (the valid
        rows were applied; sending them again changes nothing) and a single row is rejected."""
        invalid = int(answer.get("num_invalid_entries") or 0)
        samples = answer.get("invalid_entry_samples") or {}
        if isinstance(samples, list):                    # usersreplace documents an array
            samples = dict.fromkeys(map(str, samples), "")
        rejected: dict[str, tuple[str, str]] = {}
        for value, schema_key in samples.items():
            where = f" ({schema_key})" if schema_key in META_SCHEMA else ""
            for row, values in zip(rows, data):
                if value and value in values:
                    rejected[row.customer_id] = ("invalid_entry", INVALID_MESSAGE + where)
        if invalid > len(rejected):
            if len(rows) > 1:
                raise BatchRejected(f"{label}: Meta counted {invalid} invalid entries but named "
                                    f"{len(rejected)}; split to find them", "invalid_entries",
                                    request_id)
            rejected[rows[0].customer_id] = ("invalid_entry", INVALID_MESSAGE)
        return BatchOutcome(request_id=request_id, rejected=rejected)


@dataclass
class _Session:
    """One Meta upload session: an operation (add, remove, replace) of one run."""

    session_id: int
    audience_id: str
    edge: str
    estimate: int = 0
    seqs: dict[str, int] = field(default_factory=dict)      # batch key -> batch_seq
    split_numbers: set[int] = field(default_factory=set)     # batch numbers refused (split)
    last_data: list[list[str]] | None = None
    finished: bool = False

    def batch_seq(self, batch: Batch | None) -> int:
        """`batch.number`, the same for every retry of a batch; a different batch with a number
        already used (a piece of a split batch), or the closing resend, gets the next free one
        so Meta does not take it for a replay."""
        key = batch.key if batch is not None else "close"
        if key not in self.seqs:
            used = set(self.seqs.values())
            number = batch.number if batch is not None else 0
            total = batch.total if batch is not None else 0
            self.seqs[key] = number if number and number not in used else max(used | {total}) + 1
        return self.seqs[key]


def _graph_error(error: dict, response: requests.Response, request_id: str | None,
                 label: str) -> Exception:
    """The engine's error for a Graph API error object (its message may echo input, so only
    code, subcode and type are repeated)."""
    code, subcode = error.get("code"), error.get("error_subcode")
    detail = f"{label}: Meta error {code}" + (f"/{subcode}" if subcode else "")
    detail += f" ({error.get('type', 'error')}, HTTP {response.status_code})"
    tag = f"meta_{code}" + (f"_{subcode}" if subcode else "")
    if code in THROTTLE_CODES or (code == 2650 and subcode == REPLACE_IN_PROGRESS):
        return RetryableError(f"{detail}: throttled, retry later", tag, request_id,
                              _regain_access_seconds(response))
    if code in TRANSIENT_CODES or response.status_code >= 500 or error.get("is_transient"):
        return RetryableError(f"{detail}: temporary error", tag, request_id,
                              retry_after_seconds(response.headers.get("Retry-After")))
    if code in TOKEN_CODES:
        return FatalError(f"{detail}: the access token is invalid or has expired; set a valid "
                          "token in the environment variable", tag, request_id)
    if (code, subcode) == AUDIENCE_TOO_SMALL:
        return RemovalsNotAllowed(f"{detail}: Audience Size too Low - Meta refuses removals that "
                                  "would leave the audience too small", tag, request_id)
    if (code, subcode) == UNKNOWN_OBJECT:
        return FatalError(f"{detail}: the audience does not exist or the token cannot use it; "
                          "check audience_id", tag, request_id)
    if (code in (10, 2650) or response.status_code in (401, 403)
            or (isinstance(code, int) and 200 <= code < 300)):
        return FatalError(f"{detail}: {_safe_message(error)}", tag, request_id)
    return BatchRejected(f"{detail}: {_safe_message(error)}", tag, request_id)


def _json(response: requests.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _trace_id(response: requests.Response, error: dict) -> str | None:
    return (response.headers.get("x-fb-trace-id") or error.get("fbtrace_id")
            or request_id_of(response))


def _safe_message(error: dict) -> str:
    """Meta's title for the error, never the free-text message (it can quote sent values)."""
    return str(error.get("error_user_title") or "request refused")


def _regain_access_seconds(response: requests.Response) -> float | None:
    """`X-Business-Use-Case-Usage`: {id: [{"type", ..., "estimated_time_to_regain_access": min}]};
    else `Retry-After`."""
    header = response.headers.get("X-Business-Use-Case-Usage")
    minutes = []
    if header:
        try:
            usage = json.loads(header)
            minutes = [float(entry.get("estimated_time_to_regain_access") or 0)
                       for entries in usage.values() for entry in entries]
        except (ValueError, AttributeError, TypeError):
            minutes = []
    if minutes:
        return max(minutes) * 60
    return retry_after_seconds(response.headers.get("Retry-After"))
