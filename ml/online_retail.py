"""The recommendation benchmark on UCI Online Retail (or Online Retail II): the shipped
recommender against the baselines, all computed here by the same code with the same
tie-breaking, under two protocols.

- strict time split (the headline): one global cutoff, the last 28 days held out; training,
  popularity included, sees nothing from the cutoff on; scored over the customers who bought
  before the cutoff and in the held-out days, against the distinct products they bought then.
- leave the last invoice out (the protocol of `../shared/data/README.md`, for comparison with
  its published figures): each customer with two or more invoices; other customers' later
  purchases are in training, so it flatters every method a little.

Cleaning (both): drop guest, cancelled, non-positive and non-product lines. The configuration
is chosen as the pipeline chooses it, on a validation split of the training data only (the same
protocol one step earlier), among the pipeline's candidates (the learned ranker of
ml/ranker.py among them) and four more TIFU-KNN blends that run here only, so the pipeline's own
choice (its candidates, the same validation table) is a row of its own. The lift over the strongest baseline comes with a paired bootstrap
95 % interval (customers resampled with replacement, the same ones for both).

    .venv/bin/python -m ml.online_retail --data ../shared/data/online_retail/online_retail_2010-12_2011-12.parquet
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml import recommendation as rec
from ml.evaluation import paired_bootstrap_ratio

NON_PRODUCT_CODES = {"POST", "D", "M", "DOT", "BANK CHARGES", "C2", "AMAZONFEE", "PADS",
                     "CRUK", "B"}
SHIPPED = "Segmenta (the configuration chosen on validation)"
# the configuration the pipeline would choose: its candidates only (`rec.candidates()`)
PIPELINE = "Segmenta pipeline (its own candidates, chosen on validation)"
HOLDOUT_DAYS = 28
# UCI "Online Retail" and "Online Retail II" name the same columns differently
COLUMNS = {"InvoiceNo": "invoice", "Invoice": "invoice", "StockCode": "stock_code",
           "Quantity": "quantity", "InvoiceDate": "invoice_date", "UnitPrice": "unit_price",
           "Price": "unit_price", "CustomerID": "customer", "Customer ID": "customer"}
NEEDED = ("invoice", "stock_code", "quantity", "invoice_date", "unit_price", "customer")


def load_lines(path: Path) -> pd.DataFrame:
    """The cleaned invoice lines: customer_id, product_id, InvoiceNo, ordered_at (Parquet, CSV
    or Excel; either dataset's column names)."""
    suffix = path.suffix.lower()
    df = (pd.read_parquet(path) if suffix == ".parquet"
          else pd.read_excel(path) if suffix in (".xlsx", ".xls") else pd.read_csv(path))
    df = df.rename(columns=COLUMNS)
    missing = [name for name in NEEDED if name not in df.columns]
    if missing:
        raise ValueError(f"{path}: no column for {', '.join(missing)} (expected the UCI Online "
                         f"Retail or Online Retail II names: {', '.join(COLUMNS)})")
    invoice = df["invoice"].astype(str)
    df = df[df["customer"].notna() & ~invoice.str.startswith("C")
            & (df["quantity"] > 0) & (df["unit_price"] > 0)
            & ~df["stock_code"].astype(str).isin(NON_PRODUCT_CODES)]
    return pd.DataFrame({"customer_id": df["customer"].astype(float).astype(int).astype(str),
                         "product_id": df["stock_code"].astype(str),
                         "InvoiceNo": df["invoice"].astype(str),
                         "ordered_at": pd.to_datetime(df["invoice_date"])})


def hold_out_last_invoice(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """The lines without each customer's last invoice (for customers with two or more), one
    per customer, product and invoice; and the held-out invoice's products per customer."""
    invoices = df.groupby(["customer_id", "InvoiceNo"], as_index=False)["ordered_at"].min()
    invoices["n"] = invoices.groupby("customer_id")["InvoiceNo"].transform("size")
    last = (invoices.sort_values(["customer_id", "ordered_at", "InvoiceNo"])
            .groupby("customer_id").tail(1))
    last = last.loc[last["n"] >= 2, ["customer_id", "InvoiceNo"]].assign(held_out=True)
    df = df.drop(columns="held_out", errors="ignore").merge(
        last, on=["customer_id", "InvoiceNo"], how="left")
    held = df["held_out"].eq(True)
    relevant = df[held].groupby("customer_id")["product_id"].agg(set).to_dict()
    lines = df[~held].drop_duplicates(["customer_id", "InvoiceNo", "product_id"])
    return lines, relevant


def hold_out_last_days(df: pd.DataFrame, days: int = HOLDOUT_DAYS
                       ) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """One global cutoff: the lines before the last `days` days (one per customer, product and
    invoice), and the products each customer with lines before the cutoff bought from it on."""
    lines, relevant = rec.time_split(df, days)  # relevant: customers known before the cutoff
    return lines.drop_duplicates(["customer_id", "InvoiceNo", "product_id"]), relevant


def load_split(path: Path) -> tuple[rec.Interactions, dict[str, set[str]]]:
    """Training interactions (one per customer, product and invoice) and the held-out
    products of each test customer, leaving the last invoice out."""
    lines, relevant = hold_out_last_invoice(load_lines(path))
    return rec.Interactions.from_lines(lines), relevant


def benchmark(path: Path, protocol: str = "strict") -> tuple[pd.DataFrame, str, dict]:
    """The test table (baselines and the shipped model, computed here), the configuration the
    shipped model uses (chosen on a validation split of the training data only, by the same
    protocol) and the lift over the strongest baseline: {baseline, lift, low, high}."""
    split = hold_out_last_days if protocol == "strict" else hold_out_last_invoice
    lines, relevant = split(load_lines(path))
    validation_lines, validation = split(lines)
    candidates = {**rec.candidates(), **rec.tifu_candidates()}
    validation_data = rec.Interactions.from_lines(validation_lines, keep_lines=True)
    chosen, table = rec.select_candidate(validation_data, validation, candidates)
    # the pipeline's own candidates, chosen on the same validation table
    pipeline = str(table.loc[table.index.intersection(list(rec.candidates())), "ndcg@10"].idxmax())
    models = {**rec.baselines(), SHIPPED: candidates[chosen]}
    if pipeline != chosen:
        models[PIPELINE] = rec.candidates()[pipeline]
    scores: dict[str, np.ndarray] = {}
    table = rec.evaluate(models, rec.Interactions.from_lines(lines, keep_lines=True), relevant,
                         per_customer=scores)
    if pipeline == chosen:  # the same configuration: its row, not a second fit
        table = pd.concat([table, table.loc[[SHIPPED]].rename(index={SHIPPED: PIPELINE})])
        scores[PIPELINE] = scores[SHIPPED]
    table = table.loc[[*rec.baselines(), PIPELINE, SHIPPED]]
    best = table.drop(index=[SHIPPED, PIPELINE])["ndcg@10"].idxmax()
    lift = {"baseline": best}
    for name, key in ((SHIPPED, ""), (PIPELINE, "pipeline_")):
        low, high = paired_bootstrap_ratio(scores[name], scores[best])
        lift.update({f"{key}lift": float(table.loc[name, "ndcg@10"]
                                         / table.loc[best, "ndcg@10"] - 1),
                     f"{key}low": low - 1, f"{key}high": high - 1})
    lift["pipeline_chosen"] = pipeline
    return table, chosen, lift


PROTOCOLS = {"strict": f"strict time split: the last {HOLDOUT_DAYS} days held out",
             "last_invoice": "leave the last invoice out (../shared/data/README.md)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The recommender against same-code baselines on UCI Online Retail (I or "
                    "II): a strict time split and leave-last-invoice-out, with the bootstrap "
                    "lift.")
    parser.add_argument("--data", type=Path, required=True,
                        help="the Online Retail file (.parquet, .csv or .xlsx)")
    parser.add_argument("--protocol", choices=[*PROTOCOLS, "both"], default="both",
                        help="which protocol to run (default: both)")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"error: {args.data} not found", file=sys.stderr)
        return 2
    columns = ["precision@10", "recall@10", "ndcg@10", "hit_rate@10", "map@10", "coverage"]
    for protocol in (PROTOCOLS if args.protocol == "both" else [args.protocol]):
        started = time.monotonic()
        try:
            table, chosen, lift = benchmark(args.data, protocol)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"## {PROTOCOLS[protocol]}\n\n{int(table['customers'].iloc[0]):,} test customers; "
              f"{time.monotonic() - started:.0f} s; configuration chosen on the validation "
              f"split: {chosen}\n")
        print(table[columns].round(4).to_markdown(floatfmt=".4f"))
        print(f"\nNDCG@10 lift over the strongest baseline ({lift['baseline']}): "
              f"{lift['lift']:+.1%} (paired bootstrap 95 % interval {lift['low']:+.1%} to "
              f"{lift['high']:+.1%}); the pipeline's own candidates ({lift['pipeline_chosen']}): "
              f"{lift['pipeline_lift']:+.1%} ({lift['pipeline_low']:+.1%} to "
              f"{lift['pipeline_high']:+.1%})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
