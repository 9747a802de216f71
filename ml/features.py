"""Model features built from the customer marts."""

from __future__ import annotations

import numpy as np
import pandas as pd

RFM_FEATURES = ["log_recency_days", "log_frequency", "log_monetary"]


def rfm_features(rfm: pd.DataFrame) -> pd.DataFrame:
    """Log-scaled recency, frequency and monetary value, indexed by customer_id.

    RFM values are heavily right-skewed; log1p keeps a few big spenders from owning a cluster.
    Negative monetary values (returns larger than purchases) are clipped at 0.
    """
    required = {"customer_id", "recency_days", "frequency", "monetary"}
    missing = required - set(rfm.columns)
    if missing:
        raise ValueError(f"rfm frame lacks column(s) {sorted(missing)}")
    frame = pd.DataFrame(
        {
            "log_recency_days": np.log1p(rfm["recency_days"].astype(float).clip(lower=0)),
            "log_frequency": np.log1p(rfm["frequency"].astype(float).clip(lower=0)),
            "log_monetary": np.log1p(rfm["monetary"].astype(float).clip(lower=0)),
        }
    )
    frame.index = pd.Index(rfm["customer_id"].astype(str), name="customer_id")
    return frame


# customer_360 columns the segmentation model reads, and what each says about a customer
SEGMENTATION_COLUMNS = [
    "customer_id", "recency_days", "n_orders", "net_revenue", "avg_order_value", "return_rate",
    "discount_share_of_spend", "email_open_rate_90d", "email_click_rate_90d", "n_sessions_90d",
    "n_product_views_90d", "n_cart_adds_90d", "top_category_share", "age_years", "main_device",
    "tenure_days",
]


def segmentation_features(customers: pd.DataFrame, max_recency_days: float = 365.0
                          ) -> pd.DataFrame:
    """Behaviour, value and engagement features for clustering, indexed by customer_id.

    Counts and money are log-scaled (heavy right tails); rates are kept in [0, 1]; a customer
    who never bought gets the longest recency and zero value, so "browsers who never buy" form a
    group of their own instead of being dropped.
    """
    missing = set(SEGMENTATION_COLUMNS) - set(customers.columns)
    if missing:
        raise ValueError(f"customer frame lacks column(s) {sorted(missing)}")
    c = customers.set_index(customers["customer_id"].astype(str))

    def num(column: str, fill: float = 0.0) -> pd.Series:
        return pd.to_numeric(c[column], errors="coerce").astype(float).fillna(fill)

    views = num("n_product_views_90d")
    frame = pd.DataFrame({
        "log_recency_days": np.log1p(num("recency_days", max_recency_days)
                                     .clip(0, max_recency_days)),
        "log_orders": np.log1p(num("n_orders").clip(lower=0)),
        "log_net_revenue": np.log1p(num("net_revenue").clip(lower=0)),
        "log_avg_order_value": np.log1p(num("avg_order_value").clip(lower=0)),
        "return_rate": num("return_rate").clip(0, 1),
        "discount_share": num("discount_share_of_spend").clip(0, 1),
        "email_open_rate": num("email_open_rate_90d").clip(0, 1),
        "email_click_rate": num("email_click_rate_90d").clip(0, 1),
        "log_sessions_90d": np.log1p(num("n_sessions_90d")),
        "cart_adds_per_view": (num("n_cart_adds_90d") / views.clip(lower=1)).clip(0, 1),
        "top_category_share": num("top_category_share"),
        "age_years": num("age_years", float(pd.to_numeric(c["age_years"]).median()
                                           if c["age_years"].notna().any() else 40.0)),
        "is_mobile": (c["main_device"] == "mobile").astype(float),
        "log_tenure_days": np.log1p(num("tenure_days").clip(lower=0)),
    })
    frame.index.name = "customer_id"
    return frame
