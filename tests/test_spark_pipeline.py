"""`segmenta run` on both engines: the same landing files through the whole pipeline (ingestion,
dbt, the models, the rule segments, the syncs, publishing) on DuckDB and on Spark give the same
tables, column by column, and the same summary (issue #20). 342 s on 2 cores (2026-12-06):
`make test-spark-run` runs it, CI does not (its parity lane, tests/test_spark_parity.py, checks
the dbt project on both engines in four).

One small store (300 customers, 30 days) is built twice from the same landing folder, once per
engine. Then a day arrives that was held back (an incremental day) while an earlier day is
delivered again with a line less and a line changed (a re-delivery), and both engines refresh.
After each round every table of the schemas dbt and the models build (staging, intermediate,
marts, snapshots, ml) is compared: the same tables, the same columns in the same order, the
same rows (floats to 1e-9 relative). What differs by design is left out and said: the moments
a run happened (the snapshot's validity columns, a model's scoring time).

Skips, saying why, without Java or pyspark (`make install-spark`)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.settings import PROJECT_ROOT
from tests.support import deliver_late_and_again, hold_back_a_day
from tests.test_spark_engine import _spark_missing

pytestmark = pytest.mark.skipif(_spark_missing() is not None, reason=str(_spark_missing()))

SCHEMAS = ("staging", "intermediate", "marts", "snapshots", "ml")
# columns that hold when a run happened, not what it computed
RUN_TIME_COLUMNS = {"dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to",
                    "scored_at", "trained_at", "computed_at", "published_at", "recorded_at",
                    "_loaded_at", "loaded_at", "first_synced_at", "synced_at", "changed_at",
                    # the load that last rewrote a row (the DuckDB refresh's change-log stamp;
                    # Spark rebuilds these models whole and stamps 0: docs/scale-out.md)
                    "change_id"}
# the DuckDB incremental refresh's own bookkeeping (docs/architecture.md)
DUCKDB_ONLY = {"intermediate.incremental_watermarks",
               "intermediate.int_customer_activity_daily__customers_changed"}

DUMP = """
import json, sys
from pathlib import Path
from core.settings import ENGINE, HOME
from core.warehouse import Warehouse
from core.spark_bridge import ENGINE_SCHEMAS
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
warehouse = Warehouse(HOME.warehouse)
tables = []
if ENGINE == "spark":
    from core.spark import session
    spark = session()
    for schema in ENGINE_SCHEMAS:
        if spark.catalog.databaseExists(schema):
            tables += [(schema, t.name) for t in spark.catalog.listTables(schema)
                       if not t.isTemporary]
else:
    with warehouse.connect(read_only=True) as con:
        tables = [tuple(r) for r in con.execute(
            "select table_schema, table_name from information_schema.tables where "
            "table_catalog = current_database() and table_schema in ({})".format(
                ", ".join(repr(s) for s in ENGINE_SCHEMAS))).fetchall()]
with warehouse.connect() as con:
    for schema, name in sorted(tables):
        con.execute(f"copy (select * from {schema}.{name}) to "
                    f"'{out / (schema + '.' + name + '.parquet')}' (format parquet)")
print(json.dumps(sorted(f"{s}.{n}" for s, n in tables)))
"""


def _segmenta(home: Path, engine: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEGMENTA_HOME": str(home), "SEGMENTA_ENGINE": engine,
           "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("DAGSTER_HOME", None)
    cwd = home.with_name(home.name + "-cwd")
    cwd.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{engine}: {args}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


def _run(home: Path, engine: str) -> str:
    return _segmenta(home, engine, "-m", "dagster_project.cli", "run").stdout


def _dump(home: Path, engine: str, out: Path) -> list[str]:
    done = _segmenta(home, engine, "-c", DUMP, str(out))
    return json.loads(done.stdout.splitlines()[-1])


def _summary_sizes(stdout: str) -> list[str]:
    """The segment lines of `segmenta run`'s summary (name and member counts)."""
    return [line.strip() for line in stdout.splitlines() if line.rstrip().endswith("by ads")]


