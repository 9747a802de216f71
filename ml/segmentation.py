"""Customer segmentation: k-means on scaled behaviour features, k chosen by silhouette, clusters
named from their profiles and keyed stably across retrains."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

K_RANGE = range(3, 10)
SILHOUETTE_SAMPLE = 5_000
FIT_SAMPLE = 200_000  # k-means is fitted on at most this many customers, then predicts all


@dataclass
class SegmenterFit:
    pipeline: Pipeline
    k: int
    silhouette_by_k: dict[int, float]
    labels: np.ndarray  # the pipeline's raw labels, one per customer
    cluster_keys: dict[int, int]  # raw label -> stable cluster key
    cluster_names: dict[int, str]  # stable key -> name
    profiles: pd.DataFrame = field(repr=False)  # stable key -> profile columns and share
    centroids: pd.DataFrame = field(repr=False)  # stable key -> feature means

    @property
    def keys(self) -> np.ndarray:
        """Each customer's stable cluster key."""
        return np.vectorize(self.cluster_keys.get)(self.labels)

    @property
    def metrics(self) -> dict[str, float]:
        shares = np.bincount(self.labels, minlength=self.k) / len(self.labels)
        return {"silhouette": self.silhouette_by_k[self.k], "k": float(self.k),
                "min_cluster_share": float(shares.min()), "n_customers": float(len(self.labels))}


def fit_segmenter(features: pd.DataFrame, profile: pd.DataFrame | None = None,
                  previous_centroids: pd.DataFrame | None = None, k_range: range = K_RANGE,
                  seed: int = 0) -> SegmenterFit:
    """Fit k-means for each k in `k_range` and keep the k with the best silhouette.

    `profile` (same index as `features`) holds the natural-unit columns clusters are described
    and named by; `previous_centroids` (the champion's, by stable key) lets the new clusters
    inherit the keys of the ones they resemble.
    """
    if len(features) < max(k_range) * 2:
        raise ValueError(
            f"{len(features)} customers are too few to cluster into up to {max(k_range)} groups"
        )
    rng = np.random.default_rng(seed)
    fit_rows = (rng.choice(len(features), FIT_SAMPLE, replace=False)
                if len(features) > FIT_SAMPLE else np.arange(len(features)))
    fit_on = features.iloc[fit_rows]
    sample = (rng.choice(len(fit_on), SILHOUETTE_SAMPLE, replace=False)
              if len(fit_on) > SILHOUETTE_SAMPLE else np.arange(len(fit_on)))
    best: tuple[float, Pipeline] | None = None
    scores: dict[int, float] = {}
    for k in k_range:
        pipeline = Pipeline([
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=k, n_init=10, random_state=seed)),
        ])
        labels = pipeline.fit_predict(fit_on)
        scaled = pipeline.named_steps["scale"].transform(fit_on)
        scores[k] = float(silhouette_score(scaled[sample], labels[sample]))
        if best is None or scores[k] > best[0]:
            best = (scores[k], pipeline)
    assert best is not None
    pipeline = best[1]
    labels = pipeline.predict(features)
    centroids = features.groupby(labels).mean()
    scale = pd.Series(pipeline.named_steps["scale"].scale_, index=features.columns)
    keys = match_clusters(centroids, previous_centroids, scale)
    keyed = pd.Series(labels, index=features.index).map(keys)
    profiles = cluster_profiles(profile if profile is not None else features, keyed.to_numpy())
    return SegmenterFit(pipeline=pipeline, k=int(pipeline.named_steps["kmeans"].n_clusters),
                        silhouette_by_k=scores, labels=labels, cluster_keys=keys,
                        cluster_names=name_clusters(profiles), profiles=profiles,
                        centroids=centroids.rename(index=keys))


