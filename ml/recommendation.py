"""Product recommendations from purchase history: baselines, item-to-item similarity and a
personalized blend, with the offline metrics that compare them.

Every model takes `Interactions` (customer x product weights built from order lines, plus
weighted product views and cart adds) and returns, per customer, the top-N products with a score
and a reason code. The models:

- `popularity`: recent-weighted purchase counts; the cold-start fallback, with
  `popular_in_groups` / `cold_start` for popularity per segment and per country.
- `item_similarity`: "people also bought" — cosine similarity between products' buyer (and,
  optionally, viewer) vectors, shrunk for pairs with few common customers, so it does not merely
  echo popularity; optionally pruned to the top k neighbours of each product.
- `RepeatThenSimilar` (the shipped model): the customer's own products first (repeat buying
  dominates many stores) or not, then item-kNN over their purchases (and views and cart adds)
  blended with popularity; business rules (inactive products, non-replenishable products,
  at most k products of one category) applied after scoring.
- `candidates()` / `select_candidate`: the configurations a store chooses from on a validation
  split of its training data.
- `baselines()`: global popularity, item-kNN alone, and the customer's own most-bought
  products then popularity.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

REASON_OWN = "buy_again"
REASON_SIMILAR = "also_bought"
REASON_POPULAR = "popular"
REASON_POPULAR_IN_SEGMENT = "popular_in_segment"
REASON_POPULAR_IN_COUNTRY = "popular_in_country"
# the reasons of a list that is not personal (`cold_start`)
COLD_START_REASONS = (REASON_POPULAR, REASON_POPULAR_IN_SEGMENT, REASON_POPULAR_IN_COUNTRY)

# implicit feedback: what a view and a cart add weigh against a purchase
EVENT_WEIGHTS = {"Product Viewed": 1.0, "Product Added": 3.0}
PURCHASE_WEIGHT = 5.0


class NotEnoughHistory(ValueError):
    """A candidate that cannot learn from this much history (e.g. the learned ranker on a
    store younger than its first training window): left out of the comparison."""


@dataclass
class Dated:
    """What a customer's orders of each product say about time, as of the newest order in the
    data (the learned ranker's history features, ml/ranker.py): per customer x product, the
    orders decayed by age with half-lives of 30 and 90 days (`d30`, `d90`) and 1 + the days
    since the customer last and first ordered it (`last_seen`, `first_seen`: 0 means never);
    per customer, their distinct orders (`orders`). Built from order lines
    (`Interactions.from_lines(..., keep_lines=True)`) or, in the pipeline, from the scoring
    history's columns of the same names (`ml.registry.RecommenderPyfunc`), computed in SQL
    by the same formulas."""

    d30: sparse.csr_matrix
    d90: sparse.csr_matrix
    last_seen: sparse.csr_matrix
    first_seen: sparse.csr_matrix
    orders: np.ndarray

    COLUMNS = ("d30", "d90", "last_seen", "first_seen", "c_orders")

    @classmethod
    def from_pairs(cls, pairs: pd.DataFrame, rows: np.ndarray, cols: np.ndarray,
                   shape: tuple[int, int]) -> Dated:
        """From one row per customer and product (columns `COLUMNS`; c_orders repeated on each
        of the customer's rows) at positions `rows`, `cols`."""
        def matrix(column: str) -> sparse.csr_matrix:
            m = sparse.csr_matrix((pairs[column].to_numpy(float), (rows, cols)), shape=shape)
            m.eliminate_zeros()
            return m

        orders = np.zeros(shape[0])
        orders[rows] = pairs["c_orders"].to_numpy(float)
        return cls(matrix("d30"), matrix("d90"), matrix("last_seen"), matrix("first_seen"),
                   orders)

    @classmethod
    def from_lines(cls, lines: pd.DataFrame, rows: np.ndarray, cols: np.ndarray,
                   order: np.ndarray, age: np.ndarray, shape: tuple[int, int]) -> Dated:
        """From order lines (one per customer, product and order) at `rows`, `cols`, with
        their `order` ids and `age` in days."""
        frame = pd.DataFrame({"row": rows, "col": cols, "order": order, "age": age,
                              "d30": np.power(0.5, age / 30), "d90": np.power(0.5, age / 90)})
        pairs = frame.groupby(["row", "col"], sort=False).agg(
            d30=("d30", "sum"), d90=("d90", "sum"), last=("age", "min"), first=("age", "max"))
        orders = frame.groupby("row")["order"].nunique()
        at = pairs.index
        pairs = pd.DataFrame({"d30": pairs["d30"].to_numpy(), "d90": pairs["d90"].to_numpy(),
                              "last_seen": pairs["last"].to_numpy() + 1,
                              "first_seen": pairs["first"].to_numpy() + 1,
                              "c_orders": orders.reindex(at.get_level_values("row")).to_numpy()})
        return cls.from_pairs(pairs, at.get_level_values("row").to_numpy(),
                              at.get_level_values("col").to_numpy(), shape)

    def take(self, rows: np.ndarray) -> Dated:
        return Dated(self.d30[rows], self.d90[rows], self.last_seen[rows], self.first_seen[rows],
                     self.orders[rows])


@dataclass
class Interactions:
    """A customer x product matrix of order counts, with the ids of its rows and columns, the
    same counts decayed by age (`recency`) and the weighted views and cart adds (`engagement`)."""

    matrix: sparse.csr_matrix
    customers: pd.Index
    products: pd.Index
    recency: sparse.csr_matrix | None = field(default=None, repr=False)  # decayed weights
    engagement: sparse.csr_matrix | None = field(default=None, repr=False)  # views, cart adds
    purchase_weight: float = PURCHASE_WEIGHT
    # the order lines themselves (customer_id, product_id, InvoiceNo, ordered_at) and their
    # dated summary, kept with `keep_lines` for models that learn from dates (ml/ranker.py)
    lines: pd.DataFrame | None = field(default=None, repr=False)
    dated: Dated | None = field(default=None, repr=False)

    @classmethod
    def from_lines(cls, lines: pd.DataFrame, as_of: pd.Timestamp | None = None,
                   half_life_days: float = 90.0, customer: str = "customer_id",
                   product: str = "product_id", when: str = "ordered_at",
                   weight: str | None = None, events: pd.DataFrame | None = None,
                   event_weights: dict[str, float] | None = None,
                   purchase_weight: float = PURCHASE_WEIGHT,
                   keep_lines: bool = False) -> Interactions:
        """Order lines (one row per customer, product and order) to counts of orders per
        customer and product, plus the same counts decayed by age (half-life in days).

        `events` (customer_id, product_id, event_name, and optionally n_events when already
        aggregated) add implicit feedback: each event weighs `event_weights[event_name]`
        (default: a view 1, a cart add 3) against `purchase_weight` per order (default 5).
        Events already weighted and summed have an `engagement` column instead of event_name.
        A customer who only browsed gets a row too, with no orders."""
        event_weights = event_weights if event_weights is not None else EVENT_WEIGHTS
        if events is not None and "engagement" not in events:
            events = events[events["event_name"].isin(list(event_weights))]
        has_events = events is not None and len(events) > 0
        customer_ids, product_ids = _ids(lines[customer]), _ids(lines[product])
        # one hashing pass per id column; the ids numbered in sorted order, so a model and its
        # ties (equal scores rank by product id) do not depend on the order the rows came in
        # (DuckDB and Spark return them in different orders)
        if has_events:
            event_customers, event_products = _ids(events[customer]), _ids(events[product])
            all_rows, customers = pd.factorize(pd.concat(
                [customer_ids, event_customers], ignore_index=True), sort=True,
                use_na_sentinel=False)
            all_cols, products = pd.factorize(pd.concat(
                [product_ids, event_products], ignore_index=True), sort=True,
                use_na_sentinel=False)
            rows, event_rows = all_rows[:len(lines)], all_rows[len(lines):]
            cols, event_cols = all_cols[:len(lines)], all_cols[len(lines):]
        else:
            rows, customers = pd.factorize(customer_ids, sort=True, use_na_sentinel=False)
            cols, products = pd.factorize(product_ids, sort=True, use_na_sentinel=False)
        customers, products = pd.Index(customers, name=customer), pd.Index(products, name=product)
        values = lines[weight].to_numpy(float) if weight else np.ones(len(lines))
        shape = (len(customers), len(products))
        matrix = sparse.csr_matrix((values, (rows, cols)), shape=shape)
        when_ts = pd.to_datetime(lines[when])
        as_of = as_of if as_of is not None else when_ts.max()
        age = (as_of - when_ts).dt.total_seconds().to_numpy() / 86_400
        decayed = values * np.power(0.5, np.clip(age, 0, None) / half_life_days)
        recency = sparse.csr_matrix((decayed, (rows, cols)), shape=shape)
        engagement = None
        if has_events:
            if "engagement" in events:
                weighted = events["engagement"].to_numpy(float)
            else:
                counts = (events["n_events"].to_numpy(float) if "n_events" in events
                          else np.ones(len(events)))
                weighted = events["event_name"].map(event_weights).to_numpy(float) * counts
            engagement = sparse.csr_matrix((weighted, (event_rows, event_cols)), shape=shape)
        kept = dated = None
        if keep_lines:  # an order is its invoice (Online Retail), its order id, or its day
            order = next((c for c in ("InvoiceNo", "order_id") if c in lines), None)
            kept = pd.DataFrame({
                "customer_id": customer_ids.to_numpy(), "product_id": product_ids.to_numpy(),
                "InvoiceNo": (lines[order].astype(str).to_numpy() if order else
                              when_ts.dt.strftime("%Y-%m-%d").to_numpy()),
                "ordered_at": when_ts.to_numpy()})
            dated = Dated.from_lines(kept, rows, cols, kept["InvoiceNo"].to_numpy(),
                                     np.clip(age, 0, None), shape)
        return cls(matrix, customers, products, recency, engagement, purchase_weight, kept,
                   dated)

    def signal(self, rows: np.ndarray | slice | None = None, use_events: bool = True
               ) -> sparse.csr_matrix:
        """Orders (x purchase_weight) plus weighted views and cart adds, for the given rows:
        what item-kNN learns from and scores with. Orders only when `use_events` is False or
        there are no events."""
        rows = slice(None) if rows is None else rows
        if not use_events or self.engagement is None:
            return self.matrix[rows]
        return (self.purchase_weight * self.matrix[rows] + self.engagement[rows]).tocsr()


def _ids(values: pd.Series) -> pd.Series:
    """Ids as strings, except integer ids, which are kept (and matched) as integers."""
    return values if pd.api.types.is_integer_dtype(values) else values.astype(str)


def _top_n(scores: np.ndarray, n: int, overwrite: bool = False
           ) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the n best scores per row (best first). With `overwrite`
    the scores are negated in place instead of in a copy."""
    n = min(n, scores.shape[1])
    negated = np.negative(scores, out=scores if overwrite else None)
    part = np.argpartition(negated, n - 1, axis=1)[:, :n]
    values = -np.take_along_axis(negated, part, axis=1)
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


def item_similarity(data: Interactions, shrinkage: float = 10.0, min_common: int = 2,
                    use_events: bool = False, top_k: int | None = None,
                    block_cells: int = 20_000_000) -> sparse.csr_matrix:
    """Product x product cosine similarity of customer vectors (who bought each product, and
    with `use_events` who viewed it or added it to a cart), shrunk by n / (n + shrinkage) where
    n is the number of common customers, so pairs seen once do not dominate; the diagonal is 0.

    Computed for a block of products at a time (at most `block_cells` cells of a dense block);
    `top_k` keeps only each product's k most similar products (row i = the neighbours of
    product i), which bounds memory at large catalogues."""
    touched = (data.signal(use_events=use_events) > 0).astype(np.float32).tocsr()
    by_product = touched.T.tocsr()
    norms = np.sqrt(np.asarray(touched.sum(axis=0)).ravel()).astype(np.float32)
    n_products = touched.shape[1]
    block = max(1, block_cells // max(n_products, 1))
    pieces = []
    for start in range(0, n_products, block):
        end = min(start + block, n_products)
        common = (by_product[start:end] @ touched).toarray()  # products start:end x all
        common[np.arange(end - start), np.arange(start, end)] = 0
        common[common < min_common] = 0
        value = common / np.maximum(norms[start:end, None] * norms[None, :], 1e-12)
        value *= common / (common + shrinkage)
        if top_k is not None and top_k < n_products:
            weakest = np.argpartition(-value, top_k, axis=1)[:, top_k:]
            np.put_along_axis(value, weakest, 0, axis=1)
        pieces.append(sparse.csr_matrix(value.astype(np.float32)))
    if not pieces:
        return sparse.csr_matrix((0, 0), dtype=np.float32)
    return sparse.vstack(pieces).tocsr()


REASONS = np.array([REASON_OWN, REASON_SIMILAR, REASON_POPULAR])


@dataclass
class Recommender:
    """What every recommender has: the business rules (set by product index after fitting:
    `recommend` and `score_batch` apply them), the item-item similarity behind "people also
    bought" and the cart complements, and recent popularity."""

    max_per_category: int | None = None
    # by product index: never recommended / not re-offered to buyers / category code
    exclude: np.ndarray | None = field(default=None, repr=False)
    one_time_products: np.ndarray | None = field(default=None, repr=False)
    categories: np.ndarray | None = field(default=None, repr=False)
    similarity: sparse.csr_matrix | None = field(default=None, repr=False)
    popular: np.ndarray | None = field(default=None, repr=False)
    top_k: int | None = None  # the similarity keeps each product's k nearest neighbours only
    # learns from dated order lines (`Interactions.from_lines(..., keep_lines=True)`)
    needs_dates: ClassVar[bool] = False


@dataclass
class RepeatThenSimilar(Recommender):
    """The shipped recommender: the customer's own products first, then products like them.

    Tier 1, "buy again": products the customer already ordered, most-ordered first, ties broken
    by recent popularity (`own_weight` 0 turns this tier off: "similar first"). Tier 2, "also
    bought" / "popular": the rest, by item-kNN over the customer's history (weight
    `similar_weight`) plus recent popularity. With `use_events` the history and the similarity
    include weighted product views and cart adds (`Interactions.engagement`). Without tier 1,
    `own_blend` adds the customer's own purchases (and browsing) to that blended score, so a
    product they bought or left in a cart competes with similar ones instead of coming first.

    Business rules, applied after scoring: products in `exclude` (inactive) are never shown;
    products in `one_time_products` (non-replenishable categories) are never recommended again
    to a customer who bought them; with `categories` (an integer code per product) and
    `max_per_category`, at most that many products of one category enter a top-n.
    """

    similar_weight: float = 3.0
    shrinkage: float = 10.0
    own_weight: float = 1.0  # 0 turns tier 1 off (a pure similarity + popularity model)
    own_blend: float = 0.0  # without tier 1: own repeat purchases added to the blended score
    use_events: bool = False  # learn from views and cart adds as well as orders
    plain_popularity: bool = False  # rank by all-time counts instead of recent ones

    def fit(self, data: Interactions) -> RepeatThenSimilar:
        self.similarity = (item_similarity(data, self.shrinkage, use_events=self.use_events,
                                           top_k=self.top_k)
                           if self.similar_weight > 0 else None)
        if self.plain_popularity:
            counts = np.asarray((data.matrix > 0).sum(axis=0)).ravel().astype(float)
            self.popular = counts / max(counts.max(), 1.0)
        else:
            self.popular = popularity(data)
        return self

    def score_batch(self, data: Interactions, rows: np.ndarray,
                    one_time_products: np.ndarray | None = None,
                    out: np.ndarray | None = None, order: np.ndarray | None = None):
        """Dense scores of every product for the customers `rows` (tier 1 above 1, tier 2
        below 1), and a function giving the reason index (0 buy again, 1 also bought, 2
        popular) of chosen columns. The sparse signals are added into one dense array (`out`,
        reused across batches when given), so a batch costs one rows x products array. With
        `order`, column j of the scores is product order[j] (e.g. products sorted by
        category); otherwise column j is product j."""
        counts = _scale_sparse_rows(data.matrix[rows])
        scores = out if out is not None else np.empty((len(rows), len(self.popular)))
        position = np.arange(len(self.popular)) if order is None else np.argsort(order)
        scores[:] = self.popular if order is None else self.popular[order]
        similar = None
        if self.similarity is not None:
            history = data.signal(rows, self.use_events)
            history = history.multiply(1.0 / np.maximum(history.sum(axis=1), 1)).tocsr()
            similar = _scale_sparse_rows((history @ self.similarity).tocsr(),
                                         self.similar_weight)
            _add_into(scores, similar, position)
        if self.own_blend > 0:  # own purchases (and views and cart adds) in the same score
            mine = (_scale_sparse_rows(data.signal(rows, True)) if self.use_events
                    else counts)
            _add_into(scores, mine, position, self.own_blend)
        scores *= 0.999 / (self.similar_weight + self.own_blend + 1)
        owned = counts.tocoo()
        if self.own_weight > 0:
            scores[owned.row, position[owned.col]] = (1 + owned.data
                                                      + 1e-6 * self.popular[owned.col])
        if one_time_products is not None:
            once = one_time_products[owned.col]
            scores[owned.row[once], position[owned.col[once]]] = -np.inf

        def explain(cols: np.ndarray) -> np.ndarray:
            at = np.broadcast_to(np.arange(cols.shape[0])[:, None], cols.shape)
            reason = np.full(cols.shape, 2, dtype=np.int8)
            if similar is not None:
                value = np.asarray(similar[at.ravel(), cols.ravel()]).reshape(cols.shape)
                reason[value > self.popular[cols]] = 1
            if self.own_weight > 0 or self.own_blend > 0:
                bought = np.asarray(counts[at.ravel(), cols.ravel()]).reshape(cols.shape)
                reason[bought > 0] = 0
            return reason

        return scores, explain


@dataclass
class TifuKnn(Recommender):
    """Time-decayed repeat scores and neighbour baskets, in the style of TIFU-KNN (Hu et al.,
    SIGIR 2020): a customer's vector is their purchases decayed by age (`Interactions.recency`,
    half-life 90 days) scaled to sum to 1; the `neighbours` customers of the training pool most
    like them (cosine of those vectors) are averaged; the score is `alpha` x their own vector +
    (1 - `alpha`) x the neighbours' (with a trace of recent popularity to break ties). Own
    products are not put first: a product the neighbours buy a lot can outrank one bought once
    long ago (the repeat/explore blend). Scaling each vector to sum 1 makes it independent of
    the as-of date. The pool is the `pool_size` customers with the most recent-weighted
    purchases, so memory stays bounded (a batch of customers x the pool).

    In the pipeline the scoring history carries the decayed counts too (`recency` in `_history`,
    ages counted from the customer's own last order: the scaling to sum 1 cancels the anchor).
    The business rules apply as for `RepeatThenSimilar`."""

    alpha: float = 0.3
    neighbours: int = 200
    pool_size: int = 20_000
    use_events: bool = False  # learns from orders only
    # item-kNN for "people also bought" and the cart complements (its scores do not use it: a
    # model that only scores, as inside the learned ranker, skips it)
    similar_items: bool = True
    pool: sparse.csr_matrix | None = field(default=None, repr=False)
    pool_unit: sparse.csr_matrix | None = field(default=None, repr=False)
    pool_customers: pd.Index | None = field(default=None, repr=False)

    def fit(self, data: Interactions) -> TifuKnn:
        from sklearn.preprocessing import normalize

        decayed = (data.recency if data.recency is not None else data.matrix).tocsr()
        mass = np.asarray(decayed.sum(axis=1)).ravel()
        buyers = np.flatnonzero(mass > 0)
        keep = np.sort(buyers[np.argsort(-mass[buyers], kind="stable")[:self.pool_size]])
        self.pool = normalize(decayed[keep], norm="l1").astype(np.float32)
        self.pool_unit = normalize(self.pool, norm="l2").astype(np.float32)
        self.pool_customers = data.customers[keep]
        self.popular = popularity(data)
        # "people also bought" and the cart complements keep coming from item-kNN
        self.similarity = (item_similarity(data, top_k=self.top_k) if self.similar_items
                           else None)
        return self

    def score_batch(self, data: Interactions, rows: np.ndarray,
                    one_time_products: np.ndarray | None = None,
                    out: np.ndarray | None = None, order: np.ndarray | None = None):
        """As `RepeatThenSimilar.score_batch`: dense scores of every product for `rows` (column
        j is product order[j] with `order`) and a reason function (0 buy again, 1 also bought,
        2 popular)."""
        from sklearn.preprocessing import normalize

        decayed = (data.recency if data.recency is not None else data.matrix)[rows]
        mine = normalize(decayed.tocsr(), norm="l1")
        unit = normalize(mine, norm="l2").astype(np.float32)
        # most customers share a product with most of the pool, so the similarities are dense:
        # against a dense copy of the pool (when it is small: products x pool <= 25M cells,
        # e.g. 387 x 20,000) the product is a third of the sparse one's time
        if self.pool_unit.shape[0] * self.pool_unit.shape[1] <= DENSE_POOL_CELLS:
            similar = unit @ self.pool_unit.T.toarray()
        else:
            similar = (unit @ self.pool_unit.T).toarray()
        itself = self.pool_customers.get_indexer(data.customers[rows])  # not their own neighbour
        found = itself >= 0
        similar[np.flatnonzero(found), itself[found]] = -np.inf
        n_products = len(self.popular)
        position = np.arange(n_products) if order is None else np.argsort(order)
        # the scores are built in score order (column j = product order[j]) and sparse parts
        # are added into them: no dense copy of the blend, no re-ordering copy (at 1M customers
        # those were about half the scoring time)
        scores = out if out is not None else np.empty((len(rows), n_products))
        scores[:] = 1e-3 * (self.popular if order is None else self.popular[order])
        k = min(self.neighbours, self.pool.shape[0] - 1)
        near = sparse.csr_matrix((len(rows), n_products))
        if k > 0:
            nearest = np.argpartition(-similar, k - 1, axis=1)[:, :k]
            weights = sparse.csr_matrix(
                (np.full(nearest.size, 1.0 / k),
                 (np.repeat(np.arange(len(rows)), k), nearest.ravel())),
                shape=(len(rows), self.pool.shape[0]))
            pool = self.pool if order is None else self.pool[:, order]
            near = (weights @ pool).tocsr()  # the neighbours' mean, in score order
            _add_into(scores, near, np.arange(n_products), 1 - self.alpha)
        _add_into(scores, mine, position, self.alpha)
        owned = data.matrix[rows].tocoo()
        if one_time_products is not None:
            once = one_time_products[owned.col]
            scores[owned.row[once], position[owned.col[once]]] = -np.inf
        bought = data.matrix[rows].tocsr()

        def explain(cols: np.ndarray) -> np.ndarray:
            at = np.broadcast_to(np.arange(cols.shape[0])[:, None], cols.shape)
            reason = np.full(cols.shape, 2, dtype=np.int8)
            neighbours = np.asarray(near[at.ravel(), position[cols].ravel()]).reshape(cols.shape)
            reason[(1 - self.alpha) * neighbours > 1e-3 * self.popular[cols]] = 1
            reason[np.asarray(bought[at.ravel(), cols.ravel()]).reshape(cols.shape) > 0] = 0
            return reason

        return scores, explain


DENSE_POOL_CELLS = 25_000_000
TIFU_REPEAT_HEAVY = "TIFU-KNN, own 50%, 100 neighbours"
TIFU_EXPLORE = "TIFU-KNN, own 35%, 300 neighbours"


def tifu_candidates() -> dict[str, TifuKnn]:
    """The TIFU-KNN blends a store chooses from on its validation split (offline benchmark)."""
    return {f"TIFU-KNN, own {alpha:.0%}, {k} neighbours": TifuKnn(alpha=alpha, neighbours=k)
            for alpha in (0.2, 0.35, 0.5) for k in (100, 300)}


def _scale_sparse_rows(matrix: sparse.csr_matrix, to: float = 1.0) -> sparse.csr_matrix:
    """Each row of a sparse matrix scaled to a maximum of `to` (empty rows stay empty)."""
    top = matrix.max(axis=1).toarray().ravel()
    factor = np.divide(to, top, out=np.zeros_like(top, dtype=float), where=top > 0)
    scaled = matrix.multiply(factor[:, None]).tocsr()
    scaled.eliminate_zeros()
    return scaled


def _add_into(dense: np.ndarray, matrix: sparse.csr_matrix, position: np.ndarray,
              weight: float = 1.0) -> None:
    """dense[:, position] += weight * matrix, touching only the matrix's non-zero cells.
    `np.add.at` adds repeated cells each time, so the matrix need not be sorted and summed
    first (COO's `sum_duplicates` sorted every cell: 10 s of the Online Retail run)."""
    csr = matrix.tocsr()
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    np.add.at(dense, (rows, position[csr.indices]), weight * csr.data)


def top_n_diverse(scores: np.ndarray, categories: np.ndarray, max_per_category: int, n: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Diversity: column indices and values of the n best scores per row (best first) with at
    most `max_per_category` products of one category: the same list as taking products best
    first and skipping those whose category is full."""
    by_category = np.argsort(categories, kind="stable")
    cols, values = _top_n_in_blocks(scores[:, by_category], categories[by_category],
                                    max_per_category, n)
    return by_category[cols], values


def _top_n_in_blocks(scores: np.ndarray, sorted_categories: np.ndarray, max_per_category: int,
                     n: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_n_diverse` for scores whose columns are already sorted by category: the best
    `max_per_category` of each category's slice, then the best n of those."""
    bounds = np.flatnonzero(np.diff(sorted_categories)) + 1
    cols, values = [], []
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(sorted_categories)], strict=True):
        block = scores[:, lo:hi]
        if hi - lo <= max_per_category:
            best = np.broadcast_to(np.arange(hi - lo), block.shape)
        else:
            best = np.argpartition(block, hi - lo - max_per_category, axis=1)[
                :, hi - lo - max_per_category:]
        cols.append(lo + best)
        values.append(np.take_along_axis(block, best, axis=1))
    cols, values = np.hstack(cols), np.hstack(values)
    top, top_values = _top_n(values, n)
    return np.take_along_axis(cols, top, axis=1), top_values


