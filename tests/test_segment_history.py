"""Day-over-day refreshes through `segmenta run`: new landing days arrive one at a time (the
incremental dbt path with the day as partition window), customers move between RFM segments,
and `segment_transitions` counts exactly the moves seen between the two states of
`segment_memberships`."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.support import segmenta

pytestmark = pytest.mark.e2e
HELD_BACK = 1  # landing days that arrive after the first run, one per refresh
DAILY_FEEDS = ("orders", "events", "weather")


def _segmenta(home: Path, *args: str) -> str:
    return segmenta(home, *args).stdout


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


def _rule_members(home: Path, segment_key: str) -> set[str]:
    return set(_query(home, "select customer_id from marts.segment_memberships "
                            f"where segment_key = '{segment_key}'")["customer_id"])


def _rainy_in_spain(home: Path) -> tuple[str, set[str]]:
    """The store's today (the RFM as-of date) and the Spanish customers in whose city
    marts.weather_daily says it rains that day: who `rule_rainy_today_spain` should hold."""
    today = _query(home, "select max(as_of_date) as d from marts.customer_rfm")["d"][0]
    rainy = _query(home, f"""
        select customers.customer_id from marts.dim_customers as customers
        inner join marts.weather_daily as weather
            on lower(customers.city) = lower(weather.city) and customers.country = weather.country
        where customers.country = 'ES' and weather.is_rainy
          and weather.weather_date = '{today}'""")
    return str(today)[:10], set(rainy["customer_id"])


def _state(home: Path) -> dict:
    return {"members": _rfm_members(home), "transitions": _transitions(home),
            "rainy_spain": _rule_members(home, "rule_rainy_today_spain"),
            "expected_rainy_spain": _rainy_in_spain(home),
            "weather": _query(home, "select * from marts.weather_daily")}


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store whose last days are held back, and the state after each day's refresh."""
    home = tmp_path_factory.mktemp("history")
    _segmenta(home, "generate", "--customers", "1000", "--days", "35", "--seed", "21")
    held = tmp_path_factory.mktemp("held_back")
    folders = sorted({path.name for path in (home / "landing" / "events").glob("dt=*")})
    for day in folders[-HELD_BACK:]:  # a day's delivery: its orders, events and weather
        for feed in DAILY_FEEDS:
            shutil.move(home / "landing" / feed / day, held / f"{feed}_{day}")
    # a partner's orders file for a day ten days back arrives only after everything else
    shutil.move(home / "landing" / "orders" / folders[-11], held / f"late_{folders[-11]}")
    _segmenta(home, "run")
    states = [_state(home)]
    outputs = []
    for day in folders[-HELD_BACK:]:
        for feed in DAILY_FEEDS:
            shutil.move(held / f"{feed}_{day}", home / "landing" / feed / day)
        outputs.append(_segmenta(home, "run"))
        states.append(_state(home))
    return {"home": home, "states": states, "outputs": outputs, "days": folders[-HELD_BACK:],
            "held": held, "late_day": folders[-11]}


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


def test_a_late_file_ten_days_back_reaches_the_marts_and_the_published_copy(days):
    """One plain `segmenta run` loads just that day; no full refresh."""
    home, late = days["home"], days["late_day"]
    # before the file: only the day's orders whose returns came with later days' files
    before = _query(home, f"select order_id from marts.fct_orders where order_date = '{late[3:]}'")
    returned = _query(home, "select distinct order_id from raw.orders "
                            f"where cast(ordered_at as date) = '{late[3:]}'")
    assert set(before["order_id"]) == set(returned["order_id"])
    events_loaded = _query(home, "select count(*) as n, max(_loaded_at) as at from raw.events "
                                 f"where _partition_date = '{late[3:]}'")
    assert events_loaded["n"][0] > 0
    shutil.move(days["held"] / f"late_{late}", home / "landing" / "orders" / late)
    output = _segmenta(home, "run")
    assert f"landing days {late[3:]}..{late[3:]} and everything downstream" in output
    assert "rebuilt from all history" not in output
    # the day's events did not change: not loaded again (same rows, same load time)
    assert "Not loaded again (no landing day changed): events." in output
    assert _query(home, "select count(*) as n, max(_loaded_at) as at from raw.events "
                        f"where _partition_date = '{late[3:]}'").equals(events_loaded)
    # the file's orders: those placed that day, and the returns of earlier orders it carries
    raw = _query(home, f"select distinct order_id, cast(ordered_at as date) = '{late[3:]}' "
                       f"as placed_that_day from raw.orders where _partition_date = '{late[3:]}'")
    assert raw["placed_that_day"].sum() > 0
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as con:
        published = con.execute(f"select order_id from fct_orders "
                                f"where order_date = '{late[3:]}'").df()
        every_order = set(con.execute("select order_id from fct_orders").df()["order_id"])
        buyers = con.execute(f"""
            select rfm.customer_id, rfm.frequency, count(*) as n_completed
            from fct_orders as orders inner join customer_rfm as rfm using (customer_id)
            where orders.is_completed and orders.customer_id in (
                select customer_id from fct_orders
                where order_date = '{late[3:]}' and is_completed)
            group by all""").df()
    assert set(published["order_id"]) == set(raw.loc[raw["placed_that_day"], "order_id"]) \
        | set(before["order_id"])
    assert len(published) > len(before)
    assert set(raw["order_id"]) <= every_order
    assert len(buyers) > 0  # the day's buyers are scored, with the late orders counted
    assert (buyers["frequency"] == buyers["n_completed"]).all()
    # the incremental marts were patched into the copy, not copied: row for row the warehouse's
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        con.execute(f"attach '{home / 'published' / 'marts.duckdb'}' as pub (read_only)")
        for table in ("fct_orders", "fct_order_items", "fct_sessions"):
            note = con.execute("select comment from duckdb_tables() where database_name = 'pub' "
                               "and table_name = ?", [table]).fetchone()[0]
            assert json.loads(note)["rows"] > 0, table
            differ = con.execute(f"select count(*) from ((select * from marts.{table} except all "
                                 f"select * from pub.main.{table}) union all (select * from "
                                 f"pub.main.{table} except all select * from marts.{table}))"
                                 ).fetchone()[0]
            assert differ == 0, table


