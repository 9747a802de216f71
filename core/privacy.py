"""Erasure requests: what the warehouse keeps of a person who asked to be forgotten.

A profile row with `is_deleted = true` is an erasure request. `apply_erasures` runs in the same
transaction as every load of the customers, orders and events feeds, so a file delivered after
the request (a late or re-sent day) is scrubbed as it lands:

- the person's contact details in every stored profile snapshot are blanked (`PII_COLUMNS`);
- the free-form `_extra` column (unknown landing columns, identify traits) of their profile,
  order and event rows is emptied;
- quarantined rows that name them (the customer id as a whole token of the raw record, so
  erasing C1 leaves C10 alone) are replaced by `{"erased": true}`;
- their segment history (`snapshots.*`) keeps them only under the pseudonymous key;
- their order lines and events keep them only under a pseudonymous key (`customer_key`:
  `erased-` and 20 hex digits of a SHA-256 of the id), logged in the change logs so the
  incremental models rewrite what was derived from them: the order facts stay for the
  accounts, the marts hold no customer for them (dim_customers, RFM, features, segments);
- their rows in the model outputs (`ml.*`) and the holdout assignments are deleted.

Each step is counted per request in `audit.erasure_report` under that pseudonymous key, so the
report never holds the id itself. What is kept, and why, is in
docs/privacy.md; removing the person from destinations is the sync engine's (an `erase`
operation, sent first).
"""

from __future__ import annotations

import hashlib

import duckdb
import pyarrow as pa

# What an erasure request removes from every stored snapshot of that customer.
PII_COLUMNS = ("email", "phone", "first_name", "last_name", "birth_date", "city", "postal_code",
               "income_band")
# Tables Python steps write with one row per customer (or customer and item), outside dbt.
PURGED_SCHEMAS = ("ml",)
PURGED_TABLES = ("activation.audience_assignments",)
# Loaded rows of these tables are rewritten by `_move`, not updated, with `_extra` emptied.
MOVED_TABLES = ("raw.orders", "raw.events")


def customer_key(customer_id: str) -> str:
    """The pseudonymous key of an erased customer: what their order facts and events keep
    instead of the id, and what the erasure report names (`PSEUDONYM_SQL` in SQL)."""
    digest = hashlib.sha256(f"segmenta-erasure:{customer_id}".encode()).hexdigest()
    return f"erased-{digest[:20]}"


def pseudonym_sql(column: str) -> str:
    return f"('erased-' || left(sha256('segmenta-erasure:' || {column}), 20))"


