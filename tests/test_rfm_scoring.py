"""RFM scoring and sessionization are dbt SQL; their dbt unit tests (given/expect rows) run here
on an empty warehouse (the Dagster build leaves unit tests out, as dbt advises for production:
an incremental model's unit test needs its table to exist)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from core.settings import DBT_PROJECT_DIR
from ingest import landing


def _dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).parent / "dbt"
    return subprocess.run(
        [str(dbt), *args, "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(home / "dbt_target"),
         "--log-path", str(home / "dbt_logs")],
        env={**os.environ, "SEGMENTA_HOME": str(home)}, capture_output=True, text=True, check=False,
    )


def test_dbt_unit_tests_pass(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        for feed in landing.FEEDS.values():
            landing.ensure_tables(con, feed)
    built = _dbt(tmp_path, "build", "--empty", "--select", "+customer_rfm +int_events_sessionized",
                 "+customer_fairness_groups", "stg_weather__daily",
                 "--exclude", "test_type:unit", "test_type:data")
    assert built.returncode == 0, built.stdout[-3000:]
    tested = _dbt(tmp_path, "test", "--select", "test_type:unit")
    assert tested.returncode == 0, tested.stdout[-3000:]
    # five unit tests, the two on-run-start hooks (the incremental models' watermarks) and the
    # on-run-end hook (erased customers' change-log entries)
    assert "PASS=8" in tested.stdout and "ERROR=0" in tested.stdout
    assert tested.stdout.count(" PASS ") == 5
    assert "test_rfm_equal_values_get_equal_scores" in tested.stdout
    assert "test_sessions_split_after_30_minutes_and_stitch_identified_devices" in tested.stdout
    assert "test_incremental_sessions_continue_over_midnight_and_restitch" in tested.stdout
    assert "test_fairness_groups_name_missing_values_unknown" in tested.stdout
    assert "test_weather_observation_wins_then_the_newest_forecast" in tested.stdout
