"""The sync engine: make a destination's audience equal to a segment, sending only what changed.

One call of `sync()` handles one audience at one destination:

1. **Desired set** (`activation.plan`): the segment's members who gave the consent the
   destination needs (`email` for CRM and email tools, `ads` for ad platforms) and were not
   erased, minus the audience's holdout group, each as the destination's payload (normalized, and
   hashed for ad platforms); a member the platform cannot match is skipped and counted.
2. **Diff** (`activation.plan`) against `activation.sync_state`, the membership the destination
   has confirmed: adds, removes and field updates. A first sync and `full_refresh` are explicit
   modes; a full refresh re-sends every member (or replaces the audience where the platform can).
3. **Safety rails** (`activation.plan`): an empty segment is refused (the state is kept);
   removing more than `max_removal_share` of the confirmed audience is refused unless
   `force_removals`; a segment key outside `known_segments` (a typo) is refused. A refusal is
   recorded in `activation.sync_runs` (status `refused`, the reason in `message`) and raised
   as `SyncRefused`: it concerns this audience at this destination only. Removals the law
   requires (consent withdrawn, erasure requested) do not count toward the removal limit and
   are sent first; when a rail refuses the rest of the sync they are still sent.
4. **Send** (`activation.delivery`) in batches of the platform's size, each with a deterministic
   key; retryable errors wait and try again, a batch refused for its content is split until the
   bad rows stand alone, removals the platform refuses switch the sync to add-only.
5. **State per batch** (`activation.state`): each acknowledged batch commits its state change,
   its log rows and the end of its pending record in one transaction. The whole plan is written
   before the first send, so a run killed mid-way is resumed by the next one with the same
   batches and keys before anything new is computed.

Audit: `activation.sync_runs` (one row per run), `activation.sync_log` (one row per customer and
operation, append-only). Neither holds raw PII (`activation.audit`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from activation.audiences import Audience, AudienceError, Target, check_segments
from activation.audit import now, payload_hash
from activation.delivery import Delivery
from activation.destinations.base import Destination, DestinationError, FatalError, RetryableError
from activation.plan import (
    Desired,
    Diff,
    Work,
    _contacts,
    _Planned,
    audience_members,
    batches,
    desired_set,
    diff,
    empty_segment_refusal,
    operations,
    removal_refusal,
    required_removals,
    segment_size,
)
from activation.state import Store, ensure_tables, store_as_of


class SyncRefused(Exception):
    """A safety rail stopped the sync before anything was sent; the message says how to proceed."""


class SyncFailed(Exception):
    """The sync stopped part-way (its progress is committed; the next run resumes it)."""


@dataclass
class SyncOptions:
    dry_run: bool = False
    full_refresh: bool = False
    force_removals: bool = False
    max_removal_share: float = 0.2      # refuse to remove more than this share of the audience
    min_removals_guarded: int = 10      # ... when it is at least this many customers
    max_attempts: int = 8               # per request, for retryable errors
    backoff_base: float = 1.0           # seconds; doubles per attempt, with jitter
    backoff_max: float = 60.0
    sample_size: int = 10               # hashed keys shown in a dry run
    sleep: Callable[[float], None] = time.sleep


@dataclass
class SyncReport:
    run_id: str
    audience_key: str
    destination: str
    platform: str
    mode: str
    status: str = "running"
    n_desired: int = 0
    n_holdout: int = 0
    n_skipped: int = 0
    n_to_add: int = 0
    n_to_update: int = 0
    n_to_remove: int = 0
    n_added: int = 0
    n_updated: int = 0
    n_removed: int = 0
    n_rejected: int = 0
    n_pending: int = 0
    n_requests: int = 0
    n_retries: int = 0
    n_resumed: int = 0
    started_at: dt.datetime = field(default_factory=now)
    finished_at: dt.datetime | None = None
    message: str = ""
    as_of_date: dt.date | None = None   # the store's clock (activation.state.store_as_of)
    sample: list[dict] = field(default_factory=list)

    def row(self) -> dict:
        data = dataclasses.asdict(self)
        data.pop("sample")
        return data

    @property
    def seconds(self) -> float:
        return ((self.finished_at or now()) - self.started_at).total_seconds()


class Sync:
    """One audience at one destination, for one run. Use `sync()`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, audience: Audience, target: Target,
                 destination: Destination, run_id: str, options: SyncOptions,
                 log: Callable[[str], None] = print, known_segments: set[str] | None = None,
                 source: str = "the audiences file"):
        self.con, self.audience, self.target = con, audience, target
        self.known_segments, self.source = known_segments, source
        self.destination, self.run_id, self.options, self.log = destination, run_id, options, log
        mode = ("dry_run" if options.dry_run else "full_refresh" if options.full_refresh
                else "incremental")
        self.report = SyncReport(run_id, audience.key, target.name, destination.platform, mode)
        self.params = {**target.params, "audience_key": audience.key}
        self.store = Store(con, audience.key, target.name)
        self.delivery = Delivery(self.store, destination, target.name, self.params, run_id,
                                 options, self.report, log)
        self.desired = None  # the desired set, once planned

    def run(self) -> SyncReport:
        ensure_tables(self.con)
        self.report.as_of_date = store_as_of(self.con)
        refusal, resumed = None, 0
        try:
            resumed = self._resume_interrupted()
            plan = self.plan()
        except SyncRefused as exc:
            # what the law requires goes out also when a rail holds back the rest
            refusal, plan = exc, self._required_only()
            if not plan or self.options.dry_run:
                self._refused(exc)
                raise
        if self.options.dry_run:
            return self._dry_run(plan)
        work = batches(plan, self.destination, self.audience.key, self.target.name, self.run_id)
        self.delivery.expect(plan)
        self.con.execute("begin transaction")
        self.store.write_plan(self.run_id, work)
        self._record_run()
        self.con.execute("commit")
        self.report.n_resumed = resumed
        self._execute(work)
        if refusal is not None:
            refusal = SyncRefused(f"{refusal} The {self.report.n_removed:,} removals that "
                                  "consent withdrawals and erasures require were sent; nothing "
                                  "else was.")
            self._refused(refusal)
            raise refusal
        return self.report

    def _refused(self, exc: SyncRefused) -> None:
        self.report.status, self.report.message = "refused", str(exc)
        self.report.finished_at = now()
        self._record_run()

    def _required_only(self) -> list[_Planned]:
        """The removals of consent withdrawals and erasures alone (a rail refused the rest)."""
        state = self.store.confirmed()
        kept = set(self.desired.rows) if self.desired else set()
        why = required_removals(self.con, self.destination.consent,
                                sorted(set(state.index) - kept))
        if not why:
            return []
        self.report.n_to_add = self.report.n_to_update = 0
        self.report.n_to_remove = len(why)
        changes = Diff([], [], list(why), len(state), list(why),
                       [c for c, reason in why.items() if reason == "erased"])
        return operations(changes, Desired({}, {}, 0, 0), state, self.destination, False)

    def _resume_interrupted(self) -> int:
        """Finish the batches a killed or failed run left pending, with their original keys."""
        pending = self.store.pending()
        if not pending:
            return 0
        if self.options.dry_run:
            n_rows = sum(len(item.records) for item in pending)
            self.report.message = (f"{n_rows:,} rows of an interrupted run are pending "
                                   "and will be sent first")
            return 0
        state = self.store.confirmed()
        members = audience_members(self.con, self.audience, self.destination.consent)
        contacts = {c.customer_id: c for c in _contacts(members)}
        n = self.delivery.resume(pending, state, contacts, self.audience.payload_fields)
        self.store.mark_interrupted(self.run_id)
        # counts of the resumed work belong to this run's report
        return n

    def plan(self) -> list[_Planned]:
        """The operations that make the destination equal to the desired set, past the rails."""
        state = self.store.confirmed()
        if self.known_segments is not None:  # a segment key no definition produces: a typo
            try:
                check_segments([self.audience], self.known_segments, self.source)
            except AudienceError as exc:
                raise SyncRefused(f"{exc}; nothing was sent") from exc
        if segment_size(self.con, self.audience.segment) == 0:
            if not state.empty:
                raise SyncRefused(empty_segment_refusal(self.audience))
            self.report.message = f"segment {self.audience.segment!r} is empty: nothing to send"
        desired = desired_set(self.con, self.audience, self.destination,
                              record=not self.options.dry_run)
        self.desired = desired
        self.report.n_skipped += desired.n_skipped
        self.report.n_holdout, self.report.n_desired = desired.n_holdout, len(desired.rows)
        if state.empty and self.report.mode == "incremental":
            self.report.mode = "first_sync"
        changes = diff(desired, state, self.options.full_refresh)
        why = required_removals(self.con, self.destination.consent, changes.removes)
        changes.required = list(why)
        changes.erased = [c for c, reason in why.items() if reason == "erased"]
        self.report.n_to_add, self.report.n_to_update = len(changes.adds), len(changes.updates)
        self.report.n_to_remove = len(changes.removes)
        refusal = removal_refusal(
            self.audience.key, self.target.name, len(changes.ordinary_removes),
            changes.n_confirmed,
            max_removal_share=self.options.max_removal_share,
            min_removals_guarded=self.options.min_removals_guarded,
            force_removals=self.options.force_removals)
        if refusal:
            raise SyncRefused(refusal)
        return operations(changes, desired, state, self.destination, self.options.full_refresh)

    def _execute(self, work: Work) -> None:
        """The batches in order, each committed as the destination acknowledges it."""
        self.destination.open(self.params, self.run_id, self.options.full_refresh)
        succeeded = False
        try:
            for index, (planned, batch, rows) in enumerate(work):
                try:
                    self.delivery.deliver(planned.operation, rows, batch)
                except (RetryableError, FatalError, DestinationError) as exc:
                    raise SyncFailed(self.delivery.failed(work, index, exc)) from exc
                self.delivery.progress(index + 1, work)
            if self.options.full_refresh and self.destination.supports_replace:
                self.store.drop_unconfirmed(self.run_id)
            succeeded = True
            self.report.status = "add_only" if self.delivery.add_only else "succeeded"
        finally:
            self.destination.close(self.params, succeeded)
            self.report.finished_at = now()
            self._record_run()

    def _dry_run(self, plan: list[_Planned]) -> SyncReport:
        for planned in plan:
            for row in planned.rows[: self.options.sample_size - len(self.report.sample)]:
                self.report.sample.append({
                    "operation": planned.operation, "customer_id": row.customer_id,
                    "key_sha256": payload_hash(row.payload)[:16]})
        self.report.status = "dry_run"
        self.report.finished_at = now()
        self._record_run()
        return self.report

    def _record_run(self) -> None:
        self.store.record_run(self.run_id, {**self.report.row(),
                                            "segment_key": self.audience.segment})


def sync(con: duckdb.DuckDBPyConnection, audience: Audience, target: Target,
         destination: Destination, run_id: str, options: SyncOptions | None = None,
         log: Callable[[str], None] = print, known_segments: set[str] | None = None,
         source: str = "the audiences file") -> SyncReport:
    """Sync one audience to one destination; see the module docstring. With `known_segments`
    (every segment key the definitions can produce, empty or not), an audience whose segment is
    not one of them is refused (`source` names the audiences file in the message)."""
    return Sync(con, audience, target, destination, run_id, options or SyncOptions(), log,
                known_segments, source).run()
