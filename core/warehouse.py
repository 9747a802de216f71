"""The one small interface Python steps use to read and write the warehouse.

Assets and the command line go through `Warehouse`; nothing else opens DuckDB files. Keeping all
access here is what lets the Python steps follow the dbt models to another engine later.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

log = logging.getLogger(__name__)


class WarehouseLocked(RuntimeError):
    """Another process kept the warehouse file locked for longer than we wait."""


DEFAULT_MEMORY_LIMIT_GB = 5


def memory_limit() -> str:
    """DuckDB's memory cap for our connections and dbt's: SEGMENTA_DUCKDB_MEMORY_LIMIT, or 5 GB
    (half the RAM on a smaller machine).

    Past the cap DuckDB spills to disk (`warehouse.duckdb.tmp/`) instead of growing. DuckDB's own
    default (80 % of the RAM) leaves too little for dbt, Dagster and the OS beside it, and the
    cap is not a ceiling on the process: sorts and hash tables allocate around it (at 1M
    customers dbt's DuckDB reached 20.7 GiB with an 8 GB cap). 5 GB leaves room under 8 GB
    for what allocates around it and for the Dagster process (docs/benchmarks.md has what a
    1M-customer run reached); on a larger machine a higher cap spills less.
    """
    configured = os.environ.get("SEGMENTA_DUCKDB_MEMORY_LIMIT")
    if configured:
        return configured
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(1, min(DEFAULT_MEMORY_LIMIT_GB, total // 2**30 // 2))}GB"


class Warehouse:
    """A DuckDB file. Every connection is closed on exit, also when the body raises.

    On the Spark engine (`engine="spark"`, SEGMENTA_ENGINE's default) the file keeps raw,
    quarantine, activation and audit, and the tables dbt and the models build live in Spark:
    connections are `core.spark_bridge.BridgedConnection`s, which fetch the engine tables a
    statement names and write back the ones it wrote when the body ends without an error."""

    def __init__(self, path: Path | str, engine: str | None = None) -> None:
        self.path = Path(path)
        if engine is None:
            from core.settings import ENGINE as engine
        self.engine = engine

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        spark_read_only = read_only and self.engine == "spark"
        # read-only on Spark: a connection to memory (the engine tables' copies go there) with
        # the file attached read-only under its usual name
        con = duckdb.connect() if spark_read_only else self._open(read_only)
        try:
            if spark_read_only:
                con.execute(f"attach '{self.path}' as {self.path.stem} (read_only)")
                con.execute(f"use {self.path.stem}")
            con.execute("set TimeZone = 'UTC'")
            con.execute(f"set memory_limit = '{memory_limit()}'")
            if self.engine == "spark":
                from core import spark
                from core.spark_bridge import BridgedConnection

                bridged = BridgedConnection(con, spark.session(),
                                            self.path.parent / "spark" / "scratch",
                                            "memory" if spark_read_only else "engine")
                try:
                    yield bridged  # type: ignore[misc]
                    bridged.flush()
                finally:
                    bridged.close()
            else:
                yield con
        finally:
            con.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Open the file; while another process holds its lock (an analyst's read-only session,
        say), wait with exponential backoff up to SEGMENTA_LOCK_WAIT_SECONDS (default 300)."""
        deadline = time.monotonic() + float(os.environ.get("SEGMENTA_LOCK_WAIT_SECONDS", "300"))
        delay = 0.1
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                message = str(exc).splitlines()[0]
                if "lock" not in message.lower():
                    raise
                if time.monotonic() + delay > deadline:
                    raise WarehouseLocked(
                        f"{self.path} stays locked by another process ({message}). Close that "
                        "connection: analysts read the published copy, which the pipeline never "
                        "locks (segmenta summary prints its path).") from exc
                if delay == 0.1:
                    log.warning("%s is locked by another process; waiting (up to "
                                "SEGMENTA_LOCK_WAIT_SECONDS): %s", self.path.name, message)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    def replace_rows(self, qualified_name: str, df: pd.DataFrame, keep: pd.DataFrame,
                     also: dict[str, pd.DataFrame] | None = None) -> int:
        """In one transaction: keep the rows of `qualified_name` whose key (the columns of
        `keep`) is in `keep`, delete the rest, and add `df`; replace each table of `also` whole.
        With nothing to keep (or no table yet) the table is replaced by `df`. Returns the rows
        the table holds."""
        schema, _ = qualified_name.split(".")
        with self.transaction() as con:
            con.execute(f"create schema if not exists {schema}")
            con.register("_frame", df)
            if keep.empty or not _table_exists(con, qualified_name):
                con.execute(f"create or replace table {qualified_name} as select * from _frame")
            else:
                con.register("_keep", keep)
                key = ", ".join(f'"{column}"' for column in keep.columns)
                con.execute(f"delete from {qualified_name} where ({key}) not in "
                            f"(select ({key}) from _keep)")
                con.execute(f"insert into {qualified_name} by name select * from _frame")
                con.unregister("_keep")
            con.unregister("_frame")
            for name, frame in (also or {}).items():
                con.execute(f"create schema if not exists {name.split('.')[0]}")
                con.register("_also", frame)
                con.execute(f"create or replace table {name} as select * from _also")
                con.unregister("_also")
            return int(con.execute(f"select count(*) from {qualified_name}").fetchone()[0])

    def query_df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    def replace_table(self, qualified_name: str, df: pd.DataFrame) -> int:
        """Replace a whole table with a DataFrame in one transaction; returns the row count."""
        schema, _ = qualified_name.split(".")
        with self.transaction() as con:
            con.execute(f"create schema if not exists {schema}")
            con.register("_frame", df)
            con.execute(f"create or replace table {qualified_name} as select * from _frame")
            con.unregister("_frame")
        return len(df)


def _table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    if hasattr(con, "table_exists"):  # an engine table on Spark (core/spark_bridge.py)
        return con.table_exists(qualified_name)
    schema, name = qualified_name.split(".")
    return bool(con.execute("select count(*) from information_schema.tables "
                            "where table_schema = ? and table_name = ?", [schema, name]
                            ).fetchone()[0])


def publish_tables(warehouse: Warehouse, tables: list[str], target: Path,
                   keys: dict[str, str] | None = None) -> dict[str, tuple[int, str]]:
    """Copy tables (`schema.name`) into a separate DuckDB file, replacing it atomically;
    returns each table's rows and how it got there: "copied", "patched" or "kept".

    Analysts open the copy read-only while the pipeline keeps writing the warehouse; readers that
    have the old file open keep reading it until they reconnect. The tables go into the file's
    `main` schema under their own names: opened as `marts.duckdb` (catalog `marts`), both
    `customer_rfm` and `marts.customer_rfm` name the same table (a schema called `marts` inside
    a catalog called `marts` would make the second one ambiguous).

    Only what changed is copied. The new file starts as a copy of the old one. A table the
    incremental models stamp (a `change_id` on every row: the refresh that wrote it) carries,
    in its comment, the warehouse it came from and the (rows, newest stamp) it was published
    at. It is kept when both still hold; with a unique key in `keys` it is patched: the rows
    stamped since are written over their keys' old rows, and rows deleted without a rewrite
    are removed (see `_patch`). The incremental models never change a row without stamping it
    anew, so the rows stamped before are the ones published then. Other tables, and a stamped
    table of another warehouse (rebuilt from scratch, its stamps restart) or with other
    columns, are copied whole.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging_file = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging_file.unlink(missing_ok=True)
    if target.exists():
        shutil.copyfile(target, staging_file)
    result: dict[str, tuple[int, str]] = {}
    with warehouse.connect() as con:
        identity = _warehouse_identity(con)
        con.execute(f"attach '{staging_file}' as pub")
        try:
            held = {name for (name,) in con.execute(
                "select table_name from information_schema.tables where table_catalog = 'pub'"
            ).fetchall()}
            for qualified in tables:
                name = qualified.split(".")[-1]
                stamp = _change_stamp(con, qualified)
                note = _published_note(con, name) if name in held else {}
                if stamp is not None and note.get("warehouse") == identity:
                    if [note.get("rows"), note.get("change_id")] == list(stamp):
                        result[name] = (stamp[0], "kept")
                        continue
                    key = (keys or {}).get(name)
                    if key and _patch(con, qualified, name, key, note["change_id"], stamp[0]):
                        result[name] = (stamp[0], "patched")
                        _note_published(con, name, identity, stamp)
                        continue
                con.execute(f"create or replace table pub.main.{name} as select * from {qualified}")
                result[name] = (con.execute(f"select count(*) from pub.main.{name}").fetchone()[0],
                                "copied")
                if stamp is not None:
                    _note_published(con, name, identity, stamp)
            for name in held - set(result):  # a table no longer published
                con.execute(f"drop table pub.main.{name}")
        finally:
            con.execute("detach pub")
    os.replace(staging_file, target)
    return result


def _warehouse_identity(con: duckdb.DuckDBPyConnection) -> str:
    """A random id the warehouse file keeps for its lifetime (audit.warehouse_identity): change
    stamps restart in a warehouse built from scratch, so a stamp means something only together
    with the warehouse that wrote it."""
    con.execute("create schema if not exists audit")
    con.execute("create table if not exists audit.warehouse_identity as "
                "select uuid()::varchar as identity")
    return con.execute("select identity from audit.warehouse_identity").fetchone()[0]


def _published_note(con: duckdb.DuckDBPyConnection, name: str) -> dict:
    """What `_note_published` wrote on the copy's table (empty for other tables)."""
    row = con.execute("select comment from duckdb_tables() where database_name = 'pub' "
                      "and schema_name = 'main' and table_name = ?", [name]).fetchone()
    try:
        note = json.loads(row[0]) if row and row[0] else {}
    except json.JSONDecodeError:
        return {}
    return note if isinstance(note, dict) else {}


def _note_published(con: duckdb.DuckDBPyConnection, name: str, identity: str,
                    stamp: tuple[int, int]) -> None:
    note = json.dumps({"warehouse": identity, "rows": stamp[0], "change_id": stamp[1]})
    con.execute(f"comment on table pub.main.{name} is '{note}'")  # uuid and integers only


def _patch(con: duckdb.DuckDBPyConnection, qualified: str, name: str, key: str,
           published_change: int, rows: int) -> bool:
    """Bring the copy's stamped table up to the warehouse's by the rows stamped after
    `published_change`: their keys' old rows are deleted and they are inserted; rows the
    warehouse deleted without a rewrite are then found by the row count and removed by key.
    Returns False (copy the table whole) when the columns differ or the counts still disagree.

    Every row stamped up to `published_change` was published then, unchanged, so after the
    rewrite the copy holds every warehouse row plus the ones deleted since: equal counts mean
    equal tables."""
    columns = ("select column_name, data_type from information_schema.columns where "
               "table_catalog = ? and table_schema = ? and table_name = ? order by ordinal_position")
    schema = qualified.split(".")[0]
    if (con.execute(columns, [_current_catalog(con), schema, name]).fetchall()
            != con.execute(columns, ["pub", "main", name]).fetchall()):
        return False
    stamped_since = con.execute(f"select count(*) from {qualified} where change_id > ?",
                                [published_change]).fetchone()[0]
    if stamped_since > rows // 2:  # mostly rewritten (a full rebuild): a copy is cheaper
        return False
    column = f'"{key}"'
    con.execute(f"delete from pub.main.{name} where {column} in "
                f"(select {column} from {qualified} where change_id > ?)", [published_change])
    con.execute(f"insert into pub.main.{name} select * from {qualified} where change_id > ?",
                [published_change])
    count = f"select count(*) from pub.main.{name}"
    if con.execute(count).fetchone()[0] != rows:
        con.execute(f"delete from pub.main.{name} as published where not exists "
                    f"(select 1 from {qualified} as kept where kept.{column} = published.{column})")
    return con.execute(count).fetchone()[0] == rows


def _current_catalog(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("select current_database()").fetchone()[0]


def _change_stamp(con: duckdb.DuckDBPyConnection, qualified: str) -> tuple[int, int] | None:
    """(rows, newest change_id) of a table whose rows carry a `change_id`, else None (always
    on the Spark engine, which rebuilds those tables whole and stamps no change: copied whole)."""
    if hasattr(con, "table_exists"):  # core/spark_bridge.py
        return None
    catalog, schema, name = ([None, *qualified.split(".")] if qualified.count(".") == 1
                             else qualified.split("."))
    has_stamp = con.execute(
        "select count(*) from information_schema.columns where table_catalog = "
        "coalesce(?, current_database()) and table_schema = ? and table_name = ? and "
        "column_name = 'change_id'", [catalog, schema, name]).fetchone()[0]
    if not has_stamp:
        return None
    return con.execute(f"select count(*), coalesce(max(change_id), -1) from {qualified}").fetchone()
