"""The engine switch (SEGMENTA_ENGINE), the local Spark session (core/spark.py) and landing days
written to Spark's raw tables (core/spark_raw.py).

The Spark tests need Java and pyspark (`make install-spark`) and skip, saying which is missing,
where they are absent. They run in one fresh Python with its own SEGMENTA_HOME and working
directory: one Spark session (a JVM, about 10 to 30 s to start) for all of them."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import DBT_PROJECT_DIR, PROJECT_ROOT


def _spark_missing() -> str | None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java (apt-get install openjdk-17-jre-headless)"
    if importlib.util.find_spec("pyspark") is None:
        return "no pyspark (make install-spark)"
    return None


needs_spark = pytest.mark.skipif(_spark_missing() is not None, reason=str(_spark_missing()))


def _run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**os.environ, **env},
                          check=False, capture_output=True, text=True, timeout=600)


def test_unknown_engine_fails_naming_the_engines(tmp_path: Path) -> None:
    done = _run("import core.settings", {"SEGMENTA_ENGINE": "snowflake",
                                         "SEGMENTA_HOME": str(tmp_path)}, PROJECT_ROOT)
    assert done.returncode != 0
    assert "SEGMENTA_ENGINE='snowflake' is not an engine Segmenta builds on: use duckdb or spark" \
        in done.stderr
    done = _run("from core.settings import ENGINE; print(ENGINE)",
                {"SEGMENTA_ENGINE": " Spark ", "SEGMENTA_HOME": str(tmp_path)}, PROJECT_ROOT)
    assert done.stdout.strip() == "spark", done.stderr


def test_profile_targets_the_engine_with_the_session_settings(tmp_path: Path) -> None:
    """dbt's profile picks the output named by SEGMENTA_ENGINE, and its Spark output names the
    settings core/spark.py starts the session with (for a dbt started on its own)."""
    code = """
import json, os, yaml
from dbt_common.context import set_invocation_context
from dbt.config.renderer import ProfileRenderer
from core.settings import DBT_PROJECT_DIR
from core.spark import spark_conf
set_invocation_context(os.environ)
profile = ProfileRenderer({}).render_data(
    yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text()))["segmenta"]
print(json.dumps({"target": profile["target"], "outputs": sorted(profile["outputs"]),
                  "profile": profile["outputs"]["spark"]["server_side_parameters"],
                  "core": spark_conf()}))
"""
    env = {"SEGMENTA_HOME": str(tmp_path), "SEGMENTA_SPARK_MASTER": "local[1]"}
    for engine in ("duckdb", "spark"):
        done = _run(code, {**env, "SEGMENTA_ENGINE": engine}, PROJECT_ROOT)
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout.splitlines()[-1])
        assert seen["target"] == engine and seen["outputs"] == ["duckdb", "spark"]
        assert seen["profile"] == seen["core"]
        assert seen["core"]["spark.master"] == "local[1]"
        assert seen["core"]["spark.sql.warehouse.dir"] == f"{tmp_path}/spark/warehouse"
    outputs = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["segmenta"]["outputs"]
    assert outputs["spark"]["type"] == "spark" and outputs["spark"]["method"] == "session"


def test_spark_lock_is_the_main_lock_plus_the_spark_extra() -> None:
    """requirements-spark.lock pins every package of requirements.lock at the same version
    (it is compiled with `-c requirements.lock`), and adds pyspark and dbt-spark."""
    def pins(name: str) -> dict[str, str]:
        text = (PROJECT_ROOT / name).read_text()
        return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", text, re.MULTILINE))

    main, spark = pins("requirements.lock"), pins("requirements-spark.lock")
    assert {name: spark.get(name) for name in main} == main
    assert spark["pyspark"] == "3.5.9" and spark["dbt-spark"] == "1.11.0"


SPARK_SCRIPT = """
import datetime as dt, json, os, time
from pathlib import Path
started = time.monotonic()
from core import spark as engine
from core.settings import HOME
from core.warehouse import Warehouse
from core import spark_raw
from ingest import landing

spark = engine.session()
seconds = time.monotonic() - started
day, other = dt.date(2026, 5, 1), dt.date(2026, 5, 2)
header = ("order_id,line_number,customer_id,ordered_at,product_id,quantity,unit_price,currency,"
          "status,channel,shipping_country,discount_amount")