def match_clusters(centroids: pd.DataFrame, previous: pd.DataFrame | None,
                   scale: pd.Series) -> dict[int, int]:
    """Raw label -> stable key: each new cluster takes the key of the champion's cluster
    nearest to it (a one-to-one assignment on standardized centroid distance); clusters
    left over get new keys. Without a champion, keys are the labels."""
    labels = [int(label) for label in centroids.index]
    if previous is None or previous.empty:
        return {label: label for label in labels}
    columns = [c for c in centroids.columns if c in previous.columns]
    if not columns:
        return {label: label for label in labels}
    units = scale[columns].replace(0, 1.0).to_numpy()
    new = centroids[columns].to_numpy() / units
    old = previous[columns].to_numpy() / units
    cost = np.linalg.norm(new[:, None, :] - old[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    mapping = {labels[r]: int(previous.index[c]) for r, c in zip(rows, cols, strict=True)}
    next_key = int(max(previous.index)) + 1
    for label in labels:
        if label not in mapping:
            mapping[label] = next_key
            next_key += 1
    return mapping


def cluster_profiles(profile: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
    """Mean of each profile column per cluster, and the cluster's share of customers."""
    frame = profile.copy()
    frame["cluster_key"] = keys
    profiles = frame.groupby("cluster_key").mean()
    profiles["share"] = frame.groupby("cluster_key").size() / len(frame)
    return profiles


def name_clusters(profiles: pd.DataFrame) -> dict[int, str]:
    """A readable name per cluster from its profile: what sets it apart among the clusters.

    The first rule that holds names the cluster (so a lapsed discount hunter is "Lapsing");
    clusters that would share a name are told apart by how they differ (`_distinguish`). Works on the profile columns of
    `ml.features.PROFILE_COLUMNS`; a column that is absent never triggers its rule.
    """
    def col(name: str) -> pd.Series:
        return profiles[name] if name in profiles else pd.Series(np.nan, index=profiles.index)

    orders, revenue = col("n_orders"), col("net_revenue")
    discount, gift = col("discount_share_of_spend"), col("gift_season_session_share")
    away, sessions = col("days_since_last_visit"), col("n_sessions_lifetime")
    names: dict[int, str] = {}
    for key in profiles.index:
        if orders[key] < 0.3:
            name = ("Browsers who never buy" if sessions[key] >= sessions.median()
                    else "Rare visitors, no orders")
        elif gift[key] >= 0.4:
            name = "Holiday gift shoppers"
        elif away[key] >= 120:
            name = "Lapsing customers"
        elif discount[key] >= 0.05 and discount[key] >= 2 * discount.median():
            name = "Discount-driven shoppers"
        elif orders[key] >= orders.quantile(0.75) and revenue[key] >= revenue.quantile(0.75):
            name = "High-value loyal"
        elif orders[key] <= 1.5:
            name = "One-time buyers"
        else:
            name = "Occasional buyers"
        names[int(key)] = name
    return _distinguish(names, profiles)


# How clusters that share a name differ: profile column, phrase for more, phrase for less.
QUALIFIERS = (("net_revenue", "higher spend", "lower spend"),
              ("n_orders", "more orders", "fewer orders"),
              ("days_since_last_visit", "away longer", "seen more recently"),
              ("n_sessions_lifetime", "more visits", "fewer visits"),
              ("discount_share_of_spend", "more discounts", "fewer discounts"),
              ("return_rate", "more returns", "fewer returns"))


def _distinguish(names: dict[int, str], profiles: pd.DataFrame) -> dict[int, str]:
    """Unique names: clusters that share one are told apart by the profile column on which they
    differ most (relative to its spread over all clusters): "High-value loyal, higher spend"
    and "High-value loyal, lower spend"; a third between them is "..., mid spend". A number is
    the last resort, for clusters alike on every column."""
    groups: dict[str, list[int]] = {}
    for key in sorted(names):
        groups.setdefault(names[key], []).append(key)
    for base, keys in groups.items():
        if len(keys) < 2:
            continue
        best, best_spread = None, 0.0
        for column, more, less in QUALIFIERS:
            if column not in profiles:
                continue
            values = profiles.loc[keys, column].astype(float)
            scale = profiles[column].astype(float).std()
            if values.isna().any() or not scale or np.isnan(scale):
                continue
            spread = (values.max() - values.min()) / scale
            if spread > best_spread and values.nunique() == len(keys):
                best, best_spread = (column, more, less), spread
        if best is None:
            for number, key in enumerate(keys[1:], start=2):
                names[key] = f"{base} {number}"
            continue
        column, more, less = best
        ordered = profiles.loc[keys, column].astype(float).sort_values().index
        middle = less.split(" ", 1)[1]  # "lower spend" -> "mid spend"
        for position, key in enumerate(ordered):
            qualifier = (less if position == 0 else more if position == len(ordered) - 1
                         else f"mid {middle}" if len(ordered) == 3
                         else f"mid {middle} {position}")
            names[int(key)] = f"{base}, {qualifier}"
    return names


def empty_clusters() -> pd.DataFrame:
    """`ml.customer_clusters` with no rows, for a store that has no segmenter champion yet."""
    return pd.DataFrame({
        "customer_id": pd.Series(dtype="string"), "cluster_key": pd.Series(dtype="int64"),
        "cluster_name": pd.Series(dtype="string"), "model_name": pd.Series(dtype="string"),
        "model_version": pd.Series(dtype="string"),
        "scored_at": pd.Series(dtype="datetime64[us]"),
    })