# Batches of customers are scored side by side: the work that dominates (sparse products,
# partitions, fancy indexing) runs in NumPy and SciPy without the GIL. Scoring 300,000 of the
# 1M-customer store's customers: 11.7 s on one thread, 7.0 s on two (2 cores).
# SEGMENTA_SCORING_THREADS sets it (the test suite, whose two workers share the 2 cores: 1).
SCORING_THREADS = int(os.environ.get("SEGMENTA_SCORING_THREADS")
                      or max(1, min(4, os.cpu_count() or 1)))


def recommend(model: RepeatThenSimilar, data: Interactions, n: int = 10, batch: int = 2_000,
              exclude: np.ndarray | None = None,
              one_time_products: np.ndarray | None = None,
              threads: int | None = None) -> pd.DataFrame:
    """Top-n products per customer of `data`: customer_id, rank, product_id, score, reason.

    `exclude` is a boolean product mask never recommended (e.g. inactive products);
    `one_time_products` are not recommended to customers who already bought them; the model's
    `categories` / `max_per_category` cap the products of one category. Scores are computed in
    batches of customers so memory stays bounded (one batch x products array per thread, reused
    across its batches), on `threads` threads (default SCORING_THREADS); the result is the same
    whatever the number."""
    exclude = exclude if exclude is not None else model.exclude
    one_time_products = (one_time_products if one_time_products is not None
                         else model.one_time_products)
    capped = model.categories is not None and model.max_per_category is not None
    # with the category cap the score columns are the products sorted by category, so each
    # category is a slice
    order = np.argsort(model.categories, kind="stable") if capped else None
    if exclude is not None and order is not None:
        exclude = exclude[order]
    starts = range(0, len(data.customers), batch)
    local = threading.local()

    def top(start: int) -> pd.DataFrame:
        rows = np.arange(start, min(start + batch, len(data.customers)))
        if getattr(local, "buffer", None) is None:  # (fresh large arrays cost page faults)
            local.buffer = np.empty((min(batch, len(data.customers)), len(data.products)))
        scores, explain = model.score_batch(data, rows, one_time_products,
                                            out=local.buffer[:len(rows)], order=order)
        if exclude is not None:
            scores[:, exclude] = -np.inf
        if capped:
            cols, values = _top_n_in_blocks(scores, model.categories[order],
                                            model.max_per_category, n)
            cols = order[cols]
        else:
            cols, values = _top_n(scores, n, overwrite=True)
        keep = np.isfinite(values).ravel()
        return pd.DataFrame({
            "customer_id": np.repeat(data.customers[rows].to_numpy(), cols.shape[1]),
            "rank": np.tile(np.arange(1, cols.shape[1] + 1), len(rows)),
            "product_id": data.products[cols.ravel()].to_numpy(),
            "score": values.ravel(),
            "reason": REASONS[explain(cols).ravel()],
        })[keep]

    threads = max(1, min(threads or SCORING_THREADS, len(starts)))
    if threads == 1:
        frames = [top(start) for start in starts]
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="score") as pool:
            frames = list(pool.map(top, starts))
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
    """The rules a store would use without a model (the shipped model must beat the best),
    all learnt from orders only."""
    return {
        "global popularity": RepeatThenSimilar(similar_weight=0.0, own_weight=0.0,
                                               plain_popularity=True),
        "item-kNN (cosine, shrunk)": RepeatThenSimilar(own_weight=0.0, similar_weight=1e6),
        "customer's own most-bought, then popularity": RepeatThenSimilar(
            similar_weight=0.0, plain_popularity=True),
    }


