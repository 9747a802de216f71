"""The activation assets in Dagster: a failed check on a source mart stops every sync, also a
sync launched on its own later; a sync's metadata carries its counts."""

from __future__ import annotations

import re

import dagster as dg
import pandas as pd
import pytest

from activation.audiences import Audience, Target
from dagster_project.defs.activation.assets import sync_asset
from dagster_project.defs.activation.resources import FileDestinationResource
from dagster_project.resources import WarehouseResource
from tests.test_activation_engine import make_warehouse


def definitions(tmp_path, rfm_is_good: bool, warning: bool = False) -> tuple[list, dict]:
    """A source mart whose check passes or fails (`warning`: fails with severity WARN, as a dbt
    test with severity warn does), a segment mart and an audience synced to a file."""
    @dg.asset(key=["marts", "customer_rfm"],
              check_specs=[dg.AssetCheckSpec("great_expectations", asset=["marts", "customer_rfm"],
                                             blocking=not warning)])
    def customer_rfm():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(
            passed=rfm_is_good, check_name="great_expectations",
            severity=dg.AssetCheckSeverity.WARN if warning else dg.AssetCheckSeverity.ERROR)

    @dg.asset(key=["marts", "segment_memberships"], deps=[customer_rfm])
    def segment_memberships():
        return None

    audience = Audience("vip", "rfm_champions", ("first_name",), 0.0,
                        (Target("file", "file", {}),))
    resources = {"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
                 "file_destination": FileDestinationResource(folder=str(tmp_path / "out"))}
    stub_contacts = dg.AssetSpec(["marts", "customer_contacts"])
    return [customer_rfm, segment_memberships, stub_contacts,
            sync_asset(audience, audience.targets[0])], resources


def test_a_failed_source_check_blocks_the_sync_now_and_later(tmp_path):
    make_warehouse(tmp_path / "w.duckdb", n=20)
    instance = dg.DagsterInstance.ephemeral()
    assets, resources = definitions(tmp_path, rfm_is_good=False)
    result = dg.materialize(assets, resources=resources, instance=instance,
                            raise_on_error=False)
    synced = [e for e in result.get_asset_materialization_events()
              if e.asset_key.path[0] == "activation"]
    assert not synced and not (tmp_path / "out" / "vip.csv").exists()

    # the sync launched on its own afterwards still refuses
    with pytest.raises(dg.Failure, match="marts/customer_rfm:great_expectations failed"):
        dg.materialize(assets, resources=resources, instance=instance,
                       selection="key:activation/vip_to_file")
    assert not (tmp_path / "out" / "vip.csv").exists()

    # once the check passes again, the sync runs and reports its counts
    assets, resources = definitions(tmp_path, rfm_is_good=True)
    result = dg.materialize(assets, resources=resources, instance=instance)
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key.path[0] == "activation"]
    metadata = event.materialization.metadata
    assert metadata["n_added"].value == 20 and metadata["mode"].value == "first_sync"
    assert "activation.sync_log" in metadata["sync_log"].value


