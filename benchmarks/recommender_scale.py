"""Benchmark training and scoring the product recommender at 1M customers x 20k products.

    .venv/bin/python benchmarks/recommender_scale.py --customers 1000000 --products 20000 \
        --lines 10000000 --events 100000000

Generates a synthetic store in numpy: product popularity follows a power law (Zipf, exponent
--zipf) and each customer prefers one of 200 categories of products, from which 70 % of their
purchases and events come; lines per customer are geometric around the mean. Purchases are
(customer, product, day) rows over 365 days; events are raw (customer, product, type) rows,
80 % views and 20 % cart adds, aggregated in numpy into (customer, product, event type,
count) triples, the form `Interactions.from_lines` takes (as the daily asset's SQL does). Then
it runs what the `product_recommendations` asset runs on them, with the model code of
`ml/recommendation.py`: the interaction matrices, the item-item similarity over buyers and
browsers (pruned to each product's --top-k neighbours), the top 10 of every customer (own
purchases and browsing blended with item-kNN and popularity, at most 5 products of a category),
and "people also bought" for every product. Prints wall time and the peak RSS of the process
after each stage. Not measured: reading the rows from DuckDB and writing the results back,
MLflow logging, and the offline evaluation (which scores only the customers who bought in the
held-out weeks).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from ml import recommendation as rec

N_CATEGORIES = 200
PREFERRED_SHARE = 0.7


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def draw_products(rng: np.random.Generator, customers: np.ndarray, n_products: int,
                  zipf: float) -> np.ndarray:
    """A product for each row of `customers`: 70 % from the customer's preferred category,
    the rest from the whole catalogue, both by power-law popularity."""
    weights = 1.0 / np.arange(1, n_products + 1) ** zipf
    popularity_rank = rng.permutation(n_products)  # product id -> its popularity rank
    by_rank = np.argsort(popularity_rank)
    cdf = np.cumsum(weights) / weights.sum()
    anywhere = by_rank[np.minimum(np.searchsorted(cdf, rng.random(len(customers))),
                                  n_products - 1)]
    per_category = n_products // N_CATEGORIES
    category_cdf = np.cumsum(weights[:per_category]) / weights[:per_category].sum()
    preferred = customers % N_CATEGORIES
    within = np.minimum(np.searchsorted(category_cdf, rng.random(len(customers))),
                        per_category - 1)
    in_category = preferred * per_category + within
    return np.where(rng.random(len(customers)) < PREFERRED_SHARE, in_category, anywhere
                    ).astype(np.int32)


def per_customer(rng: np.random.Generator, n_customers: int, total: int) -> np.ndarray:
    """Customer ids repeated a geometric number of times, `total` rows in all."""
    counts = rng.geometric(n_customers / total, n_customers)
    counts = np.maximum(np.round(counts * total / counts.sum()).astype(np.int64), 0)
    return np.repeat(np.arange(n_customers, dtype=np.int32), counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=10_000_000, help="purchase lines")
    parser.add_argument("--events", type=int, default=100_000_000, help="raw view/cart events")
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--batch", type=int, default=2_000, help="customers scored at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configuration", default="similar first, own blended, orders + browsing",
                        choices=list(rec.candidates()),
                        help="the candidate configuration to fit and score (default: the one "
                             "the sample store chooses)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    table = ["| stage | wall time | peak RSS | result |", "|---|--:|--:|---|"]
    clock = time.monotonic()

    def stage(name: str, result: str) -> None:
        nonlocal clock
        table.append(f"| {name} | {time.monotonic() - clock:.0f} s | {peak_mib():,.0f} MiB | "
                     f"{result} |")
        print(table[-1], flush=True)
        clock = time.monotonic()

    buyers = per_customer(rng, args.customers, args.lines)
    lines = pd.DataFrame({"customer_id": buyers,
                          "product_id": draw_products(rng, buyers, args.products, args.zipf),
                          "ordered_at": pd.Timestamp("2026-01-01") + pd.to_timedelta(
                              rng.integers(0, 365, len(buyers)), unit="D")})
    del buyers
    stage("generate purchase lines", f"{len(lines):,} lines")

    # raw events, generated in chunks and aggregated to (customer, product, type) counts
    keys = []
    for start in range(0, args.events, 20_000_000):
        size = min(20_000_000, args.events - start)
        who = rng.integers(0, args.customers, size, dtype=np.int32)
        what = draw_products(rng, who, args.products, args.zipf)
        cart = rng.random(size) < 0.2
        keys.append((who.astype(np.int64) * args.products + what) * 2 + cart)
    stage("generate raw events", f"{args.events:,} events (views 80 %, cart adds 20 %)")
    key, n_events = np.unique(np.concatenate(keys), return_counts=True)
    del keys
    events = pd.DataFrame({
        "customer_id": (key // 2 // args.products).astype(np.int32),
        "product_id": (key // 2 % args.products).astype(np.int32),
        "event_name": pd.Categorical.from_codes((key % 2).astype(np.int8),
                                                ["Product Viewed", "Product Added"]),
        "n_events": n_events.astype(np.int32)})
    del key, n_events
    stage("aggregate events to (customer, product, type) counts", f"{len(events):,} triples")

    data = rec.Interactions.from_lines(lines, events=events)
    del events
    stage("interaction matrices (orders, recency, views + cart adds)",
          f"{len(data.customers):,} x {len(data.products):,}; {data.matrix.nnz:,} bought, "
          f"{data.engagement.nnz:,} browsed pairs")

    codes = (data.products.to_numpy() // (args.products // N_CATEGORIES)) % 20  # 20 categories
    model = rec.configured(args.configuration, top_k=args.top_k, categories=codes,
                           max_per_category=5)
    model.fit(data)
    stage(f"fit {args.configuration}: item-item similarity, top {args.top_k} per product"
          + (f"; a pool of {model.pool.shape[0]:,} neighbours" if hasattr(model, "pool") else ""),
          f"{model.similarity.nnz:,} pairs kept")

    recs = rec.recommend(model, data, n=10, batch=args.batch)
    stage(f"score: top 10 for every customer (batches of {args.batch:,})",
          f"{len(recs):,} rows, {recs['customer_id'].nunique():,} customers")
    del recs

    similar = rec.similar_items(model, data, n=20)
    stage("people also bought: 20 per product", f"{len(similar):,} rows")
    print("\n".join(table))
    print(f"\npeak RSS {peak_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