# An offline evaluation scores at most this many customers: a fixed sample of the held-out
# buyers (by a hash of their id, the same for every model and every run). At 1M customers four
# held-out weeks name about 200,000 buyers and each candidate scored them all; on 50,000 the
# standard error of a mean NDCG@10 is about 0.002 and the models are compared customer by
# customer (the gate's paired bootstrap).
MAX_EVALUATED = 50_000
# Choosing among the candidates on the validation weeks needs less: at 1M customers the best
# two were 0.232 and 0.219 NDCG@10 apart on 50,000 buyers, where the standard error on 20,000
# is about 0.003 (and smaller for the paired difference); the TIFU-KNN candidates score each
# buyer against 20,000 pool customers (24 s per 50,000 buyers at 1M).
MAX_VALIDATED = 20_000


def evaluation_sample(relevant: dict[str, set[str]], limit: int) -> dict[str, set[str]]:
    """`relevant` when it holds at most `limit` customers, else the `limit` customers whose id
    hashes lowest (deterministic, independent of order), in `relevant`'s order."""
    if len(relevant) <= limit:
        return relevant
    import hashlib

    def rank(customer: str) -> bytes:
        return hashlib.blake2b(str(customer).encode(), digest_size=8).digest()

    kept = set(sorted(relevant, key=rank)[:limit])
    return {customer: items for customer, items in relevant.items() if customer in kept}


