"""The `marts/audience_uplift` asset: synced vs holdout customers since each audience's first sync.

The SQL and the statistics are in `activation/uplift.py`.
"""

import dagster as dg

from activation.uplift import build_uplift
from dagster_project.defs.activation.assets import sync_assets
from dagster_project.resources import WarehouseResource


@dg.asset(
    key=["marts", "audience_uplift"],
    deps=[dg.AssetKey(["marts", "fct_orders"]),
          dg.AssetKey(["intermediate", "int_customer_activity_daily"]),
          dg.AssetKey(["ml", "customer_clv"]), *(a.key for a in sync_assets)],
    group_name="activation",
    kinds={"duckdb"},
    pool="duckdb",
)
def audience_uplift(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Synced vs holdout customers of each audience since its first sync (store clock):
    conversion, revenue per customer, AOV, email CTR and predicted 90-day value per arm, with
    95 % confidence intervals for the differences."""
    with warehouse.warehouse.connect() as con:
        n = build_uplift(con)
        frame = con.execute("select audience_key, first_sync_as_of_date, days_since_first_sync, "
                            "n_synced, n_holdout, conversion_uplift, "
                            "conversion_uplift_ci_low, conversion_uplift_ci_high, "
                            "revenue_per_customer_uplift from marts.audience_uplift").df()
    return dg.MaterializeResult(metadata={
        "audiences": dg.MetadataValue.int(n),
        "uplift": dg.MetadataValue.md(frame.round(4).to_markdown(index=False) if n else
                                      "(no audience synced yet)"),
    })
