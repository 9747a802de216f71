"""The dbt project on Spark against the same project on DuckDB (issue #20's parity lane).

    SEGMENTA_HOME=/path/to/home SEGMENTA_ENGINE=spark \\
        .venv/bin/python -m tests.spark_parity [WAREHOUSE] [--runs 2] [--history] [--json F]

Takes a DuckDB warehouse that a normal run built (`segmenta run` on the default engine: raw,
the model outputs, every dbt model, the snapshot; by default the home's own warehouse.duckdb)
and, in this process's Spark home:

1. copies dbt's inputs from it (`copy_inputs`): the landing feeds' raw and quarantine tables
   as ingestion writes them on Spark (`core.spark_raw.copy_feed`), and every other table the
   dbt project declares as a source (the change logs, the ml assets' outputs, the rule segment
   memberships) as a plain Parquet table;
2. runs `dbt build` on the spark target in this process (`build`), as the Dagster steps do
   (dagster_project/defs/transform/inprocess.py), `runs` times (the second run is the
   snapshot's first on an existing history);
3. compares every model, seed and snapshot table with DuckDB's, column by column (`compare`):
   the same columns in the same order and types, the same rows (ordered by the whole row),
   floats to a relative 1e-9, the snapshot's timestamps and their hash (dbt_scd_id) left out
   (whether a row is open is compared);
4. with `--history`, the snapshot's scenario (`history_steps`: a member leaves, a segment is
   renamed, a customer joins, the member comes back, nothing changes) run on both engines, the
   histories compared after each step, then the recovery from what a killed Spark snapshot run
   leaves (`snapshot_recovery`). DuckDB's side is built through the profile's duckdb output on
   the home's warehouse.duckdb, which the scenario changes.

Prints one line per table and step and exits 1 on any difference or failing dbt node. One
process at a time holds the Spark home (its Derby metastore).
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
# the change-log entry that last wrote a row: a full build stamps every row with the newest on
# both engines; after an incremental refresh DuckDB's untouched rows keep their older stamp
# while Spark, which rebuilds these models whole, stamps them anew (docs/scale-out.md)
CHANGE_STAMP = "change_id"
DUCKDB_TO_SPARK = {"varchar": "string", "integer": "int", "bigint": "bigint", "double": "double",
                   "float": "float", "boolean": "boolean", "date": "date",
                   "timestamp": "timestamp", "hugeint": "decimal(38,0)", "smallint": "smallint",
                   "tinyint": "tinyint"}


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


def build(args: tuple[str, ...] = (), target: str | None = None,
          command: str = "build") -> BuildResult:
    """`dbt build` (or `command`) of the project in this process, on this process's engine or
    the profile's output `target` (`duckdb`: the home's warehouse.duckdb); the Spark session is
    started first, as the Dagster steps start it."""
    from dagster_project.defs.transform.inprocess import _invoke

    # one folder per output: dbt's partial parse holds for one
    folder = HOME.root / ("dbt_target" if target is None else f"dbt_target_{target}")
    argv = [command, *args, "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(folder),
            "--log-path", str(folder), *(["--target", target] if target else [])]
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


def spark_type(duckdb_type: str) -> str:
    """A DuckDB column type as Spark names the same type."""
    kind = duckdb_type.lower().replace(" ", "")
    if kind.endswith("[]"):
        return f"array<{spark_type(kind[:-2])}>"
    return DUCKDB_TO_SPARK.get(kind, kind)


def compare_table(con: duckdb.DuckDBPyConnection, spark: SparkSession, table: str,
                  snapshot: bool = False, stamps: bool = True) -> TableComparison:
    """`stamps`: compare the change-log stamp (CHANGE_STAMP) too: equal after a full build,
    not after DuckDB's incremental refresh (see CHANGE_STAMP)."""
    described = con.execute(f"describe {table}").fetchall()
    duck_names = [row[0] for row in described]
    duck_types = {row[0].lower(): spark_type(row[1]) for row in described}
    duck_rows = con.execute(f"select * from {table}").fetchall()
    spark_names, spark_types, spark_rows = _spark_rows(spark, table)
    problems = [f"{name}: type {duck_types[name.lower()]} on DuckDB, {kind} on Spark"
                for name, kind in zip(spark_names, spark_types, strict=True)
                if name.lower() in duck_types and duck_types[name.lower()] != kind]
    if [n.lower() for n in duck_names] != [n.lower() for n in spark_names]:
        problems.append(f"columns differ: duckdb {duck_names} spark {spark_names}")
        common = [n for n in duck_names if n.lower() in {s.lower() for s in spark_names}]
    else:
        common = duck_names
    left_at = [duck_names.index(n) for n in common]
    right_at = [[s.lower() for s in spark_names].index(n.lower()) for n in common]
    kept = [i for i, name in enumerate(common) if not (snapshot and name in SNAPSHOT_TIMES)
            and (stamps or name.lower() != CHANGE_STAMP)]

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
            relations: list[dict], stamps: bool = True) -> list[TableComparison]:
    """Every model, seed and snapshot of the project, DuckDB's against Spark's."""
    results = []
    for node in sorted(relations, key=lambda n: (n["schema"], n["alias"])):
        table = f"{node['schema']}.{node['alias']}"
        if not spark.catalog.tableExists(table):
            results.append(TableComparison(table, -1, -1, ["missing on Spark"]))
            continue
        results.append(compare_table(con, spark, table,
                                     snapshot=node["resource_type"] == "snapshot",
                                     stamps=stamps))
    return results