def evaluate(models: dict[str, RepeatThenSimilar], train: Interactions,
             relevant: dict[str, set[str]], k: int = K,
             per_customer: dict[str, np.ndarray] | None = None,
             limit: int | None = None) -> pd.DataFrame:
    """Fit each model on `train` and score it on the held-out purchases in `relevant` (at
    most `limit`, by default MAX_EVALUATED, customers of it: `evaluation_sample`); with
    `per_customer`, each model's NDCG@k per customer evaluated (in `relevant`'s order) is put
    there too, for paired comparisons (`ml.evaluation.paired_bootstrap_ratio`). A model that
    cannot learn from `train` (`NotEnoughHistory`) has no row."""
    relevant = evaluation_sample(relevant, MAX_EVALUATED if limit is None else limit)
    customers = subset(train, list(relevant))
    rows = []
    for name, model in models.items():
        try:
            model.fit(train)
        except NotEnoughHistory:  # (left out: no row)
            continue
        recommended = as_lists(recommend(model, customers, n=k))
        rows.append({"model": name, **ranking_metrics(recommended, relevant,
                                                      len(train.products), k)})
        if per_customer is not None:
            per_customer[name] = ndcg_per_customer(recommended, relevant, k)
    return (pd.DataFrame(rows) if rows else pd.DataFrame({"model": []})).set_index("model")


