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
  holdout). Trees: 200 rounds, 15 leaves, at least 100 pairs per leaf. A fit on the next
  split (validation, holdout's training data, all history: each the last plus 28 days) takes
  the windows it shares with the last fit from it (`_LAST_WINDOWS`).

Training needs the order lines with their dates (`Interactions.from_lines(...,
keep_lines=True)`); scoring needs only their dated summary (`Interactions.dated`: decayed
counts, first and last purchase per product, orders per customer), which the pipeline's scoring
history carries in SQL by the same formulas, so a customer is scored from their history of
today, not of the day it trained. The product features (buyers, repeat rate, recent
popularity) are those of the training data, as every model's popularity is. Each window labels
at most `max_customers` buyers (a fixed hash sample), so training stays bounded on a large
store; scoring costs two TIFU-KNN passes and an item-kNN pass per customer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from ml.recommendation import (
    Interactions,
    NotEnoughHistory,
    Recommender,
    RepeatThenSimilar,
    TifuKnn,
    evaluation_sample,
    popularity,
    subset,
    time_split,
)


def _scorers(data: Interactions) -> tuple:
    """The models whose scores are features, fitted on `data`."""
    return (TifuKnn(alpha=0.5, neighbours=100, similar_items=False).fit(data),
            TifuKnn(alpha=0.0, neighbours=100, similar_items=False).fit(data),
            RepeatThenSimilar(own_weight=0.0, similar_weight=1.0).fit(data))


LEARNED_RANKER = "learned ranker over TIFU-KNN, item-kNN and purchase history (5 windows)"
FEATURES = ["n", "d30", "d90", "last_age", "first_age", "since_vs_cycle", "share", "c_orders",
            "c_last_age", "c_first_age", "c_products", "i_buyers", "i_repeat", "i_recent",
            "popular", "neighbours", "tifu", "item_knn"]
NEVER = 999.0  # days since a product the customer never bought


def _item_stats(data: Interactions) -> pd.DataFrame:
    """Per product of `data`: its buyers, the share of them who bought it twice or more, and
    its orders decayed with a 30-day half-life (by product position)."""
    bought = data.matrix.tocsc()
    buyers = np.diff(bought.indptr).astype(float)
    repeat = np.asarray((bought >= 2).sum(axis=0)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(buyers > 0, repeat / buyers, np.nan)
    return pd.DataFrame({"i_buyers": buyers, "i_repeat": share,
                         "i_recent": np.asarray(data.dated.d30.sum(axis=0)).ravel()})


def _row_extreme(matrix: sparse.csr_matrix, reduce) -> np.ndarray:
    """Per row, `reduce` (np.minimum / np.maximum) of its stored values; NaN for empty rows."""
    out = np.full(matrix.shape[0], np.nan)
    filled = np.flatnonzero(np.diff(matrix.indptr) > 0)
    if len(filled):
        out[filled] = reduce.reduceat(matrix.data, matrix.indptr[filled])
    return out


def _fingerprint(lines: pd.DataFrame) -> str:
    """A digest of order lines' columns and values (in their order)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr([(str(name), str(dtype)) for name, dtype in lines.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(lines, index=False).to_numpy().tobytes())
    return digest.hexdigest()


# The labelled windows of the last fit, by the lines they were cut from. A model is fitted on
# the validation split, then on the holdout's training data, then on all history: each of these
# splits is the last's with 28 more days, so its windows are the last fit's but one (4 of 5
# windows not labelled again). Only the last fit's are kept (`forget_windows` frees them).
_LAST_WINDOWS: dict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = {}


def forget_windows() -> None:
    """Free the last fit's labelled windows (training frames: GBs on a large store)."""
    _LAST_WINDOWS.clear()


@dataclass
class LearnedRanker(Recommender):
    windows: int = 5
    window_days: int = 28
    neighbour_candidates: int = 40
    popular_candidates: int = 20
    max_customers: int = 20_000  # labelled buyers per window at most (a fixed hash sample)
    seed: int = 0
    use_events: bool = False  # learns from orders only
    needs_dates: ClassVar[bool] = True
    model: object | None = field(default=None, repr=False)
    trained_on: int = 0  # labelled candidate pairs the trees learnt from
    # the models fitted on the whole training data whose scores are features (TIFU-KNN blend
    # and neighbours only, item-kNN), and its product features
    scorers: tuple | None = field(default=None, repr=False)
    items: pd.DataFrame | None = field(default=None, repr=False)

    def fit(self, data: Interactions) -> LearnedRanker:
        from sklearn.ensemble import HistGradientBoostingClassifier

        if data.lines is None or data.dated is None:
            raise ValueError("the learned ranker needs the order lines with their dates "
                             "(Interactions.from_lines(..., keep_lines=True))")
        frames, lines, labelled = [], data.lines, {}
        for _ in range(self.windows):
            key = (self.window_days, self.max_customers, self.neighbour_candidates,
                   self.popular_candidates, _fingerprint(lines))
            if key in _LAST_WINDOWS:  # the same lines: the same window as the last fit's
                frame, history = _LAST_WINDOWS[key]
            else:
                history, future = time_split(lines, self.window_days)
                if history.empty or not future:
                    break
                frame = self._window(history, future)
            labelled[key] = frame, history
            frames.append(frame)
            lines = history
        # the next fit on a split of this data (validation, holdout, all history) shares all
        # but one of its windows with this one
        _LAST_WINDOWS.clear()
        _LAST_WINDOWS.update(labelled)
        if not frames:
            raise NotEnoughHistory("too little history to learn a ranking from: no window of "
                             f"{self.window_days} days with purchases before it")
        train = pd.concat(frames, ignore_index=True)
        self.trained_on = len(train)
        self.model = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100,
            l2_regularization=1.0, random_state=self.seed).fit(train[FEATURES], train["label"])
        self.scorers, self.items = _scorers(data), _item_stats(data)
        self.popular = popularity(data)
        # "people also bought", cart complements: item-kNN's, as fitted among the scorers
        self.similarity = self.scorers[2].similarity
        return self

    def _window(self, history: pd.DataFrame, future: dict[str, set[str]]) -> pd.DataFrame:
        """The candidate pairs of (a sample of) the `future` buyers, with their features from
        the `history` lines before the window and their labels: bought in the window."""
        past = Interactions.from_lines(history, keep_lines=True)
        future = evaluation_sample(future, self.max_customers)
        frame = self._candidates(past, list(future), _scorers(past), _item_stats(past))
        bought = [p in future[c] for c, p in zip(frame["customer_id"], frame["product_id"],
                                                 strict=True)]
        return frame.assign(label=np.array(bought, dtype=bool))

    def _candidates(self, data: Interactions, customers: list[str], scorers: tuple,
                    items: pd.DataFrame) -> pd.DataFrame:
        """Candidate (customer, product) pairs of those `customers` that `data` holds, with
        their features: the customer's own history in `data`, the `scorers`' scores and the
        product features `items`."""
        blend, neighbour_part, knn_model = scorers
        sub = subset(data, customers)
        rows = np.arange(len(sub.customers))
        tifu, _ = blend.score_batch(sub, rows)
        neighbours, _ = neighbour_part.score_batch(sub, rows)
        knn, _ = knn_model.score_batch(sub, rows)
        popular = blend.popular
        owned = sub.matrix.tocoo()
        n_products = len(data.products)
        k = min(self.neighbour_candidates, n_products)
        top = np.concatenate([np.argpartition(-neighbours, k - 1, axis=1)[:, :k],
                              np.argpartition(-tifu, k - 1, axis=1)[:, :k]], axis=1)
        hot = np.argsort(-popular, kind="stable")[:self.popular_candidates]
        cand_rows = np.concatenate([owned.row, np.repeat(rows, top.shape[1]),
                                    np.repeat(rows, len(hot))])
        cand_cols = np.concatenate([owned.col, top.ravel(), np.tile(hot, len(rows))])
        pair = np.unique(cand_rows.astype(np.int64) * n_products + cand_cols)
        r, c = pair // n_products, pair % n_products
        frame = pd.DataFrame({"customer_id": sub.customers[r].to_numpy(),
                              "product_id": data.products[c].to_numpy()})
        frame["popular"], frame["tifu"] = popular[c], tifu[r, c]
        frame["neighbours"], frame["item_knn"] = neighbours[r, c], knn[r, c]
        return self._history_features(frame, sub, r, c, items)

    @staticmethod
    def _history_features(frame: pd.DataFrame, sub: Interactions, r: np.ndarray,
                          c: np.ndarray, items: pd.DataFrame) -> pd.DataFrame:
        """The features of the pairs (rows `r` of `sub`, product positions `c`) from the
        customers' dated history (`sub.dated`) and the product features `items`."""
        dated = sub.dated

        def at(matrix: sparse.csr_matrix) -> np.ndarray:
            return np.asarray(matrix[r, c]).ravel().astype(float)

        frame["n"], frame["d30"], frame["d90"] = at(sub.matrix), at(dated.d30), at(dated.d90)
        last, first = at(dated.last_seen), at(dated.first_seen)
        frame["last_age"] = np.where(last > 0, last - 1, NEVER)
        frame["first_age"] = np.where(first > 0, first - 1, NEVER)
        buyer = dated.orders > 0  # a customer who only browsed has no customer features
        frame["c_orders"] = np.where(buyer, dated.orders, np.nan)[r]
        frame["c_last_age"] = (_row_extreme(dated.last_seen, np.minimum) - 1)[r]
        frame["c_first_age"] = (_row_extreme(dated.first_seen, np.maximum) - 1)[r]
        products = np.diff(sub.matrix.tocsr().indptr).astype(float)
        frame["c_products"] = np.where(buyer, products, np.nan)[r]
        for column in items.columns:
            frame[column] = items[column].to_numpy()[c]
        cycle = (frame["c_first_age"] - frame["c_last_age"] + 1) / frame["n"].clip(lower=1)
        frame["since_vs_cycle"] = frame["last_age"] / cycle
        frame["share"] = frame["n"] / frame["c_orders"]
        return frame

    def score_batch(self, data: Interactions, rows: np.ndarray,
                    one_time_products: np.ndarray | None = None,
                    out: np.ndarray | None = None, order: np.ndarray | None = None):
        """As `RepeatThenSimilar.score_batch`: candidates score 1 + P(bought next), the rest a
        trace of popularity; reasons 0 buy again, 1 also bought, 2 popular."""
        if self.model is None or self.scorers is None:
            raise ValueError("fit the ranker first")
        if data.dated is None:
            raise ValueError("the learned ranker scores from the dated history "
                             "(Interactions.dated: from_lines(..., keep_lines=True), or the "
                             "scoring history's d30, d90, last_seen, first_seen, c_orders)")
        customers = list(data.customers[rows])
        # from each customer's history in `data` (as of its newest order), with the models
        # and product features of the training data
        frame = self._candidates(data, customers, self.scorers, self.items)
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