def deliver(day, lines):
    folder = HOME.landing / "orders" / f"dt={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders.csv").write_text("\\n".join([header, *lines]) + "\\n")

def load(days):
    warehouse = Warehouse(HOME.warehouse)
    landing.load_days(warehouse, HOME.landing, "orders", days)
    with warehouse.connect(read_only=True) as con:
        return spark_raw.copy_days(con, spark, "orders", days, HOME.spark / "scratch")

def state():
    rows = spark.sql("select order_id, line_number, cast(_partition_date as string) as day, "
                     "cast(ordered_at as string) as ordered_at from raw.orders "
                     "order by day, order_id, line_number").collect()
    bad = spark.sql("select reason, cast(_partition_date as string) as day "
                    "from quarantine.orders order by day, reason").collect()
    return {"raw": [list(r) for r in rows], "quarantine": [list(r) for r in bad]}

deliver(day, ["O1,1,C1,2026-05-01T10:00:00+02:00,P1,2,9.50,EUR,completed,web,ES,0",
              "O1,2,,2026-05-01T10:00:00+02:00,P2,1,5,EUR,completed,web,ES,",
              "O2,1,C2,yesterday,P1,1,9.50,EUR,completed,web,ES,0"])
deliver(other, ["O9,1,C9,2026-05-02T09:00:00Z,P1,1,9.50,EUR,completed,web,ES,0"])
first_written = load([day, other])
first = state()
# the first day delivered again, corrected: replaced, and the other day left as it was
deliver(day, ["O1,1,C1,2026-05-01T10:00:00+02:00,P1,2,9.50,EUR,completed,web,ES,0",
              "O2,1,C2,2026-05-01T12:00:00Z,P1,1,9.50,EUR,completed,web,ES,0",
              "O3,1,C3,2026-05-01T13:00:00Z,P1,1,-1,EUR,completed,web,ES,0"])
second_written = load([day])
second = state()
# the second day's files withdrawn: its partitions go
for path in (HOME.landing / "orders" / f"dt={other.isoformat()}").iterdir():
    path.unlink()
load([other])
third = state()
types = {f.name: f.dataType.simpleString() for f in spark.table("raw.orders").schema.fields}

# through the Dagster asset: a snapshot feed's days, then one of them withdrawn
import dagster as dg
from dagster_project.defs.ingest.assets import raw_products
from dagster_project.resources import ExpectationsResource, HomeResource, WarehouseResource
from ingest.quality import SUITES_DIR
resources = {"home": HomeResource(root=str(HOME.root)),
             "expectations": ExpectationsResource(suites_dir=str(SUITES_DIR)),
             "warehouse": WarehouseResource(path=str(HOME.warehouse))}
products = "product_id,sku,name,category,subcategory,brand,price,currency,is_active,updated_at"
for number, when in enumerate((day, other)):
    folder = HOME.landing / "products" / f"dt={when.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "products.csv").write_text(products + "\\n" + "\\n".join(
        f"P{number}{i},S{i},Product {i},shoes,boots,B,{10 + i},EUR,true,{when}T06:00:00Z"
        for i in range(50)) + "\\n")
def product_days():
    assert dg.materialize([raw_products], resources=resources).success
    return [[r[0], r[1]] for r in spark.sql(
        "select cast(_partition_date as string), count(*) from raw.products group by 1 "
        "order by 1").collect()]
products_both = product_days()
products_again = product_days()  # nothing changed: nothing doubled
for path in (HOME.landing / "products" / f"dt={other.isoformat()}").iterdir():
    path.unlink()
products_withdrawn = product_days()
# dbt in this process (as the dbt steps run it) on the same session: the raw tables above
from core.settings import DBT_PROJECT_DIR
from dagster_project.defs.transform.inprocess import _invoke
shown = _invoke(["show", "--inline", "select count(*) as n from raw.orders",
                 "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                 "--target-path", str(HOME.root / "dbt_target"),
                 "--log-path", str(HOME.root / "dbt_target")])
dbt = {"success": shown.success,
       "rows": [list(map(int, row)) for row in shown.result.results[0].agate_table.rows]}
