"""The sync's state and resume store: the `activation` tables in DuckDB.

- `activation.sync_state`: the membership each destination confirmed (what the diff reads);
- `activation.sync_pending`: a run's plan (its batches, keys and rows), written before the first
  send and cleared batch by batch, so the batches a killed run left behind are resumed as they
  were planned;
- `activation.sync_log` (one row per customer and operation, append-only), `activation.sync_runs`
  (one row per run) and `activation.audience_assignments` (each customer's holdout arm).

`Store` reads and writes them for one audience at one destination. An acknowledged batch commits
its state change, its log rows and the end of its pending record in one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from activation.audiences import Audience
from activation.audit import now, scrub
from activation.destinations.base import Batch, BatchOutcome, Row
from core.privacy import customer_key

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
    message varchar,
    as_of_date date                     -- the store's clock: the as-of date of the data synced
);
create table if not exists activation.sync_log (
    run_id varchar not null,
    audience_key varchar not null,
    destination varchar not null,
    batch_key varchar,
    customer_id varchar not null,
    operation varchar not null,         -- add | update | remove | erase | replace
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


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The activation tables; a `sync_runs` of the earlier RFM file export (no `mode` column)
    is kept as `sync_runs_v1`, one of a later layout gets the columns added since (`n_resumed`;
    `as_of_date`, left empty for the runs before it: the uplift reads their wall-clock day)."""
    columns = {name for (name,) in con.execute(
        "select column_name from information_schema.columns where table_schema = "
        "'activation' and table_name = 'sync_runs'").fetchall()}
    if columns and "mode" not in columns:
        con.execute("alter table activation.sync_runs rename to sync_runs_v1")
    elif columns:
        for column, kind in (("n_resumed", "bigint"), ("as_of_date", "date")):
            if column not in columns:
                con.execute(f"alter table activation.sync_runs add column {column} {kind}")
    con.execute(DDL)