def _same(table: str, duck: pd.DataFrame, spark: pd.DataFrame) -> list[str]:
    """What differs between two copies of a table (empty: nothing)."""
    if list(duck.columns) != list(spark.columns):
        return [(f"{table}: columns {list(duck.columns)} on DuckDB, {list(spark.columns)} "
                "on Spark")]
    if len(duck) != len(spark):
        return [f"{table}: {len(duck)} rows on DuckDB, {len(spark)} on Spark"]
    kept = [c for c in duck.columns if c not in RUN_TIME_COLUMNS]
    duck, spark = (_sorted(frame[kept]) for frame in (duck, spark))
    problems = []
    for column in kept:
        a, b = duck[column], spark[column]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            pairs = zip(pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce"),
                        strict=True)
            bad = sum(not ((pd.isna(x) and pd.isna(y)) or math.isclose(x, y, rel_tol=1e-9,
                                                                       abs_tol=1e-9))
                      for x, y in pairs)
        else:
            both_null = a.isna().to_numpy() & b.isna().to_numpy()
            bad = int(((a.astype(str) != b.astype(str)).to_numpy() & ~both_null).sum())
        if bad:
            problems.append(f"{table}.{column}: {bad} of {len(a)} values differ, e.g. "
                            f"{_first_difference(a, b)}")
    return problems


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order whatever order an engine returned them in: by every column, as text
    (floats rounded to 9 significant digits so noise does not reorder them)."""
    keys = pd.DataFrame({c: (frame[c].map(lambda v: f"{v:.9g}" if isinstance(v, float) else v)
                             .astype(str)) for c in frame.columns})
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def _first_difference(a: pd.Series, b: pd.Series) -> str:
    for x, y in zip(a, b, strict=True):
        if str(x) != str(y) and not (pd.isna(x) and pd.isna(y)):
            return f"{x!r} (DuckDB) vs {y!r} (Spark)"
    return "?"


def _compare(root: Path, round_name: str) -> tuple[list[str], list[str]]:
    duck_tables = [t for t in _dump(root / "duck", "duckdb", root / f"dump-duck-{round_name}")
                   if t not in DUCKDB_ONLY]
    spark_tables = _dump(root / "spark", "spark", root / f"dump-spark-{round_name}")
    problems = []
    if duck_tables != spark_tables:
        problems.append(f"tables only on DuckDB: {sorted(set(duck_tables) - set(spark_tables))}"
                        f"; only on Spark: {sorted(set(spark_tables) - set(duck_tables))}")
    for table in sorted(set(duck_tables) & set(spark_tables)):
        duck = pd.read_parquet(root / f"dump-duck-{round_name}" / f"{table}.parquet")
        spark = pd.read_parquet(root / f"dump-spark-{round_name}" / f"{table}.parquet")
        problems += _same(table, duck, spark)
    return duck_tables, problems


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("parity")
    duck, spark = root / "duck", root / "spark"
    _segmenta(duck, "duckdb", "-m", "dagster_project.cli", "generate", "--customers", "300",
              "--days", "30", "--seed", "3")
    aside = root / "held_back"
    held_back, redelivered = hold_back_a_day(duck, aside)
    shutil.copytree(duck / "landing", spark / "landing")
    first = {"duckdb": _run(duck, "duckdb"), "spark": _run(spark, "spark")}
    first_tables, first_problems = _compare(root, "first")
    for home in (duck, spark):
        deliver_late_and_again(home, aside, held_back, redelivered)
    second = {"duckdb": _run(duck, "duckdb"), "spark": _run(spark, "spark")}
    second_tables, second_problems = _compare(root, "second")
    return {"first": first, "second": second, "tables": [first_tables, second_tables],
            "problems": [first_problems, second_problems], "days": (held_back, redelivered)}


def test_a_full_build_matches_column_by_column(lane: dict) -> None:
    tables = lane["tables"][0]
    assert {t.split(".")[0] for t in tables} == set(SCHEMAS)
    assert {"marts.customer_360", "marts.segment_summary", "ml.customer_clusters",
            "ml.customer_recommendations", "snapshots.segment_memberships_snapshot",
            "marts.segment_fairness", "intermediate.rule_segment_memberships"} <= set(tables)
    assert lane["problems"][0] == []


def test_an_incremental_day_and_a_redelivery_match_column_by_column(lane: dict) -> None:
    assert lane["problems"][1] == []


def test_make_run_prints_the_same_segment_sizes_on_both_engines(lane: dict) -> None:
    for run in ("first", "second"):
        duck, spark = (_summary_sizes(lane[run][engine]) for engine in ("duckdb", "spark"))
        assert len(duck) > 10
        assert duck == spark
