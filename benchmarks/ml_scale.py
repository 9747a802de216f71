"""Benchmark training and scoring the customer models at 1M customers.

    .venv/bin/python benchmarks/ml_scale.py --home /path/to/a/segmenta/home --customers 1000000

Takes the customers (marts.customer_360) and completed orders (marts.fct_orders) of an existing
SEGMENTA_HOME and resamples them, with new ids, up to --customers (a bootstrap: the same mix of
behaviour at the larger size). Then fits and scores what the ml assets fit and score:
customer_segmenter (k-means, k by silhouette, fitted on a 200k sample, predicting everyone) and
customer_lifetime_value (BG/NBD + Gamma-Gamma on every buyer, holdout evaluation included).
Prints wall time per step and the peak memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml import clv
from ml.features import PROFILE_COLUMNS, segmentation_features, segmentation_frame
from ml.segmentation import fit_segmenter


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a SEGMENTA_HOME after a run")
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    with duckdb.connect(str(args.home / "warehouse.duckdb"), read_only=True) as con:
        customers = con.execute("select * from marts.customer_360").df()
        orders = con.execute("""
            select customer_id, order_date as date, net_revenue as amount from marts.fct_orders
            where is_completed and customer_id is not null and net_revenue > 0""").df()
        as_of = pd.Timestamp(con.execute("select max(as_of_date) from marts.customer_rfm")
                             .fetchone()[0])
    rng = np.random.default_rng(0)
    copies = int(np.ceil(args.customers / len(customers)))
    big = customers.loc[customers.index.repeat(copies)].head(args.customers).copy()
    copy_no = np.arange(len(big)) % copies  # repeat() puts the copies of a row together
    big["customer_id"] = big["customer_id"].astype(str) + "-" + copy_no.astype(str)
    ids = orders["customer_id"].astype(str)
    big_orders = pd.concat([orders.assign(customer_id=ids + f"-{c}") for c in range(copies)],
                           ignore_index=True)
    big_orders = big_orders[big_orders["customer_id"].isin(set(big["customer_id"]))]
    print(f"{len(big):,} customers, {len(big_orders):,} completed orders "
          f"(resampled {copies}x from {args.home}); peak {peak_mib():,.0f} MiB", flush=True)

    lines = ["| step | wall time | result |", "|---|---|---|"]
    started = time.monotonic()
    frame = segmentation_frame(big)
    features = segmentation_features(frame)
    features = features + rng.normal(0, 1e-3, features.shape)  # resampled rows are not ties
    fit = fit_segmenter(features, profile=frame[PROFILE_COLUMNS])
    lines.append(f"| customer_segmenter: features, fit (k 3-9 on 200k), predict {len(features):,}"
                 f" | {time.monotonic() - started:.0f} s | k = {fit.k}, silhouette "
                 f"{fit.metrics['silhouette']:.3f} |")
    print(lines[-1], flush=True)

    started = time.monotonic()
    end = as_of - pd.Timedelta(days=1)
    _, report = clv.evaluate_holdout(big_orders, end - pd.Timedelta(days=90), end)
    summary = clv.rfm_summary(big_orders, end)
    model = clv.fit_lifetime_value(summary)
    scores = model.score(summary, 90 / 7)
    lines.append(f"| customer_lifetime_value: holdout fit + evaluation, fit, score "
                 f"{len(scores):,} buyers | {time.monotonic() - started:.0f} s | holdout "
                 f"purchases {report.metrics['holdout_purchases_predicted']:,.0f} predicted, "
                 f"{report.metrics['holdout_purchases_actual']:,.0f} actual |")
    print(lines[-1], flush=True)
    print("\n".join(lines))
    print(f"\npeak RSS {peak_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
