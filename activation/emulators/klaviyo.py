"""Klaviyo emulator: bulk profile import jobs into lists, and list removal by profile id.

Speaks the documented JSON:API shapes of the endpoints the Klaviyo destination uses
(https://developers.klaviyo.com/en/reference/bulk_import_profiles and the OpenAPI spec at
https://github.com/klaviyo/openapi, `openapi/stable/apis/*.json`, revision 2026-04-15):

- `POST /api/profile-bulk-import-jobs` with
  `{"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [{"type":
  "profile", "attributes": {"email": ..., "properties": {...}}}]}}, "relationships": {"lists":
  {"data": [{"type": "list", "id": ...}]}}}}` -> 202 with the job
  (`{"data": {"type": "profile-bulk-import-job", "id", "attributes": {"status", "total_count",
  "completed_count", "failed_count", ...}}}`). At most 10,000 profiles and 5 MB per request,
  100 KB per profile.
- `GET /api/profile-bulk-import-jobs/{id}`: the job; `status` is one of queued, processing,
  complete, cancelled.
- `GET /api/profile-bulk-import-jobs/{id}/import-errors`: `{"data": [{"type": "import-error",
  "id", "attributes": {"code", "title", "detail", "source": {"pointer"}, "original_payload"}}],
  "links": {"next"}}` (cursor pages of at most 100).
- `GET /api/profile-bulk-import-jobs/{id}/profiles` (and `/relationships/profiles`): the profiles
  the job created or updated, cursor pages of at most 100.
- `DELETE /api/lists/{id}/relationships/profiles` with `{"data": [{"type": "profile", "id"}]}`,
  at most 1,000 profiles -> 204.
- `POST /api/data-privacy-deletion-jobs` with one identifier of one profile (`id`, or
  `attributes.email` / `attributes.phone_number`) -> 202; the matching profiles are deleted.
  Also: a bulk import profile carrying `id` updates that profile (its email may change;
  `not_found` / `duplicate_profile` import errors when it cannot).

Every request needs `Authorization: Klaviyo-API-Key <key>` and a `revision: YYYY-MM-DD[.suffix]`
header; errors are `{"errors": [{"id", "status", "code", "title", "detail", "source"}]}` and a 429
carries `Retry-After` (seconds).

Simplification: an import is applied when its job is created (Klaviyo finishes a job whether or
not anyone polls it); `complete_after_polls` only delays when the job *reports* complete, so the
client's polling is exercised.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from activation.emulators.base import Emulator, Request, Response, route

MAX_PROFILES = 10_000
MAX_BYTES = 5 * 1024 * 1024
MAX_PROFILE_BYTES = 100 * 1024
MAX_REMOVE = 1_000
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9_-]+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _profile_id() -> str:
    """A 26-character id shaped like Klaviyo's profile ids (ULID alphabet)."""
    value = uuid.uuid4().int
    return "".join(_ULID_ALPHABET[(value >> (5 * i)) & 31] for i in range(26))


def error(status: int, code: str, title: str, detail: str, pointer: str = "/data") -> Response:
    return Response(status, {"errors": [{"id": str(uuid.uuid4()), "status": status, "code": code,
                                         "title": title, "detail": detail,
                                         "source": {"pointer": pointer}}]})


@dataclass
class Job:
    id: str
    list_ids: list[str]
    total: int
    profile_ids: dict[str, None] = field(default_factory=dict)   # ordered set
    errors: list[dict] = field(default_factory=list)
    polls: int = 0
    status: str = "queued"
    created_at: str = field(default_factory=_now)
    completed_at: str | None = None