def ndcg_per_customer(recommended: dict[str, list[str]], relevant: dict[str, set[str]],
                      k: int = K) -> np.ndarray:
    """NDCG@k of each customer of `relevant`, in its order (their mean is `ranking_metrics`'s
    ndcg@k)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    scores = np.zeros(len(relevant))
    for number, (customer, truth) in enumerate(relevant.items()):
        top = recommended.get(customer, [])[:k]
        hits = np.array([item in truth for item in top], dtype=float)
        scores[number] = ((hits * discounts[:len(hits)]).sum()
                          / discounts[:min(len(truth), k)].sum())
    return scores


def subset(data: Interactions, customers: list[str]) -> Interactions:
    """The rows of `data` for the given customers (in that order)."""
    rows = data.customers.get_indexer(pd.Index(customers))
    rows = rows[rows >= 0]
    lines = data.lines
    if lines is not None:
        lines = lines[isin(lines["customer_id"], data.customers[rows])]
    return Interactions(data.matrix[rows], data.customers[rows], data.products,
                        data.recency[rows] if data.recency is not None else None,
                        data.engagement[rows] if data.engagement is not None else None,
                        data.purchase_weight, lines,
                        data.dated.take(rows) if data.dated is not None else None)


# ---------------------------------------------------------------- time-based evaluation


def split_date(lines: pd.DataFrame, holdout_days: int, when: str = "ordered_at"
               ) -> pd.Timestamp:
    """The first day of the last `holdout_days` days of `lines`."""
    return pd.to_datetime(lines[when]).max().normalize() - pd.Timedelta(days=holdout_days - 1)


def time_split(lines: pd.DataFrame, holdout_days: int, when: str = "ordered_at"
               ) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Training lines before the last `holdout_days`, and what each already-known customer
    bought in them (the relevant products of the offline evaluation)."""
    ordered_at = pd.to_datetime(lines[when])
    cutoff = ordered_at.max().normalize() - pd.Timedelta(days=holdout_days - 1)
    before = (ordered_at < cutoff).to_numpy()
    train = lines[before]
    customers = lines["customer_id"].astype(str)
    known = isin(customers, customers[before].unique())
    test = pd.DataFrame({"customer_id": customers[~before & known].to_numpy(),
                         "product_id": lines.loc[~before & known, "product_id"].astype(str)
                         .to_numpy()}).drop_duplicates()
    # one set per customer, in customer order (a Python function per group took seconds at 1M
    # customers)
    codes, names = pd.factorize(test["customer_id"], sort=True)
    order = np.argsort(codes, kind="stable")
    products = test["product_id"].to_numpy()[order]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    relevant = {str(name): set(group) for name, group in zip(
        names, np.split(products, bounds) if len(products) else [], strict=False)}
    return train, relevant


