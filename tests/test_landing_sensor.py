"""The landing sensor requests exactly the partitions that new or late files affect, once."""

from __future__ import annotations

import json

import dagster as dg

from dagster_project.defs.ingest.sensors import landing_sensor
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
    assert _ranges(first) == [("raw/customers", "", ""),
                              ("raw/orders", "2026-05-01", "2026-05-02"),
                              ("raw/orders", "2026-05-04", "2026-05-04")]

    quiet = _tick(tmp_path, first.cursor)
    assert quiet.run_requests == []

    _drop(landing, "orders", "2026-05-02", "late.csv")  # a late file for an old day
    _drop(landing, "events", "2026-05-05", "events.jsonl")  # a new day of another feed
    late = _tick(tmp_path, quiet.cursor)
    assert _ranges(late) == [("raw/events", "2026-05-05", "2026-05-05"),
                             ("raw/orders", "2026-05-02", "2026-05-02")]
    assert len({r.run_key for r in late.run_requests}) == 2
    assert json.loads(late.cursor)["orders"].keys() == {"2026-05-01", "2026-05-02", "2026-05-04"}
