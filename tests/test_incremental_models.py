"""The incremental dbt models, fed one load day at a time as Dagster's daily runs do, end up with
exactly the rows a full rebuild from all history computes; and a re-run of a day changes nothing."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import generator
from core.settings import DBT_PROJECT_DIR
from core.warehouse import Warehouse
from ingest import landing

pytestmark = pytest.mark.e2e

# the incremental models and the marts computed from them
TABLES = {
    "intermediate.int_events_sessionized": ["event_id"],
    "intermediate.int_device_identities": ["anonymous_id"],
    "intermediate.int_customer_activity_daily": ["customer_id", "activity_date", "device_type",
                                                 "os_name", "product_category", "campaign_name"],
    "marts.fct_sessions": ["session_id"],
    "marts.fct_orders": ["order_id"],
    "marts.fct_order_items": ["order_line_id"],
    "marts.customer_features": ["customer_id"],
    "marts.dim_customers": ["customer_id"],
}
SELECT = ["--select", "+customer_features +fct_order_items", "--exclude-resource-type", "unit_test",
          "--indirect-selection", "cautious"]


def _dbt(home: Path, *args: str) -> str:
    dbt = Path(sys.executable).parent / "dbt"
    done = subprocess.run(
        [str(dbt), *args, "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(home / "dbt_target"),
         "--log-path", str(home / "dbt_logs")],
        env={**os.environ, "SEGMENTA_HOME": str(home)}, capture_output=True, text=True,
        check=False, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def _window(day: dt.date) -> list[str]:
    return ["--vars", f'{{"partition_start": "{day}", "partition_end": "{day}"}}']


def _tables(home: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        frames = {}
        for table, key in TABLES.items():
            columns = [row[0] for row in con.execute(f"describe {table}").fetchall()
                       if row[0] != "refreshed_at"]
            frame = con.execute(f"select {', '.join(columns)} from {table}").df()
            frames[table] = frame.sort_values(key, na_position="first").reset_index(drop=True)
    return frames


@pytest.fixture(scope="module")
def incremental_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A warehouse built on the first days, then refreshed one load day at a time."""
    home = tmp_path_factory.mktemp("incremental")
    end = dt.date(2026, 6, 14)
    generator.generate(home / "landing", home / "generator", customers=600, days=14,
                       end_date=end, seed=11, progress=False)
    warehouse = Warehouse(home / "warehouse.duckdb")
    for feed in ("customers", "products"):
        landing.load_all_days(warehouse, home / "landing", feed)
    days = [end - dt.timedelta(days=13 - i) for i in range(14)]
    first, later = days[:-3], days[-3:]
    for feed in ("orders", "events"):
        landing.load_days(warehouse, home / "landing", feed, first)
    _dbt(home, "build", *SELECT, *_window(first[-1]), "--full-refresh")
    for day in later:
        for feed in ("orders", "events"):
            landing.load_days(warehouse, home / "landing", feed, [day])
        _dbt(home, "build", *SELECT, *_window(day))
    return home, {"days": later}


def test_daily_refreshes_equal_a_full_rebuild(incremental_home, tmp_path):
    home, _ = incremental_home
    incremental = _tables(home)
    shutil.copy(home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    _dbt(tmp_path, "build", *SELECT, "--full-refresh")
    rebuilt = _tables(tmp_path)
    for table, frame in incremental.items():
        assert len(frame) > 0, table
        pd.testing.assert_frame_equal(frame, rebuilt[table], check_dtype=False, obj=table)


def test_a_refresh_writes_only_the_days_rows(incremental_home):
    home, run = incremental_home
    day = run["days"][-1]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        for table, date_column in (("intermediate.int_events_sessionized", "event_date"),
                                   ("marts.fct_sessions", "session_date"),
                                   ("intermediate.int_customer_activity_daily", "activity_date")):
            total, written, written_before = con.execute(f"""
                select count(*),
                       count(*) filter (where refreshed_at = (select max(refreshed_at) from {table})),
                       count(*) filter (where refreshed_at = (select max(refreshed_at) from {table})
                                          and {date_column} < ?)
                from {table}""", [day - dt.timedelta(days=1)]).fetchone()
            # the last run wrote the day's rows (and a few of the day before: visits over
            # midnight, re-attributed devices), not the history
            assert 0 < written < total / 5, (table, written, total)
            assert written_before <= written / 10, (table, written_before, written)


def test_rerunning_a_day_changes_nothing(incremental_home):
    home, run = incremental_home
    before = _tables(home)
    _dbt(home, "build", *SELECT, *_window(run["days"][-1]))
    after = _tables(home)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[table], check_dtype=False, obj=table)