def ensure_audit(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists audit")
    con.execute("""
        create table if not exists audit.erasure_requests (
            customer_key varchar primary key, requested_at timestamp)
    """)
    con.execute("create table if not exists audit.erasure_passes "
                "(change_id bigint primary key, from_change_id bigint, scrubbed boolean)")
    con.execute("alter table audit.erasure_passes add column if not exists from_change_id bigint")


def _erased_profiles(con: duckdb.DuckDBPyConnection, known: str, unchanged: bool = False) -> None:
    """Temp table `_erased_profiles`: the real ids in `raw.customers` that are erased (a request,
    or a profile whose key is a request on record). Computed again only when the profiles or
    the requests on record changed since the last time on this connection: a load of orders or
    events asks for it twice a day, and hashing every profile's id took over a second each
    time at 1M customers (8 minutes over a year's load). `unchanged`: the caller knows that
    neither changed since the table was made on this connection (a load's later days: even
    the signature cost 55 ms a day, 40 s over a year of orders and events)."""
    exists = "select count(*) from duckdb_tables() where temporary and table_name = ?"
    if unchanged and con.execute(exists, ["_erased_profiles"]).fetchone()[0]:
        return
    signature = repr(con.execute("""
        select (select (count(*), sum(hash(customer_id, is_deleted))) from raw.customers),
               (select (count(*), sum(hash(customer_key))) from audit.erasure_requests)
    """).fetchone())
    cached = con.execute(exists, ["_erased_profiles_signature"]).fetchone()[0]
    if cached and con.execute("select signature from _erased_profiles_signature"
                              ).fetchone()[0] == signature:
        return
    con.execute(f"""create or replace temp table _erased_profiles as
                    select customer_id from raw.customers
                    where customer_id not like 'erased-%'
                      and (is_deleted or {pseudonym_sql('customer_id')} in {known})""")
    con.execute("create or replace temp table _erased_profiles_signature as "
                "select ?::varchar as signature", [signature])


def _collect_erased(con: duckdb.DuckDBPyConnection, feed: str | None = None,
                    day=None, profiles_unchanged: bool = False) -> None:
    """Temp table `_erased`: the real ids of erased customers still named in the warehouse.
    Named by a request in `raw.customers` (a new request, or an old one delivered again), by
    any profile whose key is a request on record, and, for a day of orders or events just
    loaded, by that day's rows whose key is a request on record (a late or re-sent file).
    `profiles_unchanged`: as `_erased_profiles`' `unchanged`."""
    ensure_audit(con)
    known = "(select customer_key from audit.erasure_requests)"
    _erased_profiles(con, known, profiles_unchanged)
    sources = ["select customer_id from _erased_profiles"]
    if feed is None:
        sources.extend(_named_by_pseudonymized_requests(con))
    if feed in ("orders", "events") and day is not None:
        column = "customer_id" if feed == "orders" else "user_id"
        # the day's distinct ids are hashed, not its rows (a day of events at 1M customers:
        # 300k rows, a tenth as many ids)
        sources.append(f"""select {column} from (
                               select distinct {column} from raw.{feed}
                               where _partition_date = '{day.isoformat()}'
                                 and {column} not like 'erased-%') as ids
                           where {pseudonym_sql(column)} in {known}""")
    con.execute("create or replace temp table _erased as select distinct customer_id from ("
                + " union all ".join(sources) + ") as named(customer_id)")


def _named_by_pseudonymized_requests(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Requests whose landing file an erasure already rewrote: the row names the customer by
    key only (a warehouse rebuilt from the landing zone, or a load stopped after the profiles
    were rewritten). Their keys go on record, so every later day of orders or events is
    scrubbed as it lands; the order lines and events loaded before are found by hashing their
    ids, once, when such a key is first recorded (the keys wait in temp table
    `_new_request_keys` until `apply_erasures` has scrubbed them: `erased_files` asks first).
    Returns the queries of those ids."""
    new_keys = con.execute("""
        insert or ignore into audit.erasure_requests
        select distinct customer_id, current_timestamp from raw.customers
        where is_deleted and customer_id like 'erased-%'
        returning customer_key""").fetchall()
    con.execute("create temp table if not exists _new_request_keys (customer_key varchar)")
    if new_keys:
        con.executemany("insert into _new_request_keys values (?)", new_keys)
    elif not con.execute("select count(*) from _new_request_keys").fetchone()[0]:
        return []
    tables = _tables(con)
    return [f"""select distinct {column} from {table}
                where {column} not like 'erased-%'
                  and {pseudonym_sql(column)} in (select customer_key from _new_request_keys)"""
            for table, column in (("raw.orders", "customer_id"), ("raw.events", "user_id"))
            if table in tables]


def erasures_on_record(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the warehouse knows any erasure request: a profile marked deleted, or a key on
    record. Without one, scrubbing a day of orders or events finds nothing (`erased_files` and
    `apply_erasures` for a day would run their queries, about 40 ms a day, for nothing: 14 of
    the 28 s a year of orders of the UCI Online Retail store took to load)."""
    tables = _tables(con)
    if "raw.customers" not in tables:
        return False
    if "audit.erasure_requests" in tables and con.execute(
            "select exists (select 1 from audit.erasure_requests)").fetchone()[0]:
        return True
    return "is_deleted" in tables["raw.customers"] and con.execute(
        "select exists (select 1 from raw.customers where is_deleted)").fetchone()[0]


def erased_files(con: duckdb.DuckDBPyConnection, feed: str | None = None,
                 day=None, profiles_unchanged: bool = False,
                 moved_later: bool = False) -> dict[str, set[str]]:
    """The landing files (paths relative to the landing folder) that name an erased customer,
    and the ids they name: what the loader rewrites (`ingest.landing.rewrite_erased`). Call it
    before `apply_erasures`, which replaces the ids in the warehouse. `profiles_unchanged`:
    neither the profiles nor the requests on record changed since the last call on `con` (a
    load of orders or events touches neither: its later days say so). `moved_later` (a pass
    over every feed, `feed` None): the files of the order lines and events are left out here,
    for `apply_erasures(..., collected=True, found=<this result>)` to add as it moves those
    rows (one pass over 100M events at 1M customers instead of two, 3 s a day)."""
    tables = _tables(con)
    if "raw.customers" not in tables:
        return {}
    _collect_erased(con, feed, day, profiles_unchanged)
    where_day = "" if day is None else f" and t._partition_date = '{day.isoformat()}'"
    found: dict[str, set[str]] = {}
    for table, column in (("raw.customers", "customer_id"), ("raw.orders", "customer_id"),
                          ("raw.events", "user_id")):
        if table not in tables or feed not in (None, table.split(".")[1]):
            continue
        if moved_later and feed is None and table in MOVED_TABLES:
            continue
        for path, customer in con.execute(f"""
                select distinct t._source_file, e.customer_id from {table} t
                join _erased e on t.{column} = e.customer_id
                {'' if table == 'raw.customers' else where_day}""").fetchall():
            found.setdefault(path, set()).add(customer)
    for table in (t for t in tables if t.startswith("quarantine.")):
        if feed not in (None, table.split(".")[1]) or "raw_record" not in tables[table]:
            continue
        _quarantine_hits(con, table, "" if table == "quarantine.customers" else where_day)
        for path, customer in con.execute(
                "select distinct source_file, customer_id from _hits").fetchall():
            found.setdefault(path, set()).add(customer)
    return found  # `_erased` stays for `apply_erasures(..., collected=True)`, which drops it


ERASED_RECORD = '{"erased": true}'
# an id is named in a quarantined record as a whole token of these characters: C1 matches "C1"
# but not "C10"
TOKEN = "A-Za-z0-9_-"


def _quarantine_hits(con: duckdb.DuckDBPyConnection, table: str, day_filter: str) -> None:
    """Temp table `_hits` (rid, source_file, customer_id): the records of a quarantine table
    (`day_filter` on alias t) that name an erased customer as a whole token. Records are split
    into tokens and joined on them (a hash join: one pass, whatever the number of requests);
    an id with other characters than the token's is looked for by a regular expression."""
    con.execute(f"""
        create or replace temp table _hits as
        with tokens as (
            select t.rowid as rid, t._source_file as source_file,
                   unnest(regexp_split_to_array(t.raw_record, '[^{TOKEN}]+')) as token
            from {table} t
            where t.raw_record <> '{ERASED_RECORD}'{day_filter}
        )
        select distinct rid, source_file, e.customer_id
        from tokens join _erased e on tokens.token = e.customer_id
        union
        select t.rowid, t._source_file, e.customer_id
        from {table} t join _erased e
        on not regexp_full_match(e.customer_id, '[{TOKEN}]+')
            and t.raw_record <> '{ERASED_RECORD}'{day_filter}
            and regexp_matches(t.raw_record, '(^|[^{TOKEN}])' || regexp_escape(e.customer_id)
                                             || '($|[^{TOKEN}])')
    """)


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """The warehouse file's tables and their columns. On the Spark engine the engine's tables
    (snapshots, ml) are scrubbed after the load commits, by `scrub_engine_tables`: one DuckDB
    transaction writes one database."""
    columns: dict[str, set[str]] = {}
    for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_catalog = (select current_database())").fetchall():
        columns.setdefault(f"{schema}.{table}", set()).add(column)
    return columns


def scrub_engine_tables(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """On the Spark engine (a `core.spark_bridge` connection), after a load that applied
    erasures: every customer of `audit.erasure_requests` kept only under the key in the segment
    history (`snapshots.*`) and deleted from the model outputs (`ml.*`), as `apply_erasures`
    does in the DuckDB file. Matched by the key, so it also finds those whose id the load
    already replaced in raw. Returns the rows changed per table; tables without any are not
    rewritten."""
    from core.spark_bridge import ENGINE_SCHEMAS

    if not con.execute("select count(*) from information_schema.tables where table_schema = "
                       "'audit' and table_name = 'erasure_requests'").fetchone()[0]:
        return {}
    found = con.execute(
        "select table_schema, table_name from information_schema.columns where "
        "column_name = 'customer_id' and table_schema in ('snapshots', ?) "
        "and table_catalog <> (select current_database())",
        [PURGED_SCHEMAS[0]]).fetchall()
    keys = "(select customer_key from audit.erasure_requests)"
    changed: dict[str, int] = {}
    for schema, name in sorted(set(found)):
        table = f"{schema}.{name}"
        assert schema in ENGINE_SCHEMAS
        hits = con.execute(f"select count(*) from {table} where "
                           f"{pseudonym_sql('customer_id')} in {keys}").fetchone()[0]
        if not hits:
            continue
        if schema == "snapshots":
            con.execute(f"update {table} set customer_id = {pseudonym_sql('customer_id')} "
                        f"where {pseudonym_sql('customer_id')} in {keys}")
        else:
            con.execute(f"delete from {table} where {pseudonym_sql('customer_id')} in {keys}")
        changed[table] = hits
    return changed


def apply_erasures(con: duckdb.DuckDBPyConnection, feed: str | None = None,
                   day=None, collected: bool = False,
                   found: dict[str, set[str]] | None = None) -> int:
    """Scrub every erased customer from raw, quarantine and the Python-written outputs (see the
    module docstring); returns how many erased customers this pass found still named (0 once
    everything is scrubbed: the warehouse then names them only by key). Idempotent.

    With `feed` and `day` (a day of orders or events just loaded), only that day's rows of that
    feed are scrubbed: the rest was scrubbed when the request arrived. `collected`: the
    `erased_files` call just before, with the same arguments and in the same transaction,
    found the erased ids already (a day's load asks both). `found`: `erased_files`' result
    when it was asked with `moved_later`; the landing files of the order lines and events
    moved here are added to it."""
    tables = _tables(con)
    if feed is not None:
        tables = {t: c for t, c in tables.items()
                  if t in ("raw.customers", f"raw.{feed}", f"quarantine.{feed}")}
    where_day = "" if day is None else f" and _partition_date = '{day.isoformat()}'"
    t_day = "" if day is None else f" and t._partition_date = '{day.isoformat()}'"
    if "raw.customers" not in tables or "is_deleted" not in tables["raw.customers"]:
        return 0
    if not collected:
        _collect_erased(con, feed, day)
    erased = con.execute("select count(*) from _erased").fetchone()[0]
    counts: list[tuple[str, str, str, int]] = []  # customer, table, action, rows

    def run(table: str, action: str, sql: str, customer_column: str) -> None:
        rows = con.execute(f"""
            select e.customer_id, count(*) from {table} t join _erased e
            on {customer_column} group by 1""").fetchall() if sql else []
        if rows:
            con.execute(sql)
            counts.extend((customer, table, action, n) for customer, n in rows)

    if erased:  # every request on record, under its key only
        con.execute(f"""
            insert or ignore into audit.erasure_requests
            select {pseudonym_sql('customer_id')}, current_timestamp from _erased""")
    if erased and feed is None:
        pii = [c for c in PII_COLUMNS if c in tables["raw.customers"]]
        blanks = ", ".join(f"{c} = null" for c in pii)
        dirty = " or ".join(f"{c} is not null" for c in pii)
        run("raw.customers", "contact details blanked",
            f"update raw.customers set {blanks} where ({dirty}) and customer_id in "
            "(select customer_id from _erased)",
            "t.customer_id = e.customer_id and ("
            + " or ".join(f"t.{c} is not null" for c in pii) + ")")
    if erased:
        for table, column in (("raw.customers", "customer_id"), ("raw.orders", "customer_id"),
                              ("raw.events", "user_id")):
            if table in tables and "_extra" in tables[table]:
                if feed not in (None, table.split(".")[1]):
                    continue  # a day of another feed: the profiles were scrubbed on arrival
                if feed is None and table in MOVED_TABLES:
                    continue  # emptied as their rows are moved (`_pseudonymize`)
                day_filter = "" if table == "raw.customers" else where_day
                run(table, "extra fields emptied",
                    f"update {table} set _extra = null where _extra is not null and {column} in "
                    f"(select customer_id from _erased){day_filter}",
                    f"t.{column} = e.customer_id and t._extra is not null"
                    + ("" if table == "raw.customers" else t_day))
        for table in sorted(t for t in tables if t.startswith("quarantine.")):
            if "raw_record" not in tables[table]:
                continue
            _quarantine_hits(con, table, "" if table == "quarantine.customers" else t_day)
            rows = con.execute("select customer_id, count(distinct rid) from _hits "
                               "group by 1").fetchall()
            if rows:
                con.execute(f"""update {table} set raw_record = '{{"erased": true}}'
                                where rowid in (select rid from _hits)""")
                counts.extend((c, table, "quarantined record replaced", n) for c, n in rows)
    if erased:
        _pseudonymize(con, tables, feed, where_day, counts, found)
    if erased and feed is None:
        for table in sorted(t for t in tables if t.startswith("snapshots.")
                            and "customer_id" in tables[t]):  # history, kept under the key
            run(table, "customer id pseudonymized",
                f"update {table} set customer_id = {pseudonym_sql('customer_id')} "
                "where customer_id in (select customer_id from _erased)",
                "t.customer_id = e.customer_id")
        run("raw.customers", "customer id pseudonymized",
            f"update raw.customers set customer_id = {pseudonym_sql('customer_id')} "
            "where customer_id in (select customer_id from _erased)",
            "t.customer_id = e.customer_id")
        purged = [t for t, cols in tables.items() if "customer_id" in cols
                  and (t.split(".")[0] in PURGED_SCHEMAS or t in PURGED_TABLES)]
        for table in sorted(purged):
            run(table, "rows deleted",
                f"delete from {table} where customer_id in (select customer_id from _erased)",
                "t.customer_id = e.customer_id")
        if "activation.sync_log" in tables and "activation.sync_state" in tables:
            # the audit rows of a person no destination holds any more (those still held are
            # pseudonymized when the sync's `erase` is confirmed)
            held = "select customer_id from activation.sync_state"
            run("activation.sync_log", "customer id pseudonymized",
                f"update activation.sync_log set customer_id = {pseudonym_sql('customer_id')} "
                f"where customer_id in (select customer_id from _erased) "
                f"and customer_id not in ({held})",
                f"t.customer_id = e.customer_id and t.customer_id not in ({held})")
    con.execute("""
        create table if not exists audit.erasure_report (
            customer_key varchar, table_name varchar, action varchar, n_rows bigint,
            erased_at timestamp)
    """)
    if counts:  # once per request, table and action (a reloaded snapshot is scrubbed again)
        # one statement for all: row by row (executemany) it was the slowest part of a day's
        # load at 1M customers, where every day names a few hundred erased customers
        con.register("_report_rows", pa.table({
            "customer_key": [customer_key(c) for c, _, _, _ in counts],
            "table_name": [t for _, t, _, _ in counts],
            "action": [a for _, _, a, _ in counts],
            "n_rows": pa.array([n for _, _, _, n in counts], pa.int64())}))
        con.execute("""
            insert into audit.erasure_report
            select customer_key, table_name, action, sum(n_rows), current_timestamp
            from _report_rows as new
            where not exists (
                select 1 from audit.erasure_report as done
                where done.customer_key = new.customer_key and done.table_name = new.table_name
                  and done.action = new.action)
            group by all
        """)
        con.unregister("_report_rows")
    con.execute("drop table _erased")
    if feed is None:
        con.execute("drop table if exists _new_request_keys")  # scrubbed now
    return erased


def _pseudonymize(con: duckdb.DuckDBPyConnection, tables: dict[str, set[str]], feed: str | None,
                  where_day: str, counts: list, found: dict[str, set[str]] | None = None
                  ) -> None:
    """Order facts and events keep the erased customer only as `customer_key`. Rows already
    loaded are logged in the change logs before and after (one new change id), so the
    incremental models rewrite every order, session and customer-day derived from them; a day
    loaded after the request (`feed`, `where_day`) is rewritten before its load logs it.
    `found` (landing file -> ids): gets the files of the rows moved."""
    targets = [(t, c) for t, c in (("raw.orders", "customer_id"), ("raw.events", "user_id"))
               if t in tables and feed in (None, t.split(".")[1])]
    if not targets:
        return
    logs = feed is None and "raw.orders_changes" in _tables(con)
    change_id = con.execute("select nextval('raw.change_seq')").fetchone()[0] if logs else None
    if logs:
        # The events log names visitors by user id. Entries the incremental models consumed
        # (up to the lowest watermark) are keyed now; the newer ones, this pass's "before"
        # entries included, name the id until the models have consumed them: dbt's on-run-end
        # hook (macro scrub_erased_change_log) keys them then.
        consumed = 0
        if "intermediate.incremental_watermarks" in _tables(con):
            consumed = con.execute("select coalesce(min(change_id), 0) from "
                                   "intermediate.incremental_watermarks").fetchone()[0]
        _move(con, "raw.events_changes",
              "user_id in (select customer_id from _erased) and change_id <= ?", [consumed],
              f"{pseudonym_sql('user_id')} as user_id")
        con.execute("insert or ignore into audit.erasure_passes (change_id, from_change_id, "
                    "scrubbed) values (?, ?, false)", [change_id, consumed])
    for table, column in targets:
        if where_day:  # a day just loaded, in this transaction: updated in place
            affected = con.execute(f"""
                select e.customer_id, count(*) from {table} t join _erased e
                on t.{column} = e.customer_id {where_day.replace('_partition_date', 't._partition_date')}
                group by 1""").fetchall()
            if affected:
                con.execute(f"update {table} set {column} = {pseudonym_sql(column)} "
                            f"where {column} in (select customer_id from _erased){where_day}")
            counts.extend((customer, table, "customer id pseudonymized", n)
                          for customer, n in affected)
            continue
        # loaded before: moved, with their `_extra` emptied, and logged as they were and are
        extra = "_extra" in tables[table]
        rows = _move(con, table, f"{column} in (select customer_id from _erased)", [],
                     f"{pseudonym_sql(column)} as {column}" + (", null as _extra" if extra else ""))
        if not rows.num_rows:
            continue
        if found is not None:
            for path, customer in zip(rows.column("_source_file").to_pylist(),
                                      rows.column(column).to_pylist(), strict=True):
                found.setdefault(path, set()).add(customer)
        con.register("_moved", rows)
        try:
            actions = [("customer id pseudonymized", "")]
            if extra:
                actions.insert(0, ("extra fields emptied", " where _extra is not null"))
            for action, where in actions:
                counts.extend((customer, table, action, n) for customer, n in con.execute(
                    f"select {column}, count(*) from _moved{where} group by 1").fetchall())
            if logs and table == "raw.orders":
                con.execute("insert into raw.orders_changes select ?, order_id, "
                            "current_timestamp from _moved group by order_id", [change_id])
            elif logs:
                for user in ("user_id", pseudonym_sql("user_id")):
                    con.execute(f"insert into raw.events_changes select ?, anonymous_id, {user}, "
                                "min(timestamp), current_timestamp from _moved "
                                "group by anonymous_id, user_id", [change_id])
        finally:
            con.unregister("_moved")


def _move(con: duckdb.DuckDBPyConnection, table: str, where: str, params: list,
          replace: str) -> pa.Table:
    """Rewrite the rows of `table` matching `where` by deleting them and inserting them again
    with `replace` (`select * replace (...)`); returns the rows as they were.

    Not an UPDATE: an erased person's rows are spread over the whole year, and DuckDB writes
    every row group an update touched again when it commits. At 1M customers a day's 56
    requests named 3,473 of 100M events: the update's commit took 23 s, the delete and insert
    under a second together."""
    rows = con.execute(f"delete from {table} where {where} returning *", params).to_arrow_table()
    if rows.num_rows:
        con.register("_moving", rows)
        try:
            con.execute(f"insert into {table} by name select * replace ({replace}) from _moving")
        finally:
            con.unregister("_moving")
    return rows


def scrub_exports(con: duckdb.DuckDBPyConnection, folder) -> int:
    """Drop erased customers from every audience file in `folder` (also the files of audiences
    retired from audiences.yml, which no sync rewrites any more); returns the rows dropped.
    Files are rewritten atomically and readable by their owner only."""
    import os
    from pathlib import Path

    import pandas as pd

    folder = Path(folder)
    if not folder.exists():
        return 0
    ensure_audit(con)
    keys = {k for (k,) in con.execute(
        "select customer_key from audit.erasure_requests").fetchall()}
    dropped = 0
    for path in sorted([*folder.glob("*.csv"), *folder.glob("*.parquet")]):
        frame = (pd.read_parquet(path) if path.suffix == ".parquet"
                 else pd.read_csv(path, dtype=str, keep_default_na=False))
        if "customer_id" not in frame.columns:
            continue
        keep = ~frame["customer_id"].astype(str).map(customer_key).isin(keys)
        if keep.all():
            continue
        dropped += int((~keep).sum())
        partial = path.with_name(f".{path.name}.partial")
        partial.unlink(missing_ok=True)
        with os.fdopen(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as out:
            if path.suffix == ".parquet":
                frame[keep].to_parquet(out, index=False)
            else:
                frame[keep].to_csv(out, index=False)
        os.replace(partial, path)
    return dropped


def erased_keys(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The keys of every erasure request on record."""
    ensure_audit(con)
    return {k for (k,) in con.execute("select customer_key from audit.erasure_requests")
            .fetchall()}
