from pathlib import Path

import dagster as dg

from core.warehouse import publish_tables
from dagster_project.resources import HomeResource, WarehouseResource

# Contact details stay in the warehouse for activation; analysts get everything else.
NOT_PUBLISHED = ("marts.customer_contacts",)
PUBLISHED_ML = ("ml.customer_clusters", "ml.customer_clv", "ml.item_similarities",
                "ml.cart_complements")
MART_KEYS = ("dim_customers", "dim_products", "fct_orders", "fct_order_items", "fct_sessions",
             "customer_rfm", "customer_features", "customer_product_recommendations",
             "segment_memberships", "segment_summary",
             "segment_transitions", "audience_uplift", "segment_fairness", "weather_daily")
# The incremental marts and their unique keys: a refresh's rows are patched into the copy by
# key instead of copying the whole table (fct_sessions alone is tens of millions of rows).
PATCHED_BY_KEY = {"fct_orders": "order_id", "fct_order_items": "order_line_id",
                  "fct_sessions": "session_id"}


@dg.asset(
    key=["published", "marts"],
    deps=[*(dg.AssetKey(["marts", name]) for name in MART_KEYS),
          *(dg.AssetKey(table.split(".")) for table in PUBLISHED_ML)],
    group_name="publish",
    kinds={"duckdb"},
    pool="duckdb",
)
def published_marts(home: HomeResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The analysts' read-only copy of the marts and model outputs, replaced atomically; the
    big incremental marts are kept when no refresh changed them and otherwise patched with the
    rows a refresh wrote."""
    marts = warehouse.warehouse.query_df(
        "select table_schema || '.' || table_name as name from information_schema.tables "
        "where table_catalog = current_database() and table_schema = 'marts' order by 1")
    tables = [t for t in marts["name"] if t not in NOT_PUBLISHED] + list(PUBLISHED_ML)
    target = home.home.published
    published = publish_tables(warehouse.warehouse, tables, target, keys=PATCHED_BY_KEY)

    def named(how: str) -> dg.MetadataValue:
        return dg.MetadataValue.json(sorted(n for n, (_, done) in published.items()
                                            if done == how))

    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(target)),
        "tables": dg.MetadataValue.json({name: rows for name, (rows, _) in published.items()}),
        "copied": named("copied"),
        "patched": named("patched"),
        "unchanged": named("kept"),
        "preview": dg.MetadataValue.md(published_preview(published, target)),
    })


def published_preview(published: dict[str, tuple[int, str]], target: Path) -> str:
    """The published copy's tables as a Markdown table: rows and what this refresh did."""
    done = {"copied": "copied", "patched": "patched by key", "kept": "unchanged"}
    lines = [f"Analysts: `duckdb -readonly {target}`", "",
             "| table | rows | this refresh |", "|---|---:|---|"]
    lines += [f"| {name} | {rows:,} | {done.get(how, how)} |"
              for name, (rows, how) in sorted(published.items())]
    return "\n".join(lines)
