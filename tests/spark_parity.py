"""The dbt project on Spark against the same project on DuckDB (issue #20's parity lane).

    SEGMENTA_HOME=/tmp/spark-home SEGMENTA_ENGINE=spark \\
        .venv/bin/python -m tests.spark_parity /path/to/duckdb-home/warehouse.duckdb [--runs 2]

Takes a DuckDB warehouse that a normal run built (`segmenta run`: raw, the model outputs, every
dbt model, the snapshot) and, in this process's Spark home:

1. copies dbt's inputs from it (`copy_inputs`): the landing feeds' raw and quarantine tables
   as ingestion writes them on Spark (`core.spark_raw.copy_feed`), and every other table the
   dbt project declares as a source (the change logs and load records in raw, the ml assets'
   outputs, the rule segment memberships) as a plain Parquet table;
2. runs `dbt build` on the spark target in this process (`build`), as the Dagster steps do
   (dagster_project/defs/transform/inprocess.py), `runs` times (the second run is the
   snapshot's first incremental one);
3. compares every model, seed and snapshot table with DuckDB's, column by column (`compare`):
   the same columns in the same order, the same rows (ordered by the whole row), floats to a
   relative 1e-9, the snapshot's timestamps and their hash (dbt_scd_id) left out.

Prints one line per table and exits 1 on any difference or failed dbt node. One process at a
time holds the Spark home (its Derby metastore); the DuckDB file is opened read-only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import math
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from core.settings import DBT_PROJECT_DIR, FEEDS, HOME

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# dbt's snapshot bookkeeping: when a row was recorded (and its hash, made of that time) differs
# with the moment each engine ran; whether a row is open (dbt_valid_to null) is compared
SNAPSHOT_TIMES = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")
REL_TOL = 1e-9


def manifest_nodes(manifest_path: Path) -> tuple[list[dict], list[dict]]:
    """(sources, relations): the project's sources, and its models, seeds and snapshots that
    are tables or views (resource_type, schema, alias)."""
    manifest = json.loads(manifest_path.read_text())
    sources = list(manifest["sources"].values())
    relations = [node for node in manifest["nodes"].values()
                 if node["resource_type"] in ("model", "seed", "snapshot")
                 and node["config"].get("materialized") != "ephemeral"
                 and node["config"].get("enabled", True)]
    return sources, relations


def _duck_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {f"{schema}.{name}" for schema, name in con.execute(
        "select schema_name, table_name from duckdb_tables()").fetchall()}


def copy_inputs(con: duckdb.DuckDBPyConnection, spark: SparkSession, sources: list[dict],
                scratch: Path) -> dict[str, int]:
    """dbt's inputs from the DuckDB warehouse to Spark; returns the rows copied per table. The
    landing feeds go through core.spark_raw (partitioned by day, as ingestion writes them);
    every other source table present in DuckDB is written whole, replacing Spark's."""
    from core import spark_raw

    present = _duck_tables(con)
    copied: dict[str, int] = {}
    feeds = [feed for feed in FEEDS if f"raw.{feed}" in present]
    for feed in feeds:
        copied.update(spark_raw.copy_feed(con, spark, feed, scratch))
    done = {table for feed in feeds for table in spark_raw.tables(feed)}
    for source in sources:
        table = f"{source['schema']}.{source['identifier']}"
        if table in done or table not in present:
            continue
        copied[table] = copy_table(con, spark, table, scratch)
        done.add(table)
    return copied


def copy_table(con: duckdb.DuckDBPyConnection, spark: SparkSession, table: str,
               scratch: Path) -> int:
    """One DuckDB table as a Spark Parquet table of the same name (JSON as text)."""
    schema = table.split(".")[0]
    columns = con.execute(f"describe {table}").fetchall()
    selected = ", ".join(f'"{name}"::varchar as "{name}"' if kind == "JSON" else f'"{name}"'
                         for name, kind, *_ in columns)
    folder = scratch / f"{table}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    try:
        path = folder / "table.parquet"
        con.execute(f"copy (select {selected} from {table}) to '{path}' (format parquet)")
        spark.sql(f"create database if not exists {schema}")
        spark.sql(f"drop table if exists {table}")
        spark.read.parquet(str(path)).write.format("parquet").saveAsTable(table)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return con.execute(f"select count(*) from {table}").fetchone()[0]


