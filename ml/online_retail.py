"""The recommendation benchmark on UCI Online Retail, with the protocol of
`../shared/data/README.md`: drop guest, cancelled, non-positive and non-product lines; for each
customer with two or more invoices hold out the last invoice; train on everything else; score
the top 10 against the held-out invoice's distinct products.

    .venv/bin/python -m ml.online_retail --data ../shared/data/online_retail/online_retail_2010-12_2011-12.parquet
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from ml import recommendation as rec

NON_PRODUCT_CODES = {"POST", "D", "M", "DOT", "BANK CHARGES", "C2", "AMAZONFEE", "PADS",
                     "CRUK", "B"}
# ../shared/data/README.md
REFERENCE = pd.DataFrame({
    "recall@10": [0.0386, 0.0798, 0.1699], "ndcg@10": [0.0658, 0.1335, 0.2391],
    "hit_rate@10": [0.3863, 0.4740, 0.6678],
}, index=["reference: global popularity", "reference: item-kNN (cosine)",
          "reference: customer's own most-bought items, then popularity"])
SHIPPED = "Segmenta: RepeatThenSimilar"


def load_lines(path: Path) -> pd.DataFrame:
    """The cleaned invoice lines: customer_id, product_id, InvoiceNo, ordered_at."""
    df = pd.read_parquet(path)
    df = df[df["CustomerID"].notna() & ~df["InvoiceNo"].str.startswith("C")
            & (df["Quantity"] > 0) & (df["UnitPrice"] > 0)
            & ~df["StockCode"].isin(NON_PRODUCT_CODES)]
    return df.assign(customer_id=df["CustomerID"].astype(int).astype(str),
                     product_id=df["StockCode"].astype(str),
                     ordered_at=pd.to_datetime(df["InvoiceDate"]))


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


def load_split(path: Path) -> tuple[rec.Interactions, dict[str, set[str]]]:
    """Training interactions (one per customer, product and invoice) and the held-out
    products of each test customer."""
    lines, relevant = hold_out_last_invoice(load_lines(path))
    return rec.Interactions.from_lines(lines), relevant


def benchmark(path: Path) -> tuple[pd.DataFrame, str]:
    """The test table (baselines and the shipped model) and the configuration the shipped
    model uses, chosen the way the pipeline chooses it: on a validation split of the training
    data only (each customer's last training invoice held out in turn)."""
    lines, relevant = hold_out_last_invoice(load_lines(path))
    validation_lines, validation = hold_out_last_invoice(lines)
    chosen, _ = rec.select_candidate(rec.Interactions.from_lines(validation_lines), validation)
    models = {**rec.baselines(), SHIPPED: rec.candidates()[chosen]}
    return rec.evaluate(models, rec.Interactions.from_lines(lines), relevant), chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="online_retail_2010-12_2011-12.parquet")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"error: {args.data} not found", file=sys.stderr)
        return 2
    started = time.monotonic()
    table, chosen = benchmark(args.data)
    columns = ["precision@10", "recall@10", "ndcg@10", "hit_rate@10", "map@10", "coverage"]
    shown = pd.concat([table[columns], REFERENCE]).round(4)
    print(f"{int(table['customers'].iloc[0]):,} test customers; "
          f"{time.monotonic() - started:.0f} s; configuration chosen on the validation split: "
          f"{chosen}\n")
    print(shown.to_markdown(floatfmt=".4f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
