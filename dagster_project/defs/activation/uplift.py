"""The `marts/audience_uplift` asset: synced vs holdout customers since each audience's first sync.

The SQL and the statistics are in `activation/uplift.py`.
"""

import dagster as dg

from activation.uplift import build_uplift
from dagster_project.defs.activation.assets import sync_assets
from dagster_project.resources import WarehouseResource


@dg.asset(
    key=["marts", "audience_uplift"],
    deps=[dg.AssetKey(["marts", "fct_orders"]), *(a.key for a in sync_assets)],
    group_name="activation",
    kinds={"duckdb"},
    pool="duckdb",
)
def audience_uplift(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Synced vs holdout customers of each audience since its first sync: conversion rate,
    revenue per customer and AOV, with 95 % confidence intervals for the differences."""
    with warehouse.warehouse.connect() as con:
        n = build_uplift(con)
        frame = con.execute("select audience_key, n_synced, n_holdout, conversion_uplift, "
                            "conversion_uplift_ci_low, conversion_uplift_ci_high "
                            "from marts.audience_uplift").df()
    return dg.MaterializeResult(metadata={
        "audiences": dg.MetadataValue.int(n),
        "uplift": dg.MetadataValue.md(frame.round(4).to_markdown(index=False) if n else
                                      "(no audience synced yet)"),
    })
