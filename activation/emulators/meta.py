"""Meta Custom Audiences emulator: the Graph API edges a customer-list sync uses.

Documented at https://developers.facebook.com/documentation/ads-commerce/marketing-api/audiences/guides/custom-audiences
and .../marketing-api/reference/custom-audience/users (and /usersreplace):

- `POST /{version}/{audience_id}/users` adds, `DELETE /{version}/{audience_id}/users` removes, with
  `{"payload": {"schema": ["EMAIL", "PHONE", ...], "data": [[<sha256 hex or "">, ...], ...]},
  "session": {"session_id", "batch_seq", "last_batch_flag", "estimated_num_total"}}`, at most
  10,000 rows per request, every value SHA-256 lowercase hex ("" when unknown);
- `POST /{version}/{audience_id}/usersreplace` with the same body: `batch_seq` 1 starts a replace
  session, `last_batch_flag: true` ends it and the session's rows become the audience; errors
  there have code 2650 (subcodes 1870145 update in progress, 1870147 first batch missing,
  1870159 session finished);
- success: `{"audience_id", "session_id", "num_received", "num_invalid_entries",
  "invalid_entry_samples": {string: string}}` (rows with bad hashing are counted and sampled, the
  rest land). This emulator keys a sample by the invalid value and gives the schema field it was
  in as the value, e.g. `{"<value>": "EMAIL"}`;
- errors: `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}` — 190 expired
  token, 80003 custom-audience throttle (HTTP 400, `X-Business-Use-Case-Usage` header with
  `estimated_time_to_regain_access` in minutes), 200/1870047 "Audience Size too Low" on a removal,
  100/33 unknown audience, 100 for a malformed request.

Replays: a request with the same (session_id, batch_seq) on the same edge gets its first answer
again and is not applied twice (`idempotency_key`).
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter

from activation.emulators.base import Emulator, Request, Response, route
from activation.normalize import is_sha256_hex

MAX_ROWS = 10_000
SCHEMA_KEYS = {"EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST",
               "ZIP", "COUNTRY", "MADID", "EXTERN_ID"}
UNHASHED_KEYS = {"MADID", "EXTERN_ID"}
MATCH_KEYS = ("EMAIL", "PHONE")      # a member is identified by its email hash, else phone hash
THROTTLE_CODE, THROTTLE_SUBCODE = 80003, 2446079
REPLACE_ERROR = 2650


def graph_error(status: int, code: int, message: str, subcode: int | None = None,
                error_type: str = "OAuthException", headers: dict | None = None,
                **extra: object) -> Response:
    trace = uuid.uuid4().hex[:22]
    error = {"message": message, "type": error_type, "code": code, **extra, "fbtrace_id": trace}
    if subcode is not None:
        error["error_subcode"] = subcode
    return Response(status, {"error": error}, {"x-fb-trace-id": trace, **(headers or {})})


class MetaEmulator(Emulator):
    platform = "meta"
    api_version = "v25.0"

    def __init__(self, audience_id: str = "23850000000000001", min_audience_size: int = 0):
        super().__init__()
        self.audience_id = audience_id
        self.min_audience_size = min_audience_size    # removals leaving fewer are refused
        self.reset()

    def reset(self) -> None:
        """Back to one empty audience, no faults, no rejections, no requests: lets tests share
        one running server."""
        with self.lock:
            self.audiences: dict[str, dict[str, list[str]]] = {self.audience_id: {}}
            self.add_counts: Counter[str] = Counter()     # member key -> times an add applied it
            self._replace: dict[tuple[str, int], dict] = {}   # (audience, session) -> state
            self._received: Counter[tuple[str, str, int]] = Counter()
            self.requests.clear()
            self._faults.clear()
            self._rejected_values.clear()
            self._replies.clear()
            self._hang_at = None

    # ---- accessors for tests ----------------------------------------------------------------
    def create_audience(self, audience_id: str) -> None:
        with self.lock:
            self.audiences.setdefault(audience_id, {})

    def members(self, audience_id: str) -> set[str]:
        """Member keys (the row's EMAIL hash, else its PHONE hash)."""
        with self.lock:
            return set(self.audiences[audience_id])

    def rows(self, audience_id: str) -> dict[str, list[str]]:
        """Member key -> the last row received for it, in the order of `schema`."""
        with self.lock:
            return {key: list(row) for key, row in self.audiences[audience_id].items()}

    def expire_sessions(self) -> None:
        """What Meta does 90 minutes after a replace session's first batch: the audience is
        replaced with what was uploaded so far."""
        with self.lock:
            for (audience_id, _), state in self._replace.items():
                if not state["finished"]:
                    self.audiences[audience_id] = dict(state["rows"])
                    state["finished"] = True

    # ---- platform hooks -----------------------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        body_token = request.body.get("access_token") if isinstance(request.body, dict) else None
        return self.token in (request.query.get("access_token"), body_token,
                              header.removeprefix("Bearer ").removeprefix("OAuth "))

    def render_unauthorized(self) -> Response:
        return graph_error(400, 190, "Error validating access token: Session has expired.", 463)

    def render_rate_limit(self, retry_after: float | None) -> Response:
        minutes = 0 if retry_after is None else math.ceil(retry_after / 60)
        usage = {"1000000000": [{"type": "custom_audience", "call_count": 100,
                                 "total_cputime": 20, "total_time": 30,
                                 "estimated_time_to_regain_access": minutes}]}
        return graph_error(400, THROTTLE_CODE, "There have been too many calls to this ad-account. "
                           "Wait a bit and try again.", THROTTLE_SUBCODE,
                           headers={"X-Business-Use-Case-Usage": json.dumps(usage)})

    def render_server_error(self) -> Response:
        return graph_error(500, 2, "An unexpected error has occurred. Please retry your request "
                           "later.")

    def idempotency_key(self, request: Request) -> str | None:
        session = _json_field(request.body, "session")
        if not isinstance(session, dict) or "session_id" not in session:
            return None
        return f"{request.method} {request.path} {session['session_id']}:{session.get('batch_seq')}"

    # ---- routes -------------------------------------------------------------------------------
    @route("POST", r"/v[0-9.]+/(?P<audience_id>[^/]+)/users")
    def add_users(self, request: Request, audience_id: str) -> Response:
        parsed = self._parse(request, audience_id, replace=False)
        if isinstance(parsed, Response):
            return parsed
        schema, valid, session, samples, invalid = parsed
        members = self.audiences[audience_id]
        for row in valid:
            key = _member_key(schema, row)
            members[key] = row
            self.add_counts[key] += 1
        return self._ok(audience_id, "users", session, len(valid) + invalid, invalid, samples)

    @route("DELETE", r"/v[0-9.]+/(?P<audience_id>[^/]+)/users")
    def remove_users(self, request: Request, audience_id: str) -> Response:
        parsed = self._parse(request, audience_id, replace=False)
        if isinstance(parsed, Response):
            return parsed
        schema, valid, session, samples, invalid = parsed
        members = self.audiences[audience_id]
        keys = {_member_key(schema, row) for row in valid} & set(members)
        if len(members) - len(keys) < self.min_audience_size:
            return graph_error(400, 200, "Permissions error", 1870047,
                               error_user_title="Audience Size too Low",
                               error_user_msg="You cannot remove users from this audience "
                               "because it will result in a low audience size.")
        for key in keys:
            del members[key]
        return self._ok(audience_id, "users", session, len(valid) + invalid, invalid, samples)

    @route("POST", r"/v[0-9.]+/(?P<audience_id>[^/]+)/usersreplace")
    def replace_users(self, request: Request, audience_id: str) -> Response:
        parsed = self._parse(request, audience_id, replace=True)
        if isinstance(parsed, Response):
            return parsed
        schema, valid, session, samples, invalid = parsed
        state = self._replace.setdefault((audience_id, session["session_id"]),
                                         {"rows": {}, "finished": False})
        for row in valid:
            key = _member_key(schema, row)
            state["rows"][key] = row
            self.add_counts[key] += 1
        if session.get("last_batch_flag") is True:
            self.audiences[audience_id] = dict(state["rows"])
            state["finished"] = True
        return self._ok(audience_id, "usersreplace", session, len(valid) + invalid, invalid,
                        samples)

    # ---- validation ---------------------------------------------------------------------------
    def _parse(self, request: Request, audience_id: str, replace: bool):
        """(schema, valid rows, session, invalid_entry_samples, invalid count) or an error."""
        if audience_id not in self.audiences:
            return graph_error(400, 100, f"Unsupported request. Object with ID '{audience_id}' "
                               "does not exist, cannot be loaded due to missing permissions, or "
                               "does not support this operation.", 33, "GraphMethodException")
        payload = _json_field(request.body, "payload")
        session = _json_field(request.body, "session")
        if not isinstance(payload, dict) or "schema" not in payload or "data" not in payload:
            return graph_error(400, 100, "(#100) The parameter payload is required and must "
                               "contain schema and data")
        if not _valid_session(session):
            return graph_error(400, 100, "(#100) session must contain a positive integer "
                               "session_id and batch_seq")
        schema = [payload["schema"]] if isinstance(payload["schema"], str) else payload["schema"]
        if (not isinstance(schema, list) or not schema
                or any(name not in SCHEMA_KEYS for name in schema)
                or not any(name in MATCH_KEYS for name in schema)):
            return graph_error(400, 100, "(#100) Invalid schema: use a list of keys among "
                               f"{sorted(SCHEMA_KEYS)} including EMAIL or PHONE")
        data = payload["data"]
        if not isinstance(data, list) or not data:
            return graph_error(400, 100, "(#100) Data is missing or does not match schema")
        if len(data) > MAX_ROWS:
            return graph_error(400, 100, f"(#100) Too many users in one request: {len(data)} "
                               f"(at most {MAX_ROWS})")
        if len(schema) == 1:
            data = [row if isinstance(row, list) else [row] for row in data]
        if any(not isinstance(row, list) or len(row) != len(schema) for row in data):
            return graph_error(400, 100, "(#100) Data is missing or does not match schema")
        refusal = self._session_refusal(audience_id, session, replace)
        if refusal is not None:
            return refusal
        valid, samples = [], {}
        for row in data:
            field = _invalid_field(schema, row)
            if field is None and self.is_rejected(*row):
                field = next(name for name, value in zip(schema, row) if self.is_rejected(value))
            if field is None:
                valid.append([str(value) for value in row])
            elif len(samples) < 100:
                value = row[schema.index(field)] if field in schema else ""
                samples[str(value) or json.dumps(row)] = field
        return schema, valid, session, samples, len(data) - len(valid)

    def _session_refusal(self, audience_id: str, session: dict, replace: bool) -> Response | None:
        in_progress = [sid for (aid, sid), state in self._replace.items()
                       if aid == audience_id and not state["finished"]]
        if not replace:
            if in_progress:
                return graph_error(400, REPLACE_ERROR, "Audience Update In Progress", 1870145)
            return None
        state = self._replace.get((audience_id, session["session_id"]))
        if state is None and session["batch_seq"] != 1:
            return graph_error(400, REPLACE_ERROR, "Invalid Upload Batch for Replace: the first "
                               "batch_seq was not detected", 1870147)
        if state is not None and state["finished"]:
            return graph_error(400, REPLACE_ERROR, "Replace Session Finished", 1870159)
        if any(sid != session["session_id"] for sid in in_progress):
            return graph_error(400, REPLACE_ERROR, "Audience Update In Progress", 1870145)
        return None

    def _ok(self, audience_id: str, edge: str, session: dict, received: int, invalid: int,
            samples: dict) -> Response:
        counter = (audience_id, edge, session["session_id"])
        self._received[counter] += received
        trace = uuid.uuid4().hex[:22]
        return Response(200, {"audience_id": audience_id,
                              "session_id": str(session["session_id"]),
                              "num_received": self._received[counter],
                              "num_invalid_entries": invalid,
                              "invalid_entry_samples": samples}, {"x-fb-trace-id": trace})


def _json_field(body: object, name: str) -> object:
    """A top-level parameter; SDKs send `payload`/`session` as JSON strings, curl as objects."""
    value = body.get(name) if isinstance(body, dict) else None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _valid_session(session: object) -> bool:
    if not isinstance(session, dict):
        return False
    session_id, batch_seq = session.get("session_id"), session.get("batch_seq")
    return (isinstance(session_id, int) and not isinstance(session_id, bool) and session_id > 0
            and isinstance(batch_seq, int) and not isinstance(batch_seq, bool) and batch_seq > 0)


def _invalid_field(schema: list[str], row: list) -> str | None:
    """The first schema field whose value Meta cannot use ("" is allowed: unknown)."""
    for name, value in zip(schema, row):
        if not isinstance(value, str):
            return name
        if value and name not in UNHASHED_KEYS and not is_sha256_hex(value):
            return name
    if not any(value for name, value in zip(schema, row) if name in MATCH_KEYS):
        return next(name for name in schema if name in MATCH_KEYS)
    return None


def _member_key(schema: list[str], row: list[str]) -> str:
    values = dict(zip(schema, row))
    return values.get("EMAIL") or values.get("PHONE")
