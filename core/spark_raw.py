"""Landing days on the Spark engine: `raw.<feed>` and `quarantine.<feed>` as Spark tables,
partitioned by `_partition_date`, replaced day by day (SEGMENTA_ENGINE=spark).

Validation does not move: the landing contract is checked in DuckDB (`ingest.landing`: casts,
reason codes, duplicate keys against what was loaded before, the change logs, erasures), and
the warehouse file keeps raw as it does on the default engine. What a load committed there is
then copied to Spark: each day of the load is written as one Parquet file by DuckDB and put in
place with `INSERT OVERWRITE ... PARTITION (_partition_date)` under Spark's dynamic partition
overwrite (core/spark.py), which replaces exactly the partitions the rows name. A day whose rows
are all gone (a re-delivery that is empty, a day removed from the landing zone) has its
partition dropped. A day delivered again is thus replaced, never doubled, in raw and in
quarantine alike.

The Spark tables have the DuckDB tables' columns in Spark's types (`JSON` as `string`), less
`_key_hash` (DuckDB's duplicate check), with the partition column last; a column the contract
gains later is added to the Spark table the next time its feed is copied.

Not in ingest/: the loader's fingerprint hashes ingest/*.py (`landing.loader_fingerprint`), and a
new fingerprint loads every landing day again; copying to Spark changes no row the loader writes.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PARTITION = "_partition_date"
DUCKDB_ONLY = ("_key_hash",)  # the loader's own duplicate check, not part of the raw contract
SPARK_TYPES = {"VARCHAR": "string", "JSON": "string", "INTEGER": "int", "BIGINT": "bigint",
               "DOUBLE": "double", "BOOLEAN": "boolean", "DATE": "date",
               "TIMESTAMP": "timestamp"}
DAYS_PER_WRITE = 31  # a backfill is written a month at a time (one Parquet file each)


def tables(feed: str) -> tuple[str, str]:
    return f"raw.{feed}", f"quarantine.{feed}"


def copy_days(con: duckdb.DuckDBPyConnection, spark: SparkSession, feed: str,
              days: Iterable[dt.date], scratch: Path) -> dict[str, int]:
    """Make `days` of raw.<feed> and quarantine.<feed> on Spark what they are in DuckDB; returns
    the rows written per table. `scratch`: a folder for the Parquet files in passing."""
    days = sorted(set(days))
    written: dict[str, int] = {}
    for table in tables(feed):
        if days and _in_duckdb(con, table):
            written[table] = _copy_table_days(con, spark, table, days, scratch)
    return written


def copy_feed(con: duckdb.DuckDBPyConnection, spark: SparkSession, feed: str,
              scratch: Path, only: Iterable[dt.date] | None = None) -> dict[str, int]:
    """Every day of raw.<feed> and quarantine.<feed>: those in DuckDB written, the partitions
    only Spark still holds dropped (a snapshot feed, reloaded whole or in part). `only`: write
    just these days of DuckDB's (a snapshot feed's new and changed days), and still drop the
    partitions of days DuckDB no longer has."""
    written: dict[str, int] = {}
    for table in tables(feed):
        if not _in_duckdb(con, table):
            continue
        days = {day for (day,) in con.execute(f"select distinct {PARTITION} from {table}")
                .fetchall()}
        held = set(spark_days(spark, table)) if spark.catalog.tableExists(table) else set()
        days = (set(only) if only is not None else days) | (held - days)
        written[table] = _copy_table_days(con, spark, table, sorted(days), scratch)
    return written


def _in_duckdb(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute("select count(*) from duckdb_tables() where schema_name = ? "
                            "and table_name = ?", [schema, name]).fetchone()[0])


def spark_days(spark: SparkSession, table: str) -> list[dt.date]:
    """The days a Spark table has a partition for."""
    return sorted(dt.date.fromisoformat(row[0].split("=", 1)[1])
                  for row in spark.sql(f"show partitions {table}").collect())


def _copy_table_days(con: duckdb.DuckDBPyConnection, spark: SparkSession, table: str,
                     days: list[dt.date], scratch: Path) -> int:
    columns = _ensure_spark_table(con, spark, table)
    held = set(spark_days(spark, table))
    total = 0
    for start in range(0, len(days), DAYS_PER_WRITE):
        batch = days[start:start + DAYS_PER_WRITE]
        counts = dict(con.execute(
            f"select {PARTITION}, count(*) from {table} where {PARTITION} between ? and ? "
            f"and {PARTITION} in (select unnest(?::date[])) group by 1",
            [batch[0], batch[-1], batch]).fetchall())
        for day in batch:
            if day not in counts and day in held:
                spark.sql(f"alter table {table} drop if exists partition "
                          f"({PARTITION} = '{day.isoformat()}')")
        if not counts:
            continue
        folder = scratch / f"{table}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        try:
            path = folder / "day.parquet"
            selected = ", ".join(f'"{name}"::{duck} as "{name}"' if duck else f'"{name}"'
                                 for name, duck in columns)
            con.execute(
                f"copy (select {selected} from {table} where {PARTITION} between ? and ? "
                f"and {PARTITION} in (select unnest(?::date[]))) to '{path}' (format parquet)",
                [batch[0], batch[-1], batch])
            view = f"_segmenta_{table.replace('.', '_')}"
            spark.read.parquet(str(path)).createOrReplaceTempView(view)
            names = ", ".join(f"`{name}`" for name, _ in columns)
            spark.sql(f"insert overwrite table {table} partition ({PARTITION}) "
                      f"select {names} from {view}")
            spark.catalog.dropTempView(view)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        total += sum(counts.values())
    return total


def _ensure_spark_table(con: duckdb.DuckDBPyConnection, spark: SparkSession,
                        table: str) -> list[tuple[str, str | None]]:
    """Create the Spark table from the DuckDB table's columns, or add the columns it lacks;
    returns the columns in the Spark table's order with the DuckDB cast each needs (None: as
    it is), the partition column last."""
    duck = [(name, kind) for name, kind, *_ in con.execute(f"describe {table}").fetchall()
            if name not in DUCKDB_ONLY]
    spark_type = {name: SPARK_TYPES.get(kind, "string") for name, kind in duck}
    cast = {name: None if kind in SPARK_TYPES and kind != "JSON" else "VARCHAR"
            for name, kind in duck}
    schema = table.split(".")[0]
    spark.sql(f"create database if not exists {schema}")
    data = [name for name, _ in duck if name != PARTITION]
    if not spark.catalog.tableExists(table):
        spark.sql(f"create table {table} ("
                  + ", ".join(f"`{name}` {spark_type[name]}" for name in data)
                  + f", {PARTITION} date) using parquet partitioned by ({PARTITION})")
    else:
        present = [field.name for field in spark.table(table).schema.fields]
        missing = [name for name in data if name not in present]
        if missing:
            spark.sql(f"alter table {table} add columns ("
                      + ", ".join(f"`{name}` {spark_type[name]}" for name in missing) + ")")
    order = [field.name for field in spark.table(table).schema.fields]
    return [(name, cast.get(name)) for name in order]
