"""The home's Dagster instance writes its event log through dagster_project/storage.py (engines
kept per database file), in Dagster's own layout: the stock class reads every event back."""

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from core.settings import Home
from dagster_project.storage import KEPT_ENGINES, SegmentaSqliteEventLogStorage

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-21")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


def test_the_home_instance_keeps_its_engines_and_the_stock_class_reads_its_events(tmp_path):
    home = Home(tmp_path).ensure()
    runs_dir = home.dagster_home / "history" / "runs"
    assert f'base_dir: "{home.dagster_home.resolve().as_posix()}/history/runs"' in (
        home.dagster_home / "dagster.yaml").read_text()

    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, SegmentaSqliteEventLogStorage)
        results = [dg.materialize([daily], instance=instance, tags={
            "dagster/asset_partition_range_start": "2026-01-01",
            "dagster/asset_partition_range_end": "2026-01-20"}) for _ in range(KEPT_ENGINES + 2)]
        assert all(result.success for result in results)
        # the index and the latest runs' files, no more
        assert len(storage._engines) == KEPT_ENGINES
        written = instance.fetch_materializations(dg.AssetKey("daily"), limit=1000).records

    stock = SqliteEventLogStorage(str(runs_dir))
    read = stock.fetch_materializations(dg.AssetKey("daily"), limit=1000).records
    assert len(written) == len(read) == 20 * (KEPT_ENGINES + 2)
    assert {r.partition_key for r in read} == set(DAYS.get_partition_keys())
    for result in results:  # each run's own file, too
        assert len([e for e in stock.get_logs_for_run(result.run_id)
                    if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]) == 20
    stock.dispose()
