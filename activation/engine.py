"""The sync engine: make a destination's audience equal to a segment, sending only what changed.

One call of `sync()` handles one audience at one destination:

1. **Desired set**: the segment's members who gave the consent the destination needs
   (`email` for CRM and email tools, `ads` for ad platforms) and were not erased (erased customers
   have no row in `marts.customer_contacts`), minus the audience's holdout group. Each member
   becomes the destination's payload (normalized, and hashed for ad platforms); a member the
   platform cannot match (no email or phone) is skipped and counted.
2. **Diff** against `activation.sync_state`, the membership the destination has confirmed: adds,
   removes and field updates (a changed payload). A first sync and `full_refresh` are explicit
   modes; a full refresh re-sends every member (or replaces the audience where the platform can).
3. **Safety rails**: an empty segment is refused (the state is kept); removing more than
   `max_removal_share` of the confirmed audience is refused unless `force_removals`.
4. **Send** in batches of the platform's size, each with a deterministic key per (audience,
   destination, run, operation, batch). Retryable errors wait (the platform's `Retry-After`, else
   exponential backoff with jitter) and try again; a batch refused for its content is split until
   the bad rows stand alone; rows refused one by one are logged `rejected`, stay out of the state
   and are tried again on the next run; removals the platform refuses (Meta's small audiences)
   switch the sync to add-only.
5. **State per batch**: each acknowledged batch commits its state change, its log rows and the
   end of its pending record in one transaction. The whole plan is written before the first send,
   so a run killed mid-way is resumed by the next one with the same batches and keys (the
   platform sees the same idempotency key or session batch) before anything new is computed.

Audit: `activation.sync_runs` (one row per run), `activation.sync_log` (one row per customer and
operation, append-only). Neither holds raw PII: customers appear by `customer_id`, and error
messages are scrubbed of anything that looks like an email address or a phone number.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from activation.audiences import Audience, Target
from activation.destinations.base import (
    Batch,
    BatchOutcome,
    BatchRejected,
    Contact,
    Destination,
    DestinationError,
    FatalError,
    RemovalsNotAllowed,
    RetryableError,
    Row,
)

DDL = """
create schema if not exists activation;
create table if not exists activation.sync_state (
    audience_key varchar not null,
    destination varchar not null,
    customer_id varchar not null,
    payload_hash varchar not null,     -- sha256 of the payload the destination confirmed
    payload_json varchar,              -- kept only when it holds no raw PII (hashed identifiers)
    destination_id varchar,            -- the platform's record id, for removals
    confirmed_at timestamp not null,
    run_id varchar not null,
    primary key (audience_key, destination, customer_id)
);
create table if not exists activation.sync_runs (
    run_id varchar not null,
    audience_key varchar not null,
    destination varchar not null,
    platform varchar,
    segment_key varchar,
    mode varchar,                       -- first_sync | incremental | full_refresh | dry_run
    status varchar,                     -- running | succeeded | add_only | failed | refused | dry_run
    n_desired bigint, n_holdout bigint, n_skipped bigint,
    n_to_add bigint, n_to_update bigint, n_to_remove bigint,
    n_added bigint, n_updated bigint, n_removed bigint, n_rejected bigint, n_pending bigint,
    n_requests bigint, n_retries bigint, n_resumed bigint,
    started_at timestamp, finished_at timestamp,
    message varchar
);
create table if not exists activation.sync_log (
    run_id varchar not null,
    audience_key varchar not null,
    destination varchar not null,
    batch_key varchar,
    customer_id varchar not null,
    operation varchar not null,         -- add | update | remove | replace
    status varchar not null,            -- confirmed | rejected | failed | skipped
    error_code varchar,
    error_message varchar,
    request_id varchar,
    logged_at timestamp not null
);
create table if not exists activation.sync_pending (
    run_id varchar not null,
    audience_key varchar not null,
    destination varchar not null,
    operation varchar not null,
    batch_number integer not null,
    batch_total integer not null,
    batch_key varchar not null,
    customer_id varchar not null,
    payload_hash varchar,
    payload_json varchar
);
create table if not exists activation.audience_assignments (
    audience_key varchar not null,
    customer_id varchar not null,
    arm varchar not null,               -- target | holdout
    holdout_share double not null,
    first_assigned_at timestamp not null,
    primary key (audience_key, customer_id)
);
"""

# Fields an audience may send besides the identifiers, and where they come from.
FIELD_SQL = {
    "first_name": "contacts.first_name",
    "last_name": "contacts.last_name",
    "country": "contacts.country",
    "rfm_segment": "rfm.rfm_segment",
    "segment_name": "members.segment_name",
    "predicted_value_90d": "cast(round(clv.expected_value, 2) as varchar)",
    "top_3_recommendations": None,      # expands to recommended_product_1..3 (names)
}

_EMAIL = re.compile(r"[^\s@\"']+@[^\s@\"']+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def scrub(message: str | None) -> str | None:
    """An error message safe for the audit log: emails and phone-like digit runs replaced."""
    if message is None:
        return None
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", str(message)))[:500]


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def in_holdout(audience_key: str, customer_id: str, share: float) -> bool:
    """Deterministic: the same customer is in the same arm of an audience on every run."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{audience_key}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def batch_key(audience_key: str, destination: str, run_id: str, operation: str, number: int) -> str:
    raw = f"{audience_key}|{destination}|{run_id}|{operation}|{number}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The activation tables; a `sync_runs` of the earlier RFM file export (no `mode` column)
    is kept as `sync_runs_v1`."""
    columns = {name for (name,) in con.execute(
        "select column_name from information_schema.columns where table_schema = "
        "'activation' and table_name = 'sync_runs'").fetchall()}
    if columns and "mode" not in columns:
        con.execute("alter table activation.sync_runs rename to sync_runs_v1")
    elif columns and "n_resumed" not in columns:
        con.execute("alter table activation.sync_runs add column n_resumed bigint")
    con.execute(DDL)


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
    sample: list[dict] = field(default_factory=list)

    def row(self) -> dict:
        data = dataclasses.asdict(self)
        data.pop("sample")
        return data

    @property
    def seconds(self) -> float:
        return ((self.finished_at or now()) - self.started_at).total_seconds()


# ---- the desired set --------------------------------------------------------------------------

def audience_members(con: duckdb.DuckDBPyConnection, audience: Audience,
                     consent: str) -> pd.DataFrame:
    """Segment members with `consent` ("email" or "ads"), not erased, with their contact fields
    and the audience's fields; one row per customer."""
    if consent not in ("email", "ads"):
        raise ValueError(f"consent must be 'email' or 'ads', not {consent!r}")
    extra = []
    for name in audience.fields:
        if name == "top_3_recommendations":
            extra += [f"recs.product_{i} as recommended_product_{i}" for i in (1, 2, 3)]
        else:
            extra.append(f"{FIELD_SQL[name]} as {name}")
    has_recs = "top_3_recommendations" in audience.fields
    recs_join = """
        left join (
            select customer_id,
                   max(product_name) filter (where rank = 1) as product_1,
                   max(product_name) filter (where rank = 2) as product_2,
                   max(product_name) filter (where rank = 3) as product_3
            from marts.customer_product_recommendations where rank <= 3 group by customer_id
        ) as recs using (customer_id)""" if has_recs else ""
    rfm_join = ("left join marts.customer_rfm as rfm using (customer_id)"
                if "rfm_segment" in audience.fields else "")
    clv_join = ("left join ml.customer_clv as clv using (customer_id)"
                if "predicted_value_90d" in audience.fields else "")
    sql = f"""
        select members.customer_id, contacts.email, contacts.phone, contacts.first_name,
               contacts.last_name, contacts.country
               {''.join(', ' + e for e in extra)}
        from (select distinct customer_id, segment_name from marts.segment_memberships
              where segment_key = ?) as members
        inner join marts.customer_contacts as contacts using (customer_id)
        {recs_join} {rfm_join} {clv_join}
        where contacts.has_{consent}_consent
        order by members.customer_id
    """
    return con.execute(sql, [audience.segment]).df()


