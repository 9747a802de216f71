"""The Python steps' SQL on the Spark engine: engine tables read as Arrow, written back as Parquet
(SEGMENTA_ENGINE=spark).

On Spark, dbt builds `staging`, `intermediate`, `marts`, `snapshots` and the model outputs of
`ml` as Spark tables; the DuckDB file keeps what needs a transactional store or the landing
contract (`raw` and `quarantine` as validated, `activation`'s sync state, `audit`). The Python
steps (the models, the rule segments, the syncs, the checks, publishing) keep their DuckDB SQL:
`Warehouse.connect()` hands them a `BridgedConnection`, a DuckDB connection to the file with an
in-memory catalog `engine` beside it. Each statement that names an engine table is parsed
(sqlglot, DuckDB dialect) and its engine tables are pointed at `engine.<schema>.<table>`; a table
read for the first time is fetched from Spark as Arrow with only the columns the statement names
(all of them for a `*`). A statement that writes an engine table (`create`, `insert`, `delete`,
`update`, `drop`) writes the in-memory copy, fetched whole first where the statement keeps rows;
when the connection closes without an error the written tables go back to Spark (DuckDB writes
each as one Parquet file, Spark overwrites the table from it), and dropped ones are dropped.

So a step reads only what it uses, computes locally as it does on the default engine, and what it
writes reaches Spark only when it finished: a step that fails leaves Spark's tables as they were.
Statements that name no engine table run on the file unchanged.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# the schemas dbt (and the ml steps) build on the engine; the rest stay in the DuckDB file
ENGINE_SCHEMAS = ("staging", "intermediate", "marts", "snapshots", "ml")
CATALOG = "engine"
_MENTIONS = re.compile(r"\b(" + "|".join(ENGINE_SCHEMAS) + r")\s*\.|create\s+schema\s+(if\s+"
                       r"not\s+exists\s+)?(" + "|".join(ENGINE_SCHEMAS) + r")\b", re.IGNORECASE)
_WRITES = (exp.Create, exp.Insert, exp.Delete, exp.Update, exp.Drop)
_KEEPS_ROWS = (exp.Insert, exp.Delete, exp.Update)
ALL = None  # every column of a table
# an engine table named where sqlglot cannot parse the statement (`?::date`, say)
_TABLE_NAME = re.compile(r"(?<![\w.\"])(" + "|".join(ENGINE_SCHEMAS) + r")\.(\w+)\b",
                         re.IGNORECASE)

_WRITE_TARGET = re.compile(
    r"\s*(create\s+(or\s+replace\s+)?((temp|temporary)\s+)?table(\s+if\s+not\s+exists)?|"
    r"insert\s+(or\s+replace\s+)?into|delete\s+from|update|drop\s+table(\s+if\s+exists)?)"
    r"\s+(?P<name>[\w.\"]+)", re.IGNORECASE)
_THIS_DATABASE = re.compile(r"\b(table_catalog|database_name)\s*=\s*current_database\(\)",
                            re.IGNORECASE)
# `?::double`: a parameter cast the DuckDB way, which sqlglot does not parse
_PARAMETER_CAST = re.compile(r"\?::(\w+)")

# The engine tables and their columns as empty Arrow tables, read from Spark's catalog once
# per process and again after anything changed them (a dbt invocation, a bridge's flush).
_catalog: dict[tuple[str, str], pa.Schema] | None = None


def invalidate() -> None:
    """Forget the engine catalog read before: dbt or a step changed tables since."""
    global _catalog
    _catalog = None


def _engine_catalog(spark: SparkSession) -> dict[tuple[str, str], pa.Schema]:
    global _catalog
    if _catalog is None:
        from pyspark.sql.pandas.types import to_arrow_schema

        found = {}
        for schema in ENGINE_SCHEMAS:
            if not spark.catalog.databaseExists(schema):
                continue
            for table in spark.catalog.listTables(schema):
                if table.isTemporary:
                    continue
                try:
                    found[(schema, table.name.lower())] = _naive(to_arrow_schema(
                        spark.table(f"{schema}.{table.name}").schema))
                except Exception as exc:  # noqa: BLE001
                    log.warning("%s.%s is not readable on Spark: %s", schema, table.name,
                                str(exc).splitlines()[0])
        _catalog = found
    return _catalog


class BridgedConnection:
    """A DuckDB connection whose engine tables live in Spark (see the module's docstring).
    Everything but `execute`/`sql` is the DuckDB connection's own."""

    def __init__(self, con: duckdb.DuckDBPyConnection, spark: SparkSession, scratch: Path,
                 catalog: str = CATALOG):
        """`catalog`: where the engine tables' copies go: attached here in memory under that
        name and a suffix of its own, unless the connection is to memory already (`memory`,
        with the file attached read-only)."""
        self._con = con
        self._catalog = catalog
        self._spark = spark
        self._scratch = scratch
        self._loaded: dict[tuple[str, str], set[str] | None] = {}
        self._written: set[tuple[str, str]] = set()
        self._dropped: set[tuple[str, str]] = set()
        if catalog != "memory":
            # connections to one file in one process share its attachments: a name of its own
            self._catalog = f"{catalog}_{uuid.uuid4().hex[:12]}"
            con.execute(f"attach ':memory:' as {self._catalog}")
        self._stub_tables()

    def close(self) -> None:
        """Drop the in-memory copies (the file's connection is closed by its owner)."""
        if self._catalog != "memory":
            self._con.execute(f"detach {self._catalog}")

    def _stub_tables(self) -> None:
        """Every engine table, empty, in the in-memory catalog: information_schema lists them
        with their columns (the steps ask it whether a table exists); a statement that reads
        one fetches its rows first."""
        for (schema, name), arrow_schema in _engine_catalog(self._spark).items():
            self._ensure_schema(schema)
            self._con.register("_engine_stub", arrow_schema.empty_table())
            try:
                self._con.execute(f"create or replace table {self._catalog}.{schema}.{name} "
                                  "as select * from _engine_stub")
            finally:
                self._con.unregister("_engine_stub")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, sql: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        return self._con.execute(self._route(sql), parameters)

    def sql(self, sql: str, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyRelation:
        return self._con.sql(self._route(sql), *args, **kwargs)

    def table_exists(self, qualified_name: str) -> bool:
        """Whether `schema.table` exists: in Spark for an engine table, else in the file."""
        key = tuple(qualified_name.lower().split("."))
        if key[0] not in ENGINE_SCHEMAS:
            return bool(self._con.execute(
                "select count(*) from information_schema.tables where table_catalog = "
                "current_database() and table_schema = ? and table_name = ?", list(key)
            ).fetchone()[0])
        if key in self._written:
            return key not in self._dropped
        return bool(self._spark.catalog.tableExists(qualified_name))

    def _route(self, sql: str) -> str:
        # the warehouse's own tables, asked of information_schema or duckdb_tables(): the
        # file's and the engine's
        sql = _THIS_DATABASE.sub(lambda m: f"{m.group(1)} in (current_database(), "
                                           f"'{self._catalog}')", sql)
        if not _MENTIONS.search(sql):
            return sql
        sql = _PARAMETER_CAST.sub(r"cast(? as \1)", sql)
        try:
            statements = [tree for tree in sqlglot.parse(sql, read="duckdb") if tree]
        except sqlglot.errors.ParseError:
            return self._rewrite_unparsed(sql)
        return ";\n".join(self._rewrite(tree) for tree in statements)

    def _rewrite_unparsed(self, sql: str) -> str:
        """A statement sqlglot cannot parse: its engine tables fetched whole, by name. It may
        write a temp or file table, not an engine table."""
        target = _WRITE_TARGET.match(sql)
        if target and _TABLE_NAME.fullmatch(target.group("name")):
            raise ValueError("core/spark_bridge.py cannot parse a statement that writes an "
                             f"engine table; write it as sqlglot parses DuckDB SQL: {sql[:200]}")

        def point(match: re.Match) -> str:
            key = (match.group(1).lower(), match.group(2).lower())
            self._load(key, ALL)
            return f"{self._catalog}.{key[0]}.{key[1]}"

        return _TABLE_NAME.sub(point, sql)

    def _rewrite(self, tree: exp.Expression) -> str:
        target = _written_table(tree)
        if isinstance(tree, exp.Drop) and tree.kind != "TABLE":
            target = None
        if isinstance(tree, exp.Create) and tree.kind == "SCHEMA":
            schema = tree.this  # a Table whose `db` is the schema's name
            if not schema.catalog and schema.db.lower() in ENGINE_SCHEMAS:
                schema.set("catalog", exp.to_identifier(self._catalog))
            return tree.sql("duckdb")
        star = any(True for _ in tree.find_all(exp.Star))
        named = {column.name.lower() for column in tree.find_all(exp.Column)}
        for table in tree.find_all(exp.Table):
            key = _engine_key(table)
            if key is None:
                continue
            if key == target and isinstance(tree, exp.Create | exp.Drop):
                self._written.add(key)
                if isinstance(tree, exp.Drop):
                    self._dropped.add(key)
                    self._loaded.pop(key, None)
                else:
                    self._dropped.discard(key)
                    self._loaded[key] = ALL
                    self._ensure_schema(key[0])
            else:
                whole = star or (key == target and isinstance(tree, _KEEPS_ROWS))
                self._load(key, ALL if whole else named)
                if key == target:
                    self._written.add(key)
            table.set("catalog", exp.to_identifier(self._catalog))
        return tree.sql("duckdb")

    def _ensure_schema(self, schema: str) -> None:
        self._con.execute(f"create schema if not exists {self._catalog}.{schema}")

    def _load(self, key: tuple[str, str], columns: set[str] | None) -> None:
        """Fetch `columns` of an engine table (ALL: every one) unless the copy has them."""
        have = self._loaded.get(key, set())
        if key in self._loaded and (have is ALL or (columns is not ALL and columns <= have)):
            return
        if key in self._written:  # written here: the copy is the table
            return
        name = ".".join(key)
        self._ensure_schema(key[0])
        if not self._spark.catalog.tableExists(name):
            return  # DuckDB says the table does not exist, naming it
        frame = self._spark.table(name)
        available = frame.columns
        wanted = set(available) if columns is ALL else (
            {c for c in available if c.lower() in columns} | (have or set()))
        if not wanted:
            wanted = {available[0]}  # a count(*) needs the rows, not their columns
        kept = [c for c in available if c in wanted]
        arrow = _to_arrow(frame.select(*kept))
        self._con.register("_engine_rows", arrow)
        try:
            self._con.execute(f"create or replace table {self._catalog}.{name} as "
                              "select * from _engine_rows")
        finally:
            self._con.unregister("_engine_rows")
        self._loaded[key] = ALL if columns is ALL or set(kept) == set(available) else set(kept)

    def flush(self) -> dict[str, int]:
        """Write the tables this connection wrote back to Spark; returns their rows."""
        written: dict[str, int] = {}
        for key in sorted(self._written):
            name = ".".join(key)
            self._spark.sql(f"create database if not exists {key[0]}")
            if key in self._dropped:
                self._spark.sql(f"drop table if exists {name}")
                invalidate()
                continue
            self._scratch.mkdir(parents=True, exist_ok=True)
            path = self._scratch / f"{name}.{uuid.uuid4().hex}.parquet"
            try:
                self._con.execute(f"copy {self._catalog}.{name} to '{path}' (format parquet)")
                rows = self._spark.read.parquet(str(path))
                rows.write.mode("overwrite").format("parquet").saveAsTable(name)
                written[name] = self._spark.table(name).count()
                invalidate()
            finally:
                if path.is_dir():
                    shutil.rmtree(path)
                path.unlink(missing_ok=True)
        self._written.clear()
        self._dropped.clear()
        return written


def _engine_key(table: exp.Table) -> tuple[str, str] | None:
    if table.catalog or not table.db or not table.name:
        return None
    schema = table.db.lower()
    return (schema, table.name.lower()) if schema in ENGINE_SCHEMAS else None


def _written_table(tree: exp.Expression) -> tuple[str, str] | None:
    if not isinstance(tree, _WRITES):
        return None
    target = tree.args["tables"][0] if isinstance(tree, exp.Drop) else tree.this
    if isinstance(target, exp.Schema):  # create table t (columns ...)
        target = target.this
    return _engine_key(target) if isinstance(target, exp.Table) else None


def _to_arrow(frame: Any) -> pa.Table:
    """A Spark DataFrame as an Arrow table; timestamps as DuckDB's naive UTC TIMESTAMP."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(frame.schema)
    batches = frame._collect_as_arrow()
    table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
    return table.cast(_naive(table.schema))


def _naive(schema: pa.Schema) -> pa.Schema:
    """Spark's timestamps (UTC instants) as DuckDB's TIMESTAMP: naive, in UTC."""
    return pa.schema([pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(
        f.type) and f.type.tz else f for f in schema])
