"""The customer segmenter on small hand-made data: features, k selection, names, the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.evaluation import SEGMENTER_GATE, check_gate, gate_params
from ml.features import RFM_FEATURES, rfm_features
from ml.segmentation import fit_segmenter, name_clusters


def _rfm_groups(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three well-separated groups: loyal big spenders, recent one-timers, dormant small buyers."""
    rng = np.random.default_rng(seed)
    groups = [(5, 12, 3000), (10, 1, 60), (200, 1, 25)]
    rows, truth = [], []
    for label, (recency, frequency, monetary) in enumerate(groups):
        for _ in range(60):
            rows.append({
                "recency_days": max(0, recency * rng.lognormal(0, 0.15)),
                "frequency": max(1, round(frequency * rng.lognormal(0, 0.1))),
                "monetary": monetary * rng.lognormal(0, 0.15),
            })
            truth.append(label)
    frame = pd.DataFrame(rows)
    frame.insert(0, "customer_id", [f"C{i:03d}" for i in range(len(frame))])
    return frame, np.array(truth)


def test_features_are_log_scaled_and_indexed_by_customer():
    rfm = pd.DataFrame({"customer_id": ["a", "b"], "recency_days": [0, 9],
                        "frequency": [1, 3], "monetary": [-5.0, 99.0]})
    features = rfm_features(rfm)
    assert list(features.columns) == RFM_FEATURES
    assert features.loc["b", "log_frequency"] == pytest.approx(np.log(4))
    assert features.loc["a", "log_monetary"] == 0.0  # net refunds clip to zero
    with pytest.raises(ValueError, match="monetary"):
        rfm_features(rfm.drop(columns="monetary"))


def test_segmenter_finds_the_planted_groups_and_names_them():
    frame, truth = _rfm_groups()
    fit = fit_segmenter(rfm_features(frame), k_range=range(2, 7))
    assert fit.k == 3
    contingency = pd.crosstab(fit.labels, truth)
    assert (contingency.max(axis=1) == contingency.sum(axis=1)).all(), "clusters are pure"
    names = {truth_label: fit.cluster_names[int(contingency[truth_label].idxmax())]
             for truth_label in range(3)}
    assert names[0] == "High-value loyal"
    assert names[2] == "Dormant low-value"
    assert fit.metrics["silhouette"] > 0.5 and check_gate(fit.metrics, SEGMENTER_GATE) == []


def test_duplicate_cluster_names_get_suffixes():
    profiles = pd.DataFrame({"recency_days": [300, 310, 5], "frequency": [1, 1, 9],
                             "monetary": [10, 11, 900]}, index=[0, 1, 2])
    names = name_clusters(profiles)
    assert len(set(names.values())) == 3


def test_gate_reports_each_failure_in_words():
    failures = check_gate({"silhouette": 0.1}, SEGMENTER_GATE)
    assert failures == ["silhouette = 0.1000 is below 0.25", "min_cluster_share was not measured"]
    assert gate_params(SEGMENTER_GATE)["gate.silhouette"] == ">= 0.25"


def test_too_few_customers_is_a_clear_error():
    frame, _ = _rfm_groups()
    with pytest.raises(ValueError, match="too few"):
        fit_segmenter(rfm_features(frame.head(5)))