SNAPSHOT = "snapshots.segment_memberships_snapshot"
RULES = "intermediate.rule_segment_memberships"
# the memberships and the snapshot, without their tests (the builds above ran them)
SNAPSHOT_SELECTION = ("--select", "segment_memberships", "segment_memberships_snapshot",
                      "--exclude-resource-type", "test", "unit_test")


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def history_steps(con: duckdb.DuckDBPyConnection) -> list[tuple[str, list[str]]]:
    """The snapshot's scenario: (what happens, the DuckDB statements that make it happen in the
    rule segment memberships). Each step is followed by a run of segment_memberships and the
    snapshot on both engines."""
    customer, key, name, kind = con.execute(
        f"select customer_id, segment_key, segment_name, segment_kind from {RULES} "
        "order by segment_key, customer_id limit 1").fetchone()
    renamed = con.execute(f"select min(segment_key) from {RULES} where segment_key <> ?",
                          [key]).fetchone()[0]
    joiner = con.execute(
        "select min(customer_id) from marts.dim_customers where customer_id not in "
        f"(select customer_id from {RULES} where segment_key = ?)", [key]).fetchone()[0]
    member = f"customer_id = {_quoted(customer)} and segment_key = {_quoted(key)}"
    row = f"{_quoted(name)}, {_quoted(kind)}"
    return [
        ("a member leaves a rule segment (hard_deletes invalidate: its row closes)",
         [f"delete from {RULES} where {member}"]),
        ("a rule segment is renamed (check_cols: each member's row closes, a new one opens)",
         [(f"update {RULES} set segment_name = segment_name || ' (renamed)' "
           f"where segment_key = {_quoted(renamed)}")]),
        ("a customer joins (a row is inserted)",
         [f"insert into {RULES} values ({_quoted(joiner)}, {_quoted(key)}, {row})"]),
        ("the member comes back (a new open row beside the closed one)",
         [f"insert into {RULES} values ({_quoted(customer)}, {_quoted(key)}, {row})"]),
        ("nothing changes (no row closes or opens)", []),
    ]


def _history_invariants(spark: SparkSession) -> list[str]:
    """What any snapshot history holds: one open row per key, the current members open."""
    problems = []
    doubled = spark.sql(f"select customer_id, segment_key from {SNAPSHOT} "
                        "where dbt_valid_to is null group by 1, 2 having count(*) > 1").count()
    if doubled:
        problems.append(f"{doubled} keys with more than one open row")
    missing = spark.sql(
        "select customer_id, segment_key, segment_name from marts.segment_memberships "
        f"except select customer_id, segment_key, segment_name from {SNAPSHOT} "
        "where dbt_valid_to is null").count()
    if missing:
        problems.append(f"{missing} current memberships without an open row")
    backwards = spark.sql(f"select * from {SNAPSHOT} where dbt_valid_to < dbt_valid_from").count()
    if backwards:
        problems.append(f"{backwards} rows closed before they opened")
    return problems


