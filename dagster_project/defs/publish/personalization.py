import dagster as dg

from dagster_project.resources import HomeResource
from personalization.cache import build_cache, cache_path


@dg.asset(
    key=["published", "personalization_cache"],
    deps=[dg.AssetKey(["published", "marts"])],
    group_name="publish",
    kinds={"sqlite"},
)
def personalization_cache(home: HomeResource) -> dg.MaterializeResult:
    """The storefront API's cache (`personalization/cache.sqlite`): every customer's
    recommendations, segments and content, every product's similar products, built from the
    published copy and replaced atomically (a running API opens it within a second)."""
    # reads only the published copy, never the warehouse: no `duckdb` pool slot needed
    result = build_cache(home.home.published, cache_path(home.home))
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(result.path)),
        "customers": result.customers,
        "customers_with_rule_content": result.personalized_content,
        "products": result.products,
        "size_mb": round(result.bytes / 1e6, 1),
        "seconds": result.seconds,
    })
