"""Klaviyo: audience members become profiles on a Klaviyo list.

Adds go through Klaviyo's asynchronous bulk profile import (an upsert by email whose
`relationships.lists` puts every imported profile on the list); removals take the profile ids
off the list. The documented API this client speaks (OpenAPI spec, revision 2026-04-15:
https://github.com/klaviyo/openapi/tree/main/openapi/stable/apis; guide:
https://developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api):

- `POST /api/profile-bulk-import-jobs` (`bulk_import_profiles`): "Accepts up to 10,000 profiles
  per request. The maximum allowed payload size is 5MB. The maximum allowed payload size
  per-profile is 100KB." Body `{"data": {"type": "profile-bulk-import-job", "attributes":
  {"profiles": {"data": [{"type": "profile", "attributes": {...}}]}}, "relationships": {"lists":
  {"data": [{"type": "list", "id": LIST}]}}}}`; answers 202 with the job
  (`data.id`, `data.attributes.status` in queued | processing | complete | cancelled).
- `GET /api/profile-bulk-import-jobs/{id}`: the job, polled until `complete`.
- `GET /api/profile-bulk-import-jobs/{id}/import-errors`: per-profile failures,
  `attributes: {code, title, detail, source: {pointer}, original_payload}`.
- `GET /api/profile-bulk-import-jobs/{id}/profiles`: the profiles the job created or updated
  (cursor pages of at most 100, `links.next`), read with `fields[profile]=email` to map each
  profile id back to the row that carried that email.
  A member already synced is imported with its profile `id` (the profile object is the one
  of Create or Update Profile, whose `id` updates that profile's identifiers): a changed
  email changes that profile's email instead of creating a second profile. When Klaviyo
  cannot apply the id (the profile was deleted, or another profile already has the new email:
  import error `not_found` or `duplicate_profile`), the member is imported again by email alone
  and, for a duplicate, the old profile leaves the list.
- `DELETE /api/lists/{id}/relationships/profiles` (`remove_profiles_from_list`):
  `{"data": [{"type": "profile", "id": ...}]}`, "a maximum of 1000 profiles per call", 204.
- `POST /api/data-privacy-deletion-jobs` (`request_profile_deletion`): an erasure, `{"data":
  {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {"type": "profile",
  "id": ...}}}}}`, 202; one identifier per request (rate limit 3/s burst, 60/m steady).
- Every request: `Authorization: Klaviyo-API-Key <private key>` and a dated `revision` header.
  Errors are `{"errors": [{"id", "code", "title", "detail", "source"}]}`; a 429 carries
  `Retry-After` in seconds (handled by `http.call`).

Klaviyo names no row in an import error except through the profile it echoes back
(`original_payload`), so errors are mapped to customers by the email that was submitted; that
email is never logged or put in a message (messages are scrubbed of anything email-shaped).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time

import requests

from activation.destinations.base import (
    Batch,
    BatchOutcome,
    BatchRejected,
    Contact,
    Destination,
    FatalError,
    RetryableError,
    Row,
)
from activation.destinations.http import DEFAULT_TIMEOUT, call, checked_url, request_id_of

log = logging.getLogger(__name__)

BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-04-15"
MAX_BYTES = 5 * 1024 * 1024
MAX_PROFILE_BYTES = 100 * 1024
PAGE_SIZE = 100
CONTACT_FIELDS = {"first_name": "first_name", "last_name": "last_name", "country": "country"}

_EMAIL_LIKE = re.compile(r"[^\s@\"'<>]+@[^\s@\"'<>]+")


def scrub(text: object) -> str:
    """A platform message with anything email-shaped replaced (messages may echo the input)."""
    return _EMAIL_LIKE.sub("<email>", str(text or ""))[:500]


def _plain(value: object) -> object:
    """A JSON-ready value: numpy/pandas values unwrapped, sequences as lists, dates as ISO."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    elif hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _blank(value: object) -> bool:
    return (value is None or (isinstance(value, float) and math.isnan(value))
            or (isinstance(value, str) and not value.strip()))


class _JobLost(Exception):
    """The job Klaviyo accepted can no longer be followed (cancelled or unknown)."""


