"""HubSpot: contacts upserted by email, then added to / removed from a MANUAL contact list.

Documented API (https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/
batch/upsert-contacts, .../crm/lists/memberships/update-list-memberships, and the lists guide
https://developers.hubspot.com/docs/guides/api/crm/lists/overview):

    POST /crm/v3/objects/contacts/batch/upsert                                   (100 inputs)
        {"inputs": [{"idProperty": "email", "id": "mary@example.com",
                     "properties": {"email": "...", "firstname": "Mary", ...}}]}
        -> 200 {"status": "COMPLETE", "results": [{"id": "51", "properties": {...}}, ...]}
        -> 207 the same with {"errors": [{"category", "message", "context": {"ids": [...]}}]}
    PUT  /crm/v3/lists/{listId}/memberships/add-and-remove   (MANUAL or SNAPSHOT lists only)
        {"recordIdsToAdd": ["51"], "recordIdsToRemove": []}
        -> 200 {"recordIdsMissing": [...], "recordIdsRemoved": [...], "recordsIdsAdded": [...]}
    POST /crm/v3/objects/contacts/batch/update                                   (100 inputs)
        {"inputs": [{"id": "51", "properties": {"email": "new@example.com", ...}}]}
        (a member already synced, by its record id: a changed email changes that contact's
        email instead of creating a second contact; a record deleted in HubSpot, or a new email
        another contact already holds, falls back to the upsert and takes the old record off
        the list)
    POST /crm/v3/objects/contacts/batch/read  {"idProperty": "email", "inputs": [{"id": ...}],
                                               "properties": [...], "propertiesWithHistory": []}
        (only to find the record id of a removal whose add predates stored record ids)
    GET  /crm/v3/lists/{listId} -> {"list": {"processingType": "MANUAL", "objectTypeId": "0-1"}}
    POST /crm/v3/objects/contacts/gdpr-delete  {"objectId": "51"}  -> 204
        (an erasure: the contact is permanently deleted, not only taken off the list)

Auth is a private-app access token as a Bearer header. Throttling
(https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines) answers 429
with {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING" |
"DAILY", "correlationId": ...}: the rolling ten-second limit is retryable, the daily one is not
worth retrying within a run (FatalError): `_throttle` reads the policy before `http.call` maps
the status.

An add is two requests: the upsert (which creates or updates the contact and returns its record
id; per-row refusals such as an invalid email come back in the 207 `errors`) and the membership
change for the ids obtained. Re-sending an add is harmless (upsert by email, set membership), so
a retried batch never duplicates a contact. `BatchOutcome.destination_ids` maps customer_id to
the HubSpot record id; the engine passes it back in `Row.destination_id` for removals.
"""

from __future__ import annotations

import dataclasses
import math
import re

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
from activation.destinations.http import (
    DEFAULT_TIMEOUT,
    call,
    checked_url,
    request_id_of,
    retry_after_seconds,
)

BASE_URL = "https://api.hubapi.com"
MANUAL_TYPES = {"MANUAL", "SNAPSHOT"}   # list types whose memberships the API may change
CONTACTS = "0-1"                        # objectTypeId of contacts
# Contact fields the engine knows -> HubSpot's default contact property names.
DEFAULT_PROPERTY_NAMES = {"first_name": "firstname", "last_name": "lastname", "phone": "phone",
                          "country": "country"}
_EMAIL_LIKE = re.compile(r"[^\s@\"'<>\[\],;:]+@[^\s@\"'<>\[\],;:]+")


def safe_message(message: object) -> str:
    """A platform message fit for logs: HubSpot quotes emails in its messages ("Email address
    x@y.z is invalid"), so every email-like token becomes <email>."""
    return _EMAIL_LIKE.sub("<email>", str(message or ""))[:300]


def request_id(response: requests.Response) -> str | None:
    return response.headers.get("X-HubSpot-Correlation-Id") or request_id_of(response)


def property_value(value: object) -> str | None:
    """HubSpot property values are strings: lists become ';'-separated (the multi-select
    format), booleans 'true'/'false'; None and NaN are left out (never clear a CRM value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value if v is not None)
    return str(value)


def _throttle(response: requests.Response) -> None:
    """HubSpot's 429 policy, read before `http.call` maps the status."""
    if response.status_code != 429:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    policy = str(body.get("policyName") or "") if isinstance(body, dict) else ""
    if policy == "DAILY":
        raise FatalError("HubSpot's daily API limit for this account is used up (429, policy "
                         "DAILY); it resets at midnight in the account's time zone, so the sync "
                         "stops here and resumes on the next run", "rate_limited_daily",
                         request_id(response))
    raise RetryableError(f"HubSpot rate limit reached (429, policy {policy or 'unknown'})",
                         "rate_limited", request_id(response),
                         retry_after_seconds(response.headers.get("Retry-After")))


