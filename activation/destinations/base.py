"""The contract between the sync engine and a destination.

A destination knows its platform's API: how to turn a customer's contact into the payload the
platform takes (normalized, and hashed for ad platforms), how many rows one request may carry, and
how to add and remove a batch. Everything else (the diff, batching, retries with backoff, splitting
a refused batch, state, the audit log, safety rails) is the engine's (`activation/engine.py`).

Errors a destination raises tell the engine what to do:

- `RetryableError`: try the same batch again later (429, 5xx, timeouts, throttle codes), waiting
  `retry_after` seconds when the platform said so;
- `BatchRejected`: the platform refused the request for its content (e.g. 400 naming no row);
  the engine splits the batch to isolate the bad rows;
- `FatalError`: stop this sync and keep the state (expired token, unknown list, bad config);
- `RemovalsNotAllowed`: the platform will not remove members now (Meta: audience too small);
  the engine continues add-only and says so.

Rows a platform refuses individually inside an accepted batch go in `BatchOutcome.rejected`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class Contact:
    """One audience member as the engine hands it over: raw contact fields (never logged) and
    the audience's extra fields (e.g. recommended products) in `properties`."""

    customer_id: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """A customer in a request: the payload built by `Destination.payload`, and for removals the
    record id the platform gave when it confirmed the add (CRM records), if any."""

    customer_id: str
    payload: dict
    destination_id: str | None = None


@dataclass(frozen=True)
class Batch:
    """Where a request sits in the sync: `key` is deterministic per (audience, destination, run,
    operation, batch number) and is sent as the idempotency key where the API takes one."""

    operation: str          # "add" | "remove" | "replace"
    number: int             # 1-based within the operation of this run
    total: int              # batches of this operation in this run
    key: str

    @property
    def is_last(self) -> bool:
        return self.number == self.total


@dataclass
class BatchOutcome:
    """What the platform acknowledged: every row of the batch not in `rejected` is confirmed."""

    request_id: str | None = None
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)  # customer -> (code, message)
    destination_ids: dict[str, str] = field(default_factory=dict)       # customer -> record id


class DestinationError(Exception):
    def __init__(self, message: str, code: str = "error", request_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.request_id = request_id


class RetryableError(DestinationError):
    def __init__(self, message: str, code: str = "retryable", request_id: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message, code, request_id)
        self.retry_after = retry_after


class BatchRejected(DestinationError):
    """The whole request was refused for its content; split it to find the bad rows."""


class FatalError(DestinationError):
    """Nothing will work until someone fixes credentials or configuration."""


class RemovalsNotAllowed(DestinationError):
    """The platform refuses removals for now (Meta's 'audience too small'): continue add-only."""


class Destination(abc.ABC):
    """One platform. Subclasses are pydantic-free plain classes; the Dagster `ConfigurableResource`
    wrappers in `dagster_project/defs/activation/resources.py` build them from environment
    variables. `target` is the audience's destination entry from the audiences YAML (list id,
    audience id, ...)."""

    platform: ClassVar[str]            # "hubspot", "klaviyo", "meta", "google", "file", "webhook"
    consent: ClassVar[str]             # "email" (CRM, email) or "ads" (ad platforms)
    max_batch: ClassVar[int]           # rows per add request
    max_remove_batch: ClassVar[int]    # rows per remove request
    supports_replace: ClassVar[bool] = False   # a full refresh can replace the whole audience

    @abc.abstractmethod
    def payload(self, contact: Contact, fields: list[str]) -> dict | None:
        """The row this platform receives for `contact` (normalized; hashed for ad platforms),
        with the audience's `fields` where the platform takes them; None when the contact has no
        identifier the platform can use (the engine skips it with reason `no_identifier`)."""

    def open(self, target: dict, run_id: str, full_refresh: bool) -> None:
        """Called once before the first batch of a sync (e.g. start a session)."""

    @abc.abstractmethod
    def add(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """Add (or update the fields of) these members."""

    @abc.abstractmethod
    def remove(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """Remove these members from the audience."""

    def erase(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """These members asked to be erased: remove them, and where the platform keeps a record
        of the person (a CRM contact), delete it through the platform's deletion API. The
        default (ad platforms, files, webhooks) is the removal."""
        return self.remove(target, rows, batch)

    def replace(self, target: dict, rows: list[Row], batch: Batch) -> BatchOutcome:
        """Full refresh: the union of all `replace` batches of a run becomes the audience.
        Only called when `supports_replace`."""
        raise NotImplementedError

    def close(self, target: dict, succeeded: bool) -> None:
        """Called once after the last batch (also after a failure)."""
