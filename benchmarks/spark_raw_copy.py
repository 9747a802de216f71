"""Benchmark the Spark engine's raw tables: copy a loaded home's raw and quarantine to Spark.

    SEGMENTA_HOME=/path/to/home SEGMENTA_ENGINE=spark .venv/bin/python benchmarks/spark_raw_copy.py

Needs `make install-spark` and Java. Takes a home whose DuckDB warehouse holds the landing days
(`make run` made it), starts the Spark session (timed), copies every feed's days to Spark twice
(`core/spark_raw.py`: the first copy creates the tables, the second replaces every partition, as
a re-delivery of every day would), and prints a Markdown table: rows per table in DuckDB and in
Spark after each copy (equal, never doubled) and the wall time of each copy.
"""

from __future__ import annotations

import time

from core import spark as engine
from core import spark_raw
from core.settings import ENGINE, FEEDS, HOME
from core.warehouse import Warehouse


def main() -> int:
    if ENGINE != "spark":
        raise SystemExit("set SEGMENTA_ENGINE=spark")
    started = time.monotonic()
    spark = engine.session()
    print(f"Spark session started in {time.monotonic() - started:.1f} s")
    for table in (name for feed in FEEDS for name in spark_raw.tables(feed)):
        spark.sql(f"drop table if exists {table}")
    lines = [("| feed | raw rows (DuckDB) | quarantined (DuckDB) | days | first copy | "
              "second copy | raw rows (Spark) | quarantined (Spark) |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    with Warehouse(HOME.warehouse).connect(read_only=True) as con:
        for feed in FEEDS:
            raw, bad = spark_raw.tables(feed)
            duck = [con.execute(f"select count(*) from {t}").fetchone()[0] for t in (raw, bad)]
            days = con.execute(f"select count(distinct _partition_date) from {raw}").fetchone()[0]
            seconds = []
            for _ in range(2):
                began = time.monotonic()
                spark_raw.copy_feed(con, spark, feed, HOME.spark / "scratch")
                seconds.append(time.monotonic() - began)
            on_spark = [spark.table(t).count() for t in (raw, bad)]
            lines.append(f"| {feed} | {duck[0]:,} | {duck[1]:,} | {days} | {seconds[0]:.1f} s | "
                         f"{seconds[1]:.1f} s | {on_spark[0]:,} | {on_spark[1]:,} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