@dataclass
class BuildResult:
    success: bool
    seconds: float
    statuses: dict[str, str] = field(default_factory=dict)  # unique_id -> dbt's status
    messages: dict[str, str] = field(default_factory=dict)  # unique_id -> message of a failure


def build(args: tuple[str, ...] = ()) -> BuildResult:
    """`dbt build` of the project on this process's engine, in this process (the Spark session
    started first, as the Dagster steps start it)."""
    from dagster_project.defs.transform.inprocess import _invoke

    target = HOME.root / "dbt_target"
    argv = ["build", *args, "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target),
            "--log-path", str(target)]
    started = time.monotonic()
    done = _invoke(argv)
    seconds = time.monotonic() - started
    result = BuildResult(success=bool(done.success), seconds=seconds)
    for node in getattr(done.result, "results", None) or []:
        status = str(node.status)
        result.statuses[node.node.unique_id] = status
        if status not in ("success", "pass"):
            result.messages[node.node.unique_id] = str(node.message)
    if done.exception is not None:
        result.messages["dbt"] = str(done.exception)
    return result


def _normal(value: Any) -> Any:
    """A value as both engines' drivers can agree on: numbers as int or float, NaN as None."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else \
            value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, (list, tuple)):
        return tuple(_normal(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _normal(item)) for key, item in value.items()))
    return value


def _sort_key(row: tuple) -> tuple:
    def one(value: Any) -> tuple:
        if value is None:
            return (0, "")
        if isinstance(value, float):
            return (1, float(f"{value:.9g}"))
        if isinstance(value, (int, bool)):
            return (1, value)
        return (2, str(value))
    return tuple(one(value) for value in row)


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, (int, float)) and isinstance(right, (int, float)) \
            and not isinstance(left, bool) and not isinstance(right, bool):
        return math.isclose(left, right, rel_tol=REL_TOL, abs_tol=1e-12)
    return left == right


@dataclass
class TableComparison:
    table: str
    duckdb_rows: int
    spark_rows: int
    problems: list[str]

    @property
    def matched(self) -> bool:
        return not self.problems


def _spark_rows(spark: SparkSession, table: str) -> tuple[list[str], list[str], list[tuple]]:
    frame = spark.table(table)
    names = [f.name for f in frame.schema.fields]
    types = [f.dataType.simpleString() for f in frame.schema.fields]
    return names, types, [tuple(row) for row in frame.collect()]


def compare_table(con: duckdb.DuckDBPyConnection, spark: SparkSession, table: str,
                  snapshot: bool = False) -> TableComparison:
    described = con.execute(f"describe {table}").fetchall()
    duck_names = [row[0] for row in described]
    duck_rows = con.execute(f"select * from {table}").fetchall()
    spark_names, _, spark_rows = _spark_rows(spark, table)
    problems = []
    if [n.lower() for n in duck_names] != [n.lower() for n in spark_names]:
        problems.append(f"columns differ: duckdb {duck_names} spark {spark_names}")
        common = [n for n in duck_names if n.lower() in {s.lower() for s in spark_names}]
    else:
        common = duck_names
    left_at = [duck_names.index(n) for n in common]
    right_at = [[s.lower() for s in spark_names].index(n.lower()) for n in common]
    kept = [i for i, name in enumerate(common) if not (snapshot and name in SNAPSHOT_TIMES)]

    def rows(raw: list[tuple], at: list[int]) -> list[tuple]:
        out = []
        for row in raw:
            values = [_normal(row[at[i]]) for i in kept]
            if snapshot and "dbt_valid_to" in common:
                values.append(row[at[common.index("dbt_valid_to")]] is None)  # open or closed
            out.append(tuple(values))
        return sorted(out, key=_sort_key)

    left, right = rows(duck_rows, left_at), rows(spark_rows, right_at)
    if len(left) != len(right):
        problems.append(f"rows differ: duckdb {len(left)} spark {len(right)}")
    names = [common[i] for i in kept] + (["<open>"] if snapshot else [])
    differing: dict[str, int] = {}
    example: dict[str, str] = {}
    for a, b in zip(left, right, strict=False):
        for name, x, y in zip(names, a, b, strict=True):
            if not _same(x, y):
                differing[name] = differing.get(name, 0) + 1
                example.setdefault(name, f"{x!r} vs {y!r}")
    for name, count in differing.items():
        problems.append(f"{name}: {count} values differ (e.g. {example[name]})")
    return TableComparison(table, len(duck_rows), len(spark_rows), problems)


def compare(con: duckdb.DuckDBPyConnection, spark: SparkSession,
            relations: list[dict]) -> list[TableComparison]:
    """Every model, seed and snapshot of the project, DuckDB's against Spark's."""
    results = []
    for node in sorted(relations, key=lambda n: (n["schema"], n["alias"])):
        table = f"{node['schema']}.{node['alias']}"
        if not spark.catalog.tableExists(table):
            results.append(TableComparison(table, -1, -1, ["missing on Spark"]))
            continue
        results.append(compare_table(con, spark, table,
                                     snapshot=node["resource_type"] == "snapshot"))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("duckdb", type=Path, help="the DuckDB warehouse built by a normal run")
    parser.add_argument("--runs", type=int, default=2, help="dbt builds on Spark (default 2)")
    parser.add_argument("--no-copy", action="store_true", help="keep Spark's inputs as they are")
    options = parser.parse_args(argv)
    from core.settings import ENGINE

    if ENGINE != "spark":
        raise SystemExit("set SEGMENTA_ENGINE=spark")
    os.environ["TZ"] = "UTC"  # Spark hands timestamps to Python in the process's zone
    time.tzset()
    from core import spark as engine
    from dagster_project.defs.transform.inprocess import _invoke

    target = HOME.root / "dbt_target"
    parsed = _invoke(["parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                      str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path",
                      str(target)])
    if not parsed.success:
        raise SystemExit(f"dbt parse failed: {parsed.exception}")
    sources, relations = manifest_nodes(target / "manifest.json")
    spark = engine.session()
    failed = False
    with duckdb.connect(str(options.duckdb), read_only=True) as con:
        if not options.no_copy:
            started = time.monotonic()
            copied = copy_inputs(con, spark, sources, HOME.spark / "scratch")
            print(f"copied {len(copied)} tables in {time.monotonic() - started:.1f} s: "
                  + ", ".join(f"{t} {n:,}" for t, n in sorted(copied.items())))
        for run in range(1, options.runs + 1):
            result = build()
            bad = {k: v for k, v in result.statuses.items() if v not in ("success", "pass")}
            print(f"dbt build {run}: {'ok' if result.success else 'FAILED'} in "
                  f"{result.seconds:.1f} s, {len(result.statuses)} nodes, "
                  f"{len(bad)} not passing")
            for unique_id, message in result.messages.items():
                print(f"  {unique_id} [{result.statuses.get(unique_id)}]: {message[:400]}")
            failed |= not result.success
            for outcome in compare(con, spark, relations):
                state = "matched" if outcome.matched else "DIFFERS"
                print(f"  {state:8} {outcome.table}: duckdb {outcome.duckdb_rows:,} rows, "
                      f"spark {outcome.spark_rows:,}")
                for problem in outcome.problems:
                    print(f"           {problem}")
                failed |= not outcome.matched
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
