"""The business rules that shape what the recommender ships, and a readable sample of it.

Rules apply after scoring, by product, in the model's product order: inactive products are never
shown, products of non-replenishable subcategories are not offered again to their buyers, and at
most `max_per_category` products of one category appear in a top 10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def business_rules(info: pd.DataFrame, one_time_subcategories: list[str],
                   max_per_category: int | None) -> dict:
    """The business rules as model settings, by product (`info` is dim_products in the
    model's product order): products the catalogue marks inactive excluded, one-time products
    not re-offered, at most `max_per_category` products of a category."""
    one_time = set(one_time_subcategories)
    # only a product the catalogue says is inactive is excluded: a store that sends no
    # catalogue (Online Retail) has no is_active at all, and excluding the unknown excluded
    # every product (everyone got popular products only)
    inactive = info["is_active"].astype("boolean").eq(False).fillna(False)
    return {"exclude": inactive.to_numpy(dtype=bool),
            "one_time_products": (info["subcategory"].isin(one_time)
                                  | info["category"].isin(one_time)).to_numpy(),
            **category_cap(info, max_per_category)}


def category_cap(info: pd.DataFrame, max_per_category: int | None) -> dict:
    """The category cap as model settings: an integer code per product and the cap. A product
    without a category is a category of its own (capping the unknown together left stores
    without a catalogue feed five products a list); with no category at all there is no cap."""
    category = info["category"]
    if category.isna().all():
        return {"categories": None, "max_per_category": None}
    codes = pd.Categorical(category).codes.astype(int)
    unknown = codes < 0
    codes[unknown] = codes.max() + 1 + np.arange(int(unknown.sum()))
    return {"categories": codes, "max_per_category": max_per_category}


def with_category_cap(models: dict, data, products: pd.DataFrame,
                      max_per_category: int | None) -> dict:
    """The models with the category cap set, so validation and the offline evaluation measure
    the top 10 that ships (the baselines are left as they are)."""
    info = products.set_index(products["product_id"].astype(str)).reindex(data.products)
    for model in models.values():
        for key, value in category_cap(info, max_per_category).items():
            setattr(model, key, value)
    return models


def with_rules(models: dict, data, products: pd.DataFrame, one_time_subcategories: list[str],
               max_per_category: int | None) -> dict:
    """The models with every business rule set for `data`'s products (inactive products
    excluded, one-time products not re-offered, the category cap), so the offline evaluation
    scores the top 10 that ships."""
    info = products.set_index(products["product_id"].astype(str)).reindex(data.products)
    rules = business_rules(info, one_time_subcategories, max_per_category)
    for model in models.values():
        for key, value in rules.items():
            setattr(model, key, value)
    return models


def sample_top10(recs: pd.DataFrame, products: pd.DataFrame, per_reason: int = 1) -> pd.DataFrame:
    """The full top 10 of a few customers, one for each kind of first recommendation (buy
    again, also bought, popular in segment, ...), with product names and categories."""
    first = recs[recs["rank"] == 1].drop_duplicates("reason").head(6)
    chosen = first.groupby("reason").head(per_reason)["customer_id"]
    sample = recs[recs["customer_id"].isin(chosen)].merge(
        products[["product_id", "product_name", "category"]], on="product_id", how="left")
    return sample[["customer_id", "rank", "product_name", "category", "reason",
                   "score"]].round(4)
