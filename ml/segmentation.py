"""Customer segmentation: k-means on scaled features, k chosen by silhouette, named clusters."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

K_RANGE = range(3, 9)
SILHOUETTE_SAMPLE = 5_000


@dataclass
class SegmenterFit:
    pipeline: Pipeline
    k: int
    silhouette_by_k: dict[int, float]
    labels: np.ndarray
    cluster_names: dict[int, str]
    profiles: pd.DataFrame = field(repr=False)

    @property
    def metrics(self) -> dict[str, float]:
        shares = np.bincount(self.labels, minlength=self.k) / len(self.labels)
        return {"silhouette": self.silhouette_by_k[self.k], "k": float(self.k),
                "min_cluster_share": float(shares.min()), "n_customers": float(len(self.labels))}


def fit_segmenter(features: pd.DataFrame, k_range: range = K_RANGE, seed: int = 0) -> SegmenterFit:
    """Fit k-means for each k in `k_range` and keep the k with the best silhouette."""
    if len(features) < max(k_range) * 2:
        raise ValueError(
            f"{len(features)} customers are too few to cluster into up to {max(k_range)} groups"
        )
    rng = np.random.default_rng(seed)
    sample = (rng.choice(len(features), SILHOUETTE_SAMPLE, replace=False)
              if len(features) > SILHOUETTE_SAMPLE else np.arange(len(features)))
    best: tuple[float, Pipeline] | None = None
    scores: dict[int, float] = {}
    for k in k_range:
        pipeline = Pipeline([
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=k, n_init=10, random_state=seed)),
        ])
        labels = pipeline.fit_predict(features)
        scaled = pipeline.named_steps["scale"].transform(features)
        scores[k] = float(silhouette_score(scaled[sample], labels[sample]))
        if best is None or scores[k] > best[0]:
            best = (scores[k], pipeline)
    assert best is not None
    pipeline = best[1]
    labels = pipeline.predict(features)
    profiles = cluster_profiles(features, labels)
    return SegmenterFit(pipeline=pipeline, k=int(pipeline.named_steps["kmeans"].n_clusters),
                        silhouette_by_k=scores, labels=labels,
                        cluster_names=name_clusters(profiles), profiles=profiles)


def cluster_profiles(features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Mean of each feature per cluster, in original units where the feature is log1p-scaled."""
    frame = features.copy()
    frame["cluster_id"] = labels
    means = frame.groupby("cluster_id").mean()
    profiles = pd.DataFrame(index=means.index)
    for column in means.columns:
        name = column.removeprefix("log_")
        profiles[name] = np.expm1(means[column]) if column.startswith("log_") else means[column]
    profiles["share"] = frame.groupby("cluster_id").size() / len(frame)
    return profiles


def name_clusters(profiles: pd.DataFrame) -> dict[int, str]:
    """A readable name per cluster from where its centroid sits among the clusters.

    Each of recency, frequency and monetary value is called high or low relative to the median
    cluster; the combination picks the name. Duplicate names get a numeric suffix.
    """
    medians = profiles[["recency_days", "frequency", "monetary"]].median()
    names: dict[int, str] = {}
    for cluster_id, row in profiles.iterrows():
        recent = row["recency_days"] <= medians["recency_days"]
        frequent = row["frequency"] > medians["frequency"]
        valuable = row["monetary"] > medians["monetary"]
        if recent and frequent and valuable:
            name = "High-value loyal"
        elif recent and valuable:
            name = "Recent big spenders"
        elif recent and frequent:
            name = "Frequent small baskets"
        elif recent:
            name = "Recent first-timers"
        elif frequent or valuable:
            name = "Lapsing valuable"
        else:
            name = "Dormant low-value"
        names[int(cluster_id)] = name
    seen: dict[str, int] = {}
    for cluster_id in sorted(names):
        base = names[cluster_id]
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            names[cluster_id] = f"{base} {seen[base]}"
    return names
