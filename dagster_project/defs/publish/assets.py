import dagster as dg

from dagster_project.resources import HomeResource, WarehouseResource
from dagster_project.warehouse import publish_schema

# Contact details stay in the warehouse for activation; analysts get everything else.
NOT_PUBLISHED = ("customer_contacts",)
PUBLISHED_MARTS = ("dim_customers", "fct_orders", "fct_order_items", "fct_sessions",
                   "customer_rfm", "customer_features", "segment_memberships",
                   "segment_summary")


@dg.asset(
    key=["published", "marts"],
    deps=[dg.AssetKey(["marts", name]) for name in PUBLISHED_MARTS],
    group_name="publish",
    kinds={"duckdb"},
    pool="duckdb",
)
def published_marts(home: HomeResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The analysts' read-only copy of the marts (published/marts.duckdb), replaced atomically."""
    target = home.home.published
    counts = publish_schema(warehouse.warehouse, "marts", target, exclude=NOT_PUBLISHED)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(target)),
        "tables": dg.MetadataValue.json(counts),
    })