def test_a_failed_warning_check_on_a_source_mart_does_not_stop_the_sync(tmp_path):
    """A warning (e.g. dbt's unknown_income_band on dim_customers) lists rows to fix; the
    segments are still right, so the audience syncs."""
    make_warehouse(tmp_path / "w.duckdb", n=20)
    instance = dg.DagsterInstance.ephemeral()
    assets, resources = definitions(tmp_path, rfm_is_good=False, warning=True)
    result = dg.materialize(assets, resources=resources, instance=instance)
    [check] = [c for c in result.get_asset_check_evaluations()
               if c.check_name == "great_expectations"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert len(pd.read_csv(tmp_path / "out" / "vip.csv")) == 20


def test_a_refused_sync_refuses_only_its_audience_and_the_run_goes_on(tmp_path, monkeypatch):
    """The removal guard trips on one audience: that audience x destination is refused
    (activation.sync_runs says why, its non-blocking check fails, its file is untouched); the
    other audience syncs and the published copy downstream of both is still built; the run
    succeeds, and only `--strict` turns the refusal into exit code 1."""
    import duckdb
    import pandas as pd

    from core.settings import Home
    from dagster_project import cli
    from dagster_project.defs.activation.assets import SYNCED_CHECK

    warehouse = tmp_path / "warehouse.duckdb"
    make_warehouse(warehouse, n=100)  # c000..c099, all in rfm_champions

    def other_members(n: int) -> None:  # the second audience's segment: its first n customers
        with duckdb.connect(str(warehouse)) as con:
            con.execute("delete from marts.segment_memberships where segment_key = 'rfm_loyal'")
            con.register("_m", pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(n)],
                                             "segment_key": "rfm_loyal",
                                             "segment_name": "Loyal Customers"}))
            con.execute("insert into marts.segment_memberships select * from _m")

    other_members(40)
    audiences = [Audience("vip", "rfm_champions", ("first_name",), 0.0,
                          (Target("file", "file", {}),)),
                 Audience("loyal", "rfm_loyal", ("first_name",), 0.0,
                          (Target("file", "file", {}),))]
    (tmp_path / "audiences.yml").write_text(
        "audiences:\n"
        "  - {key: vip, segment: rfm_champions, fields: [first_name], destinations: [file]}\n"
        "  - {key: loyal, segment: rfm_loyal, fields: [first_name], destinations: [file]}\n")
    monkeypatch.setenv("SEGMENTA_AUDIENCES", str(tmp_path / "audiences.yml"))

    @dg.asset(key=["marts", "segment_memberships"])
    def segment_memberships():
        return None

    syncs = [sync_asset(audience, audience.targets[0]) for audience in audiences]

    @dg.asset(key=["published", "marts"], deps=[s.key for s in syncs])
    def published():
        (tmp_path / "published.txt").write_text("published")

    assets = [segment_memberships, dg.AssetSpec(["marts", "customer_contacts"]), *syncs,
              published]
    resources = {"warehouse": WarehouseResource(path=str(warehouse)),
                 "file_destination": FileDestinationResource(folder=str(tmp_path / "out"))}
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(assets, resources=resources, instance=instance).success
    home = Home(tmp_path)
    assert cli.strict_code(home, strict=True) == 0

    # the next day: vip's segment loses 70 of its 100 members (the guard trips), loyal gains 5
    make_warehouse(warehouse, n=100, members=range(30))
    other_members(45)
    (tmp_path / "published.txt").unlink()
    result = dg.materialize(assets, resources=resources, instance=instance)
    assert result.success  # nothing raised: the refusal is the vip x file sync's only
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    assert metadata["activation/vip_to_file"]["status"].value == "refused"
    assert "would remove 70 of 100" in metadata["activation/vip_to_file"]["message"].value
    assert metadata["activation/loyal_to_file"]["n_added"].value == 5
    assert "published/marts" in metadata and (tmp_path / "published.txt").exists()
    checks = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()
              if e.check_name == SYNCED_CHECK}
    assert not checks["activation/vip_to_file"].passed
    assert checks["activation/vip_to_file"].severity == dg.AssetCheckSeverity.ERROR
    assert not checks["activation/vip_to_file"].blocking
    assert checks["activation/loyal_to_file"].passed
    with duckdb.connect(str(warehouse), read_only=True) as con:
        status, message = con.execute(
            "select status, message from activation.sync_runs where run_id = ? and "
            "audience_key = 'vip'", [result.run_id]).fetchone()
    assert status == "refused" and "would remove 70 of 100" in message
    assert len(pd.read_csv(tmp_path / "out" / "vip.csv")) == 100  # nothing removed
    assert len(pd.read_csv(tmp_path / "out" / "loyal.csv")) == 45

    # the summary lists what was refused and why; --strict (only) makes it exit code 1
    text = cli.summary(home)
    print(text)
    assert re.search(r"vip -> file +refused", text)
    assert re.search(r"Not synced .*\n  vip -> file refused: .*would remove 70 of 100", text)
    assert cli.strict_code(home, strict=False) == 0
    assert cli.strict_code(home, strict=True) == 1

    # --force-removals lets the removal through
    forced = dg.materialize(assets, resources=resources, instance=instance, run_config={
        "ops": {"activation__vip_to_file": {"config": {"force_removals": True}}}})
    assert forced.success and len(pd.read_csv(tmp_path / "out" / "vip.csv")) == 30
    assert cli.strict_code(home, strict=True) == 0
