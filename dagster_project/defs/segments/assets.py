import dagster as dg

from dagster_project.resources import WarehouseResource
from segments import rules as segments


@dg.asset(
    key=["intermediate", "rule_segment_memberships"],
    deps=[dg.AssetKey(["marts", "customer_360"])],
    group_name="segments",
    kinds={"duckdb", "yaml"},
    pool="duckdb",
)
def rule_segment_memberships(context: dg.AssetExecutionContext,
                             warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Members of each rule segment in segments/rules.yml, one row per customer and segment."""
    try:
        rules = segments.load_rules()
        sizes = segments.evaluate(warehouse.warehouse, rules)
    except segments.RuleError as exc:
        raise dg.Failure(description=str(exc)) from exc
    context.log.info(f"{len(rules)} rule segments, {int(sizes['members'].sum())} memberships")
    return dg.MaterializeResult(metadata={
        "segments": dg.MetadataValue.int(len(rules)),
        "memberships": dg.MetadataValue.int(int(sizes["members"].sum())),
        "sizes": dg.MetadataValue.md(sizes.to_markdown(index=False)),
    })
