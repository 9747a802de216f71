"""Delivering a sync's batches to its destination.

Each request is retried on retryable errors, waiting the platform's `Retry-After` or else an
exponential backoff with jitter. A batch the platform refuses as a whole (`BatchRejected`) is
split until the bad rows stand alone; rows refused one by one are logged `rejected` and stay out
of the state. Removals the platform refuses (`RemovalsNotAllowed`) switch the sync to add-only,
the remaining removals logged `skipped`. Every acknowledged batch is committed to the state at
once (`Store.commit_batch`). Long syncs log a progress line at each tenth of their batches; the
batches an interrupted run left pending are sent again with their original keys (`resume`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pandas as pd

from activation.audit import now, scrub
from activation.destinations.base import (
    Batch,
    BatchOutcome,
    BatchRejected,
    Contact,
    Destination,
    DestinationError,
    RemovalsNotAllowed,
    RetryableError,
    Row,
)
from activation.plan import Work, _Planned, rebuild_pending
from activation.state import PendingBatch, Store


class Delivery:
    """Sends one sync's batches to `destination` and commits what it acknowledged.

    `options` and `report` are the sync's `SyncOptions` (retries, backoff, sleep) and
    `SyncReport` (the counts it updates); `name` is the destination's name in the audiences
    file, `run_id` the sync's run."""

    def __init__(self, store: Store, destination: Destination, name: str, params: dict,
                 run_id: str, options, report, log: Callable[[str], None]):
        self.store, self.destination, self.name, self.params = store, destination, name, params
        self.run_id, self.options, self.report, self.log = run_id, options, report, log
        self.hashes: dict[str, str] = {}              # what the state records once confirmed
        self.payloads: dict[str, str | None] = {}
        self.add_only = False

    def expect(self, plan: list[_Planned]) -> None:
        """The payload hashes (and kept payloads) the state records when the plan's rows are
        confirmed."""
        for planned in plan:
            self.hashes.update(planned.hashes)
            self.payloads.update(planned.payloads)

    # -- one planned batch ----------------------------------------------------------------------
    def deliver(self, operation: str, rows: list[Row], batch: Batch) -> None:
        """A batch of this run; removals are skipped once the platform refused them."""
        if operation in ("remove", "erase") and self.add_only:
            self.skip_removals(rows, batch)
            return
        try:
            self.send(operation, rows, batch, self.run_id)
        except RemovalsNotAllowed as exc:
            self.add_only = True
            self.report.message = (f"{self.name} refused removals "
                                   f"({exc.code}: {scrub(str(exc))}); this sync is "
                                   "add-only and the removals wait for a later run")
            self.log(self.report.message)
            self.skip_removals(rows, batch)

    def skip_removals(self, rows: list[Row], batch: Batch) -> None:
        self.store.skip_batch(self.run_id, "remove", rows, batch.key, "removals_not_allowed",
                              "the platform refused removals; retried on a later run")

    def failed(self, work: Work, index: int, exc: DestinationError) -> str:
        """The sync stopped at `work[index]`: the report says so, the batch's rows are logged
        `failed` (they stay pending). Returns the message."""
        planned, batch, rows = work[index]
        pending = sum(len(r) for _, _, r in work[index:])
        self.report.n_pending = pending
        self.report.status = "failed"
        self.report.message = (
            f"stopped at {planned.operation} batch {batch.number}/{batch.total}: "
            f"{exc.code}: {scrub(str(exc))}. {pending:,} rows are pending and will "
            "be sent by the next run (confirmed rows are not sent again).")
        self.store.log_unsent(self.run_id, planned.operation, rows, batch.key, "failed",
                              exc.code, str(exc))
        return self.report.message

    def progress(self, done: int, work: Work) -> None:
        """A log line at each tenth of the batches of a long sync (20 batches or more)."""
        total = len(work)
        if total >= 20 and done * 10 // total != (done - 1) * 10 // total:
            rows = sum(len(r) for _, _, r in work[:done])
            elapsed = (now() - self.report.started_at).total_seconds()
            self.log(f"{self.name}: {done}/{total} batches ({rows:,} rows) in "
                     f"{elapsed:.0f} s")

    # -- requests -------------------------------------------------------------------------------
    def _operation_fn(self, operation: str):
        return {"add": self.destination.add, "update": self.destination.add,
                "remove": self.destination.remove, "erase": self.destination.erase,
                "replace": self.destination.replace}[operation]

    def request(self, operation: str, rows: list[Row], batch: Batch) -> BatchOutcome:
        """One request, retried on retryable errors with the platform's wait or backoff."""
        attempt = 0
        while True:
            self.report.n_requests += 1
            try:
                return self._operation_fn(operation)(self.params, rows, batch)
            except RetryableError as exc:
                attempt += 1
                if attempt >= self.options.max_attempts:
                    raise
                self.report.n_retries += 1
                if exc.retry_after is not None:
                    wait = exc.retry_after
                else:
                    ceiling = min(self.options.backoff_max,
                                  self.options.backoff_base * 2 ** (attempt - 1))
                    wait = random.uniform(ceiling / 2, ceiling)   # jitter
                self.log(f"{self.name}: {exc.code} on {operation} batch "
                         f"{batch.number}/{batch.total}; retry {attempt} in {wait:.2f} s")
                self.options.sleep(wait)

    def send(self, operation: str, rows: list[Row], batch: Batch, run_id: str) -> None:
        """Send a batch of run `run_id`; split it while the platform refuses it as a whole."""
        try:
            outcome = self.request(operation, rows, batch)
        except BatchRejected as exc:
            if len(rows) == 1:
                outcome = BatchOutcome(exc.request_id,
                                       {rows[0].customer_id: (exc.code, str(exc))})
            else:
                half = len(rows) // 2
                self.log(f"{self.name}: {operation} batch {batch.number} refused "
                         f"({exc.code}); splitting {len(rows)} rows to find the bad ones")
                for part, suffix in ((rows[:half], "a"), (rows[half:], "b")):
                    self.send(operation, part, dataclasses.replace(batch, key=batch.key + suffix),
                              run_id)
                self.store.finish_batch(batch.key)
                return
        self._commit(operation, rows, batch, outcome, run_id)

    def _commit(self, operation: str, rows: list[Row], batch: Batch, outcome: BatchOutcome,
                run_id: str) -> None:
        n_ok = self.store.commit_batch(run_id, operation, rows, batch, outcome, self.hashes,
                                       self.payloads)
        self.report.n_rejected += len(rows) - n_ok
        if operation in ("remove", "erase"):
            self.report.n_removed += n_ok
        elif operation == "update":
            self.report.n_updated += n_ok
        else:
            self.report.n_added += n_ok

    # -- an interrupted run ---------------------------------------------------------------------
    def resume(self, pending: list[PendingBatch], state: pd.DataFrame,
               contacts: dict[str, Contact], fields: list[str]) -> int:
        """Send the pending batches again, each under its own run (and session) with its
        original key, rebuilt from the current `contacts`; returns the rows sent."""
        n = 0
        opened = None
        for item in pending:
            if opened != item.run_id:
                if opened is not None:
                    self.destination.close(self.params, True)
                self.destination.open(self.params, item.run_id, False)
                opened = item.run_id
            rebuilt = rebuild_pending(item, state, contacts, self.destination, fields)
            self.hashes.update(rebuilt.hashes)
            self.payloads.update(rebuilt.payloads)
            if rebuilt.changed:
                self.store.finish_batch(item.key)
            self.log(f"{self.name}: resuming {item.operation} batch {item.number} of "
                     f"interrupted run {item.run_id} ({len(rebuilt.rows)} rows)")
            if rebuilt.rows:
                self.send(item.operation, rebuilt.rows, rebuilt.batch, item.run_id)
            else:
                self.store.finish_batch(item.key)
            n += len(rebuilt.rows)
        self.destination.close(self.params, True)
        return n
