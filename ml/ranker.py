"""A learned re-ranker over the other recommenders: gradient-boosted trees (scikit-learn's
HistGradientBoostingClassifier) that learn, from the store's own past, which candidate products
a customer buys next.

Why: on repeat-heavy retail the customer's own products are the strongest signal, but which of
them comes back (bought often? lately? on a cycle that is due?) and when a neighbour's product
beats an old one of theirs is different for every store. A hand-set blend (TIFU-KNN's alpha, a
half-life) is tuned on one validation window; the trees learn it from several.

How:
- candidates per customer: every product they bought, the 40 best of TIFU-KNN's neighbour part
  and of its blend, the 20 most popular lately;
- features per (customer, product): order counts, decayed counts (30 and 90 days), days since
  the customer last / first bought it and that gap against their own cycle for it, the
  customer's orders, tenure and recency, the product's buyers, repeat rate and recent
  popularity, and the scores of TIFU-KNN (neighbours only and blended) and item-kNN;
- labels: the products bought in a 28-day window after a cutoff, with features from before it;
  `windows` cutoffs, each 28 days before the next, all inside the training data it is given
  (so on a validation split it never sees the validation weeks; on the final split never the
  holdout). Trees: 200 rounds, 15 leaves, at least 100 pairs per leaf.

It needs the order lines with their dates (`Interactions.lines`), so for now it runs in the
offline benchmark (`ml.online_retail`) only; the pipeline's scoring history holds counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from ml.recommendation import (
    Interactions,
    Recommender,
    RepeatThenSimilar,
    TifuKnn,
    item_similarity,
    popularity,
    subset,
    time_split,
)


def _scorers(data: Interactions) -> tuple:
    """The models whose scores are features, fitted on `data`."""
    return (TifuKnn(alpha=0.5, neighbours=100).fit(data),
            TifuKnn(alpha=0.0, neighbours=100).fit(data),
            RepeatThenSimilar(own_weight=0.0, similar_weight=1.0).fit(data))


FEATURES = ["n", "d30", "d90", "last_age", "first_age", "since_vs_cycle", "share", "c_orders",
            "c_last_age", "c_first_age", "c_products", "i_buyers", "i_repeat", "i_recent",
            "popular", "neighbours", "tifu", "item_knn"]
NEVER = 999.0  # days since a product the customer never bought


@dataclass
class LearnedRanker(Recommender):
    windows: int = 5
    window_days: int = 28
    neighbour_candidates: int = 40
    popular_candidates: int = 20
    seed: int = 0
    use_events: bool = False  # learns from orders only
    model: object | None = field(default=None, repr=False)
    trained_on: int = 0  # labelled candidate pairs the trees learnt from
    # the history it scores from and the models fitted on it (TIFU-KNN blend and neighbours
    # only, item-kNN)
    history: Interactions | None = field(default=None, repr=False)
    scorers: tuple | None = field(default=None, repr=False)

    def fit(self, data: Interactions) -> LearnedRanker:
        from sklearn.ensemble import HistGradientBoostingClassifier

        if data.lines is None:
            raise ValueError("the learned ranker needs the order lines with their dates "
                             "(Interactions.from_lines(..., keep_lines=True))")
        frames, lines = [], data.lines
        for _ in range(self.windows):
            history, future = time_split(lines, self.window_days)
            if history.empty or not future:
                break
            past = Interactions.from_lines(history, keep_lines=True)
            frame = self._candidates(past, list(future))
            bought = pd.Series([p in future[c] for c, p in zip(frame["customer_id"],
                                                              frame["product_id"], strict=True)])
            frames.append(frame.assign(label=bought.to_numpy()))
            lines = history
        if not frames:
            raise ValueError("too little history to learn a ranking from: no window of "
                             f"{self.window_days} days with purchases before it")
        train = pd.concat(frames, ignore_index=True)
        self.trained_on = len(train)
        self.model = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100,
            l2_regularization=1.0, random_state=self.seed).fit(train[FEATURES], train["label"])
        self.history, self.scorers = data, _scorers(data)
        self.popular = popularity(data)
        self.similarity = item_similarity(data)  # "people also bought", cart complements
        return self

    def _candidates(self, data: Interactions, customers: list[str],
                    scorers: tuple | None = None) -> pd.DataFrame:
        """Candidate (customer, product) pairs of those `customers` that `data` holds, with
        their features, from the history in `data`."""
        blend, neighbour_part, knn_model = scorers or _scorers(data)
        sub = subset(data, customers)
        rows = np.arange(len(sub.customers))
        tifu, _ = blend.score_batch(sub, rows)
        neighbours, _ = neighbour_part.score_batch(sub, rows)
        knn, _ = knn_model.score_batch(sub, rows)
        popular = blend.popular
        owned = sub.matrix.tocoo()
        k = min(self.neighbour_candidates, len(data.products))
        top = np.concatenate([np.argpartition(-neighbours, k - 1, axis=1)[:, :k],
                              np.argpartition(-tifu, k - 1, axis=1)[:, :k]], axis=1)
        hot = np.argsort(-popular, kind="stable")[:self.popular_candidates]
        cand_rows = np.concatenate([owned.row, np.repeat(rows, top.shape[1]),
                                    np.repeat(rows, len(hot))])
        cand_cols = np.concatenate([owned.col, top.ravel(), np.tile(hot, len(rows))])
        pair = np.unique(cand_rows.astype(np.int64) * len(data.products) + cand_cols)
        r, c = pair // len(data.products), pair % len(data.products)
        frame = pd.DataFrame({"customer_id": sub.customers[r].to_numpy(),
                              "product_id": data.products[c].to_numpy()})
        frame["popular"], frame["tifu"] = popular[c], tifu[r, c]
        frame["neighbours"], frame["item_knn"] = neighbours[r, c], knn[r, c]
        return self._history_features(frame, data.lines, customers)

    @staticmethod
    def _history_features(frame: pd.DataFrame, lines: pd.DataFrame,
                          customers: list[str]) -> pd.DataFrame:
        as_of = pd.to_datetime(lines["ordered_at"]).max()
        age = (as_of - pd.to_datetime(lines["ordered_at"])).dt.total_seconds() / 86_400
        lines = lines.assign(age=age.to_numpy(), d30=np.power(0.5, age / 30).to_numpy(),
                             d90=np.power(0.5, age / 90).to_numpy())
        item = lines.groupby("product_id").agg(i_buyers=("customer_id", "nunique"),
                                               i_recent=("d30", "sum"))
        mine = lines[lines["customer_id"].isin(customers)]
        pairs = mine.groupby(["customer_id", "product_id"]).agg(
            n=("age", "size"), d30=("d30", "sum"), d90=("d90", "sum"),
            last_age=("age", "min"), first_age=("age", "max"))
        every = lines.groupby(["customer_id", "product_id"]).size()
        item["i_repeat"] = ((every >= 2).groupby(level="product_id").sum()
                            / item["i_buyers"])
        customer = mine.groupby("customer_id").agg(
            c_orders=("InvoiceNo", "nunique"), c_last_age=("age", "min"),
            c_first_age=("age", "max"), c_products=("product_id", "nunique"))
        frame = (frame.merge(pairs, on=["customer_id", "product_id"], how="left")
                 .merge(customer, on="customer_id", how="left")
                 .merge(item, on="product_id", how="left"))
        frame[["n", "d30", "d90"]] = frame[["n", "d30", "d90"]].fillna(0.0)
        frame[["last_age", "first_age"]] = frame[["last_age", "first_age"]].fillna(NEVER)
        cycle = (frame["c_first_age"] - frame["c_last_age"] + 1) / frame["n"].clip(lower=1)
        frame["since_vs_cycle"] = frame["last_age"] / cycle
        frame["share"] = frame["n"] / frame["c_orders"]
        return frame

    def score_batch(self, data: Interactions, rows: np.ndarray,
                    one_time_products: np.ndarray | None = None,
                    out: np.ndarray | None = None, order: np.ndarray | None = None):
        """As `RepeatThenSimilar.score_batch`: candidates score 1 + P(bought next), the rest a
        trace of popularity; reasons 0 buy again, 1 also bought, 2 popular."""
        if self.model is None or self.history is None:
            raise ValueError("fit the ranker first")
        customers = list(data.customers[rows])
        # scored from the history it was fitted on (all customers: neighbours, popularity)
        frame = self._candidates(self.history, customers, self.scorers)
        frame["score"] = 1.0 + self.model.predict_proba(frame[FEATURES])[:, 1]
        dense = np.tile(1e-3 * self.popular, (len(rows), 1))
        r = pd.Index(customers).get_indexer(frame["customer_id"])
        c = data.products.get_indexer(frame["product_id"])
        dense[r, c] = frame["score"].to_numpy()
        scores = out if out is not None else np.empty_like(dense)
        scores[:] = dense if order is None else dense[:, order]
        position = np.arange(len(self.popular)) if order is None else np.argsort(order)
        owned = data.matrix[rows].tocoo()
        if one_time_products is not None:
            once = one_time_products[owned.col]
            scores[owned.row[once], position[owned.col[once]]] = -np.inf
        bought = data.matrix[rows].tocsr()
        neighbour = sparse.csr_matrix((frame["neighbours"].to_numpy() + 1e-12, (r, c)),
                                      shape=dense.shape)

        def explain(cols: np.ndarray) -> np.ndarray:
            at = np.broadcast_to(np.arange(cols.shape[0])[:, None], cols.shape)
            reason = np.full(cols.shape, 2, dtype=np.int8)
            near = np.asarray(neighbour[at.ravel(), cols.ravel()]).reshape(cols.shape)
            reason[near > 1e-3 * self.popular[cols]] = 1
            reason[np.asarray(bought[at.ravel(), cols.ravel()]).reshape(cols.shape) > 0] = 0
            return reason

        return scores, explain
