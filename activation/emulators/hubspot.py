"""A local HubSpot: contacts batch upsert/read by email and MANUAL list memberships.

Speaks the documented v3 shapes (the same bodies are documented under the date-versioned paths
`/crm/objects/2026-03/...` and `/crm/lists/2026-03/...`):

    POST /crm/v3/objects/contacts/batch/upsert
        {"inputs": [{"idProperty": "email", "id": "<email>", "properties": {...}}]}   (<= 100)
        -> 200 {"status": "COMPLETE", "results": [{"id", "properties", "new", ...}], ...}
        -> 207 the same plus {"numErrors": n, "errors": [{"status": "error", "category",
               "message", "context": {"ids": ["<email>"]}, "errors": [{"code", "message"}]}]}
    POST /crm/v3/objects/contacts/batch/update
        {"inputs": [{"id": "<record id>", "properties": {...}}]}                       (<= 100)
        -> 200 / 207 with OBJECT_NOT_FOUND (no such record) or CONFLICT (the new email belongs
               to another contact) errors naming the record ids in context.ids
    POST /crm/v3/objects/contacts/batch/read
        {"idProperty": "email", "inputs": [{"id": "<email>"}], "properties": [...],
         "propertiesWithHistory": [...]}                                               (<= 100)
        -> 200 / 207 with OBJECT_NOT_FOUND errors naming the missing ids in context.ids
           (`properties` and `propertiesWithHistory` are both required, as in HubSpot's
           BatchReadInputSimplePublicObjectId)
    POST /crm/v3/objects/contacts/gdpr-delete
        {"objectId": "<record id or email>", "idProperty": "email"?}  -> 204, the contact and
        its list memberships permanently gone (`gdpr_deleted` records which)
    GET  /crm/v3/lists/{listId} -> {"list": {"listId", "name", "processingType", "objectTypeId"}}
    PUT  /crm/v3/lists/{listId}/memberships/add-and-remove
        {"recordIdsToAdd": [...], "recordIdsToRemove": [...]}   (MANUAL or SNAPSHOT lists only)
        -> 200 {"recordIdsMissing": [...], "recordIdsRemoved": [...], "recordsIdsAdded": [...]}

Errors are HubSpot's: {"status": "error", "message", "correlationId", "category", "errors"?};
429 carries `policyName` (`TEN_SECONDLY_ROLLING`, or `DAILY` when `rate_limit_policy` says so).
An email `reject()`ed by a test, or not shaped like an email, fails alone inside a 207 upsert,
with a message that quotes the email as HubSpot's does (the client must not log it).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from activation.emulators.base import Emulator, Request, Response, route

MAX_BATCH_INPUTS = 100
MAX_MEMBERSHIP_IDS = 100_000
DEFAULT_PROPERTIES = {"email", "firstname", "lastname", "phone", "country"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, message: str, category: str, **extra) -> Response:
    correlation_id = str(uuid.uuid4())
    body = {"status": "error", "message": message, "correlationId": correlation_id,
            "category": category, **extra}
    return Response(status, body, {"X-HubSpot-Correlation-Id": correlation_id})


def _ok(status: int, body: dict) -> Response:
    return Response(status, body, {"X-HubSpot-Correlation-Id": str(uuid.uuid4())})


class HubSpotEmulator(Emulator):
    """HubSpot with one contact store and lists. `HubSpotEmulator(list_id="101")` pre-creates a
    MANUAL contact list; `create_list(...)` adds more (e.g. a DYNAMIC one). With `properties`
    given, only those contact properties (plus HubSpot's defaults) exist and any other is refused
    like HubSpot refuses a property nobody created; by default every property is accepted."""

    platform = "hubspot"
    token = "pat-na1-test-token"
    rate_limit_policy = "TEN_SECONDLY_ROLLING"

    def __init__(self, list_id: str | None = "101", processing_type: str = "MANUAL",
                 properties: Iterable[str] | None = None):
        super().__init__()
        self.reset(list_id, processing_type, properties)

    def reset(self, list_id: str | None = "101", processing_type: str = "MANUAL",
              properties: Iterable[str] | None = None) -> None:
        """Back to a fresh portal (state, request log, faults, rejections), server left running:
        lets a test module share one server."""
        with self.lock:
            self.contacts: dict[str, dict] = {}          # email -> {"id", "properties", ...}
            self.lists: dict[str, dict] = {}             # listId -> definition + "members"
            self.known_properties = (None if properties is None
                                     else DEFAULT_PROPERTIES | set(properties))
            self.upserts: Counter[str] = Counter()       # email -> times upserted
            self.gdpr_deleted: list[str] = []            # record ids permanently deleted
            self.adds: Counter[tuple[str, str]] = Counter()  # (listId, email) -> add requests
            self.rate_limit_policy = type(self).rate_limit_policy
            self.requests.clear()
            self._faults.clear()
            self._rejected_values.clear()
            self._next_id = 50_001
            if list_id is not None:
                self.create_list("Segmenta audience", processing_type, list_id)

    # ---- test accessors -------------------------------------------------------------------------
    def create_list(self, name: str, processing_type: str = "MANUAL",
                    list_id: str | None = None) -> str:
        with self.lock:
            list_id = list_id or str(100 + len(self.lists) + 1)
            self.lists[list_id] = {"listId": list_id, "name": name, "objectTypeId": "0-1",
                                   "processingType": processing_type,
                                   "processingStatus": "COMPLETE", "listVersion": 1,
                                   "members": set()}
            return list_id

    def members(self, list_id: str) -> set[str]:
        """Emails of the contacts in the list."""
        with self.lock:
            by_id = {c["id"]: email for email, c in self.contacts.items()}
            return {by_id[rid] for rid in self.lists[list_id]["members"]}

    def record_id(self, email: str) -> str | None:
        with self.lock:
            contact = self.contacts.get(email.lower())
            return contact["id"] if contact else None

    def properties_of(self, email: str) -> dict:
        with self.lock:
            return dict(self.contacts[email.lower()]["properties"])

    def add_count(self, list_id: str, email: str) -> int:
        """How many membership requests asked to add this contact (duplicate sends show > 1)."""
        with self.lock:
            return self.adds[(list_id, email.lower())]

    def delete_contact(self, email: str) -> None:
        """A contact deleted in HubSpot (its record id becomes missing)."""
        with self.lock:
            contact = self.contacts.pop(email.lower())
            for definition in self.lists.values():
                definition["members"].discard(contact["id"])

    # ---- platform shapes ----------------------------------------------------------------------
    def idempotency_key(self, request: Request) -> str | None:
        return None                                   # HubSpot takes no idempotency key here

    def render_rate_limit(self, retry_after: float | None) -> Response:
        policy = self.rate_limit_policy
        response = _error(429, f"You have reached your {policy.lower()} limit.", "RATE_LIMITS",
                          errorType="RATE_LIMIT", policyName=policy)
        if retry_after is not None:
            response.headers["Retry-After"] = f"{retry_after:g}"
        return response

    def render_unauthorized(self) -> Response:
        return _error(401, "The OAuth token used to make this call expired.",
                      "EXPIRED_AUTHENTICATION")

    def render_server_error(self) -> Response:
        return _error(500, "internal error", "INTERNAL_ERROR")

    # ---- validation helpers -------------------------------------------------------------------
    def _batch_inputs(self, request: Request) -> list[dict] | Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(415, "Content-Type must be application/json", "VALIDATION_ERROR")
        body = request.body
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return _error(400, "Invalid input JSON: 'inputs' must be a non-empty array",
                          "VALIDATION_ERROR")
        if len(inputs) > MAX_BATCH_INPUTS:
            return _error(400, f"Batch input limit exceeded: {len(inputs)} inputs, the limit is "
                          f"{MAX_BATCH_INPUTS}", "VALIDATION_ERROR")
        if not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in inputs):
            return _error(400, "Invalid input JSON: every input needs a string 'id'",
                          "VALIDATION_ERROR")
        ids = [i["id"].strip().lower() for i in inputs]
        duplicates = sorted({v for v in ids if ids.count(v) > 1})
        if duplicates:
            return _error(400, f"Duplicate IDs found in batch input: {duplicates}. IDs must be "
                          "unique", "VALIDATION_ERROR")
        return inputs

    def _list(self, list_id: str) -> dict | Response:
        definition = self.lists.get(list_id)
        if definition is None:
            return _error(404, f"List does not exist with id {list_id}", "OBJECT_NOT_FOUND")
        return definition

    def _result(self, contact: dict, new: bool = False) -> dict:
        return {"id": contact["id"], "properties": dict(contact["properties"]),
                "createdAt": contact["createdAt"], "updatedAt": contact["updatedAt"],
                "archived": False, "new": new}

    # ---- routes -------------------------------------------------------------------------------
    @route("POST", "/crm/v3/objects/contacts/batch/upsert")
    def upsert(self, request: Request) -> Response:
        inputs = self._batch_inputs(request)
        if isinstance(inputs, Response):
            return inputs
        for item in inputs:
            id_property = item.get("idProperty") or request.query.get("idProperty")
            if id_property != "email":
                return _error(400, "idProperty must be a unique property such as 'email'",
                              "VALIDATION_ERROR")
            if not isinstance(item.get("properties", {}), dict):
                return _error(400, "Invalid input JSON: 'properties' must be an object",
                              "VALIDATION_ERROR")
            unknown = sorted(set(item.get("properties", {})) - (self.known_properties or set()))
            if self.known_properties is not None and unknown:
                return _error(400, f"Property values were not valid: Property \"{unknown[0]}\" "
                              "does not exist", "VALIDATION_ERROR",
                              errors=[{"code": "PROPERTY_DOESNT_EXIST",
                                       "message": f"Property \"{name}\" does not exist",
                                       "context": {"propertyName": [name]}} for name in unknown])
        results, errors = [], []
        for item in inputs:
            email = item["id"].strip().lower()
            if not _EMAIL.match(email) or self.is_rejected(email, item["id"]):
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "subCategory": "INVALID_EMAIL",
                               "message": f"Email address {item['id']} is invalid",
                               "context": {"ids": [item["id"]]},
                               "errors": [{"code": "INVALID_EMAIL",
                                           "message": f"Email address {item['id']} is invalid"}]})
                continue
            now = _now()
            contact = self.contacts.get(email)
            new = contact is None
            if new:
                contact = {"id": str(self._next_id), "createdAt": now,
                           "properties": {"hs_object_id": str(self._next_id), "createdate": now}}
                self._next_id += 1
                self.contacts[email] = contact
            values = {k: ("" if v is None else str(v)) for k, v in item.get("properties", {}).items()}
            contact["properties"].update(values, email=email, lastmodifieddate=now)
            contact["updatedAt"] = now
            self.upserts[email] += 1
            results.append(self._result(contact, new))
        body = {"status": "COMPLETE", "results": results, "requestedAt": _now(),
                "startedAt": _now(), "completedAt": _now()}
        if errors:
            body.update(numErrors=len(errors), errors=errors)
        return _ok(207 if errors else 200, body)

    @route("POST", "/crm/v3/objects/contacts/batch/update")
    def update(self, request: Request) -> Response:
        inputs = self._batch_inputs(request)
        if isinstance(inputs, Response):
            return inputs
        by_id = {c["id"]: email for email, c in self.contacts.items()}
        results, errors = [], []
        for item in inputs:
            record_id, properties = item["id"], item.get("properties") or {}
            if not isinstance(properties, dict):
                return _error(400, "Invalid input JSON: 'properties' must be an object",
                              "VALIDATION_ERROR")
            email = by_id.get(record_id)
            if email is None:
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "message": "Could not get some CONTACT objects, they may be "
                                          "deleted or not exist.",
                               "context": {"ids": [record_id]}})
                continue
            new_email = str(properties.get("email") or email).strip().lower()
            if new_email != email and new_email in self.contacts:
                errors.append({"status": "error", "category": "CONFLICT",
                               "message": "A contact with this email already exists.",
                               "context": {"ids": [record_id]}})
                continue
            contact = self.contacts.pop(email)
            self.contacts[new_email] = contact
            values = {k: ("" if v is None else str(v)) for k, v in properties.items()}
            contact["properties"].update(values, email=new_email, lastmodifieddate=_now())
            contact["updatedAt"] = _now()
            results.append(self._result(contact))
        body = {"status": "COMPLETE", "results": results, "startedAt": _now(),
                "completedAt": _now()}
        if errors:
            body.update(numErrors=len(errors), errors=errors)
        return _ok(207 if errors else 200, body)

    @route("POST", "/crm/v3/objects/contacts/gdpr-delete")
    def gdpr_delete(self, request: Request) -> Response:
        body = request.body if isinstance(request.body, dict) else {}
        object_id = str(body.get("objectId") or "").strip()
        if not object_id:
            return _error(400, "Invalid input JSON: 'objectId' is required", "VALIDATION_ERROR")
        if body.get("idProperty") == "email":
            email = object_id.lower()
        else:
            email = next((e for e, c in self.contacts.items() if c["id"] == object_id), None)
        contact = self.contacts.get(email) if email else None
        if contact is None:
            return _error(404, "resource not found", "OBJECT_NOT_FOUND")
        self.delete_contact(email)
        self.gdpr_deleted.append(contact["id"])
        return Response(204, None)

    @route("POST", "/crm/v3/objects/contacts/batch/read")
    def read(self, request: Request) -> Response:
        inputs = self._batch_inputs(request)
        if isinstance(inputs, Response):
            return inputs
        if (request.body.get("idProperty") or "hs_object_id") != "email":
            return _error(400, "this emulator reads contacts by email only", "VALIDATION_ERROR")
        for required in ("properties", "propertiesWithHistory"):
            if not isinstance(request.body.get(required), list):
                return _error(400, f"Invalid input JSON: '{required}' is required (a list of "
                              "property names)", "VALIDATION_ERROR")
        found = [self.contacts[i["id"].strip().lower()] for i in inputs
                 if i["id"].strip().lower() in self.contacts]
        missing = [i["id"] for i in inputs if i["id"].strip().lower() not in self.contacts]
        body = {"status": "COMPLETE", "results": [self._result(c) for c in found],
                "startedAt": _now(), "completedAt": _now()}
        if missing:
            body.update(numErrors=1, errors=[{
                "status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": missing},
                "message": "Could not get some CONTACT objects, they may be deleted or not "
                           "exist. Check that ids are valid."}])
        return _ok(207 if missing else 200, body)

    @route("GET", r"/crm/v3/lists/(?P<list_id>[^/]+)")
    def get_list(self, request: Request, list_id: str) -> Response:
        definition = self._list(list_id)
        if isinstance(definition, Response):
            return definition
        public = {k: v for k, v in definition.items() if k != "members"}
        return _ok(200, {"list": {**public, "size": len(definition["members"])}})

    @route("PUT", r"/crm/v3/lists/(?P<list_id>[^/]+)/memberships/add-and-remove")
    def add_and_remove(self, request: Request, list_id: str) -> Response:
        definition = self._list(list_id)
        if isinstance(definition, Response):
            return definition
        if definition["processingType"] not in ("MANUAL", "SNAPSHOT"):
            return _error(400, f"List {list_id} has processingType "
                          f"{definition['processingType']}; memberships can only be changed on "
                          "MANUAL or SNAPSHOT lists", "VALIDATION_ERROR")
        body = request.body if isinstance(request.body, dict) else {}
        to_add, to_remove = body.get("recordIdsToAdd"), body.get("recordIdsToRemove")
        if not all(isinstance(ids, list) and all(isinstance(i, str) for i in ids)
                   for ids in (to_add, to_remove)):
            return _error(400, "Invalid input JSON: recordIdsToAdd and recordIdsToRemove must be "
                          "arrays of strings", "VALIDATION_ERROR")
        if len(to_add) + len(to_remove) > MAX_MEMBERSHIP_IDS:
            return _error(400, f"Too many record ids: at most {MAX_MEMBERSHIP_IDS} per request",
                          "VALIDATION_ERROR")
        email_of = {c["id"]: email for email, c in self.contacts.items()}
        members = definition["members"]
        missing = [rid for rid in to_add + to_remove if rid not in email_of]
        added = [rid for rid in to_add if rid in email_of and rid not in members]
        removed = [rid for rid in to_remove if rid in members]
        for rid in to_add:
            if rid in email_of:
                self.adds[(list_id, email_of[rid])] += 1
        members.update(added)
        members.difference_update(removed)
        definition["listVersion"] += 1
        return _ok(200, {"recordIdsMissing": missing, "recordIdsRemoved": removed,
                         "recordsIdsAdded": added})
