"""Product recommendations from purchase history: baselines, item-to-item similarity and a
personalized blend, with the offline metrics that compare them.

Every model takes `Interactions` (customer x product weights built from order lines, optionally
views and cart adds) and returns, per customer, the top-N products with a score and a reason
code. The models:

- `popularity`: recent-weighted purchase counts; the cold-start fallback.
- `item_similarity`: "people also bought" — cosine similarity between products' buyer vectors,
  shrunk for pairs with few common buyers, so it does not merely echo popularity.
- `RepeatThenSimilar` (the shipped model): the customer's own products first (repeat buying
  dominates many stores), then item-kNN over their history blended with popularity.
- `baselines()`: global popularity, item-kNN alone, and the customer's own most-bought
  products then popularity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

REASON_OWN = "buy_again"
REASON_SIMILAR = "also_bought"
REASON_POPULAR = "popular"


@dataclass
class Interactions:
    """A customer x product matrix of weights, with the ids of its rows and columns."""

    matrix: sparse.csr_matrix
    customers: pd.Index
    products: pd.Index
    recency: sparse.csr_matrix | None = field(default=None, repr=False)  # decayed weights

    @classmethod
    def from_lines(cls, lines: pd.DataFrame, as_of: pd.Timestamp | None = None,
                   half_life_days: float = 90.0, customer: str = "customer_id",
                   product: str = "product_id", when: str = "ordered_at",
                   weight: str | None = None) -> Interactions:
        """Order lines (one row per customer, product and order) to counts of orders per
        customer and product, plus the same counts decayed by age (half-life in days)."""
        customers = pd.Index(lines[customer].astype(str).unique(), name=customer)
        products = pd.Index(lines[product].astype(str).unique(), name=product)
        rows = customers.get_indexer(lines[customer].astype(str))
        cols = products.get_indexer(lines[product].astype(str))
        values = lines[weight].to_numpy(float) if weight else np.ones(len(lines))
        shape = (len(customers), len(products))
        matrix = sparse.csr_matrix((values, (rows, cols)), shape=shape)
        when_ts = pd.to_datetime(lines[when])
        as_of = as_of if as_of is not None else when_ts.max()
        age = (as_of - when_ts).dt.total_seconds().to_numpy() / 86_400
        decayed = values * np.power(0.5, np.clip(age, 0, None) / half_life_days)
        recency = sparse.csr_matrix((decayed, (rows, cols)), shape=shape)
        return cls(matrix, customers, products, recency)


def _top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the n best scores per row (best first)."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


def _scale_rows(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its maximum, so signals of different units can be blended."""
    top = scores.max(axis=1, keepdims=True)
    return np.divide(scores, top, out=np.zeros_like(scores), where=top > 0)


def popularity(data: Interactions) -> np.ndarray:
    """Recent-weighted purchase popularity of every product, scaled to a maximum of 1."""
    counts = np.asarray(data.recency.sum(axis=0)).ravel()
    return counts / counts.max() if counts.max() > 0 else counts


def item_similarity(data: Interactions, shrinkage: float = 10.0,
                    min_common: int = 2) -> sparse.csr_matrix:
    """Product x product cosine similarity of buyer vectors, shrunk by n / (n + shrinkage) where
    n is the number of common buyers, so pairs seen once do not dominate; the diagonal is 0."""
    bought = (data.matrix > 0).astype(np.float32).tocsc()
    common = (bought.T @ bought).tocsr()
    common.setdiag(0)
    common.eliminate_zeros()
    common.data[common.data < min_common] = 0
    common.eliminate_zeros()
    norms = np.sqrt(np.asarray(bought.sum(axis=0)).ravel())
    sim = common.tocoo()
    cosine = sim.data / (norms[sim.row] * norms[sim.col])
    shrunk = cosine * sim.data / (sim.data + shrinkage)
    return sparse.csr_matrix((shrunk, (sim.row, sim.col)), shape=common.shape)