class KlaviyoDestination(Destination):
    """Klaviyo list membership through bulk profile import jobs.

    `target` (from the audiences YAML): `{"list_id": "Y6nRLr"}`, the id of an existing Klaviyo
    list.

    `payload` is the profile's attributes: `email` (trimmed, lowercased), and for each audience
    field `first_name`, `last_name` and `country` (-> `location.country`) from the contact and
    any other field from `contact.properties` under `properties`. Empty values are left out: the
    bulk import never clears a field, so a property dropped from an audience stays on the profile.

    `add` submits one job per batch and waits for it (polling every `poll_interval` seconds, at
    most `poll_timeout`); a job still running at the deadline raises `RetryableError` and the
    retry of the same batch resumes that job instead of importing again. Rows the job refused
    come back in `BatchOutcome.rejected`; every other row's Klaviyo profile id is in
    `BatchOutcome.destination_ids`, and `remove` needs it (`Row.destination_id`).
    `BatchOutcome.request_id` is the import job id for adds, the response's request id for
    removals.
    """

    platform = "klaviyo"
    consent = "email"
    max_batch = 10_000
    max_remove_batch = 1_000

    def __init__(self, api_key: str, base_url: str = BASE_URL, timeout: float = DEFAULT_TIMEOUT,
                 *, revision: str = REVISION, poll_interval: float = 2.0,
                 poll_timeout: float = 300.0, read_retries: int = 3):
        if not api_key:
            raise FatalError("no Klaviyo private API key: set it in the environment variable",
                             "no_credentials")
        self.base_url = checked_url("SEGMENTA_KLAVIYO_URL", base_url).rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.read_retries = read_retries
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Klaviyo-API-Key {api_key}",
            "revision": revision,
            "Accept": "application/vnd.api+json",
            "Content-Type": "application/vnd.api+json",
        })
        self._jobs: dict[tuple, str] = {}      # (batch key, list, customers) -> unfinished job

    # ---- payload ------------------------------------------------------------------------------
    def payload(self, contact: Contact, fields: list[str]) -> dict | None:
        email = str(contact.email or "").strip().lower()
        if "@" not in email or any(c.isspace() for c in email):
            return None
        attributes: dict = {"email": email}
        properties: dict = {}
        for name in fields:
            if name in CONTACT_FIELDS:
                value = getattr(contact, CONTACT_FIELDS[name])
                if _blank(value):
                    continue
                if name == "country":
                    attributes["location"] = {"country": str(value).strip()}
                else:
                    attributes[name] = str(value).strip()
            elif name in contact.properties and not _blank(contact.properties[name]):
                properties[name] = _plain(contact.properties[name])
        if properties:
            attributes["properties"] = properties
        return attributes

    # ---- add ----------------------------------------------------------------------------------
    def add(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        list_id = self._list_id(target)
        outcome = BatchOutcome()
        sendable = []
        for row in rows:
            if not str(row.payload.get("email") or "").strip():
                outcome.rejected[row.customer_id] = ("no_identifier", "the profile has no email")
            elif len(json.dumps(row.payload).encode()) > MAX_PROFILE_BYTES:
                outcome.rejected[row.customer_id] = ("profile_too_large",
                                                     "the profile is larger than 100 KB")
            else:
                sendable.append(row)
        if not sendable:
            return outcome
        key = (batch.key, list_id, tuple(row.customer_id for row in sendable))
        job_id = self._jobs.get(key)
        if job_id is None:
            job_id = self._submit(list_id, sendable)
            self._jobs[key] = job_id
        outcome.request_id = job_id
        try:
            self._wait(job_id)
            errors = self._collect(f"/api/profile-bulk-import-jobs/{job_id}/import-errors",
                                   {"page[size]": PAGE_SIZE})
            profiles = self._collect(f"/api/profile-bulk-import-jobs/{job_id}/profiles",
                                     {"fields[profile]": "email", "page[size]": PAGE_SIZE})
        except _JobLost as exc:
            self._jobs.pop(key, None)
            raise RetryableError(f"Klaviyo import job {job_id}: {exc}; the batch will be sent "
                                 "again", "job_lost", job_id) from None
        self._jobs.pop(key, None)
        self._settle(sendable, errors, profiles, outcome)
        self._retry_without_id(list_id, sendable, batch, outcome)
        log.info("klaviyo job %s: %d imported, %d rejected", job_id,
                 len(outcome.destination_ids), len(outcome.rejected))
        return outcome

    def _submit(self, list_id: str, rows: list[Row]) -> str:
        body = {"data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [
                {"type": "profile", **({"id": row.destination_id} if row.destination_id else {}),
                 "attributes": row.payload} for row in rows]}},
            "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}}}}
        data = json.dumps(body).encode()
        if len(data) > MAX_BYTES:
            raise BatchRejected(f"{len(rows)} profiles make {len(data)} bytes, over Klaviyo's "
                                "5 MB per import job", "payload_too_large")
        response = call(self.session, "POST", f"{self.base_url}/api/profile-bulk-import-jobs",
                        data=data, timeout=self.timeout)
        if response.status_code != 202:
            self._refused(response, "import job")
        job_id = (self._json(response).get("data") or {}).get("id")
        if not job_id:
            raise RetryableError("Klaviyo accepted the import job without an id", "no_job_id",
                                 request_id_of(response))
        log.info("klaviyo job %s submitted: %d profiles to list %s", job_id, len(rows), list_id)
        return job_id

    def _wait(self, job_id: str) -> None:
        """Poll the job until it is complete, at most `poll_timeout` seconds."""
        deadline = time.monotonic() + self.poll_timeout
        while True:
            job = self._get(f"/api/profile-bulk-import-jobs/{job_id}").get("data") or {}
            status = (job.get("attributes") or {}).get("status")
            if status == "complete":
                return
            if status == "cancelled":
                raise _JobLost("the job was cancelled")
            if time.monotonic() + self.poll_interval > deadline:
                raise RetryableError(
                    f"Klaviyo import job {job_id} still {status} after {self.poll_timeout:g} s",
                    "job_pending", job_id, retry_after=self.poll_interval)
            time.sleep(self.poll_interval)

    def _settle(self, rows: list[Row], errors: list[dict], profiles: list[dict],
                outcome: BatchOutcome) -> None:
        """Map import errors and imported profiles back to customers by the submitted email."""
        customers: dict[str, list[str]] = {}
        for row in rows:
            customers.setdefault(row.payload["email"].strip().lower(), []).append(row.customer_id)
        for item in errors:
            attributes = item.get("attributes") or {}
            for customer_id in self._customers_of(attributes, customers):
                outcome.rejected[customer_id] = (
                    str(attributes.get("code") or "import_error"),
                    scrub(attributes.get("detail") or attributes.get("title")))
        ids = {str((p.get("attributes") or {}).get("email") or "").strip().lower(): p.get("id")
               for p in profiles}
        for row in rows:
            if row.customer_id in outcome.rejected:
                continue
            profile_id = ids.get(row.payload["email"].strip().lower())
            if profile_id:
                outcome.destination_ids[row.customer_id] = profile_id
            else:
                outcome.rejected[row.customer_id] = (
                    "not_imported", "the import job reported neither a profile nor an error")

    def _retry_without_id(self, list_id: str, rows: list[Row], batch: Batch,
                          outcome: BatchOutcome) -> None:
        """Updates Klaviyo could not apply by profile id, imported again by email alone; the
        old profile of a `duplicate_profile` leaves the list."""
        again = [r for r in rows if r.destination_id and outcome.rejected.get(
            r.customer_id, ("",))[0] in ("duplicate_profile", "not_found")]
        if not again:
            return
        duplicates = [r for r in again if outcome.rejected[r.customer_id][0] == "duplicate_profile"]
        for row in again:
            outcome.rejected.pop(row.customer_id)
        if duplicates:
            self.remove({"list_id": list_id}, duplicates, batch)
        retry = self.add({"list_id": list_id},
                         [dataclasses.replace(r, destination_id=None) for r in again],
                         dataclasses.replace(batch, key=batch.key + "-by-email"))
        outcome.rejected.update(retry.rejected)
        outcome.destination_ids.update(retry.destination_ids)

    @staticmethod
    def _customers_of(error: dict, customers: dict[str, list[str]]) -> list[str]:
        """The customers whose submitted email the error's `original_payload` echoes; none when
        it echoes no email we sent (those rows then get no profile id -> `not_imported`)."""
        payload = error.get("original_payload") or {}
        if isinstance(payload.get("attributes"), dict):
            payload = payload["attributes"]
        return customers.get(str(payload.get("email") or "").strip().lower(), [])

    # ---- remove -------------------------------------------------------------------------------
    def remove(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        list_id = self._list_id(target)
        outcome = BatchOutcome()
        known = [row for row in rows if row.destination_id]
        for row in rows:
            if not row.destination_id:
                outcome.rejected[row.customer_id] = (
                    "no_profile_id",
                    "no Klaviyo profile id recorded for this member; a full resync records it")
        if not known:
            return outcome
        response = call(self.session, "DELETE",
                        f"{self.base_url}/api/lists/{list_id}/relationships/profiles",
                        json={"data": [{"type": "profile", "id": row.destination_id}
                                       for row in known]},
                        timeout=self.timeout)
        if response.status_code not in (200, 202, 204):
            self._refused(response, f"removal from list {list_id}")
        outcome.request_id = request_id_of(response)
        return outcome

    def erase(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """Off the list, then a data-privacy deletion job per profile (Klaviyo deletes every
        profile matching the id, asynchronously, as a GDPR deletion)."""
        outcome = self.remove(target, rows, batch)
        for row in rows:
            if row.customer_id in outcome.rejected or not row.destination_id:
                continue
            body = {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {
                "data": {"type": "profile", "id": row.destination_id, "attributes": {}}}}}}
            response = call(self.session, "POST", f"{self.base_url}/api/data-privacy-deletion-jobs",
                            json=body, timeout=self.timeout)
            if response.status_code not in (202, 404):
                self._refused(response, "profile deletion")
        return outcome

    def close(self, target: dict, succeeded: bool) -> None:
        self._jobs.clear()

    # ---- HTTP helpers -------------------------------------------------------------------------
    @staticmethod
    def _list_id(target: dict) -> str:
        list_id = str((target or {}).get("list_id") or "").strip()
        if not list_id:
            raise FatalError("the Klaviyo destination needs `list_id` in the audience's target",
                             "bad_config")
        return list_id

    @staticmethod
    def _json(response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _refused(self, response: requests.Response, what: str) -> None:
        """Raise for a 4xx the shared `call` left to us: unknown list -> fatal, else the
        content was refused (the engine splits the batch)."""
        first = (self._json(response).get("errors") or [{}])[0] or {}
        code = str(first.get("code") or f"http_{response.status_code}")
        message = (f"Klaviyo refused the {what}: {response.status_code} {code} - "
                   f"{scrub(first.get('detail') or first.get('title'))}")
        if response.status_code == 404:
            raise FatalError(message, code, request_id_of(response))
        raise BatchRejected(message, code, request_id_of(response))

    def _get(self, path_or_url: str, params: dict | None = None) -> dict:
        """GET with a few local retries on throttling: reading a job is safe to repeat and
        cheaper than importing the batch again."""
        url = path_or_url if path_or_url.startswith("http") else f"{self.base_url}{path_or_url}"
        for attempt in range(self.read_retries + 1):
            try:
                response = call(self.session, "GET", url, params=params, timeout=self.timeout)
                break
            except RetryableError as exc:
                if attempt == self.read_retries:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else 2 ** attempt
                time.sleep(min(wait, self.poll_timeout))
        if response.status_code == 404:
            raise _JobLost("Klaviyo no longer knows the job")
        if response.status_code != 200:
            self._refused(response, "job lookup")
        return self._json(response)

    def _collect(self, path: str, params: dict) -> list[dict]:
        """Every item of a cursor-paginated collection (following `links.next`)."""
        items: list[dict] = []
        page = self._get(path, params)
        while True:
            items.extend(page.get("data") or [])
            next_url = (page.get("links") or {}).get("next")
            if not next_url:
                return items
            page = self._get(next_url)

