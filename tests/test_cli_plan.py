"""What `segmenta run` loads: the changed days in as few runs as possible, and a rebuild when a
run setting (the RFM look-back) changes."""

from __future__ import annotations

import json

from core.settings import Home
from dagster_project import cli


def _day(home: Home, day: str) -> None:
    folder = home.landing / "orders" / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders.csv").write_text(f"order_id\n{day}\n")


def test_days_without_files_between_new_days_do_not_split_the_load():
    # Monday to Friday twice, a weekend without orders between: one range
    days = ["2011-01-03", "2011-01-04", "2011-01-07", "2011-01-10"]
    assert cli.contiguous_ranges(cli.with_empty_gaps(days, set(days))) == [
        ("2011-01-03", "2011-01-10")]
    # a day in a gap that holds files (or did at the last run) is not reloaded for nothing
    assert cli.contiguous_ranges(cli.with_empty_gaps(days, set(days) | {"2011-01-08"})) == [
        ("2011-01-03", "2011-01-07"), ("2011-01-10", "2011-01-10")]


def test_plan_loads_a_fresh_store_in_one_range_then_only_what_is_new(tmp_path, monkeypatch):
    monkeypatch.delenv(cli.RFM_LOOKBACK_ENV, raising=False)
    home = Home(tmp_path).ensure()
    for day in ("2011-01-03", "2011-01-04", "2011-01-07", "2011-01-10"):
        _day(home, day)
    days, rest, _, state = cli.plan(home, force=False)
    assert cli.contiguous_ranges(days) == [("2011-01-03", "2011-01-10")] and rest
    home.run_state.write_text(json.dumps(state))
    home.warehouse.touch()  # as the run would have left it

    _day(home, "2011-01-12")  # a new day after a gap of one loaded day: only it
    days, _, _, state = cli.plan(home, force=False)
    assert days == ["2011-01-12"]
    home.run_state.write_text(json.dumps(state))
    assert cli.plan(home, force=False)[:2] == ([], False)

    # a new RFM look-back rebuilds the marts although no file and no code changed
    monkeypatch.setenv(cli.RFM_LOOKBACK_ENV, "3650")
    days, rest, _, state = cli.plan(home, force=False)
    assert days == [] and rest and state["settings"] == {"rfm_lookback_days": "3650"}


def test_a_due_erasure_sweep_is_a_reason_to_run(tmp_path, monkeypatch):
    """Landing files that wait for the erasure sweep longer than SEGMENTA_ERASURE_SWEEP_DAYS
    make the next run load the profiles (whose load sweeps) although nothing was delivered."""
    from ingest import landing

    home = Home(tmp_path).ensure()
    _day(home, "2011-01-03")
    home.run_state.write_text(json.dumps(cli.plan(home, force=False)[3]))
    home.warehouse.touch()
    landing.defer_landing_erasures(home.landing, {"orders/dt=2011-01-03/orders.csv": {"C1"}})
    monkeypatch.setenv(landing.SWEEP_ENV, "7")
    assert cli.plan(home, force=False)[:2] == ([], False)
    monkeypatch.setenv(landing.SWEEP_ENV, "0")
    assert cli.plan(home, force=False)[:2] == ([], True)


def test_files_a_run_writes_into_the_project_are_not_code(tmp_path, monkeypatch):
    """dbt writes dbt_project/.user.yml on its first run: a fresh clone's second run must not
    take it for new code (and rebuild every incremental model from all history)."""
    project = tmp_path / "project"
    (project / "dbt_project" / "models").mkdir(parents=True)
    (project / "dbt_project" / "dbt_project.yml").write_text("name: x\n")
    (project / "dbt_project" / "models" / "a.sql").write_text("select 1\n")
    monkeypatch.setattr(cli, "PROJECT_ROOT", project)
    before = cli.code_fingerprint()
    (project / "dbt_project" / ".user.yml").write_text("id: 1\n")
    assert cli.code_fingerprint() == before
    (project / "dbt_project" / "models" / "a.sql").write_text("select 2\n")
    assert cli.code_fingerprint() != before