class KlaviyoEmulator(Emulator):
    platform = "klaviyo"
    token = "pk_emulator_private_key"

    def __init__(self, list_id: str | None = "Y6nRLr", complete_after_polls: int = 0):
        super().__init__()
        self.complete_after_polls = complete_after_polls
        self.lists: dict[str, set[str]] = {}           # list id -> profile ids
        self.profiles: dict[str, dict] = {}            # profile id -> attributes
        self.deleted: list[str] = []                   # profile ids deleted for privacy
        self._by_email: dict[str, str] = {}
        self.jobs: dict[str, Job] = {}
        self.add_counts: Counter = Counter()           # (list id, email) -> imports into the list
        if list_id:
            self.create_list(list_id)

    # ---- accessors for tests ------------------------------------------------------------------
    def create_list(self, list_id: str) -> None:
        with self.lock:
            self.lists.setdefault(list_id, set())

    def members(self, list_id: str) -> set[str]:
        """Emails of the profiles on the list."""
        with self.lock:
            return {self.profiles[pid]["email"] for pid in self.lists[list_id]}

    def profile(self, email: str) -> dict | None:
        with self.lock:
            pid = self._by_email.get(email.strip().lower())
            return None if pid is None else {"id": pid, **self.profiles[pid]}

    def add_count(self, list_id: str, email: str) -> int:
        with self.lock:
            return self.add_counts[(list_id, email.strip().lower())]

    # ---- platform hooks -----------------------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Klaviyo-API-Key {self.token}"

    def idempotency_key(self, request: Request) -> str | None:
        return None                      # Klaviyo has no idempotency keys

    def render_rate_limit(self, retry_after: float | None) -> Response:
        seconds = 1 if retry_after is None else retry_after
        response = error(429, "throttled", "Request was throttled.",
                         f"Request was throttled. Expected available in {seconds:g} second(s).")
        response.headers["Retry-After"] = f"{seconds:g}"
        return response

    def render_unauthorized(self) -> Response:
        return error(401, "not_authenticated", "Authentication credentials were not provided.",
                     "Missing or invalid private key.")

    def render_server_error(self) -> Response:
        return error(500, "error", "A server error occurred.", "A server error occurred.")

    # ---- helpers ------------------------------------------------------------------------------
    def _revision_error(self, request: Request) -> Response | None:
        if _REVISION.match(request.headers.get("revision", "")):
            return None
        return Response(400, {"errors": [{
            "id": str(uuid.uuid4()), "status": 400, "code": "invalid",
            "title": "Invalid input.",
            "detail": "The `revision` header is required (format: YYYY-MM-DD[.suffix]).",
            "source": {"parameter": "revision"}}]})

    def _page(self, request: Request, items: list, render=lambda item: item) -> Response:
        """One cursor page of `items` (the cursor is an offset), each rendered by `render`."""
        try:
            size = int(request.query.get("page[size]", DEFAULT_PAGE_SIZE))
            start = int(request.query.get("page[cursor]", 0))
        except ValueError:
            return error(400, "invalid", "Invalid input.", "Invalid page parameters.")
        if not 1 <= size <= MAX_PAGE_SIZE:
            return error(400, "invalid", "Invalid input.",
                         f"page[size] must be between 1 and {MAX_PAGE_SIZE}.")
        query = {k: v for k, v in request.query.items() if k != "page[cursor]"}
        links = {"self": f"{self.url}{request.path}?{urlencode(request.query)}"}
        if start + size < len(items):
            query["page[cursor]"] = start + size
            links["next"] = f"{self.url}{request.path}?{urlencode(query)}"
        return Response(200, {"data": [render(item) for item in items[start:start + size]],
                              "links": links})

    def _job_body(self, job: Job) -> dict:
        done = job.status == "complete"
        return {"data": {
            "type": "profile-bulk-import-job", "id": job.id,
            "attributes": {
                "status": job.status, "created_at": job.created_at, "total_count": job.total,
                "completed_count": job.total - len(job.errors) if done else 0,
                "failed_count": len(job.errors) if done else 0,
                "completed_at": job.completed_at, "started_at": job.created_at,
                "expires_at": None},
            "relationships": {"lists": {"data": [{"type": "list", "id": lid}
                                                 for lid in job.list_ids]}},
            "links": {"self": f"{self.url}/api/profile-bulk-import-jobs/{job.id}"}}}

    def _import(self, job: Job, resource: object) -> None:
        """Upsert one profile of a job into its lists, or record an import error."""
        attributes = resource.get("attributes") if isinstance(resource, dict) else None
        def fail(code: str, title: str, detail: str, pointer: str = "/data/attributes") -> None:
            job.errors.append({"type": "import-error", "id": str(uuid.uuid4()), "attributes": {
                "code": code, "title": title, "detail": detail, "source": {"pointer": pointer},
                "original_payload": attributes if isinstance(attributes, dict) else None}})

        if (not isinstance(resource, dict) or resource.get("type") != "profile"
                or not isinstance(attributes, dict)):
            return fail("invalid", "Invalid input.", "Each profile must be a `profile` resource.")
        if len(json.dumps(resource).encode()) > MAX_PROFILE_BYTES:
            return fail("invalid", "Invalid input.", "The profile is larger than 100KB.")
        email = str(attributes.get("email") or "").strip().lower()
        if not email:
            return fail("invalid", "Invalid input.", "A profile needs an email address.",
                        "/data/attributes/email")
        if not _EMAIL.match(email):
            return fail("invalid", "Invalid input.", "Invalid email address.",
                        "/data/attributes/email")
        if self.is_rejected(email):
            return fail("invalid", "Invalid input.", "The profile was refused by Klaviyo.")
        pid = resource.get("id")
        if pid is not None:  # an update by profile id: its identifiers may change
            if pid not in self.profiles:
                return fail("not_found", "Not found.", f"A profile with id {pid} does not exist.",
                            "/data/id")
            owner = self._by_email.get(email)
            if owner is not None and owner != pid:
                return fail("duplicate_profile", "Conflict.", "A profile already exists with "
                            "one of these identifiers.", "/data/attributes/email")
            old = self.profiles[pid]["email"]
            if old != email:
                self._by_email.pop(old, None)
                self._by_email[email] = pid
                self.profiles[pid]["email"] = email
        else:
            pid = self._by_email.get(email)
        if pid is None:
            pid = self._by_email[email] = _profile_id()
            self.profiles[pid] = {"email": email, "properties": {}}
        stored = self.profiles[pid]
        for key, value in attributes.items():
            if value is None or key == "email":
                continue                 # the bulk import never clears a field with null
            if key in ("properties", "location") and isinstance(value, dict):
                stored.setdefault(key, {}).update({k: v for k, v in value.items()
                                                   if v is not None})
            else:
                stored[key] = value
        for lid in job.list_ids:
            self.lists[lid].add(pid)
            self.add_counts[(lid, email)] += 1
        if pid not in job.profile_ids:
            job.profile_ids[pid] = None

    # ---- routes -------------------------------------------------------------------------------
    @route("POST", r"/api/profile-bulk-import-jobs/?")
    def create_job(self, request: Request) -> Response:
        if (refused := self._revision_error(request)) is not None:
            return refused
        if len(request.raw) > MAX_BYTES:
            return error(413, "too_large", "Request entity too large.",
                         "The maximum allowed payload size is 5MB.")
        data = request.body.get("data") if isinstance(request.body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile-bulk-import-job":
            return error(400, "invalid", "Invalid input.",
                         "`data.type` must be `profile-bulk-import-job`.", "/data/type")
        profiles = ((data.get("attributes") or {}).get("profiles") or {}).get("data")
        if not isinstance(profiles, list) or not profiles:
            return error(400, "invalid", "Invalid input.", "`profiles.data` must be a list.",
                         "/data/attributes/profiles/data")
        if len(profiles) > MAX_PROFILES:
            return error(400, "invalid", "Invalid input.",
                         f"A job accepts at most {MAX_PROFILES} profiles.",
                         "/data/attributes/profiles/data")
        lists = ((data.get("relationships") or {}).get("lists") or {}).get("data") or []
        if not isinstance(lists, list) or any(not isinstance(item, dict)
                                              or item.get("type") != "list" for item in lists):
            return error(400, "invalid", "Invalid input.", "Invalid list relationship.",
                         "/data/relationships/lists/data")
        for item in lists:
            if item.get("id") not in self.lists:
                return error(404, "not_found", "Not found.",
                             f"A list with id {item.get('id')} does not exist.",
                             "/data/relationships/lists/data")
        job = Job(id=str(uuid.uuid4()), list_ids=[item["id"] for item in lists],
                  total=len(profiles))
        for resource in profiles:
            self._import(job, resource)
        if self.complete_after_polls <= 0:
            job.status, job.completed_at = "complete", _now()
        self.jobs[job.id] = job
        return Response(202, self._job_body(job))

    @route("GET", r"/api/profile-bulk-import-jobs/(?P<job_id>[^/]+)")
    def get_job(self, request: Request, job_id: str) -> Response:
        if (refused := self._revision_error(request)) is not None:
            return refused
        job = self.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "Not found.", "Job not found.")
        job.polls += 1
        if job.status != "complete":
            job.status = "processing"
            if job.polls >= self.complete_after_polls:
                job.status, job.completed_at = "complete", _now()
        return Response(200, self._job_body(job))

    @route("GET", r"/api/profile-bulk-import-jobs/(?P<job_id>[^/]+)/import-errors")
    def get_import_errors(self, request: Request, job_id: str) -> Response:
        if (refused := self._revision_error(request)) is not None:
            return refused
        job = self.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "Not found.", "Job not found.")
        return self._page(request, job.errors)

    @route("GET", r"/api/profile-bulk-import-jobs/(?P<job_id>[^/]+)/profiles")
    def get_job_profiles(self, request: Request, job_id: str) -> Response:
        if (refused := self._revision_error(request)) is not None:
            return refused
        job = self.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "Not found.", "Job not found.")
        wanted = request.query.get("fields[profile]")
        names = set(wanted.split(",")) if wanted else None

        def render(pid: str) -> dict:
            return {"type": "profile", "id": pid,
                    "attributes": {k: v for k, v in self.profiles[pid].items()
                                   if names is None or k in names},
                    "links": {"self": f"{self.url}/api/profiles/{pid}"}}

        return self._page(request, list(job.profile_ids), render)

    @route("GET", r"/api/profile-bulk-import-jobs/(?P<job_id>[^/]+)/relationships/profiles")
    def get_job_profile_ids(self, request: Request, job_id: str) -> Response:
        if (refused := self._revision_error(request)) is not None:
            return refused
        job = self.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "Not found.", "Job not found.")
        return self._page(request, list(job.profile_ids),
                          lambda pid: {"type": "profile", "id": pid})

    @route("DELETE", r"/api/lists/(?P<list_id>[^/]+)/relationships/profiles/?")
    def remove_profiles(self, request: Request, list_id: str) -> Response:
        if (refused := self._revision_error(request)) is not None:
            return refused
        if list_id not in self.lists:
            return error(404, "not_found", "Not found.",
                         f"A list with id {list_id} does not exist.")
        data = request.body.get("data") if isinstance(request.body, dict) else None
        if not isinstance(data, list) or not data:
            return error(400, "invalid", "Invalid input.", "`data` must be a list of profiles.")
        if len(data) > MAX_REMOVE:
            return error(400, "invalid", "Invalid input.",
                         f"This endpoint accepts a maximum of {MAX_REMOVE} profiles per call.")
        for index, item in enumerate(data):
            if (not isinstance(item, dict) or item.get("type") != "profile"
                    or not isinstance(item.get("id"), str) or self.is_rejected(item.get("id"))):
                return error(400, "invalid", "Invalid input.", "Invalid profile identifier.",
                             f"/data/{index}/id")
        for item in data:
            self.lists[list_id].discard(item["id"])
        return Response(204)

    @route("POST", r"/api/data-privacy-deletion-jobs/?")
    def request_deletion(self, request: Request) -> Response:
        """A GDPR deletion: every profile matching the one identifier is gone (from its lists
        too); `deleted` records the profile ids."""
        if (refused := self._revision_error(request)) is not None:
            return refused
        data = request.body.get("data") if isinstance(request.body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "data-privacy-deletion-job":
            return error(400, "invalid", "Invalid input.",
                         "`data.type` must be `data-privacy-deletion-job`.", "/data/type")
        profile = (((data.get("attributes") or {}).get("profile") or {}).get("data")) or {}
        if profile.get("type") != "profile" or not isinstance(profile.get("attributes"), dict):
            return error(400, "invalid", "Invalid input.", "`profile.data` must be a profile "
                         "with `attributes`.", "/data/attributes/profile/data")
        attributes = profile["attributes"]
        given = [k for k in ("id", "email", "phone_number")
                 if (profile.get(k) if k == "id" else attributes.get(k))]
        if len(given) != 1:
            return error(400, "invalid", "Invalid input.", "Provide exactly one of email, "
                         "phone_number or id.", "/data/attributes/profile/data")
        if given[0] == "id":
            matches = [profile["id"]] if profile["id"] in self.profiles else []
        else:
            value = str(attributes[given[0]]).strip().lower()
            matches = [pid for pid, p in self.profiles.items()
                       if str(p.get(given[0]) or "").lower() == value]
        for pid in matches:
            stored = self.profiles.pop(pid)
            self._by_email.pop(stored.get("email"), None)
            for members in self.lists.values():
                members.discard(pid)
            self.deleted.append(pid)
        return Response(202, None)
