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
