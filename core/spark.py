"""The local Spark engine (SEGMENTA_ENGINE=spark): one SparkSession per process, its files in
SEGMENTA_HOME.

Left to its defaults, Spark writes `metastore_db/`, `derby.log` and `spark-warehouse/` into the
working directory of whatever process starts it (the repository, dbt's project folder, a test's
folder). Here they live under `$SEGMENTA_HOME/spark/`: the warehouse in `warehouse/` (or
SEGMENTA_SPARK_WAREHOUSE, e.g. object storage on a cluster), the Hive metastore in an embedded
Derby database `metastore_db/`, and Derby's log beside it.

dbt-spark's session mode builds its session with `SparkSession.builder...getOrCreate()` in the
process that runs dbt: Segmenta runs dbt in the step's process
(dagster_project/defs/transform/inprocess.py), so the session made here first is the one dbt
uses. `dbt_project/profiles.yml` names the same settings (`server_side_parameters`) for a dbt
started on its own; tests/test_spark_session.py checks that the two agree.

Needs Java (17) and the `spark` extra (`make install-spark`). Settings, from the environment:

| variable | default | what |
|---|---|---|
| SEGMENTA_SPARK_MASTER | `local[2]` | the cluster manager's URL (`local[N]`: N threads in this process) |
| SEGMENTA_SPARK_WAREHOUSE | `$SEGMENTA_HOME/spark/warehouse` | where managed tables' files go |
| SEGMENTA_SPARK_DRIVER_MEMORY | `2g` | the driver JVM's heap (in local mode, all of Spark's) |
| SEGMENTA_SPARK_SHUFFLE_PARTITIONS | `4` | partitions after a shuffle (Spark's 200 suit a cluster) |
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

from core.settings import HOME, Home

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_session: SparkSession | None = None
_lock = threading.Lock()


def spark_conf(home: Home = HOME) -> dict[str, str]:
    """The Spark settings of a Segmenta process, from the environment (see the module's table)."""
    files = home.spark
    warehouse = os.environ.get("SEGMENTA_SPARK_WAREHOUSE") or str(files / "warehouse")
    return {
        "spark.master": os.environ.get("SEGMENTA_SPARK_MASTER") or "local[2]",
        "spark.app.name": "segmenta",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": warehouse,
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={files / 'metastore_db'};create=true",
        # Derby's own files (derby.log) go to derby.system.home, read when the driver JVM starts
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={files}",
        "spark.driver.memory": os.environ.get("SEGMENTA_SPARK_DRIVER_MEMORY") or "2g",
        # DuckDB's TIMESTAMP in Parquet reads as timestamp_ntz, which the Hive metastore refuses
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        # INSERT OVERWRITE of a partitioned table replaces only the partitions it writes
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.shuffle.partitions":
            os.environ.get("SEGMENTA_SPARK_SHUFFLE_PARTITIONS") or "4",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # dbt-spark sets it on every statement: the same from the start
        "spark.sql.ansi.enabled": "false",
    }


def session() -> SparkSession:
    """This process's SparkSession, started on first use (about 10 s: a JVM and the metastore)."""
    global _session
    with _lock:
        if _session is None or _session.sparkContext._jsc is None:  # stopped meanwhile
            _session = _start(spark_conf())
        return _session


def stop() -> None:
    """Stop this process's session (its JVM stays: py4j starts one per process)."""
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None


def _start(conf: dict[str, str]) -> SparkSession:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise RuntimeError(
            "SEGMENTA_ENGINE=spark needs pyspark: `make install-spark` installs it "
            "(requirements-spark.lock), and Java 17 (`apt-get install openjdk-17-jre-headless`)"
        ) from exc
    HOME.spark.mkdir(parents=True, exist_ok=True)
    # the Python workers of UDFs run this interpreter, not the first `python` on the PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
