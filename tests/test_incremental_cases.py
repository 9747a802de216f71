"""The exact incremental refresh, the cases a store meets every week spelled out: a late file
ten days back, a re-delivered day with a line and events removed, the work a refresh does, and
a refresh killed half-way. Each ends with exactly the rows a full rebuild of the same landing
zone computes. (tests/test_incremental_models.py has the helpers and the Hypothesis histories;
these run in their own file so that the two xdist workers share the load.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import duckdb
import pytest

from tests.test_incremental_models import (
    DAYS,
    SELECT,
    Change,
    _day_dir,
    _read_csv,
    assert_same_tables,
    dbt,
    dbt_process,
    deliver,
    rebuild,
    sample_store,
    start_store,
    tables,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def built(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store built on every day but one ten days back, which arrives late."""
    home = tmp_path_factory.mktemp("built")
    start_store(store, home)
    for day in DAYS:
        if day != DAYS[3]:
            deliver(store, home, day)
    dbt(home, "build", *SELECT)
    return home


def test_a_late_file_ten_days_back_reaches_every_mart(store, built, tmp_path):
    late = DAYS[3]
    # the day's orders in the marts, and in raw (by the day they were placed): before the file,
    # only those whose returns came with later days' files
    placed = ("select count(distinct order_id) from raw.orders "
              "where cast(ordered_at as date) = ?")
    in_marts = "select count(*) from marts.fct_orders where order_date = ?"
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        before = con.execute(in_marts, [late]).fetchone()[0]
        assert before == con.execute(placed, [late]).fetchone()[0]
    deliver(store, built, late)
    dbt(built, "build", *SELECT)
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        raw = con.execute(placed, [late]).fetchone()[0]
        marts = con.execute(in_marts, [late]).fetchone()[0]
    assert raw > before and marts == raw
    assert_same_tables(tables(built), rebuild(built / "landing", tmp_path))


def test_a_redelivered_day_without_a_line_and_ten_events_leaves_no_trace(store, built,
                                                                         tmp_path):
    day = DAYS[6]
    _, rows = _read_csv(_day_dir(store, "orders", day) / "orders.csv")
    events = (_day_dir(store, "events", day) / "events.jsonl").read_text().splitlines()
    line_id = f"{rows[0][0]}-{rows[0][1]}"
    event_ids = [json.loads(line)["messageId"] for line in events[:10]]
    deliver(store, built, day, (Change("drop_lines", 0, 1), Change("drop_events", 0, 10)))
    dbt(built, "build", *SELECT)
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_order_items where order_line_id = ?",
                           [line_id]).fetchone()[0] == 0
        assert con.execute("select count(*) from intermediate.int_events_sessionized "
                           "where list_contains(?, event_id)", [event_ids]).fetchone()[0] == 0
    assert_same_tables(tables(built), rebuild(built / "landing", tmp_path))


def test_a_refresh_does_work_in_proportion_to_what_changed(store, built):
    """A refresh after one re-delivered day (two of its events dropped) writes that day's
    visitors, not the history (the rows it wrote carry a change id newer than any before it);
    its orders file did not change, so at most the orders of visitors whose identity the
    dropped events touched; and a refresh with nothing new writes nothing."""
    visits = ("intermediate.int_events_sessionized", "marts.fct_sessions",
              "intermediate.int_customer_activity_daily")
    newest = "select coalesce(max(change_id), 0) from {}"
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        before = {t: con.execute(newest.format(t)).fetchone()[0]
                  for t in (*visits, "marts.fct_orders")}
    deliver(store, built, DAYS[-1], (Change("drop_events", 3, 2),))
    dbt(built, "build", *SELECT)
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        for table, last in before.items():
            total, written = con.execute(
                f"select count(*), count(*) filter (where change_id > ?) from {table}",
                [last]).fetchone()
            assert written < total / 4, (table, written, total)
            assert written > 0 or table == "marts.fct_orders", (table, written, total)
    before = tables(built)
    dbt(built, "build", *SELECT)
    assert_same_tables(before, tables(built))


def test_a_killed_refresh_is_caught_up_by_the_next_one(store, built, tmp_path):
    deliver(store, built, DAYS[8], (Change("drop_lines", 1, 2), Change("add_identify", 7)))
    running = dbt_process(built, "build", *SELECT)
    time.sleep(6)  # past the first models
    os.killpg(running.pid, signal.SIGKILL)
    running.wait()
    dbt(built, "build", *SELECT)
    assert_same_tables(tables(built), rebuild(built / "landing", tmp_path))