# the Python steps' SQL on engine tables (core/spark_bridge.py)
import pandas as pd
spark.sql("create database if not exists marts")
spark.sql("drop table if exists marts.bridge_people")
spark.sql("create table marts.bridge_people using parquet as "
          "select 'C1' as customer_id, 3 as n, timestamp'2026-01-01 10:00:00' as seen_at, "
          "'x' as unused union all "
          "select 'C2', 4, timestamp'2026-01-02 10:00:00', 'y'")
warehouse = Warehouse(HOME.warehouse)
bridge = {}
with warehouse.connect() as con:
    bridge["read"] = con.execute(
        "select customer_id, n from marts.bridge_people where seen_at > ? order by 1",
        ["2026-01-01 12:00:00"]).fetchall()
    bridge["fetched_columns"] = [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_catalog like 'engine_%' "
        "and table_name = 'bridge_people' order by ordinal_position").fetchall()]
warehouse.replace_table("ml.bridge_scores", pd.DataFrame({"customer_id": ["C1", "C2"],
                                                          "score": [0.1, 0.2]}))
warehouse.replace_rows("ml.bridge_scores", pd.DataFrame({"customer_id": ["C3"], "score": [0.3]}),
                       keep=pd.DataFrame({"customer_id": ["C1"]}))
bridge["after_replace_rows"] = [list(r) for r in spark.sql(
    "select customer_id, score from ml.bridge_scores order by 1").collect()]
try:
    with warehouse.connect() as con:
        con.execute("create or replace table ml.bridge_scores as select 'lost' as customer_id")
        con.execute("create or replace table ml.bridge_half as select 1 as a")
        raise RuntimeError("the step fails")
except RuntimeError:
    pass
bridge["after_failure"] = [[r[0], spark.catalog.tableExists(r[1])] for r in [
    [spark.table("ml.bridge_scores").count(), "ml.bridge_half"]]]
with warehouse.connect() as con:
    con.execute("create schema if not exists activation")
    con.execute("create or replace table activation.bridge_join as select p.customer_id, "
                "s.score from marts.bridge_people as p join ml.bridge_scores as s using "
                "(customer_id)")
    bridge["file_table"] = con.execute(
        "select * from activation.bridge_join order by 1").fetchall()
    con.execute("drop table if exists ml.bridge_scores")
bridge["dropped"] = not spark.catalog.tableExists("ml.bridge_scores")
# an erasure reaches the segment history and the model outputs on Spark (core/privacy.py)
from core.privacy import customer_key, ensure_audit, scrub_engine_tables
spark.sql("create database if not exists snapshots")
spark.sql("create table snapshots.bridge_history using parquet as select 'C1' as customer_id, "
          "'s1' as segment_key union all select 'C2', 's1'")
spark.sql("create table ml.bridge_outputs using parquet as select 'C1' as customer_id, "
          "1.0 as score union all select 'C2', 2.0")
with warehouse.connect() as con:
    ensure_audit(con)
    con.execute("insert into audit.erasure_requests values (?, current_timestamp)",
                [customer_key("C1")])
    bridge["scrubbed"] = scrub_engine_tables(con)
with warehouse.connect() as con:
    bridge["scrubbed_again"] = scrub_engine_tables(con)
bridge["history"] = sorted(r[0] for r in spark.table("snapshots.bridge_history").collect())
bridge["outputs"] = sorted(r[0] for r in spark.table("ml.bridge_outputs").collect())
bridge["key"] = customer_key("C1")
print(json.dumps({"seconds": seconds, "first": first, "second": second, "third": third,
                  "written": [first_written, second_written], "types": types,
                  "products": [products_both, products_again, products_withdrawn],
                  "dbt": dbt, "bridge": bridge}, default=str))
