"""The activation assets in Dagster: a failed check on a source mart stops every sync, also a
sync launched on its own later; a sync's metadata carries its counts."""

from __future__ import annotations

import dagster as dg
import pytest

from activation.audiences import Audience, Target
from dagster_project.defs.activation.assets import sync_asset
from dagster_project.defs.activation.resources import FileDestinationResource
from dagster_project.resources import WarehouseResource
from tests.test_activation_engine import make_warehouse


def definitions(tmp_path, rfm_is_good: bool) -> tuple[list, dict]:
    @dg.asset(key=["marts", "customer_rfm"],
              check_specs=[dg.AssetCheckSpec("great_expectations", asset=["marts", "customer_rfm"],
                                             blocking=True)])
    def customer_rfm():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(passed=rfm_is_good, check_name="great_expectations")

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
                       selection="key:activation/vip/file")
    assert not (tmp_path / "out" / "vip.csv").exists()

    # once the check passes again, the sync runs and reports its counts
    assets, resources = definitions(tmp_path, rfm_is_good=True)
    result = dg.materialize(assets, resources=resources, instance=instance)
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key.path[0] == "activation"]
    metadata = event.materialization.metadata
    assert metadata["n_added"].value == 20 and metadata["mode"].value == "first_sync"
    assert "activation.sync_log" in metadata["sync_log"].value