def segment_size(con: duckdb.DuckDBPyConnection, segment_key: str) -> int:
    return con.execute("select count(distinct customer_id) from marts.segment_memberships "
                       "where segment_key = ?", [segment_key]).fetchone()[0]


def _contacts(frame: pd.DataFrame) -> Iterator[Contact]:
    base = {"customer_id", "email", "phone", "first_name", "last_name", "country"}
    frame = frame.astype(object).where(frame.notna(), None)
    for clean in frame.to_dict("records"):
        yield Contact(
            customer_id=str(clean["customer_id"]), email=clean["email"], phone=clean["phone"],
            first_name=clean["first_name"], last_name=clean["last_name"],
            country=clean["country"],
            properties={k: (None if v is None else str(v)) for k, v in clean.items()
                        if k not in base})


def record_assignments(con: duckdb.DuckDBPyConnection, audience: Audience,
                       customers: list[str], holdout: set[str]) -> None:
    """Each customer's arm, the first time they are seen in the audience (never reassigned)."""
    frame = pd.DataFrame({"customer_id": customers})
    frame["arm"] = ["holdout" if c in holdout else "target" for c in customers]
    con.register("_arms", frame)
    con.execute("""
        insert into activation.audience_assignments
        select ?, customer_id, arm, ?, ? from _arms
        where customer_id not in (select customer_id from activation.audience_assignments
                                  where audience_key = ?)
    """, [audience.key, audience.holdout, now(), audience.key])
    con.unregister("_arms")