@pytest.mark.parametrize("history", ["refreshed", "full build"])
def test_a_duplicate_written_by_the_last_refresh_fails_its_uniqueness_test(built, tmp_path,
                                                                          history):
    """The incremental models' uniqueness tests check the rows of the newest change against all
    history (`unique_in_latest_change`): a duplicate among them fails the build. After a refresh
    the test joins the newest change to the table; where the newest change holds the whole table
    (a full build stamps every row with it) it groups the table, as the plain test does."""
    home = tmp_path / "home"
    shutil.copytree(built, home)
    models = ("intermediate.int_events_sessionized", "intermediate.int_customer_activity_daily",
              "marts.fct_sessions")
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for model in models:
            if history == "full build":
                con.execute(f"update {model} set change_id = (select max(change_id) "
                            f"from {model})")
            else:  # the fixture's refreshes: the newest change is a small part
                newest = con.execute(f"select avg((change_id = (select max(change_id) from "
                                     f"{model}))::int) from {model}").fetchone()[0]
                assert newest < 0.5, (model, newest)
            # one row of the newest change, written twice
            con.execute(f"insert into {model} select * from {model} "
                        f"where change_id = (select max(change_id) from {model}) limit 1")
    failed = failed_tests(home, *(model.split(".")[1] for model in models))
    activity_key = ("customer_id__visitor_id__activity_date__device_type__os_name__"
                    "product_category__campaign_name")
    assert sorted(failed) == sorted(
        f"unique_in_latest_change_{model.split('.')[1]}_{columns}"
        for model, columns in zip(models, ("event_id", activity_key, "session_id"))), failed
    assert all(("inner join latest" in sql) == (history == "refreshed")
               for sql in failed.values()), history


def failed_tests(home: Path, *selected: str) -> dict[str, str]:
    """`dbt test` of the selected models on a home: the failed tests' compiled SQL by name."""
    from dbt.cli.main import dbtRunner

    from tests.test_incremental_models import _close_dbt_duckdb, _command, _manifest

    previous = os.environ.get("SEGMENTA_HOME")
    os.environ["SEGMENTA_HOME"] = str(home)
    try:
        done = dbtRunner(manifest=_manifest[0]).invoke(_command(home, (
            "test", "--select", *selected, "--quiet", "--no-write-json")))
    finally:
        os.environ["SEGMENTA_HOME"] = previous or ""
        _close_dbt_duckdb()
    return {r.node.name: r.node.compiled_code for r in done.result if str(r.status) == "fail"}


@pytest.mark.parametrize("history", ["refreshed", "first build"])
def test_a_duplicate_loaded_since_the_last_refresh_fails_the_staging_uniqueness_test(
        built, tmp_path, history):
    """The staging views' uniqueness tests check the rows loaded since their incremental
    consumer last ran against all history (`unique_in_new_loads`); with no consumer run yet
    they group the whole view. A key loaded twice (here written into raw past ingestion's own
    duplicate check) fails the build either way."""
    home = tmp_path / "home"
    shutil.copytree(built, home)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for feed, key in (("events", "message_id"), ("orders", "order_id")):
            # the newest day is loaded again after the consumers ran (a change id past their
            # watermarks), with a key of an older day in it
            newest = con.execute(f"select max(_partition_date) from raw.{feed}").fetchone()[0]
            con.execute(f"insert into raw.{feed} select * replace (?::date as _partition_date) "
                        f"from raw.{feed} where _partition_date < ? order by {key} limit 1",
                        [newest, newest])
            con.execute("update raw.loaded_days set change_id = (select max(change_id) + 1 "
                        "from intermediate.incremental_watermarks) where feed = ? and day = ?",
                        [feed, newest])
        if history == "first build":
            con.execute("delete from intermediate.incremental_watermarks where model_name in "
                        "('int_events_sessionized', 'fct_order_items')")
    failed = failed_tests(home, "stg_shop__events", "stg_shop__order_lines")
    assert sorted(failed) == [
        "unique_in_new_loads_stg_shop__events_event_id__int_events_sessionized__events",
        "unique_in_new_loads_stg_shop__order_lines_order_line_id__fct_order_items__orders"], failed
    assert all(("inner join new_values" in sql) == (history == "refreshed")
               for sql in failed.values()), history