def store_as_of(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The store's clock for a sync: the as-of date of the segment memberships audiences are
    computed from (dbt's `rfm_as_of_date`: the day after the newest order, or the `as_of_date`
    var; one date for every row), the first day the data does not cover. None before the marts
    exist, while they are empty, or for a hand-made memberships table without the column."""
    try:
        return con.execute("select max(as_of_date) from marts.segment_memberships").fetchone()[0]
    except (duckdb.CatalogException, duckdb.BinderException):
        return None


def record_assignments(con: duckdb.DuckDBPyConnection, audience: Audience,
                       customers: list[str], holdout: set[str]) -> None:
    """Each customer's arm, the first time they are seen in the audience (never reassigned)."""
    # typed, so that nobody to record (a store without consents) is text, not an empty DOUBLE
    frame = pd.DataFrame({
        "customer_id": pd.Series(customers, dtype="string"),
        "arm": pd.Series(["holdout" if c in holdout else "target" for c in customers],
                         dtype="string")})
    con.register("_arms", frame)
    con.execute("""
        insert into activation.audience_assignments
        select ?, customer_id, arm, ?, ? from _arms
        where customer_id not in (select customer_id from activation.audience_assignments
                                  where audience_key = ?)
    """, [audience.key, audience.holdout, now(), audience.key])
    con.unregister("_arms")


@dataclass
class PendingBatch:
    """A batch a killed or failed run planned and did not finish, as `sync_pending` holds it."""

    run_id: str
    key: str
    operation: str              # add | update | remove | erase | replace
    number: int
    total: int
    records: list[dict]         # its rows: customer_id, payload_hash, payload_json, ...


class Store:
    """The state, plan and audit rows of one audience at one destination."""

    def __init__(self, con: duckdb.DuckDBPyConnection, audience_key: str, destination: str):
        self.con, self.audience_key, self.destination = con, audience_key, destination

    # -- reading --------------------------------------------------------------------------------
    def confirmed(self) -> pd.DataFrame:
        """The confirmed membership, indexed by customer_id."""
        return self.con.execute("""
            select customer_id, payload_hash, payload_json, destination_id
            from activation.sync_state where audience_key = ? and destination = ?
        """, [self.audience_key, self.destination]).df().set_index("customer_id")

    def pending(self) -> list[PendingBatch]:
        """The batches interrupted runs left pending, in the order they were planned."""
        frame = self.con.execute("""
            select * from activation.sync_pending where audience_key = ? and destination = ?
            order by rowid
        """, [self.audience_key, self.destination]).df()
        return [PendingBatch(run_id, key, rows["operation"].iloc[0],
                             int(rows["batch_number"].iloc[0]), int(rows["batch_total"].iloc[0]),
                             rows.to_dict("records"))
                for (run_id, key), rows in frame.groupby(["run_id", "batch_key"], sort=False)]

    # -- the plan -------------------------------------------------------------------------------
    def write_plan(self, run_id: str, work: list[tuple]) -> None:
        """Every row of a run's batches into `sync_pending`. `work` holds (planned item, batch,
        rows) as `plan.batches` cuts them."""
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
        """, [run_id, self.audience_key, self.destination])
        self.con.unregister("_plan")

    def finish_batch(self, key: str) -> None:
        self.con.execute("delete from activation.sync_pending where batch_key = ? and "
                         "audience_key = ? and destination = ?",
                         [key, self.audience_key, self.destination])

    # -- an acknowledged batch ------------------------------------------------------------------
    def commit_batch(self, run_id: str, operation: str, rows: list[Row], batch: Batch,
                     outcome: BatchOutcome, hashes: dict[str, str],
                     payloads: dict[str, str | None]) -> int:
        """The batch's confirmed rows into the state, every row into the log, one transaction.
        Returns how many rows were confirmed."""
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
            if operation in ("remove", "erase"):
                self.delete([r.customer_id for r in confirmed])
            else:
                state = pd.DataFrame({
                    "customer_id": [r.customer_id for r in confirmed],
                    "payload_hash": [hashes[r.customer_id] for r in confirmed],
                    "payload_json": [payloads[r.customer_id] for r in confirmed],
                    "destination_id": [outcome.destination_ids.get(r.customer_id)
                                       or r.destination_id for r in confirmed],
                })
                con.register("_state", state)
                con.execute("""
                    insert or replace into activation.sync_state
                    select ?, ?, customer_id, payload_hash, payload_json, destination_id, ?, ?
                    from _state
                """, [self.audience_key, self.destination, stamp, run_id])
                con.unregister("_state")
            con.register("_log", log)
            con.execute("""
                insert into activation.sync_log
                select ?, ?, ?, ?, customer_id, ?, status, error_code, error_message, ?, ?
                from _log
            """, [run_id, self.audience_key, self.destination, batch.key, operation,
                  outcome.request_id, stamp])
            con.unregister("_log")
            if operation == "erase":
                self.forget([r.customer_id for r in confirmed])
            self.finish_batch(batch.key)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return len(confirmed)

    def delete(self, customers: list[str]) -> None:
        """These customers out of the confirmed state."""
        if customers:
            self.con.register("_gone", pd.DataFrame({"customer_id": customers}))
            self.con.execute("""
                delete from activation.sync_state where audience_key = ? and destination = ?
                  and customer_id in (select customer_id from _gone)
            """, [self.audience_key, self.destination])
            self.con.unregister("_gone")

    def forget(self, customers: list[str]) -> None:
        """Erased customers no destination holds any more: their audit rows keep only the
        pseudonymous key (`core.privacy.customer_key`), their holdout assignments go."""
        if not customers:
            return
        gone = [c for c in customers if not self.con.execute(
            "select count(*) from activation.sync_state where customer_id = ?", [c]).fetchone()[0]]
        for customer in gone:
            key = customer_key(customer)
            self.con.execute("update activation.sync_log set customer_id = ? "
                             "where customer_id = ?", [key, customer])
            self.con.execute("delete from activation.audience_assignments where customer_id = ?",
                             [customer])

    def drop_unconfirmed(self, run_id: str) -> None:
        """After a full refresh that replaced the audience: the state rows it did not confirm."""
        self.con.execute("""
            delete from activation.sync_state where audience_key = ? and destination = ?
              and run_id <> ?
        """, [self.audience_key, self.destination, run_id])

    # -- rows not sent --------------------------------------------------------------------------
    def log_unsent(self, run_id: str, operation: str, rows: list[Row], batch_key_: str,
                   status: str, code: str, message: str) -> None:
        frame = pd.DataFrame({"customer_id": [r.customer_id for r in rows]})
        self.con.register("_unsent", frame)
        self.con.execute("""
            insert into activation.sync_log
            select ?, ?, ?, ?, customer_id, ?, ?, ?, ?, null, ? from _unsent
        """, [run_id, self.audience_key, self.destination, batch_key_, operation, status,
              code, scrub(message), now()])
        self.con.unregister("_unsent")

    def skip_batch(self, run_id: str, operation: str, rows: list[Row], batch_key_: str,
                   code: str, message: str) -> None:
        """A batch not sent: its rows logged `skipped` and its pending record ended, together."""
        self.con.execute("begin transaction")
        self.log_unsent(run_id, operation, rows, batch_key_, "skipped", code, message)
        self.finish_batch(batch_key_)
        self.con.execute("commit")

    # -- runs -----------------------------------------------------------------------------------
    def record_run(self, run_id: str, row: dict) -> None:
        """The run's `sync_runs` row (replaced on every call, so it shows the latest counts)."""
        self.con.execute("delete from activation.sync_runs where run_id = ? and audience_key = ? "
                         "and destination = ?",
                         [run_id, self.audience_key, self.destination])
        self.con.register("_run", pd.DataFrame([row]))
        self.con.execute("insert into activation.sync_runs by name select * from _run")
        self.con.unregister("_run")

    def mark_interrupted(self, resumed_by: str) -> None:
        """Earlier runs left running or failed: `interrupted`, resumed by `resumed_by`."""
        self.con.execute("update activation.sync_runs set status = 'interrupted', "
                         "message = 'resumed by ' || ? where audience_key = ? and "
                         "destination = ? and status in ('running', 'failed')",
                         [resumed_by, self.audience_key, self.destination])