# ---- the engine -------------------------------------------------------------------------------

@dataclass
class _Planned:
    operation: str
    rows: list[Row]
    hashes: dict[str, str]
    payloads: dict[str, str | None]


class Sync:
    """One audience at one destination, for one run. Use `sync()`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, audience: Audience, target: Target,
                 destination: Destination, run_id: str, options: SyncOptions,
                 log: Callable[[str], None] = print):
        self.con, self.audience, self.target = con, audience, target
        self.destination, self.run_id, self.options, self.log = destination, run_id, options, log
        self.keeps_payload = destination.consent == "ads"   # hashed identifiers only
        mode = ("dry_run" if options.dry_run else "full_refresh" if options.full_refresh
                else "incremental")
        self.report = SyncReport(run_id, audience.key, target.name, destination.platform, mode)
        self.params = {**target.params, "audience_key": audience.key}
        self.add_only = False

    # -- state ----------------------------------------------------------------------------------
    def _state(self) -> pd.DataFrame:
        return self.con.execute("""
            select customer_id, payload_hash, payload_json, destination_id
            from activation.sync_state where audience_key = ? and destination = ?
        """, [self.audience.key, self.target.name]).df().set_index("customer_id")

    def _desired(self) -> tuple[dict[str, Row], dict[str, str]]:
        frame = audience_members(self.con, self.audience, self.destination.consent)
        customers = frame["customer_id"].astype(str).tolist()
        holdout = {c for c in customers
                   if in_holdout(self.audience.key, c, self.audience.holdout)}
        if not self.options.dry_run:
            record_assignments(self.con, self.audience, customers, holdout)
        rows, hashes = {}, {}
        for contact in _contacts(frame[~frame["customer_id"].astype(str).isin(holdout)]):
            payload = self.destination.payload(contact, self.audience.payload_fields)
            if payload is None:
                self.report.n_skipped += 1
                continue
            rows[contact.customer_id] = Row(contact.customer_id, payload)
            hashes[contact.customer_id] = payload_hash(payload)
        self.report.n_holdout = len(holdout)
        self.report.n_desired = len(rows)
        return rows, hashes

    # -- planning -------------------------------------------------------------------------------
    def plan(self) -> list[_Planned]:
        """The operations that make the destination equal to the desired set."""
        state = self._state()
        if segment_size(self.con, self.audience.segment) == 0:
            if not state.empty:
                raise SyncRefused(
                    f"audience {self.audience.key!r}: segment {self.audience.segment!r} has no "
                    "members in marts.segment_memberships; refusing to sync an empty source (it "
                    "would empty the destination). Check the segment key and the upstream run.")
            self.report.message = f"segment {self.audience.segment!r} is empty: nothing to send"
        desired, hashes = self._desired()
        if state.empty and self.report.mode == "incremental":
            self.report.mode = "first_sync"
        confirmed = set(state.index)
        confirmed_hash = dict(zip(state.index, state["payload_hash"], strict=True))
        stored_payload = dict(zip(state.index, state["payload_json"], strict=True))
        stored_id = dict(zip(state.index, state["destination_id"], strict=True))
        removes = sorted(confirmed - set(desired))
        if self.options.full_refresh:
            adds, updates = sorted(desired), []
        else:
            adds = sorted(set(desired) - confirmed)
            updates = sorted(c for c in set(desired) & confirmed
                             if confirmed_hash[c] != hashes[c])
        self.report.n_to_add, self.report.n_to_update = len(adds), len(updates)
        self.report.n_to_remove = len(removes)
        self._guard_removals(len(removes), len(confirmed))

        def removal_row(customer: str) -> Row:
            stored = stored_payload[customer]
            payload = json.loads(stored) if isinstance(stored, str) else {}
            return Row(customer, payload, _none(stored_id[customer]))

        plan = []
        if self.options.full_refresh and self.destination.supports_replace:
            plan.append(self._planned("replace", [desired[c] for c in adds], hashes))
            return plan
        if removes:
            plan.append(self._planned("remove", [removal_row(c) for c in removes], {}))
        if updates and self.keeps_payload:
            # an ad platform matches on the hashed identifiers: a changed identifier is the
            # old member removed and the new one added
            plan.append(self._planned("remove", [removal_row(c) for c in updates], {}))
            plan.append(self._planned("add", [desired[c] for c in updates], hashes, "update"))
        elif updates:
            plan.append(self._planned("add", [dataclasses.replace(
                desired[c], destination_id=_none(stored_id[c]))
                for c in updates], hashes, "update"))
        if adds:
            plan.append(self._planned("add", [desired[c] for c in adds], hashes))
        return plan

    def _planned(self, operation: str, rows: list[Row], hashes: dict[str, str],
                 label: str | None = None) -> _Planned:
        keep = self.keeps_payload and operation != "remove"
        return _Planned(label or operation, rows,
                        {r.customer_id: hashes.get(r.customer_id, "") for r in rows},
                        {r.customer_id: json.dumps(r.payload) if keep else None for r in rows})

    def _guard_removals(self, n_removes: int, n_confirmed: int) -> None:
        share = n_removes / n_confirmed if n_confirmed else 0.0
        if (n_removes >= self.options.min_removals_guarded
                and share > self.options.max_removal_share and not self.options.force_removals):
            raise SyncRefused(
                f"audience {self.audience.key!r} at {self.target.name!r}: the sync would remove "
                f"{n_removes:,} of {n_confirmed:,} confirmed members ({share:.0%}), above the "
                f"limit of {self.options.max_removal_share:.0%}. Check the segment; if the drop "
                "is expected, run again with force_removals (CLI: --force-removals).")

    # -- sending --------------------------------------------------------------------------------
    def _operation_fn(self, operation: str):
        return {"add": self.destination.add, "update": self.destination.add,
                "remove": self.destination.remove, "replace": self.destination.replace}[operation]

    def _request(self, operation: str, rows: list[Row], batch: Batch) -> BatchOutcome:
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
                self.log(f"{self.target.name}: {exc.code} on {operation} batch "
                         f"{batch.number}/{batch.total}; retry {attempt} in {wait:.2f} s")
                self.options.sleep(wait)

    def _send(self, operation: str, rows: list[Row], batch: Batch) -> None:
        """Send a batch; split it while the platform refuses it as a whole."""
        try:
            outcome = self._request(operation, rows, batch)
        except BatchRejected as exc:
            if len(rows) == 1:
                outcome = BatchOutcome(exc.request_id,
                                       {rows[0].customer_id: (exc.code, str(exc))})
            else:
                half = len(rows) // 2
                self.log(f"{self.target.name}: {operation} batch {batch.number} refused "
                         f"({exc.code}); splitting {len(rows)} rows to find the bad ones")
                for part, suffix in ((rows[:half], "a"), (rows[half:], "b")):
                    self._send(operation, part, dataclasses.replace(batch, key=batch.key + suffix))
                self._finish_batch(batch.key)
                return
        self._commit(operation, rows, batch, outcome)

    def _commit(self, operation: str, rows: list[Row], batch: Batch,
                outcome: BatchOutcome) -> None:
        """The batch's confirmed rows into the state, every row into the log, one transaction."""
        confirmed = [r for r in rows if r.customer_id not in outcome.rejected]
        stamp = now()
        log = pd.DataFrame({
            "customer_id": [r.customer_id for r in rows],
            "status": ["rejected" if r.customer_id in outcome.rejected else "confirmed"
                       for r in rows],
            "error_code": [outcome.rejected.get(r.customer_id, (None, None))[0] for r in rows],
            "error_message": [scrub(outcome.rejected.get(r.customer_id, (None, None))[1])
                              for r in rows],
        })
        con = self.con
        con.execute("begin transaction")
        try:
            if operation == "remove":
                self._delete_state([r.customer_id for r in confirmed])
            else:
                state = pd.DataFrame({
                    "customer_id": [r.customer_id for r in confirmed],
                    "payload_hash": [self._hashes[r.customer_id] for r in confirmed],
                    "payload_json": [self._payloads[r.customer_id] for r in confirmed],
                    "destination_id": [outcome.destination_ids.get(r.customer_id)
                                       or r.destination_id for r in confirmed],
                })
                con.register("_state", state)
                con.execute("""
                    insert or replace into activation.sync_state
                    select ?, ?, customer_id, payload_hash, payload_json, destination_id, ?, ?
                    from _state
                """, [self.audience.key, self.target.name, stamp, self.run_id])
                con.unregister("_state")
            con.register("_log", log)
            con.execute("""
                insert into activation.sync_log
                select ?, ?, ?, ?, customer_id, ?, status, error_code, error_message, ?, ?
                from _log
            """, [self.run_id, self.audience.key, self.target.name, batch.key, operation,
                  outcome.request_id, stamp])
            con.unregister("_log")
            self._finish_batch(batch.key)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        n_ok = len(confirmed)
        self.report.n_rejected += len(rows) - n_ok
        if operation == "remove":
            self.report.n_removed += n_ok
        elif operation == "update":
            self.report.n_updated += n_ok
        else:
            self.report.n_added += n_ok

    def _delete_state(self, customers: list[str]) -> None:
        if customers:
            self.con.register("_gone", pd.DataFrame({"customer_id": customers}))
            self.con.execute("""
                delete from activation.sync_state where audience_key = ? and destination = ?
                  and customer_id in (select customer_id from _gone)
            """, [self.audience.key, self.target.name])
            self.con.unregister("_gone")

    def _finish_batch(self, key: str) -> None:
        self.con.execute("delete from activation.sync_pending where batch_key = ? and "
                         "audience_key = ? and destination = ?",
                         [key, self.audience.key, self.target.name])

    def _log_unsent(self, operation: str, rows: list[Row], batch_key_: str, status: str,
                    code: str, message: str) -> None:
        frame = pd.DataFrame({"customer_id": [r.customer_id for r in rows]})
        self.con.register("_unsent", frame)
        self.con.execute("""
            insert into activation.sync_log
            select ?, ?, ?, ?, customer_id, ?, ?, ?, ?, null, ? from _unsent
        """, [self.run_id, self.audience.key, self.target.name, batch_key_, operation, status,
              code, scrub(message), now()])
        self.con.unregister("_unsent")

    # -- the run --------------------------------------------------------------------------------
    def _batches(self, planned: _Planned) -> list[tuple[Batch, list[Row]]]:
        size = (self.destination.max_remove_batch if planned.operation == "remove"
                else self.destination.max_batch)
        chunks = [planned.rows[i:i + size] for i in range(0, len(planned.rows), size)] or [[]]
        if not planned.rows and planned.operation != "replace":
            return []
        op_index = f"{planned.operation}{self._op_counter.setdefault(planned.operation, 0)}"
        self._op_counter[planned.operation] += 1
        return [(Batch(planned.operation, n, len(chunks),
                       batch_key(self.audience.key, self.target.name, self.run_id, op_index, n)),
                 chunk) for n, chunk in enumerate(chunks, start=1)]

    def _write_plan(self, work: list[tuple[_Planned, Batch, list[Row]]]) -> None:
        frames = [pd.DataFrame({
            "operation": planned.operation, "batch_number": batch.number,
            "batch_total": batch.total, "batch_key": batch.key,
            "customer_id": [r.customer_id for r in rows],
            "payload_hash": [planned.hashes.get(r.customer_id) for r in rows],
            "payload_json": [planned.payloads.get(r.customer_id) for r in rows],
        }) for planned, batch, rows in work if rows]
        if not frames:
            return
        self.con.register("_plan", pd.concat(frames, ignore_index=True))
        self.con.execute("""
            insert into activation.sync_pending
            select ?, ?, ?, operation, batch_number, batch_total, batch_key, customer_id,
                   payload_hash, payload_json from _plan
        """, [self.run_id, self.audience.key, self.target.name])
        self.con.unregister("_plan")

    def _record_run(self) -> None:
        self.con.execute("delete from activation.sync_runs where run_id = ? and audience_key = ? "
                         "and destination = ?",
                         [self.run_id, self.audience.key, self.target.name])
        row = self.report.row()
        row["segment_key"] = self.audience.segment
        self.con.register("_run", pd.DataFrame([row]))
        self.con.execute("insert into activation.sync_runs by name select * from _run")
        self.con.unregister("_run")

    def run(self) -> SyncReport:
        ensure_tables(self.con)
        self._op_counter: dict[str, int] = {}
        self._hashes: dict[str, str] = {}
        self._payloads: dict[str, str | None] = {}
        try:
            resumed = self._resume_interrupted()
            plan = self.plan()
        except SyncRefused as exc:
            self.report.status, self.report.message = "refused", str(exc)
            self.report.finished_at = now()
            self._record_run()
            raise
        if self.options.dry_run:
            return self._dry_run(plan)
        work = [(planned, batch, rows) for planned in plan
                for batch, rows in self._batches(planned)]
        for planned in plan:
            self._hashes.update(planned.hashes)
            self._payloads.update(planned.payloads)
        self.con.execute("begin transaction")
        self._write_plan(work)
        self._record_run()
        self.con.execute("commit")
        self.report.n_resumed = resumed
        self._execute(work)
        return self.report

    def _execute(self, work: list[tuple[_Planned, Batch, list[Row]]]) -> None:
        self.destination.open(self.params, self.run_id, self.options.full_refresh)
        succeeded = False
        try:
            for index, (planned, batch, rows) in enumerate(work):
                if planned.operation == "remove" and self.add_only:
                    self._skip_removals(rows, batch)
                    continue
                try:
                    self._send(planned.operation, rows, batch)
                except RemovalsNotAllowed as exc:
                    self.add_only = True
                    self.report.message = (f"{self.target.name} refused removals "
                                           f"({exc.code}: {scrub(str(exc))}); this sync is "
                                           "add-only and the removals wait for a later run")
                    self.log(self.report.message)
                    self._skip_removals(rows, batch)
                except (RetryableError, FatalError, DestinationError) as exc:
                    pending = sum(len(r) for _, _, r in work[index:])
                    self.report.n_pending = pending
                    self.report.status = "failed"
                    self.report.message = (
                        f"stopped at {planned.operation} batch {batch.number}/{batch.total}: "
                        f"{exc.code}: {scrub(str(exc))}. {pending:,} rows are pending and will "
                        "be sent by the next run (confirmed rows are not sent again).")
                    self._log_unsent(planned.operation, rows, batch.key, "failed", exc.code,
                                     str(exc))
                    raise SyncFailed(self.report.message) from exc
                self._progress(index + 1, work)
            if self.options.full_refresh and self.destination.supports_replace:
                self._drop_unconfirmed_after_replace()
            succeeded = True
            self.report.status = "add_only" if self.add_only else "succeeded"
        finally:
            self.destination.close(self.params, succeeded)
            self.report.finished_at = now()
            self._record_run()

    def _progress(self, done: int, work: list) -> None:
        """A log line at each tenth of the batches of a long sync (20 batches or more)."""
        total = len(work)
        if total >= 20 and done * 10 // total != (done - 1) * 10 // total:
            rows = sum(len(r) for _, _, r in work[:done])
            elapsed = (now() - self.report.started_at).total_seconds()
            self.log(f"{self.target.name}: {done}/{total} batches ({rows:,} rows) in "
                     f"{elapsed:.0f} s")

    def _skip_removals(self, rows: list[Row], batch: Batch) -> None:
        self.con.execute("begin transaction")
        self._log_unsent("remove", rows, batch.key, "skipped", "removals_not_allowed",
                         "the platform refused removals; retried on a later run")
        self._finish_batch(batch.key)
        self.con.execute("commit")

    def _drop_unconfirmed_after_replace(self) -> None:
        self.con.execute("""
            delete from activation.sync_state where audience_key = ? and destination = ?
              and run_id <> ?
        """, [self.audience.key, self.target.name, self.run_id])

    def _resume_interrupted(self) -> int:
        """Finish the batches a killed or failed run left pending, with their original keys."""
        pending = self.con.execute("""
            select * from activation.sync_pending where audience_key = ? and destination = ?
            order by rowid
        """, [self.audience.key, self.target.name]).df()
        if pending.empty:
            return 0
        if self.options.dry_run:
            self.report.message = (f"{len(pending):,} rows of an interrupted run are pending "
                                   "and will be sent first")
            return 0
        state = self._state()
        desired_frame = audience_members(self.con, self.audience, self.destination.consent)
        contacts = {c.customer_id: c for c in _contacts(desired_frame)}
        n = 0
        opened = None
        for (run_id, key), rows in pending.groupby(["run_id", "batch_key"], sort=False):
            operation, number = rows["operation"].iloc[0], int(rows["batch_number"].iloc[0])
            if opened != run_id:
                if opened is not None:
                    self.destination.close(self.params, True)
                self.destination.open(self.params, run_id, False)
                opened = run_id
            batch = Batch("add" if operation == "update" else operation, number,
                          int(rows["batch_total"].iloc[0]), key)
            rebuilt, same = [], True
            for record in rows.to_dict("records"):
                customer = record["customer_id"]
                if operation == "remove":
                    if customer not in state.index:
                        continue                      # confirmed gone before the kill
                    stored = state["payload_json"].get(customer)
                    dest_id = state["destination_id"].get(customer)
                    rebuilt.append(Row(customer, json.loads(stored) if isinstance(stored, str)
                                       else {}, _none(dest_id)))
                    continue
                contact = contacts.get(customer)
                payload = (self.destination.payload(contact, self.audience.payload_fields)
                           if contact else None)
                if payload is None or payload_hash(payload) != record["payload_hash"]:
                    same = False
                    continue
                rebuilt.append(Row(customer, payload))
                self._hashes[customer] = record["payload_hash"]
                self._payloads[customer] = record["payload_json"]
            if not same:
                # the customers changed since: never reuse a key for different content
                batch = dataclasses.replace(batch, key=key + "r")
                self._finish_batch(key)
            self.log(f"{self.target.name}: resuming {operation} batch {number} of interrupted "
                     f"run {run_id} ({len(rebuilt)} rows)")
            previous_run = self.run_id
            self.run_id = run_id
            try:
                if rebuilt:
                    self._send(operation, rebuilt, batch)
                else:
                    self._finish_batch(key)
            finally:
                self.run_id = previous_run
            n += len(rebuilt)
        self.destination.close(self.params, True)
        self.con.execute("update activation.sync_runs set status = 'interrupted', "
                         "message = 'resumed by ' || ? where audience_key = ? and "
                         "destination = ? and status in ('running', 'failed')",
                         [self.run_id, self.audience.key, self.target.name])
        # counts of the resumed work belong to this run's report
        return n

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


def _none(value):
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def sync(con: duckdb.DuckDBPyConnection, audience: Audience, target: Target,
         destination: Destination, run_id: str, options: SyncOptions | None = None,
         log: Callable[[str], None] = print) -> SyncReport:
    """Sync one audience to one destination; see the module docstring."""
    return Sync(con, audience, target, destination, run_id, options or SyncOptions(), log).run()