def similar_items(model: RepeatThenSimilar, data: Interactions | None, n: int = 20,
                  products: pd.Index | None = None) -> pd.DataFrame:
    """The n most similar products of every product: product_id, rank, similar_product_id,
    similarity ("people also bought"). A fitted model's own similarities need only its
    `products` (no `data`)."""
    if data is None and (model.similarity is None or products is None):
        raise ValueError("similar_items needs the interactions or a fitted model's products")
    sim = model.similarity.tocsr() if model.similarity is not None else item_similarity(data)
    products = data.products if data is not None else products
    rows = []
    for i in range(sim.shape[0]):
        start, end = sim.indptr[i], sim.indptr[i + 1]
        if start == end:
            continue
        cols, values = sim.indices[start:end], sim.data[start:end]
        order = np.argsort(-values, kind="stable")[:n]
        rows.append(pd.DataFrame({"product_id": products[i], "rank": np.arange(1, len(order) + 1),
                                  "similar_product_id": products[cols[order]].to_numpy(),
                                  "similarity": values[order]}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["product_id", "rank", "similar_product_id", "similarity"])


def cart_complements(model: RepeatThenSimilar, products: pd.Index, carts: pd.DataFrame,
                     n: int = 5) -> pd.DataFrame:
    """For each open cart (customer_id, product_id rows), the n products most similar to what
    is in it and not in it already: customer_id, rank, product_id, score."""
    if carts.empty or model.similarity is None:
        # typed: an untyped empty frame became an INTEGER customer_id column in DuckDB, which
        # an erasure's delete by customer id then failed to compare with
        return pd.DataFrame({"customer_id": pd.Series(dtype="string"),
                             "rank": pd.Series(dtype="int64"),
                             "product_id": pd.Series(dtype="string"),
                             "score": pd.Series(dtype="float64")})
    customers = pd.Index(carts["customer_id"].astype(str).unique())
    cols = products.get_indexer(carts["product_id"].astype(str))
    known = cols >= 0
    rows = customers.get_indexer(carts["customer_id"].astype(str))
    basket = sparse.csr_matrix((np.ones(known.sum()), (rows[known], cols[known])),
                               shape=(len(customers), len(products)))
    # sparse basket x dense similarity gives the dense scores at once (through a sparse
    # product and `todense` it took twice as long: 127k carts x 387 products, 3.5 s -> 1.1 s)
    scores = basket @ model.similarity.toarray()
    scores[basket.nonzero()] = -np.inf
    scores[scores <= 0] = -np.inf
    top, values = _top_n(scores, n, overwrite=True)
    frame = pd.DataFrame({"customer_id": np.repeat(customers.to_numpy(), top.shape[1]),
                          "rank": np.tile(np.arange(1, top.shape[1] + 1), len(customers)),
                          "product_id": products[top.ravel()].to_numpy(),
                          "score": values.ravel()})
    return frame[np.isfinite(frame["score"])].reset_index(drop=True)


def popular_in_groups(lines: pd.DataFrame, group_of: pd.Series, n: int = 10,
                      half_life_days: float = 90.0, exclude: set[str] | None = None,
                      when: str = "ordered_at") -> pd.DataFrame:
    """The n most popular products within each group of customers (e.g. their country), by
    recent-weighted number of buyers: group, rank, product_id, score. The cold-start list for
    customers who have not bought yet. In DuckDB: at 1M customers (7M order lines) the same
    in pandas took about 8 s per grouping."""
    with _popularity(lines, exclude, when) as (popular, _):
        return popular(group_of, n, half_life_days)[0]


def _arrow_strings(values) -> pa.Array:
    """Strings as Arrow: pandas 3 keeps them in Arrow already (no Python object per value,
    which took about a second per million); anything else is converted."""
    import pyarrow as pa

    values = pd.Series(values)
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return pa.array(values).cast(pa.string())
    return pa.array(values.astype(str).to_numpy(dtype=object, na_value=None), type=pa.string())


@dataclass(frozen=True)
class WarehouseLines:
    """Order lines that stay in the warehouse: `query` (customer_id, product_id and the
    purchase time column) run on `con`. The cold start aggregates them there instead of
    bringing 7M lines into pandas first (1M-customer store: 8 s -> 2 s a daily run)."""
    con: object
    query: str


@contextmanager
def _popularity(lines: pd.DataFrame | WarehouseLines, exclude: set[str] | None, when: str):
    """A function group_of, n, half_life_days -> (`popular_in_groups`, the number of buyers
    per group), and the buyers' ids, over (customer, product, last bought) pairs in DuckDB:
    an in-memory copy of `lines` (Arrow columns), or temp tables beside `WarehouseLines`.

    A buyer counts once per product, at their most recent purchase of it: those
    (customer, product, last bought) pairs are computed once, and each grouping joins them
    (at 1M customers, 7M order lines and three groupings for the cold start: each grouping
    aggregated the lines again before)."""
    import duckdb
    import pyarrow as pa

    in_warehouse = isinstance(lines, WarehouseLines)
    con = lines.con if in_warehouse else duckdb.connect()
    registered: list[str] = []
    try:
        if in_warehouse:
            source = f"(select customer_id, product_id, {when} as bought_at from ({lines.query}))"
        else:
            con.execute("set enable_progress_bar = false")
            con.register("_popularity_lines", pa.table({
                "customer_id": _arrow_strings(lines["customer_id"]),
                "product_id": _arrow_strings(lines["product_id"]),
                "bought_at": pa.array(pd.to_datetime(lines[when]).to_numpy(
                    dtype="datetime64[us]"))}))
            source = "_popularity_lines"
        con.register("_popularity_excluded",
                     pa.table({"product_id": _arrow_strings(sorted(exclude or ()))}))
        registered.append("_popularity_excluded")
        # one pass over the lines: every product's pairs (a buyer of excluded products only
        # is still a buyer), the excluded ones left out where the lists are ranked
        con.execute(f"""
            create or replace temp table _popularity_pairs as
            select customer_id::varchar as customer_id, product_id::varchar as product_id,
                   max(bought_at)::timestamp as bought_at
            from {source}
            group by all""")
        buyers = con.execute("select distinct customer_id from _popularity_pairs"
                             ).fetch_arrow_table()
        if not in_warehouse:
            con.unregister("_popularity_lines")

        def popular(group_of: pd.Series, n: int, half_life_days: float
                    ) -> tuple[pd.DataFrame, pd.Series]:
            con.register("_popularity_groups", pa.table({
                "customer_id": _arrow_strings(group_of.index),
                "segment": _arrow_strings(group_of)}))
            result = con.execute("""
                with kept as (
                    select groups.segment, pairs.product_id, pairs.bought_at
                    from _popularity_pairs as pairs
                    join _popularity_groups as groups using (customer_id)
                    where pairs.product_id not in (select product_id from _popularity_excluded)),
                scores as (
                    select kept.segment, product_id,
                           sum(power(0.5, epoch(newest.bought_at - kept.bought_at) / 86400 / ?))
                               as score
                    from kept, (select max(bought_at) as bought_at from kept) as newest
                    group by all)
                select scores.segment as "group", row_number() over (
                           partition by scores.segment order by score desc, product_id) as rank,
                       product_id, score
                from scores
                qualify rank <= ?
                order by scores.segment, rank""", [half_life_days, n]).df()
            counts = con.execute("""
                select groups.segment, count(*)
                from _popularity_buyers join _popularity_groups as groups using (customer_id)
                group by all""").fetchall()
            con.unregister("_popularity_groups")
            return (result.astype({"group": "str", "rank": "int64", "product_id": "str",
                                   "score": "float64"}),
                    pd.Series(dict(counts), dtype="int64"))

        con.register("_popularity_buyers", buyers)
        registered.append("_popularity_buyers")
        yield popular, buyers.column("customer_id").to_pandas()
    finally:
        if in_warehouse:  # the caller's connection: leave it as it was
            for view in registered:
                con.unregister(view)
            con.execute("drop table if exists _popularity_pairs")
        else:
            con.close()


def isin(values: pd.Series | pd.Index, among) -> np.ndarray:
    """`values.isin(among)` for many strings: pandas 3 makes a Python object of every value of
    `among` for its Arrow strings (a second per million); this stays in Arrow (Arrow-backed
    strings are passed as they are: 0.26 s instead of 0.64 s for a million in a million)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def arrow(strings) -> pa.Array:
        if (isinstance(strings, pd.Series | pd.Index) and isinstance(strings.dtype, pd.StringDtype)
                and strings.dtype.storage == "pyarrow"):
            array = pa.array(strings)  # pandas 3's Arrow strings as they are: no Python objects
            if isinstance(array, pa.ChunkedArray):
                array = array.combine_chunks()
            return array.cast(pa.large_string())
        strings = pd.Series(np.asarray(strings, dtype=object) if not isinstance(
            strings, pd.Series | pd.Index) else strings.to_numpy(dtype=object, na_value=None))
        return pa.array(strings, type=pa.large_string(), from_pandas=True)

    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(pc.is_in(arrow(values), value_set=arrow(list(among) if isinstance(
        among, set) else among)).fill_null(False), dtype=bool)


def fingerprint_sql(history: str, dated: bool = False) -> str:
    """SQL: a 64-bit fingerprint per customer of everything a champion scores them from (the
    rows of the relation `history`: customer_id, product_id, n_orders, engagement as DOUBLE,
    and with `dated` the days since each product was last bought, which grow as the store's
    newest order moves on: a ranker that learned from dates scores everyone again),
    whatever the rows' order (a sum of the rows' hashes, mod 2**64): two equal fingerprints
    mean the same list from the same champion, so an unchanged customer need not be scored
    again."""
    extra = ", last_seen::double" if dated else ""
    return f"""
        select customer_id,
               (sum(hash(product_id, n_orders::double, engagement::double{extra}))
                % (1::hugeint << 64))::ubigint as fingerprint
        from {history} group by customer_id"""


def history_fingerprints(history: pd.DataFrame) -> pd.Series:
    """`fingerprint_sql` of a frame: customer_id -> fingerprint."""
    import duckdb

    with duckdb.connect() as con:
        con.register("history", history[["customer_id", "product_id", "n_orders",
                                          "engagement"]].astype(
            {"customer_id": str, "product_id": str, "n_orders": float, "engagement": float}
        ).reset_index(drop=True).copy())  # DuckDB cannot scan arrays with negative strides
        prints = con.execute(fingerprint_sql("history")).df()
    return prints.set_index("customer_id")["fingerprint"].astype("uint64").sort_index()


def unchanged_customers(previous: pd.DataFrame | None, inputs: pd.DataFrame,
                        personal: bool = True) -> pd.Index:
    """The customers whose list from the last scoring can stay: scored personally then
    (`personal`), from the same fingerprint, by the same model version, with the same active
    products. `inputs` and `previous` have customer_id, fingerprint, model_version and
    active_products (`previous` also personal). With `personal=False`, those that the same
    model found nothing personal for from the same inputs: scoring them again would find
    nothing again, they go to the cold start (whose lists change with what is popular)."""
    if previous is None or previous.empty:
        return pd.Index([], dtype="object", name="customer_id")
    same = previous.merge(inputs, on=["customer_id", "fingerprint", "model_version",
                                      "active_products"])
    return pd.Index(same.loc[same["personal"].astype(bool) == personal, "customer_id"],
                    name="customer_id")


def fingerprint_of(values: list[str]) -> str:
    """A short hash of a list of strings (e.g. the active products)."""
    import hashlib

    return hashlib.sha256("\n".join(values).encode()).hexdigest()[:16]


def cold_start(lines: pd.DataFrame | WarehouseLines, profile: pd.DataFrame, who: list[str],
               n: int = 10,
               min_buyers: int = 20, exclude: set[str] | None = None,
               half_life_days: float = 90.0, when: str = "ordered_at") -> pd.DataFrame:
    """Recommendations for customers without history (`who`): what is popular among buyers of
    their segment (reason `popular_in_segment`) when that segment has at least `min_buyers`
    buyers, else in their country (`popular_in_country`, same threshold), else everywhere
    (`popular`). `profile` has customer_id, segment and country for every customer (buyers
    too: their purchases make the lists); a missing segment or country skips that level.
    `lines` are order lines in pandas or a `WarehouseLines` query.
    Returns customer_id, rank, product_id, score, reason."""
    profile = profile.set_index(profile["customer_id"].astype(str))
    remaining = pd.Index(pd.Index(who).astype(str).unique())
    levels = [("segment", REASON_POPULAR_IN_SEGMENT, min_buyers),
              ("country", REASON_POPULAR_IN_COUNTRY, min_buyers), (None, REASON_POPULAR, 1)]
    frames = []
    with _popularity(lines, exclude, when) as (popular, buyers):
        for column, reason, needed in levels:
            if remaining.empty:
                break
            group_of = (profile[column].dropna() if column else pd.Series(
                "all", index=profile.index.union(pd.Index(buyers.astype(str)))))
            top, n_buyers = popular(group_of, n, half_life_days)
            top = top[top["group"].isin(n_buyers[n_buyers >= needed].index)]
            target = pd.DataFrame({"customer_id": remaining,
                                   "group": group_of.reindex(remaining).to_numpy()})
            found = target.merge(top, on="group")
            frames.append(found[["customer_id", "rank", "product_id", "score"]].assign(
                reason=reason))
            remaining = remaining.difference(pd.Index(found["customer_id"].unique()), sort=False)
    columns = ["customer_id", "rank", "product_id", "score", "reason"]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns))


def candidates() -> dict[str, Recommender]:
    """The configurations a store chooses from on a validation split of its training data:
    its customers' own products first (stores where repeat buying dominates, e.g. Online
    Retail), or one blended score where products like the ones they bought (and browsed) can
    outrank their own past purchases (stores where the next purchase is something new), each
    learning from orders only or also from views and cart adds; or TIFU-KNN's time-decayed
    repeat and neighbour blend; or the learned re-ranker over those (ml/ranker.py), which a
    large store may leave out for its cost (the pipeline's `ranker_max_customers`). On the
    sample store the blended score with own purchases at 0.5 beat 0, 1 and 2
    (docs/recommendations.md)."""
    from ml.ranker import LEARNED_RANKER, LearnedRanker

    tifu = tifu_candidates()
    return {
        "own first, orders": RepeatThenSimilar(),
        "own first, orders + browsing": RepeatThenSimilar(use_events=True),
        "similar first, own blended, orders": RepeatThenSimilar(own_weight=0.0, own_blend=0.5),
        "similar first, own blended, orders + browsing": RepeatThenSimilar(
            own_weight=0.0, own_blend=0.5, use_events=True),
        # the two TIFU-KNN blends Online Retail's validation splits chose (docs/recommendations.md)
        **{name: tifu[name] for name in (TIFU_REPEAT_HEAVY, TIFU_EXPLORE)},
        LEARNED_RANKER: LearnedRanker(),
    }


def select_candidate(train: Interactions, validation: dict[str, set[str]],
                     models: dict[str, RepeatThenSimilar] | None = None
                     ) -> tuple[str, pd.DataFrame]:
    """The candidate with the best NDCG@10 on `validation` (held-out purchases that come after
    `train`, both taken from the training period, never from the final holdout), and the
    validation table (scored on at most MAX_VALIDATED of the validation buyers). The first
    candidate wins ties and is chosen when there is nothing to validate on."""
    models = models if models is not None else candidates()
    if train.engagement is None:  # no views or cart adds: those candidates are duplicates
        models = {name: model for name, model in models.items() if not model.use_events}
    if train.dated is None:  # no dated lines: nothing for a model that learns from dates
        models = {name: model for name, model in models.items() if not model.needs_dates}
    if not validation or train.matrix.nnz == 0:
        return next(iter(models)), pd.DataFrame()
    table = evaluate(models, train, validation, limit=MAX_VALIDATED)
    if table.empty:
        return next(iter(models)), table
    best = table[f"ndcg@{K}"]
    return str(best.index[int(np.argmax(best.to_numpy()))]), table


def fallback(evaluation: pd.DataFrame, shipped: str) -> tuple[str, str, pd.DataFrame]:
    """For a store whose first model lost to a baseline: the strongest baseline's name (a key
    of `baselines()`), the name it is registered under, and the evaluation table with its row
    repeated under that name (so its gate compares it, at a lift of exactly 1, with itself and
    the rejected model's row stays in the table). With no score at all (no held-out purchase
    to rank: a store of a few weeks), the first baseline; its gate then fails as well."""
    others = evaluation.drop(index=shipped)
    scores = others[f"ndcg@{K}"].dropna()
    best = str(scores.idxmax() if len(scores) else others.index[0])
    name = f"fallback: {best}"
    return best, name, pd.concat([evaluation, evaluation.loc[[best]].rename(index={best: name})])


def configured(name: str, **rules) -> RepeatThenSimilar:
    """A fresh candidate `name` with the business rules (exclude, one_time_products,
    categories, max_per_category, top_k) set."""
    model = candidates()[name]
    for key, value in rules.items():
        setattr(model, key, value)
    return model
