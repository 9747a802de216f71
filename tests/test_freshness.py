"""Freshness checks: the policy's clocks and deadline, and the `fresh` checks run by Dagster on a
real warehouse loaded by the real loader (a day missing fails, a complete feed passes)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from core.warehouse import Warehouse
from dagster_project.defs.alerts import freshness as checks
from dagster_project.resources import HomeResource, WarehouseResource
from ingest import freshness, landing

HEADER = ("order_id,line_number,customer_id,ordered_at,product_id,quantity,unit_price,currency,"
          "status,channel,shipping_country,discount_amount")
UTC = dt.UTC


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_wall_clock_yesterday_is_due_at_the_deadline_not_before():
    policy = freshness.FreshnessPolicy(clock="wall")
    assert policy.due_through(_at("2026-12-05T06:59"), None) == (dt.date(2026, 12, 3), "wall")
    assert policy.due_through(_at("2026-12-05T07:00"), None) == (dt.date(2026, 12, 4), "wall")


def test_auto_uses_the_store_clock_for_a_historical_sample_and_the_wall_for_a_live_store():
    policy = freshness.FreshnessPolicy()
    now = _at("2026-12-05T08:00")
    assert policy.due_through(now, dt.date(2026, 10, 31)) == (dt.date(2026, 10, 31), "store")
    assert policy.due_through(now, dt.date(2026, 12, 4)) == (dt.date(2026, 12, 4), "wall")
    assert policy.due_through(now, None) == (None, "store")


def test_policy_from_env_refuses_bad_settings(monkeypatch):
    monkeypatch.setenv("SEGMENTA_FRESHNESS_CLOCK", "sundial")
    with pytest.raises(ValueError, match="SEGMENTA_FRESHNESS_CLOCK"):
        freshness.FreshnessPolicy.from_env()
    monkeypatch.setenv("SEGMENTA_FRESHNESS_CLOCK", "wall")
    monkeypatch.setenv("SEGMENTA_FRESHNESS_DEADLINE", "7 o'clock")
    with pytest.raises(ValueError, match="HH:MM"):
        freshness.FreshnessPolicy.from_env()


def test_a_gap_and_a_day_not_loaded_are_missing_a_snapshot_gap_is_not():
    day = dt.date(2026, 5, 1)
    d = [day + dt.timedelta(days=n) for n in range(4)]
    report = freshness.daily_feed_freshness("orders", {d[0], d[2], d[3]}, {d[0], d[2]}, d[3],
                                            "store")
    assert (report.fresh, report.missing, report.not_loaded) == (False, [d[1], d[3]], [d[3]])
    assert "2 day(s) due through 2026-05-04 missing" in report.describe()
    snapshot = freshness.snapshot_feed_freshness("customers", {d[0], d[2]}, {d[0], d[2]}, d[3],
                                                 "store")
    assert snapshot.fresh


def _deliver(home: Path, day: str) -> None:
    folder = home / "landing" / "orders" / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"O{day}{i},1,C1,{day}T10:00:00Z,P1,1,9.50,EUR,completed,web,ES,0" for i in range(30)]
    (folder / "orders.csv").write_text("\n".join([HEADER, *rows]) + "\n")


def _load(home: Path, *days: str) -> None:
    landing.load_days(Warehouse(home / "warehouse.duckdb"), home / "landing", "orders",
                      [dt.date.fromisoformat(day) for day in days])


def _run_checks(home: Path, instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    defs = dg.Definitions(
        assets=[dg.AssetSpec(key) for key in (["raw", "orders"], ["raw", "events"],
                                              ["marts", "customer_360"])],
        asset_checks=[checks._feed_check("orders"), checks._feed_check("events"),
                      checks._mart_check("marts/customer_360")],
        jobs=[dg.define_asset_job("fresh", selection=dg.AssetSelection.all_asset_checks())],
        resources={"home": HomeResource(root=str(home)),
                   "warehouse": WarehouseResource(path=str(home / "warehouse.duckdb"))})
    result = defs.resolve_job_def("fresh").execute_in_process(instance=instance)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def _built(instance: dg.DagsterInstance, path: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(path.split("/")))


def test_fresh_checks_pass_on_a_complete_feed_and_fail_on_a_missing_day(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTA_FRESHNESS_CLOCK", "auto")  # May 2026 is history: store clock
    for day in ("2026-05-01", "2026-05-02", "2026-05-03"):
        _deliver(tmp_path, day)
    _load(tmp_path, "2026-05-01", "2026-05-02", "2026-05-03")
    with dg.DagsterInstance.ephemeral() as instance:
        _built(instance, "raw/orders")
        _built(instance, "marts/customer_360")
        fresh = _run_checks(tmp_path, instance)
        assert {key: e.passed for key, e in fresh.items()} == {
            "raw/orders": True, "raw/events": True, "marts/customer_360": True}
        assert fresh["raw/orders"].metadata["clock"].value == "store"
        assert fresh["raw/orders"].metadata["newest_loaded"].value == "2026-05-03"

        _deliver(tmp_path, "2026-05-05")  # delivered, not loaded; 05-04 never delivered
        _built(instance, "raw/orders")  # a newer load the mart has not seen
        stale = _run_checks(tmp_path, instance)
        assert {key: e.passed for key, e in stale.items()} == {
            "raw/orders": False, "raw/events": True, "marts/customer_360": False}
        orders = stale["raw/orders"]
        assert orders.severity == dg.AssetCheckSeverity.WARN  # late data never blocks a sync
        assert "2026-05-04, 2026-05-05" in orders.description
        assert orders.metadata["missing_days"].value == 2
        assert orders.metadata["delivered_not_loaded"].value == 1
        mart = stale["marts/customer_360"].description
        assert "orders: 2 day(s)" in mart and "built before the newest raw load" in mart

        monkeypatch.setenv("SEGMENTA_FRESHNESS_CLOCK", "wall")  # on the wall clock: months late
        wall = _run_checks(tmp_path, instance)
        assert not wall["raw/orders"].passed and wall["raw/orders"].metadata["clock"].value == "wall"
        assert wall["raw/events"].passed  # never delivered: nothing is late


def test_the_checks_run_at_the_deadline_not_in_the_refresh():
    from dagster_project.definitions import defs

    refresh = {n.name for n in defs.resolve_job_def("refresh_all").graph.nodes}
    fresh = {n.name for n in defs.resolve_job_def("freshness_checks").graph.nodes}
    assert fresh == {f"{p.replace('/', '__')}_fresh" for p in (
        "raw/orders", "raw/events", "raw/customers", "raw/products", "raw/weather",
        "marts/customer_360", "marts/segment_memberships", "published/marts")}
    assert not fresh & refresh
    schedule = defs.resolve_schedule_def("freshness_deadline")
    assert schedule.cron_schedule == "0 7 * * *" and schedule.execution_timezone == "UTC"
