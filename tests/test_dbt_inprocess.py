"""dbt in the step's process (dagster_project/defs/transform/inprocess.py): a step's selection is
what dbt builds, its results are the step's Dagster events, and a failed build fails the step
with dbt's error, the failing node named, and no dbt process left; the next run in the same
process (the project parsed once) builds what the first could not.

Runs in a fresh Python (the home is read from SEGMENTA_HOME at import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb

from core import processes

SCRIPT = """
import json, sys
import dagster as dg
import duckdb
from dagster_project.defs.transform.assets import dbt_models
from ingest import landing

def materialize():
    result = dg.materialize([dbt_models], selection=[dg.AssetKey(["staging", "stg_shop__products"])],
                            raise_on_error=False)
    return {
        "success": result.success,
        "materialized": sorted(e.asset_key.to_user_string()
                               for e in result.get_asset_materialization_events()),
        "checks": sorted(f"{c.asset_key.to_user_string()}:{c.check_name}:{c.passed}"
                         for c in result.get_asset_check_evaluations()),
        "failures": [str(e.event_specific_data.error.message) for e in result.all_events
                     if e.is_step_failure],
    }

# the parse made ahead in a background thread, as `segmenta run` has it made while ingestion
# runs (core/preload.py), next to what a killed process left
from core import preload
from core.settings import HOME
from dagster_project.defs.transform import inprocess
from dagster_project.defs.transform.assets import preparse

(HOME.dbt_target / "preparse-999999999").mkdir(parents=True)
preload.start(modules=(), tasks=(preparse,))
preload.wait()
parsed = list(inprocess._parsed.values())
first = materialize()  # the warehouse has no raw tables yet
with duckdb.connect(sys.argv[1]) as con:
    landing.ensure_tables(con, landing.FEEDS["products"])  # raw.products as ingestion makes it
    con.execute("insert into raw.products by name select 'P1' as product_id, "
                "'2026-06-01'::date as _partition_date, 1 as _source_line")
second = materialize()
preparsed = {"parsed": len(parsed), "reused": parsed == list(inprocess._parsed.values()),
             "left": sorted(p.name for p in HOME.dbt_target.glob("preparse-*"))}
print(json.dumps([first, second, preparsed]))
"""


def test_a_failed_dbt_build_fails_its_step_and_the_next_run_builds_the_selection(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    env = {**os.environ, "SEGMENTA_HOME": str(tmp_path)}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(warehouse)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    failed, built, preparsed = json.loads(done.stdout.strip().splitlines()[-1])
    # the background parse (made for this process's environment) was the steps' parse, and
    # its scratch folder, and a killed process's, are gone
    assert preparsed == {"parsed": 1, "reused": True, "left": []}

    assert not failed["success"] and failed["materialized"] == []
    (failure,) = failed["failures"]
    assert "stg_shop__products" in failure and "dbt.log" in failure, failure
    assert "\x1b[" not in failure  # no terminal colours in the message

    assert built["success"], built["failures"]
    assert built["materialized"] == ["staging/stg_shop__products"]
    # the model's dbt tests ran in the same invocation and came back as its asset checks
    assert built["checks"] and all(c.startswith("staging/stg_shop__products:")
                                   and c.endswith(":True") for c in built["checks"])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select product_id from staging.stg_shop__products").fetchall() == [
            ("P1",)]
    assert not any("dbt" in p.cmdline for p in processes.home_processes(tmp_path))