"""


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    missing = _spark_missing()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("spark")
    cwd, home = root / "cwd", root / "home"
    cwd.mkdir()
    done = _run(SPARK_SCRIPT, {"SEGMENTA_HOME": str(home), "SEGMENTA_ENGINE": "spark",
                               "PYTHONPATH": str(PROJECT_ROOT)}, cwd)
    assert done.returncode == 0, done.stderr[-4000:]
    return {"cwd": cwd, "home": home, **json.loads(done.stdout.splitlines()[-1])}


@needs_spark
def test_spark_session_keeps_its_files_in_the_home(spark_run: dict) -> None:
    assert sorted(os.listdir(spark_run["cwd"])) == []  # no metastore_db, derby.log, spark-warehouse
    files = spark_run["home"] / "spark"
    assert (files / "metastore_db" / "service.properties").exists()
    assert (files / "derby.log").exists()
    assert (files / "warehouse" / "raw.db" / "orders").is_dir()
    assert not (files / "scratch").exists() or not any((files / "scratch").iterdir())
    print(f"Spark session started in {spark_run['seconds']:.1f} s")


@needs_spark
def test_landing_day_on_spark_is_replaced_not_doubled(spark_run: dict) -> None:
    assert spark_run["first"] == {
        "raw": [["O1", 1, "2026-05-01", "2026-05-01 08:00:00"],
                ["O1", 2, "2026-05-01", "2026-05-01 08:00:00"],
                ["O9", 1, "2026-05-02", "2026-05-02 09:00:00"]],
        "quarantine": [["bad_timestamp", "2026-05-01"]]}
    assert spark_run["written"][0] == {"raw.orders": 3, "quarantine.orders": 1}
    assert spark_run["second"] == {
        "raw": [["O1", 1, "2026-05-01", "2026-05-01 08:00:00"],
                ["O2", 1, "2026-05-01", "2026-05-01 12:00:00"],
                ["O9", 1, "2026-05-02", "2026-05-02 09:00:00"]],
        "quarantine": [["negative_price", "2026-05-01"]]}
    assert spark_run["third"] == {
        "raw": [["O1", 1, "2026-05-01", "2026-05-01 08:00:00"],
                ["O2", 1, "2026-05-01", "2026-05-01 12:00:00"]],
        "quarantine": [["negative_price", "2026-05-01"]]}
    types = spark_run["types"]
    assert types["ordered_at"] == "timestamp" and types["_partition_date"] == "date"
    assert types["line_number"] == "int" and "_key_hash" not in types
    assert list(types)[-1] == "_partition_date"


@needs_spark
def test_ingestion_asset_keeps_a_snapshot_feed_in_step_on_spark(spark_run: dict) -> None:
    """raw_products with SEGMENTA_ENGINE=spark: two landing days, the same again (nothing
    doubled), then one withdrawn (its partition dropped)."""
    both = [["2026-05-01", 50], ["2026-05-02", 50]]
    assert spark_run["products"] == [both, both, [["2026-05-01", 50]]]


@needs_spark
def test_dbt_in_process_builds_on_the_processs_session(spark_run: dict) -> None:
    """A dbt invocation in the step's process (inprocess._invoke) on the spark target reads the
    raw tables the ingestion wrote, through the session core/spark.py started."""
    # two order lines are left after the re-delivery and the withdrawal above: dbt saw the
    # tables in the home's metastore (Derby takes one process: a second session could not)
    assert spark_run["dbt"] == {"success": True, "rows": [[2]]}


@needs_spark
def test_python_steps_read_and_write_engine_tables_through_the_bridge(spark_run: dict) -> None:
    """Warehouse.connect() on Spark (core/spark_bridge.py): a statement fetches only the
    columns it names of an engine table; writes reach Spark when the step ends, not when it
    fails; replace_rows keeps the rows it is told to keep; the file's tables join Spark's."""
    bridge = spark_run["bridge"]
    assert bridge["read"] == [["C2", 4]]
    assert bridge["fetched_columns"] == ["customer_id", "n", "seen_at"]  # not `unused`
    assert bridge["after_replace_rows"] == [["C1", 0.1], ["C3", 0.3]]
    assert bridge["after_failure"] == [[2, False]]  # as before the failed step, nothing new
    assert bridge["file_table"] == [["C1", 0.1]]
    assert bridge["dropped"] is True


@needs_spark
def test_an_erasure_reaches_the_history_and_model_outputs_on_spark(spark_run: dict) -> None:
    """scrub_engine_tables: the erased customer is kept under the key in snapshots.* and
    deleted from ml.*; a second pass finds nothing (and rewrites nothing)."""
    bridge = spark_run["bridge"]
    assert bridge["scrubbed"] == {"ml.bridge_outputs": 1, "snapshots.bridge_history": 1}
    assert bridge["scrubbed_again"] == {}
    assert bridge["history"] == sorted(["C2", bridge["key"]])
    assert bridge["outputs"] == ["C2"]