def snapshot_history(warehouse: Path, spark: SparkSession,
                     scratch: Path) -> list[dict[str, Any]]:
    """The scenario of `history_steps` on both engines (DuckDB through the profile's duckdb
    output, on `warehouse`, the home's), each step's history compared; returns one record
    per step."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        steps = history_steps(con)
    records = []
    for label, statements in steps:
        started = time.monotonic()
        with duckdb.connect(str(warehouse)) as con:
            for statement in statements:
                con.execute(statement)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            copy_table(con, spark, RULES, scratch)
        built = {engine: build(SNAPSHOT_SELECTION, target=target)
                 for engine, target in (("duckdb", "duckdb"), ("spark", None))}
        with duckdb.connect(str(warehouse), read_only=True) as con:
            tables = [compare_table(con, spark, "marts.segment_memberships"),
                      compare_table(con, spark, SNAPSHOT, snapshot=True)]
            rows = con.execute(f"select count(*), count(*) filter (where dbt_valid_to is null) "
                               f"from {SNAPSHOT}").fetchone()
        records.append({
            "step": label,
            "built": {engine: result.success for engine, result in built.items()},
            "messages": {engine: result.messages for engine, result in built.items()
                         if result.messages},
            "tables": [vars(outcome) for outcome in tables],
            "history_rows": rows[0], "open_rows": rows[1],
            "invariants": _history_invariants(spark),
            "seconds": round(time.monotonic() - started, 1),
        })
    return records


def _snapshot_rows(spark: SparkSession) -> list[tuple]:
    return sorted((tuple(row) for row in spark.table(SNAPSHOT).collect()), key=_sort_key)


def snapshot_recovery(spark: SparkSession) -> list[dict[str, Any]]:
    """What a killed snapshot run on Spark may leave (macros/portable/snapshot.sql), set up by
    hand, then a plain run: it must recover and leave the history as it was (no member changed
    meanwhile, so the run changes no row). Last, an unfinished first build: a fresh history."""
    new, old, view = (f"{SNAPSHOT}__dbt_new", f"{SNAPSHOT}__dbt_old", f"{SNAPSHOT}__dbt_tmp")
    cases = [
        ("an unfinished __dbt_new beside the history",
         [f"create table {new} using parquet as select * from {SNAPSHOT} limit 3"]),
        ("killed between the two renames (__dbt_old and a complete __dbt_new)",
         [f"create table {new} using parquet as select * from {SNAPSHOT}",
          f"alter table {SNAPSHOT} rename to {old}"]),
        ("the history renamed to __dbt_old, no __dbt_new",
         [f"alter table {SNAPSHOT} rename to {old}"]),
        ("killed before the old history was dropped (__dbt_old beside the new one)",
         [f"create table {old} using parquet as select * from {SNAPSHOT} limit 5"]),
        ("a leftover history view", [f"create view {view} as select * from {SNAPSHOT}"]),
    ]
    records = []
    for label, statements in cases:
        expected = _snapshot_rows(spark)
        for statement in statements:
            spark.sql(statement)
        result = build(("--select", "segment_memberships_snapshot"), command="snapshot")
        problems = [] if result.success else [f"the run failed: {result.messages}"]
        if spark.catalog.tableExists(SNAPSHOT):
            if _snapshot_rows(spark) != expected:
                problems.append("the history changed")
        else:
            problems.append("no history table")
        problems += [f"{name} left" for name in (new, old, view) if spark.catalog.tableExists(name)]
        records.append({"case": label, "problems": problems})
    # a first build killed while __dbt_new was filled: no history to keep, a fresh one
    spark.sql(f"drop table {SNAPSHOT}")
    spark.sql(f"create table {new} using parquet as select * from marts.segment_memberships")
    result = build(("--select", "segment_memberships_snapshot"), command="snapshot")
    problems = [] if result.success else [f"the run failed: {result.messages}"]
    if not problems:
        problems += _history_invariants(spark)
        closed = spark.sql(f"select * from {SNAPSHOT} where dbt_valid_to is not null").count()
        if closed:
            problems.append(f"{closed} closed rows in a first build")
    problems += [f"{name} left" for name in (new, old, view) if spark.catalog.tableExists(name)]
    records.append({"case": "an unfinished first build (__dbt_new, no history)",
                    "problems": problems})
    return records


def _print_tables(outcomes: list[TableComparison]) -> None:
    for outcome in outcomes:
        state = "matched" if outcome.matched else "DIFFERS"
        print(f"  {state:8} {outcome.table}: duckdb {outcome.duckdb_rows:,} rows, "
              f"spark {outcome.spark_rows:,}")
        for problem in outcome.problems:
            print(f"           {problem}")


def run(warehouses: list[Path], runs: int = 2, copy: bool = True,
        history: bool = False) -> dict:
    """The whole lane in this process (SEGMENTA_ENGINE=spark), for each of `warehouses` in turn
    (e.g. a full build, then the same home after an incremental refresh): copy its inputs,
    `runs` builds each compared with it; then with `history` the snapshot's scenario and
    recovery (they write to the last warehouse, which must then be the home's, for the
    profile's duckdb output). Returns the report (see `main`), with "ok" true when everything
    matched and passed."""
    from core import spark as engine
    from dagster_project.defs.transform.inprocess import _invoke

    warehouse = warehouses[-1]
    if history and warehouse.resolve() != HOME.warehouse.resolve():
        raise ValueError(f"the snapshot scenario builds DuckDB's side in {HOME.warehouse}")
    target = HOME.root / "dbt_target"
    parsed = _invoke(["parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                      str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path",
                      str(target)])
    if not parsed.success:
        raise RuntimeError(f"dbt parse failed: {parsed.exception}")
    sources, relations = manifest_nodes(target / "manifest.json")
    spark = engine.session()
    scratch = HOME.spark / "scratch"
    report: dict[str, Any] = {"builds": [], "history": [], "recovery": []}
    ok = True
    for warehouse in warehouses:
        if copy:
            started = time.monotonic()
            with duckdb.connect(str(warehouse), read_only=True) as con:
                copied = copy_inputs(con, spark, sources, scratch)
            report["copied"] = copied
            report["copy_seconds"] = round(time.monotonic() - started, 1)
            print(f"copied {len(copied)} tables in {time.monotonic() - started:.1f} s: "
                  + ", ".join(f"{t} {n:,}" for t, n in sorted(copied.items())))
        for number in range(1, runs + 1):
            # the data tests run on the first warehouse's build (each test's SQL on Spark);
            # the later ones compare the tables only
            result = build(() if warehouse == warehouses[0] else (
                "--exclude-resource-type", "test", "unit_test"))
            failing = {k: v for k, v in result.statuses.items()
                       if v not in ("success", "pass", "no-op", "warn")}
            print(f"dbt build {number}: {'ok' if result.success else 'FAILED'} in "
                  f"{result.seconds:.1f} s, {len(result.statuses)} nodes, {len(failing)} failing")
            for unique_id, message in result.messages.items():
                if unique_id in failing or unique_id == "dbt":
                    print(f"  {unique_id} [{result.statuses.get(unique_id)}]: {message[:600]}")
            with duckdb.connect(str(warehouse), read_only=True) as con:
                outcomes = compare(con, spark, relations, stamps=warehouse == warehouses[0])
            _print_tables(outcomes)
            ok &= result.success and not failing and all(o.matched for o in outcomes)
            report["builds"].append({
                "warehouse": str(warehouse),
                "success": result.success, "seconds": round(result.seconds, 1),
                "nodes": len(result.statuses), "failing": failing,
                "statuses": sorted(set(result.statuses.values())),
                "tables": [vars(outcome) for outcome in outcomes]})
    if history:
        for record in snapshot_history(warehouse, spark, scratch):
            matched = all(not table["problems"] for table in record["tables"])
            good = all(record["built"].values()) and matched and not record["invariants"]
            print(f"history: {'ok' if good else 'FAILED'} ({record['seconds']} s) {record['step']}: "
                  f"{record['history_rows']} rows, {record['open_rows']} open"
                  + "".join(f"; {table['table']} {'; '.join(table['problems'])}"
                            for table in record["tables"] if table["problems"])
                  + "".join(f"; {problem}" for problem in record["invariants"])
                  + (f"; {record['messages']}" if not all(record["built"].values()) else ""))
            ok &= good
            report["history"].append(record)
        started = time.monotonic()
        for record in snapshot_recovery(spark):
            print(f"recovery: {'ok' if not record['problems'] else 'FAILED'} {record['case']}"
                  + "".join(f"; {problem}" for problem in record["problems"]))
            ok &= not record["problems"]
            report["recovery"].append(record)
        print(f"recovery: {time.monotonic() - started:.1f} s")
    report["ok"] = bool(ok)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("duckdb", type=Path, nargs="*",
                        help="DuckDB warehouses built by normal runs, compared in turn (default: "
                             "the home's)")
    parser.add_argument("--runs", type=int, default=2, help="dbt builds on Spark (default 2)")
    parser.add_argument("--no-copy", action="store_true", help="keep Spark's inputs as they are")
    parser.add_argument("--history", action="store_true",
                        help="then the snapshot's scenario on both engines and its recovery on "
                             "Spark (changes the home's warehouse.duckdb)")
    parser.add_argument("--json", type=Path, help="write the report here")
    options = parser.parse_args(argv)
    from core.settings import ENGINE

    if ENGINE != "spark":
        raise SystemExit("set SEGMENTA_ENGINE=spark")
    os.environ["TZ"] = "UTC"  # Spark hands timestamps to Python in the process's zone
    time.tzset()
    report = run(options.duckdb or [HOME.warehouse], runs=options.runs,
                 copy=not options.no_copy, history=options.history)
    if options.json:
        options.json.write_text(json.dumps(report, indent=1, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
