"""The landing sensor requests exactly the partitions that new or late files affect, once."""

from __future__ import annotations

import json

import dagster as dg

from dagster_project.defs.ingest.sensors import KEPT_STATES, landing_sensor, load_cursor
from dagster_project.resources import HomeResource


def _drop(landing, feed: str, day: str, name: str, text: str = "x\n") -> None:
    folder = landing / feed / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def _tick(home, cursor: str | None) -> dg.SensorResult:
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"home": HomeResource(root=str(home))})
        return landing_sensor(context)


def _ranges(result: dg.SensorResult) -> list[tuple[str, str, str]]:
    return sorted((r.asset_selection[0].to_user_string(),
                   r.tags.get("dagster/asset_partition_range_start", ""),
                   r.tags.get("dagster/asset_partition_range_end", ""))
                  for r in result.run_requests)


def test_new_days_late_files_and_quiet_ticks(tmp_path):
    landing = tmp_path / "landing"
    for day in ("2026-05-01", "2026-05-02", "2026-05-04"):
        _drop(landing, "orders", day, "orders.csv")
    _drop(landing, "customers", "2026-05-01", "customers.csv")

    first = _tick(tmp_path, None)
    assert _ranges(first) == [("raw/orders", "2026-05-01", "2026-05-02"),
                              ("raw/orders", "2026-05-04", "2026-05-04")]
    # the profiles load in the newest range's run, not in a run (and a refresh) of their own
    assert [[key.to_user_string() for key in r.asset_selection] for r in first.run_requests] == [
        ["raw/orders", "raw/orders_changes"],
        ["raw/orders", "raw/orders_changes", "raw/customers"]]

    quiet = _tick(tmp_path, first.cursor)
    assert quiet.run_requests == []

    _drop(landing, "orders", "2026-05-02", "late.csv")  # a late file for an old day
    _drop(landing, "events", "2026-05-05", "events.jsonl")  # a new day of another feed
    late = _tick(tmp_path, quiet.cursor)
    _drop(landing, "customers", "2026-05-06", "customers.csv")  # only profiles changed
    [profiles] = _tick(tmp_path, late.cursor).run_requests
    assert [key.to_user_string() for key in profiles.asset_selection] == ["raw/customers"]
    assert "dagster/asset_partition_range_start" not in profiles.tags
    assert _ranges(late) == [("raw/events", "2026-05-05", "2026-05-05"),
                             ("raw/orders", "2026-05-02", "2026-05-02")]
    assert len({r.run_key for r in late.run_requests}) == 2
    state = load_cursor(HomeResource(root=str(tmp_path)), late.cursor)
    assert state["orders"].keys() == {"2026-05-01", "2026-05-02", "2026-05-04"}


def test_the_cursor_is_short_and_names_the_state_kept_in_the_home(tmp_path):
    """The sensor page shows a digest and a summary, not every day's fingerprint; the state is
    a file under SEGMENTA_HOME, and a whole-state cursor of an earlier version still reads."""
    home = HomeResource(root=str(tmp_path))
    for day in range(1, 29):
        _drop(tmp_path / "landing", "orders", f"2026-05-{day:02d}", "orders.csv")
        _drop(tmp_path / "landing", "events", f"2026-05-{day:02d}", "events.jsonl")
    first = _tick(tmp_path, None)
    assert len(first.run_requests) == 1
    digest, summary = first.cursor.split(": ", 1)
    assert len(digest) == 16 and summary == "events 28 days, orders 28 days"
    kept = tmp_path / "dagster" / "landing_sensor" / f"{digest}.json"
    state = json.loads(kept.read_text())
    assert state == load_cursor(home, first.cursor) and len(state["orders"]) == 28
    assert _tick(tmp_path, first.cursor).run_requests == []
    assert _tick(tmp_path, json.dumps(state)).run_requests == []  # the old, whole-state cursor
    kept.unlink()  # its file gone: as a first tick (nothing loaded by `segmenta run` here)
    assert len(_tick(tmp_path, first.cursor).run_requests) == 1
    for day in range(1, 14):  # only the newest states stay
        _drop(tmp_path / "landing", "orders", f"2026-05-{day:02d}", "late.csv")
        _tick(tmp_path, None)
    assert len(list(kept.parent.glob("*.json"))) == KEPT_STATES


def test_a_run_refreshes_everything_downstream_and_feeds_on_one_range_share_it(tmp_path):
    """New and late files reach the marts in the same run: each request selects the feeds'
    raw assets and every unpartitioned asset below them."""
    from dagster_project.definitions import defs

    landing = tmp_path / "landing"
    _drop(landing, "orders", "2026-05-01", "orders.csv")
    _drop(landing, "events", "2026-05-01", "events.jsonl")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs,
                                          resources={"home": HomeResource(root=str(tmp_path))})
        result = landing_sensor(context)
    [request] = result.run_requests
    selected = {key.to_user_string() for key in request.asset_selection}
    assert {"raw/orders", "raw/orders_changes", "raw/events", "raw/events_changes"} <= selected
    assert {"marts/fct_orders", "marts/customer_rfm", "ml/customer_clusters",
            "published/marts"} <= selected
    assert "raw/customers" not in selected  # unchanged feeds are not reloaded


def test_the_first_tick_after_make_run_requests_nothing(tmp_path):
    """The cursor starts from what the last `segmenta run` loaded, not from nothing."""
    from core.settings import Home
    from ingest.landing import landing_fingerprints

    landing = tmp_path / "landing"
    _drop(landing, "orders", "2026-05-01", "orders.csv")
    home = Home(tmp_path)
    home.dagster_home.mkdir(parents=True)
    home.warehouse.write_bytes(b"")  # a warehouse exists
    home.run_state.write_text(json.dumps({"landing": landing_fingerprints(landing)}))
    assert _tick(tmp_path, None).run_requests == []
    _drop(landing, "orders", "2026-05-01", "late.csv")
    assert _ranges(_tick(tmp_path, None)) == [("raw/orders", "2026-05-01", "2026-05-01")]


def test_the_daily_schedule_skips_a_day_without_files_and_says_so(tmp_path):
    import datetime as dt

    from dagster_project.defs.schedules import daily_refresh

    def evaluate():
        context = dg.build_schedule_context(
            scheduled_execution_time=dt.datetime(2026, 5, 2, 5, 0, tzinfo=dt.UTC),
            resources={"home": HomeResource(root=str(tmp_path))})
        return daily_refresh(context)

    skipped = evaluate()
    assert isinstance(skipped, dg.SkipReason)
    assert "No orders or events landing files for 2026-05-01" in skipped.skip_message
    _drop(tmp_path / "landing", "orders", "2026-05-01", "orders.csv")
    request = evaluate()
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2026-05-01"
