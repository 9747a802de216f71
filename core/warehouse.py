"""The one small interface Python steps use to read and write the warehouse.

Assets and the command line go through `Warehouse`; nothing else opens DuckDB files. Keeping all
access here is what lets the Python steps follow the dbt models to another engine later.
"""

from __future__ import annotations

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
    """A DuckDB file. Every connection is closed on exit, also when the body raises."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open(read_only)
        try:
            con.execute("set TimeZone = 'UTC'")
            con.execute(f"set memory_limit = '{memory_limit()}'")
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
    schema, name = qualified_name.split(".")
    return bool(con.execute("select count(*) from information_schema.tables "
                            "where table_schema = ? and table_name = ?", [schema, name]
                            ).fetchone()[0])


def publish_tables(warehouse: Warehouse, tables: list[str], target: Path
                   ) -> dict[str, tuple[int, bool]]:
    """Copy tables (`schema.name`) into a separate DuckDB file, replacing it atomically;
    returns each table's rows and whether it was copied anew.

    Analysts open the copy read-only while the pipeline keeps writing the warehouse; readers that
    have the old file open keep reading it until they reconnect. The tables go into the file's
    `main` schema under their own names: opened as `marts.duckdb` (catalog `marts`), both
    `customer_rfm` and `marts.customer_rfm` name the same table (a schema called `marts` inside
    a catalog called `marts` would make the second one ambiguous).

    Only what changed is copied: the new file starts as a copy of the old one, and a table the
    incremental models stamp (a `change_id` on every row, the refresh that wrote it) is kept
    when its row count and newest stamp equal the copy's: every rewrite stamps its rows with a
    newer change, and a deletion changes the count. Other tables are copied every time.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging_file = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging_file.unlink(missing_ok=True)
    if target.exists():
        shutil.copyfile(target, staging_file)
    result: dict[str, tuple[int, bool]] = {}
    with warehouse.connect() as con:
        con.execute(f"attach '{staging_file}' as pub")
        try:
            held = {name for (name,) in con.execute(
                "select table_name from information_schema.tables where table_catalog = 'pub'"
            ).fetchall()}
            for qualified in tables:
                name = qualified.split(".")[-1]
                stamp = _change_stamp(con, qualified)
                if stamp is not None and name in held and stamp == _change_stamp(
                        con, f"pub.main.{name}"):
                    result[name] = (stamp[0], False)
                    continue
                con.execute(f"create or replace table pub.main.{name} as select * from {qualified}")
                result[name] = (con.execute(f"select count(*) from pub.main.{name}").fetchone()[0],
                                True)
            for name in held - set(result):  # a table no longer published
                con.execute(f"drop table pub.main.{name}")
        finally:
            con.execute("detach pub")
    os.replace(staging_file, target)
    return result


def _change_stamp(con: duckdb.DuckDBPyConnection, qualified: str) -> tuple[int, int] | None:
    """(rows, newest change_id) of a table whose rows carry a `change_id`, else None."""
    catalog, schema, name = ([None, *qualified.split(".")] if qualified.count(".") == 1
                             else qualified.split("."))
    has_stamp = con.execute(
        "select count(*) from information_schema.columns where table_catalog = "
        "coalesce(?, current_database()) and table_schema = ? and table_name = ? and "
        "column_name = 'change_id'", [catalog, schema, name]).fetchone()[0]
    if not has_stamp:
        return None
    return con.execute(f"select count(*), coalesce(max(change_id), -1) from {qualified}").fetchone()
