"""Day-over-day refreshes through `segmenta run`: new landing days arrive one at a time (the
incremental dbt path with the day as partition window), customers move between RFM segments,
and `segment_transitions` counts exactly the moves seen between the two states of
`segment_memberships`."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e
HELD_BACK = 1  # landing days that arrive after the first run, one per refresh


def _segmenta(home: Path, *args: str) -> str:
    env = {**os.environ, "SEGMENTA_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=env,
                          check=False, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _query(home: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def _rfm_members(home: Path) -> dict[str, str]:
    frame = _query(home, "select customer_id, segment_key from marts.segment_memberships "
                         "where segment_type = 'rfm'")
    return dict(zip(frame["customer_id"], frame["segment_key"], strict=True))


def _transitions(home: Path) -> Counter:
    frame = _query(home, "select from_segment_key, to_segment_key, n_customers "
                         "from marts.segment_transitions where segment_type = 'rfm'")
    return Counter({(row.from_segment_key, row.to_segment_key): row.n_customers
                    for row in frame.itertuples()})


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store whose last days are held back, and the state after each day's refresh."""
    home = tmp_path_factory.mktemp("history")
    _segmenta(home, "generate", "--customers", "1000", "--days", "35", "--seed", "21")
    held = tmp_path_factory.mktemp("held_back")
    folders = sorted({path.name for path in (home / "landing" / "events").glob("dt=*")})
    for day in folders[-HELD_BACK:]:
        for feed in ("orders", "events"):
            shutil.move(home / "landing" / feed / day, held / f"{feed}_{day}")
    _segmenta(home, "run")
    states = [{"members": _rfm_members(home), "transitions": _transitions(home)}]
    outputs = []
    for day in folders[-HELD_BACK:]:
        for feed in ("orders", "events"):
            shutil.move(held / f"{feed}_{day}", home / "landing" / feed / day)
        outputs.append(_segmenta(home, "run"))
        states.append({"members": _rfm_members(home), "transitions": _transitions(home)})
    return {"home": home, "states": states, "outputs": outputs, "days": folders[-HELD_BACK:]}


def test_each_new_day_is_its_own_incremental_run(days):
    for day, output in zip(days["days"], days["outputs"], strict=True):
        assert f"landing days {day[3:]}..{day[3:]} and everything downstream" in output
        assert "rebuilt from all history" not in output
    home = days["home"]
    # the incremental tables hold the held-back days, once
    loaded = _query(home, "select count(*) as n, count(distinct event_id) as d "
                          "from intermediate.int_events_sessionized")
    raw = _query(home, "select count(*) as n from raw.events")["n"][0]
    assert loaded["n"][0] == loaded["d"][0] == raw


def test_transitions_count_exactly_the_moves_between_refreshes(days):
    states = days["states"]
    moved_in_all = 0
    for before, after in itertools.pairwise(states):
        expected = Counter()
        for customer in before["members"].keys() | after["members"].keys():
            old = before["members"].get(customer, "(none)")
            new = after["members"].get(customer, "(none)")
            if old != new:
                expected[(old, new)] += 1
        recorded = after["transitions"] - before["transitions"]
        assert recorded == expected
        moved_in_all += sum(expected.values())
    # a day of new orders and a day more of recency moves customers between RFM segments
    assert moved_in_all > 0


def test_summary_sizes_and_changes_follow_the_memberships(days):
    home = days["home"]
    summary = _query(home, "select segment_key, n_customers from marts.segment_summary "
                           "where segment_type = 'rfm'")
    sizes = Counter(days["states"][-1]["members"].values())
    assert dict(zip(summary["segment_key"], summary["n_customers"], strict=True)) == sizes
    today = dt.date.today()
    dates = _query(home, "select distinct transition_date from marts.segment_transitions")
    assert set(pd.to_datetime(dates["transition_date"]).dt.date) <= {today}