REASONS = np.array([REASON_OWN, REASON_SIMILAR, REASON_POPULAR])


@dataclass
class RepeatThenSimilar:
    """The shipped recommender: the customer's own products first, then products like them.

    Tier 1, "buy again": products the customer already ordered, most-ordered first, ties broken
    by recent popularity. Tier 2, "also bought" / "popular": the rest, by item-kNN over the
    customer's history (weight `similar_weight`) plus recent popularity. Products in
    `one_time_products` (a boolean mask: non-replenishable categories) are never recommended
    again to a customer who bought them. On the Online Retail benchmark, ordering the own
    products by recency or mixing similarity into them lowered NDCG (docs/recommendations.md).
    """

    similar_weight: float = 3.0
    shrinkage: float = 10.0
    own_weight: float = 1.0  # 0 turns tier 1 off (a pure similarity + popularity model)
    plain_popularity: bool = False  # rank by all-time counts instead of recent ones
    # boolean product masks, by product index: never recommended / not re-offered to buyers
    exclude: np.ndarray | None = field(default=None, repr=False)
    one_time_products: np.ndarray | None = field(default=None, repr=False)
    similarity: sparse.csr_matrix | None = field(default=None, repr=False)
    popular: np.ndarray | None = field(default=None, repr=False)

    def fit(self, data: Interactions) -> RepeatThenSimilar:
        self.similarity = (item_similarity(data, self.shrinkage) if self.similar_weight > 0
                           else None)
        if self.plain_popularity:
            counts = np.asarray((data.matrix > 0).sum(axis=0)).ravel().astype(float)
            self.popular = counts / max(counts.max(), 1.0)
        else:
            self.popular = popularity(data)
        return self

    def scores(self, data: Interactions, rows: np.ndarray,
               one_time_products: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores (tier 1 above 1, tier 2 below 1) and the reason index of each product."""
        counts = data.matrix[rows].toarray()
        owned = counts > 0
        if self.similarity is not None:
            history = data.matrix[rows]
            history = history.multiply(1.0 / np.maximum(history.sum(axis=1), 1)).tocsr()
            similar = _scale_rows(np.asarray((history @ self.similarity).todense()))
        else:
            similar = np.zeros_like(counts)
        popular = np.broadcast_to(self.popular, counts.shape)
        fill = (self.similar_weight * similar + popular) / (self.similar_weight + 1) * 0.999
        own = 1 + _scale_rows(counts) + 1e-6 * popular
        scores = np.where(owned & (self.own_weight > 0), own, fill)
        reason = np.where(owned & (self.own_weight > 0), 0,
                          np.where(self.similar_weight * similar > popular, 1, 2))
        if one_time_products is not None:
            scores[owned & one_time_products[None, :]] = -np.inf
        return scores, reason


def recommend(model: RepeatThenSimilar, data: Interactions, n: int = 10, batch: int = 2_000,
              exclude: np.ndarray | None = None,
              one_time_products: np.ndarray | None = None) -> pd.DataFrame:
    """Top-n products per customer of `data`: customer_id, rank, product_id, score, reason.

    `exclude` is a boolean product mask never recommended (e.g. inactive products);
    `one_time_products` are not recommended to customers who already bought them. Scores are
    computed in batches of customers so memory stays bounded."""
    exclude = exclude if exclude is not None else model.exclude
    one_time_products = (one_time_products if one_time_products is not None
                         else model.one_time_products)
    frames = []
    for start in range(0, len(data.customers), batch):
        rows = np.arange(start, min(start + batch, len(data.customers)))
        scores, reason = model.scores(data, rows, one_time_products)
        if exclude is not None:
            scores[:, exclude] = -np.inf
        cols, values = _top_n(scores, n)
        keep = np.isfinite(values).ravel()
        frames.append(pd.DataFrame({
            "customer_id": np.repeat(data.customers[rows].to_numpy(), cols.shape[1]),
            "rank": np.tile(np.arange(1, cols.shape[1] + 1), len(rows)),
            "product_id": data.products[cols.ravel()].to_numpy(),
            "score": values.ravel(),
            "reason": REASONS[np.take_along_axis(reason, cols, axis=1).ravel()],
        })[keep])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["customer_id", "rank", "product_id", "score", "reason"])


# ---------------------------------------------------------------- offline evaluation

K = 10


def ranking_metrics(recommended: dict[str, list[str]], relevant: dict[str, set[str]],
                    n_products: int, k: int = K) -> dict[str, float]:
    """Precision, recall, NDCG, hit rate and MAP at k over the customers in `relevant`, and
    catalogue coverage (share of products recommended to anyone)."""
    precision, recall, ndcg, hit, ap = [], [], [], [], []
    shown: set[str] = set()
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for customer, truth in relevant.items():
        top = recommended.get(customer, [])[:k]
        shown.update(top)
        hits = np.array([item in truth for item in top], dtype=float)
        n_hits = hits.sum()
        precision.append(n_hits / k)
        recall.append(n_hits / len(truth))
        ideal = discounts[:min(len(truth), k)].sum()
        ndcg.append((hits * discounts[:len(hits)]).sum() / ideal)
        hit.append(float(n_hits > 0))
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1) if len(hits) else hits
        ap.append((precision_at * hits).sum() / min(len(truth), k))
    return {f"precision@{k}": float(np.mean(precision)), f"recall@{k}": float(np.mean(recall)),
            f"ndcg@{k}": float(np.mean(ndcg)), f"hit_rate@{k}": float(np.mean(hit)),
            f"map@{k}": float(np.mean(ap)), "coverage": len(shown) / max(n_products, 1),
            "customers": float(len(relevant))}


def as_lists(recommendations: pd.DataFrame) -> dict[str, list[str]]:
    ordered = recommendations.sort_values(["customer_id", "rank"])
    return ordered.groupby("customer_id")["product_id"].agg(list).to_dict()


def baselines() -> dict[str, RepeatThenSimilar]:
    """The rules a store would use without a model (the shipped model must beat the best)."""
    return {
        "global popularity": RepeatThenSimilar(similar_weight=0.0, own_weight=0.0,
                                               plain_popularity=True),
        "item-kNN (cosine, shrunk)": RepeatThenSimilar(own_weight=0.0, similar_weight=1e6),
        "customer's own most-bought, then popularity": RepeatThenSimilar(
            similar_weight=0.0, plain_popularity=True),
    }


def evaluate(models: dict[str, RepeatThenSimilar], train: Interactions,
             relevant: dict[str, set[str]], k: int = K) -> pd.DataFrame:
    """Fit each model on `train` and score it on the held-out purchases in `relevant`."""
    customers = subset(train, list(relevant))
    rows = []
    for name, model in models.items():
        model.fit(train)
        recs = recommend(model, customers, n=k)
        rows.append({"model": name, **ranking_metrics(as_lists(recs), relevant,
                                                      len(train.products), k)})
    return pd.DataFrame(rows).set_index("model")


def subset(data: Interactions, customers: list[str]) -> Interactions:
    """The rows of `data` for the given customers (in that order)."""
    rows = data.customers.get_indexer(pd.Index(customers))
    rows = rows[rows >= 0]
    return Interactions(data.matrix[rows], data.customers[rows], data.products,
                        data.recency[rows] if data.recency is not None else None)


# ---------------------------------------------------------------- time-based evaluation


def time_split(lines: pd.DataFrame, holdout_days: int, when: str = "ordered_at"
               ) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Training lines before the last `holdout_days`, and what each already-known customer
    bought in them (the relevant products of the offline evaluation)."""
    ordered_at = pd.to_datetime(lines[when])
    cutoff = ordered_at.max().normalize() - pd.Timedelta(days=holdout_days - 1)
    train = lines[ordered_at < cutoff]
    known = set(train["customer_id"].astype(str))
    test = lines[(ordered_at >= cutoff) & lines["customer_id"].astype(str).isin(known)]
    relevant = test.groupby(test["customer_id"].astype(str))["product_id"].agg(
        lambda s: set(s.astype(str))).to_dict()
    return train, relevant


def similar_items(model: RepeatThenSimilar, data: Interactions, n: int = 20) -> pd.DataFrame:
    """The n most similar products of every product: product_id, rank, similar_product_id,
    similarity ("people also bought")."""
    sim = model.similarity.tocsr() if model.similarity is not None else item_similarity(data)
    rows = []
    for i in range(sim.shape[0]):
        start, end = sim.indptr[i], sim.indptr[i + 1]
        if start == end:
            continue
        cols, values = sim.indices[start:end], sim.data[start:end]
        order = np.argsort(-values, kind="stable")[:n]
        rows.append(pd.DataFrame({"product_id": data.products[i], "rank": np.arange(1, len(order) + 1),
                                  "similar_product_id": data.products[cols[order]].to_numpy(),
                                  "similarity": values[order]}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["product_id", "rank", "similar_product_id", "similarity"])


def cart_complements(model: RepeatThenSimilar, data: Interactions, carts: pd.DataFrame,
                     n: int = 5) -> pd.DataFrame:
    """For each open cart (customer_id, product_id rows), the n products most similar to what
    is in it and not in it already: customer_id, rank, product_id, score."""
    if carts.empty or model.similarity is None:
        return pd.DataFrame(columns=["customer_id", "rank", "product_id", "score"])
    customers = pd.Index(carts["customer_id"].astype(str).unique())
    cols = data.products.get_indexer(carts["product_id"].astype(str))
    known = cols >= 0
    rows = customers.get_indexer(carts["customer_id"].astype(str))
    basket = sparse.csr_matrix((np.ones(known.sum()), (rows[known], cols[known])),
                               shape=(len(customers), len(data.products)))
    scores = np.asarray((basket @ model.similarity).todense())
    scores[basket.toarray() > 0] = -np.inf
    scores[scores <= 0] = -np.inf
    top, values = _top_n(scores, n)
    frame = pd.DataFrame({"customer_id": np.repeat(customers.to_numpy(), top.shape[1]),
                          "rank": np.tile(np.arange(1, top.shape[1] + 1), len(customers)),
                          "product_id": data.products[top.ravel()].to_numpy(),
                          "score": values.ravel()})
    return frame[np.isfinite(frame["score"])].reset_index(drop=True)


REASON_POPULAR_IN_GROUP = "popular_in_country"


def popular_in_groups(lines: pd.DataFrame, group_of: pd.Series, n: int = 10,
                      half_life_days: float = 90.0, exclude: set[str] | None = None,
                      when: str = "ordered_at") -> pd.DataFrame:
    """The n most popular products within each group of customers (e.g. their country), by
    recent-weighted number of buyers: group, rank, product_id, score. The cold-start list for
    customers who have not bought yet."""
    frame = lines.assign(group=lines["customer_id"].astype(str).map(group_of))
    frame = frame[frame["group"].notna()]
    if exclude:
        frame = frame[~frame["product_id"].astype(str).isin(exclude)]
    ordered_at = pd.to_datetime(frame[when])
    age = (ordered_at.max() - ordered_at).dt.total_seconds() / 86_400
    frame = frame.assign(weight=np.power(0.5, age / half_life_days))
    # a customer counts once per product, at their most recent purchase of it
    per_buyer = frame.groupby(["group", "product_id", "customer_id"])["weight"].max()
    scores = per_buyer.groupby(level=["group", "product_id"]).sum().rename("score").reset_index()
    scores = scores.sort_values(["group", "score", "product_id"], ascending=[True, False, True])
    scores["rank"] = scores.groupby("group").cumcount() + 1
    return scores[scores["rank"] <= n][["group", "rank", "product_id", "score"]].reset_index(
        drop=True)