def _errors(body: object) -> list[dict]:
    return [e for e in (body.get("errors") or []) if isinstance(e, dict)] \
        if isinstance(body, dict) else []


def _error_code(error: dict) -> str:
    nested = [e.get("code") for e in error.get("errors") or [] if isinstance(e, dict)]
    return str(next((c for c in nested if c), None) or error.get("code") or error.get("subCategory")
               or error.get("category") or "error")


def _error_ids(error: dict) -> list[str]:
    ids = (error.get("context") or {}).get("ids") or []
    return [str(i) for i in ids]


class HubSpotDestination(Destination):
    """A HubSpot contact list fed by email.

    target (the audience's entry in the audiences YAML):
      list_id          the list's ILS id (a MANUAL list of contacts; "Static" in the UI);
      property_names   optional {field: HubSpot property name} for fields whose HubSpot
                       property is named differently (default: first_name -> firstname,
                       last_name -> lastname, other fields keep their name; the custom
                       properties must exist in HubSpot, else the sync stops with FatalError).
    """

    platform = "hubspot"
    consent = "email"
    max_batch = 100                 # batch upsert: 100 inputs per request
    max_remove_batch = 100_000      # add-and-remove documents no cap; 100,000 is the lists API's
                                    # documented cap for copying memberships (add-from)

    def __init__(self, access_token: str, base_url: str = BASE_URL,
                 timeout: float = DEFAULT_TIMEOUT):
        if not access_token:
            raise FatalError("no HubSpot access token: set the private app's token in the "
                             "environment variable", "no_credentials")
        self.base_url = checked_url("SEGMENTA_HUBSPOT_URL", base_url).rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {access_token}",
                                     "Content-Type": "application/json",
                                     "Accept": "application/json"})
        self._checked_lists: set[str] = set()

    # ---- payload ------------------------------------------------------------------------------
    def payload(self, contact: Contact, fields: list[str]) -> dict | None:
        """{"email": "<trimmed, lowercased>", "properties": {field: "value", ...}} with HubSpot's
        names for the known contact fields; None without a usable email."""
        email = str(contact.email or "").strip().lower()
        if email.count("@") != 1 or email.startswith("@") or email.endswith("@"):
            return None
        properties = {}
        for field in fields:
            if field == "email":
                continue
            raw = getattr(contact, field) if field in DEFAULT_PROPERTY_NAMES \
                else contact.properties.get(field)
            value = property_value(raw)
            if value is not None:
                properties[DEFAULT_PROPERTY_NAMES.get(field, field)] = value
        return {"email": email, "properties": properties}

    # ---- lifecycle ----------------------------------------------------------------------------
    def open(self, target: dict, run_id: str, full_refresh: bool) -> None:
        self._check_list(target)

    def add(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """Members already synced (rows with their record id) are updated by id; the others,
        and updates HubSpot cannot apply by id, are upserted by email."""
        list_id = self._check_list(target)
        outcome = BatchOutcome()
        if not rows:
            return outcome
        known = [r for r in rows if r.destination_id]
        retired: list[str] = []
        if known:
            rows = [r for r in rows if not r.destination_id]
            rows += self._update_by_id(target, known, outcome, retired)
        if retired:  # the old record of a member now under another contact's email
            self._membership(list_id, [], retired)
        if not rows:
            return outcome
        renames = dict(target.get("property_names") or {})
        by_email: dict[str, list[Row]] = {}
        for row in rows:
            by_email.setdefault(row.payload["email"], []).append(row)
        inputs = []
        for email, same in by_email.items():
            properties = {renames.get(k, k): v for k, v in same[0].payload["properties"].items()}
            inputs.append({"idProperty": "email", "id": email,
                           "properties": {**properties, "email": email}})
        body, upsert_id = self._batch(
            "/crm/v3/objects/contacts/batch/upsert", {"inputs": inputs}, "upsert")
        record_ids: dict[str, str] = {}
        for result in body.get("results") or []:
            email = str((result.get("properties") or {}).get("email") or "").lower()
            if email in by_email and result.get("id"):
                record_ids[email] = str(result["id"])
        for error in _errors(body):
            code, message = _error_code(error), safe_message(error.get("message"))
            for email in (i.lower() for i in _error_ids(error)):
                for row in by_email.get(email, []):
                    outcome.rejected[row.customer_id] = (code, message)
        for email, same in by_email.items():
            if email not in record_ids:
                for row in same:
                    outcome.rejected.setdefault(row.customer_id, (
                        "no_record", "HubSpot returned no record for this contact"))
        membership, list_request = self._membership(list_id, list(record_ids.values()), [])
        missing = set(membership.get("recordIdsMissing") or [])
        for email, record_id in record_ids.items():
            for row in by_email[email]:
                if record_id in missing:
                    outcome.rejected[row.customer_id] = (
                        "record_missing", "HubSpot did not find the upserted record")
                else:
                    outcome.destination_ids[row.customer_id] = record_id
        outcome.request_id = ",".join(i for i in (outcome.request_id, upsert_id, list_request)
                                      if i) or None
        return outcome

    def _update_by_id(self, target: dict, rows: list[Row], outcome: BatchOutcome,
                      retired: list[str]) -> list[Row]:
        """Update synced contacts by record id (email included); returns the rows to upsert
        instead: records HubSpot no longer has, and new emails another contact holds (their
        old record ids are added to `retired`, to leave the list)."""
        renames = dict(target.get("property_names") or {})
        by_id = {r.destination_id: r for r in rows}
        inputs = [{"id": record_id, "properties": {
            **{renames.get(k, k): v for k, v in row.payload["properties"].items()},
            "email": row.payload["email"]}} for record_id, row in by_id.items()]
        body, rid = self._batch("/crm/v3/objects/contacts/batch/update", {"inputs": inputs},
                                "update")
        outcome.request_id = rid
        fallback: list[Row] = []
        failed: set[str] = set()
        for error in _errors(body):
            category = str(error.get("category") or "")
            for record_id in _error_ids(error):
                row = by_id.get(record_id)
                if row is None:
                    continue
                failed.add(record_id)
                if category == "CONFLICT":
                    retired.append(record_id)
                    fallback.append(dataclasses.replace(row, destination_id=None))
                elif category == "OBJECT_NOT_FOUND":
                    fallback.append(dataclasses.replace(row, destination_id=None))
                else:
                    outcome.rejected[row.customer_id] = (_error_code(error),
                                                         safe_message(error.get("message")))
        updated = {str(r.get("id")) for r in body.get("results") or []}
        for record_id, row in by_id.items():
            if record_id in failed:
                continue
            if record_id in updated:
                outcome.destination_ids[row.customer_id] = record_id
            else:
                fallback.append(dataclasses.replace(row, destination_id=None))
        return fallback

    def remove(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """Remove by stored record id; rows without one are looked up by email first. A contact
        HubSpot does not know (never created, or deleted since) is not in the list: confirmed."""
        list_id = self._check_list(target)
        outcome = BatchOutcome()
        ids: dict[str, str] = {r.customer_id: r.destination_id for r in rows if r.destination_id}
        lookup = {r.customer_id: str((r.payload or {}).get("email") or "").lower()
                  for r in rows if not r.destination_id}
        for customer_id, email in lookup.items():
            if not email:
                outcome.rejected[customer_id] = (
                    "no_identifier", "no HubSpot record id and no email to find the contact")
        found = self._record_ids_by_email(sorted({e for e in lookup.values() if e}))
        ids.update({c: found[e] for c, e in lookup.items() if e in found})
        record_ids = list(dict.fromkeys(ids.values()))
        request_ids = []
        for start in range(0, len(record_ids), self.max_remove_batch):
            _, rid = self._membership(list_id, [],
                                      record_ids[start:start + self.max_remove_batch])
            request_ids.append(rid)
        outcome.request_id = ",".join(i for i in request_ids if i) or None
        return outcome

    def erase(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """Off the list, then each contact permanently deleted with HubSpot's GDPR delete (a
        contact HubSpot no longer has is already gone: confirmed)."""
        outcome = self.remove(target, rows, batch)
        for row in rows:
            if row.customer_id in outcome.rejected or not row.destination_id:
                continue
            response = call(self.session, "POST",
                            f"{self.base_url}/crm/v3/objects/contacts/gdpr-delete",
                            json={"objectId": row.destination_id}, timeout=self.timeout,
                            classify=_throttle)
            if response.status_code not in (200, 204, 404):
                outcome.rejected[row.customer_id] = (
                    f"http_{response.status_code}",
                    "HubSpot refused the GDPR delete; retried on the next run")
        return outcome

    # ---- requests -----------------------------------------------------------------------------
    def _check_list(self, target: dict) -> str:
        list_id = str(target.get("list_id") or "").strip()
        if not list_id:
            raise FatalError("HubSpot target needs a list_id (the list's ILS id)", "bad_target")
        if list_id in self._checked_lists:
            return list_id
        response = call(self.session, "GET", f"{self.base_url}/crm/v3/lists/{list_id}",
                        timeout=self.timeout, classify=_throttle)
        if response.status_code == 404:
            raise FatalError(f"HubSpot list {list_id} does not exist", "list_not_found",
                             request_id(response))
        if response.status_code >= 400:
            raise FatalError(f"HubSpot list {list_id} could not be read "
                             f"({response.status_code})", f"http_{response.status_code}",
                             request_id(response))
        body = response.json()
        definition = body.get("list", body) if isinstance(body, dict) else {}
        kind = definition.get("processingType")
        if kind not in MANUAL_TYPES:
            raise FatalError(f"HubSpot list {list_id} is {kind}: memberships can only be set on a "
                             "MANUAL (static) list; create one and put its id in the audience",
                             "list_not_manual", request_id(response))
        if definition.get("objectTypeId", CONTACTS) != CONTACTS:
            raise FatalError(f"HubSpot list {list_id} is not a contact list", "list_not_contacts",
                             request_id(response))
        self._checked_lists.add(list_id)
        return list_id

    def _batch(self, path: str, body: dict, what: str) -> tuple[dict, str | None]:
        response = call(self.session, "POST", f"{self.base_url}{path}", json=body,
                        timeout=self.timeout, classify=_throttle)
        rid = request_id(response)
        if response.status_code in (200, 201, 207):
            return response.json(), rid
        try:
            error = response.json()
        except ValueError:
            error = {}
        error = error if isinstance(error, dict) else {}
        codes = {_error_code(e) for e in _errors(error)}
        if "PROPERTY_DOESNT_EXIST" in codes or "PROPERTY_DOESNT_EXIST" in str(error.get("message")):
            raise FatalError(f"HubSpot {what} refused: {safe_message(error.get('message'))}; "
                             "create the contact property in HubSpot or map the field with "
                             "property_names", "property_doesnt_exist", rid)
        raise BatchRejected(f"HubSpot {what} refused ({response.status_code} "
                            f"{error.get('category') or ''}): {safe_message(error.get('message'))}",
                            str(error.get("category") or f"http_{response.status_code}"), rid)

    def _membership(self, list_id: str, to_add: list[str],
                    to_remove: list[str]) -> tuple[dict, str | None]:
        if not to_add and not to_remove:
            return {}, None
        response = call(self.session, "PUT",
                        f"{self.base_url}/crm/v3/lists/{list_id}/memberships/add-and-remove",
                        json={"recordIdsToAdd": to_add, "recordIdsToRemove": to_remove},
                        timeout=self.timeout, classify=_throttle)
        rid = request_id(response)
        if response.status_code == 200:
            return response.json(), rid
        try:
            error = response.json()
        except ValueError:
            error = {}
        error = error if isinstance(error, dict) else {}
        message = safe_message(error.get("message"))
        if response.status_code == 404:
            raise FatalError(f"HubSpot list {list_id} does not exist: {message}",
                             "list_not_found", rid)
        raise BatchRejected(f"HubSpot list {list_id} membership change refused "
                            f"({response.status_code}): {message}",
                            str(error.get("category") or f"http_{response.status_code}"), rid)

    def _record_ids_by_email(self, emails: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(emails), self.max_batch):
            inputs = [{"id": e} for e in emails[start:start + self.max_batch]]
            body, _ = self._batch("/crm/v3/objects/contacts/batch/read",
                                  {"idProperty": "email", "inputs": inputs,
                                   "properties": ["email"], "propertiesWithHistory": []},
                                  "contact lookup")
            for result in body.get("results") or []:
                email = str((result.get("properties") or {}).get("email") or "").lower()
                if email and result.get("id"):
                    found[email] = str(result["id"])
        return found

    def close(self, target: dict, succeeded: bool) -> None:
        self._checked_lists.discard(str(target.get("list_id") or ""))