SENSOR_TICK = """
import dagster as dg
from core.settings import HOME
from dagster_project.definitions import defs
from dagster_project.defs.ingest.sensors import landing_sensor
from dagster_project.resources import HomeResource

with dg.DagsterInstance.get() as instance:
    context = dg.build_sensor_context(instance=instance, definitions=defs,
                                      resources={"home": HomeResource(root=str(HOME.root))})
    requests = landing_sensor(context).run_requests
    print("requests:", len(requests))
    for request in requests:  # what the daemon launches
        result = defs.resolve_job_def("refresh_all").execute_in_process(
            instance=instance, asset_selection=request.asset_selection, tags=request.tags,
            raise_on_error=False)
        print("run:", result.success, sorted(k.to_user_string() for k in request.asset_selection))
"""


def test_a_late_file_reaches_the_marts_through_one_sensor_run(days):
    """As in the UI: landing_sensor notices a late events file (its cursor starts from what
    `segmenta run` loaded, so nothing else is requested) and its one run refreshes the marts."""
    home = days["home"]
    day = sorted(path.name for path in (home / "landing" / "events").glob("dt=*"))[-12]
    late = {"type": "track", "event": "Order Completed", "messageId": "late-sensor-1",
            "timestamp": f"{day[3:]}T12:00:00Z", "userId": "C0000001",
            "anonymousId": "late-device", "properties": {"order_id": "late"}}
    (home / "landing" / "events" / day / "late.jsonl").write_text(json.dumps(late) + "\n")
    env = {**os.environ, "SEGMENTA_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run([sys.executable, "-c", SENSOR_TICK], env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "requests: 1" in done.stdout and "run: True" in done.stdout, done.stdout[-3000:]
    assert "'marts/fct_sessions'" in done.stdout and "'published/marts'" in done.stdout
    sessions = _query(home, "select count(*) as n from marts.fct_sessions "
                            "where visitor_id = 'late-device'")
    assert sessions["n"][0] == 1
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from fct_sessions "
                           "where visitor_id = 'late-device'").fetchone()[0] == 1


def test_a_weather_rule_follows_the_weather_day_by_day(days):
    """`country = 'ES' and is_rainy_today` holds exactly the Spanish customers of the cities
    where it rains on the store's today, and that changes with the next day's delivery."""
    todays = []
    for state in days["states"]:
        today, expected = state["expected_rainy_spain"]
        assert state["rainy_spain"] == expected, today
        todays.append(today)
    assert todays[0] < todays[-1]  # the next day's delivery moved the store's today on
    before, after = days["states"][0]["rainy_spain"], days["states"][-1]["rainy_spain"]
    assert before and after and before != after


def test_the_newest_weather_issue_wins(days):
    """The held-back day was a forecast before its delivery and is observed after it."""
    day = dt.date.fromisoformat(days["days"][-1][3:])
    kinds = []
    for state in days["states"]:
        weather = state["weather"]
        on_day = weather[pd.to_datetime(weather["weather_date"]).dt.date == day]
        assert on_day.groupby(["city", "country"]).size().max() == 1  # one row per city and day
        kinds.append(set(on_day["kind"]))
    assert kinds[0] == {"forecast"} and kinds[-1] == {"observed"}


def test_income_bands_come_from_the_profile_else_the_postal_area(days):
    home = days["home"]
    bands = _query(home, """
        with latest as (
            select customer_id, income_band, postal_code, country from raw.customers
            qualify row_number() over (partition by customer_id
                                       order by updated_at desc, _source_line desc) = 1
        )
        select customers.customer_id, customers.income_band, customers.income_band_source,
               latest.income_band as profile_band, seed.income_band as area_band
        from marts.dim_customers as customers
        inner join latest using (customer_id)
        left join staging.postal_area_income as seed
            on seed.country = latest.country
           and starts_with(latest.postal_code, seed.postal_prefix)
    """)
    from_profile = bands[bands["income_band_source"] == "profile"]
    from_area = bands[bands["income_band_source"] == "postal_area"]
    assert len(from_profile) > 500 and len(from_area) > 200
    assert (from_profile["income_band"] == from_profile["profile_band"]).all()
    assert from_area["profile_band"].fillna("").eq("").all()
    assert (from_area["income_band"] == from_area["area_band"]).all()
