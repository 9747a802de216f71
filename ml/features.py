"""Model features built from the customer marts."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

# customer_360 columns the segmentation model reads
SEGMENTATION_COLUMNS = [
    "customer_id", "n_orders", "net_revenue", "avg_order_value", "return_rate",
    "discount_share_of_spend", "n_sessions_lifetime", "n_product_views_lifetime",
    "n_cart_adds_lifetime", "days_since_last_visit", "gift_season_session_share",
    "email_open_rate_lifetime", "age_years", "recency_days",
]
# what the clusters are drawn from: engagement, buying, price sensitivity, timing. Not the email
# open rate: only customers with email consent are sent campaigns, so the rate is 0 for everyone
# else whatever they do, and clusters drawn from it split customers by a marketing permission
# (on three 5,000-customer, 365-day sample stores, persona ARI over revisiting customers
# 0.47-0.50 with it, 0.52-0.54 without; docs/models.md). The profiles still describe each
# cluster's email opens, and rule segments select on them.
SEGMENTATION_FEATURES = [
    "log_sessions", "log_orders", "conversion", "discount_share", "years_since_last_visit",
    "gift_season_share", "cart_adds_per_view",
]
# A store that exports only orders (no events, e.g. Online Retail) has no browsing, email or cart
# signal: the browsing features are constant and k-means puts nearly everyone in one cluster. Its
# customers are clustered on purchase behaviour: how often, how much per order, how long ago.
ORDERS_ONLY_FEATURES = ["log_orders", "log_order_value", "years_since_last_visit"]
# Protected attributes are not clustered on unless SEGMENTA_CLUSTER_ON_PROTECTED=1: segments
# decide who gets offers, and clusters drawn from age split customers by age ("Browsers who
# never buy" had no one aged 55+). The profiles still describe each cluster's ages.
PROTECTED_FEATURES = ["age_years"]
# The protected attributes of the customer marts and what is derived from them (the fairness
# report's attributes, segments/fairness.py, except country): no default model input is one of
# these or computed from one (tests/test_segmentation.py checks FEATURE_INPUTS).
PROTECTED_ATTRIBUTES = frozenset({"age_years", "age_band", "birth_date", "gender",
                                  "income_band"})
# each model feature and the segmentation_frame columns it is computed from
FEATURE_INPUTS = {
    "log_sessions": {"n_sessions_lifetime"},
    "log_orders": {"n_orders"},
    "log_order_value": {"avg_order_value"},
    "conversion": {"n_orders", "n_sessions_lifetime"},
    "discount_share": {"discount_share_of_spend"},
    "years_since_last_visit": {"days_since_last_visit", "recency_days"},
    "gift_season_share": {"gift_season_session_share"},
    "email_open_rate": {"email_open_rate_lifetime"},
    "cart_adds_per_view": {"n_cart_adds_lifetime", "n_product_views_lifetime"},
    "age_years": {"age_years"},
}
# what each cluster is described by (profiles and names), in natural units
PROFILE_COLUMNS = ["n_orders", "net_revenue", "avg_order_value", "return_rate",
                   "discount_share_of_spend", "n_sessions_lifetime", "days_since_last_visit",
                   "gift_season_session_share", "email_open_rate_lifetime", "age_years"]
NEVER_VISITED_DAYS = 400.0


def segmentation_frame(customers: pd.DataFrame) -> pd.DataFrame:
    """The customers to cluster (anyone who visited or bought), indexed by customer_id, with
    the profile columns filled: missing counts are 0, a buyer never seen browsing was last seen
    at their last order (`recency_days`), a customer never seen at all gets NEVER_VISITED_DAYS,
    an unknown age the median."""
    missing = set(SEGMENTATION_COLUMNS) - set(customers.columns)
    if missing:
        raise ValueError(f"customer frame lacks column(s) {sorted(missing)}")
    c = customers[SEGMENTATION_COLUMNS].copy()
    c.index = pd.Index(c.pop("customer_id").astype(str), name="customer_id")
    c = c.apply(pd.to_numeric, errors="coerce").astype(float)
    c = c[(c["n_sessions_lifetime"].fillna(0) > 0) | (c["n_orders"].fillna(0) > 0)]
    age = c["age_years"].median() if c["age_years"].notna().any() else 40.0
    c["days_since_last_visit"] = c["days_since_last_visit"].fillna(c.pop("recency_days"))
    return c.fillna({"days_since_last_visit": NEVER_VISITED_DAYS, "age_years": age}).fillna(0.0)


def has_browsing(frame: pd.DataFrame) -> bool:
    """Whether the store sends events: anyone in a `segmentation_frame` with a session."""
    return bool((frame["n_sessions_lifetime"] > 0).any())


def cluster_on_protected() -> bool:
    """SEGMENTA_CLUSTER_ON_PROTECTED: 1 adds the protected attributes (age) to the features."""
    value = os.environ.get("SEGMENTA_CLUSTER_ON_PROTECTED", "0").strip()
    if value not in ("0", "1"):
        raise ValueError(f"SEGMENTA_CLUSTER_ON_PROTECTED must be 0 or 1, not {value!r}")
    return value == "1"


def segmentation_features(frame: pd.DataFrame, protected: bool | None = None) -> pd.DataFrame:
    """Model features from a `segmentation_frame`: counts and money log-scaled (heavy right
    tails), rates in [0, 1], time in years; the browsing features where the store sends events,
    the purchase features (ORDERS_ONLY_FEATURES) where it does not; with `protected` (default:
    `cluster_on_protected()`) age too."""
    sessions = frame["n_sessions_lifetime"].clip(lower=0)
    features = pd.DataFrame({
        "log_sessions": np.log1p(sessions),
        "log_orders": np.log1p(frame["n_orders"].clip(lower=0)),
        "log_order_value": np.log1p(frame["avg_order_value"].clip(lower=0)),
        "conversion": (frame["n_orders"] / sessions.clip(lower=1)).clip(0, 1),
        "discount_share": frame["discount_share_of_spend"].clip(0, 1),
        "years_since_last_visit": frame["days_since_last_visit"].clip(0, NEVER_VISITED_DAYS) / 365,
        "gift_season_share": frame["gift_season_session_share"].clip(0, 1),
        "email_open_rate": frame["email_open_rate_lifetime"].clip(0, 1),
        "cart_adds_per_view": (frame["n_cart_adds_lifetime"]
                               / frame["n_product_views_lifetime"].clip(lower=1)).clip(0, 1),
        "age_years": frame["age_years"],
    }, index=frame.index)
    protected = cluster_on_protected() if protected is None else protected
    chosen = SEGMENTATION_FEATURES if has_browsing(frame) else ORDERS_ONLY_FEATURES
    return features[chosen + (PROTECTED_FEATURES if protected else [])]
