"""The dbt project builds on Spark the same data as on DuckDB (issue #20's parity lane,
tests/spark_parity.py): a small store built by `segmenta run` on the default engine, dbt's
inputs copied from its warehouse to Spark, `dbt build` twice on the spark target (seeds, every
model, the snapshot, every data test and unit test), each table compared with DuckDB's column
by column; then the snapshot's history through a scenario on both engines, and its recovery
from what a killed Spark run leaves. Needs Java and pyspark (`make test-spark` runs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from tests.support import deliver_late_and_again, hold_back_a_day, segmenta
from tests.test_spark_engine import needs_spark


@needs_spark
def test_dbt_on_spark_builds_what_duckdb_builds(tmp_path: Path) -> None:
    """A full build, then an incremental day and a re-delivery: after each, every table of
    Spark's build equals DuckDB's."""
    home, aside = tmp_path / "home", tmp_path / "held_back"
    duckdb_engine = {"SEGMENTA_ENGINE": "duckdb"}
    segmenta(home, "generate", "--customers", "300", "--days", "30", "--seed", "3",
             env_vars=duckdb_engine)
    held_back, redelivered = hold_back_a_day(home, aside)
    segmenta(home, "run", env_vars=duckdb_engine)
    # the copy keeps the file's name: dbt's views name their tables by catalog, `warehouse`
    first = tmp_path / "full_build" / "warehouse.duckdb"
    first.parent.mkdir()
    shutil.copyfile(home / "warehouse.duckdb", first)
    deliver_late_and_again(home, aside, held_back, redelivered)
    segmenta(home, "run", env_vars=duckdb_engine)

    report_path = tmp_path / "parity.json"
    env = {**os.environ, "SEGMENTA_HOME": str(home), "SEGMENTA_ENGINE": "spark"}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.spark_parity", str(first), str(home / "warehouse.duckdb"),
         "--runs", "1", "--history", "--json", str(report_path)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False, timeout=1200)
    lines = [line for line in done.stdout.splitlines()
             if not line.startswith("  matched")]  # the differences and the failures
    assert report_path.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["ok"] and done.returncode == 0, "\n".join(lines)[-6000:]

    # two builds (the full one, then after the refresh), every table compared (models,
    # seeds, the snapshot), the same
    assert [build["warehouse"] for build in report["builds"]] == [
        str(first), str(home / "warehouse.duckdb")]
    for build in report["builds"]:
        assert build["success"] and not build["failing"]
        tables = {table["table"]: table for table in build["tables"]}
        assert {"staging.rfm_segments", "staging.geo_climate", "marts.fct_orders",
                "intermediate.int_events_sessionized", "marts.customer_360",
                "snapshots.segment_memberships_snapshot"} <= set(tables)
        assert all(not table["problems"] for table in tables.values())
        assert tables["marts.fct_orders"]["spark_rows"] > 0
    assert "pass" in report["builds"][0]["statuses"]  # the data tests ran on Spark, and passed
    # the refresh changed what was built: one more day of orders, one line fewer re-delivered
    before, after = ({t["table"]: t for t in build["tables"]} for build in report["builds"])
    assert after["marts.fct_order_items"]["spark_rows"] != \
        before["marts.fct_order_items"]["spark_rows"]
    # the seeds' quote and empty values: "Can't Lose Them" loaded, empty cities NULL
    seeds = {table["table"]: table for table in report["builds"][0]["tables"]}
    assert seeds["staging.rfm_segments"]["spark_rows"] == 25

    # the snapshot's history follows each change as dbt's MERGE does on DuckDB
    steps = report["history"]
    assert [step["open_rows"] - steps[0]["open_rows"] for step in steps] == [0, 0, 1, 2, 2]
    assert steps[1]["history_rows"] > steps[0]["history_rows"]  # renamed: closed and reopened
    assert steps[-1]["history_rows"] == steps[-2]["history_rows"]
    assert len(report["recovery"]) == 6 and all(not case["problems"]
                                                for case in report["recovery"])


@pytest.mark.parametrize("value, literal", [
    (None, "null"), ("Can't Lose Them", "'Can\\'t Lose Them'"), ("a\\b", "'a\\\\b'"),
])
def test_seed_values_are_spark_literals(value: str | None, literal: str) -> None:
    """The Spark seed loader's literals (macros/portable/seeds.sql), rendered by Jinja as dbt
    renders the macro."""
    import jinja2

    source = (PROJECT_ROOT / "dbt_project" / "macros" / "portable" / "seeds.sql").read_text()
    body = source[source.index("{% macro spark_seed_literal"):]
    template = jinja2.Environment(extensions=["jinja2.ext.do"]).from_string(
        body + "{{ spark_seed_literal(value) }}")
    assert template.render(value=value).strip() == literal
