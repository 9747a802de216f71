"""Defect injection: corrupting a few order lines and events the way real exports go wrong.

Each defect kind maps to the reason code ingestion must give the row in quarantine, and the
manifest counts the defects written per kind, so a test can check the quarantine caught them all.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

# Each defect kind maps to the reason code ingestion must give it.
ORDER_DEFECTS = ("missing_required_field", "bad_timestamp", "negative_price", "unknown_currency",
                 "invalid_value", "duplicate_key")
EVENT_DEFECTS = ("malformed_json", "unknown_event_type", "bad_timestamp", "duplicate_key")


def inject_defects(orders: pd.DataFrame, lines: list[str], rate: float,
                   rng: np.random.Generator) -> tuple[pd.DataFrame, list[str], Counter]:
    """Corrupt about `rate` of the order lines and events the way real exports go wrong.

    Returns the order rows, the event lines and the number of defects written per reason code.
    """
    defects: Counter = Counter()
    hit = np.flatnonzero(rng.random(len(orders)) < rate)
    kinds = rng.integers(0, len(ORDER_DEFECTS), len(hit))
    orders = orders.reset_index(drop=True).astype({"unit_price": str})
    duplicates = []
    for row, k in zip(hit, kinds, strict=True):
        kind = ORDER_DEFECTS[k]
        defects[kind] += 1
        if kind == "duplicate_key":  # the same line delivered twice
            duplicates.append(row)
        elif kind == "missing_required_field":
            orders.at[row, "product_id"] = ""
        elif kind == "bad_timestamp":
            orders.at[row, "ordered_at"] = "31/12/2026 25:61"
        elif kind == "negative_price":
            orders.at[row, "unit_price"] = f"-{orders.at[row, 'unit_price']}"
        elif kind == "unknown_currency":
            orders.at[row, "currency"] = "XYZ"
        else:
            orders.at[row, "status"] = "shipped"
    if duplicates:
        orders = pd.concat([orders, orders.loc[duplicates]]).sort_index(kind="stable")
    out = lines
    hit = np.flatnonzero(rng.random(len(out)) < rate)
    kinds = rng.integers(0, len(EVENT_DEFECTS), len(hit))
    for row, k in sorted(zip(hit, kinds, strict=True), reverse=True):
        kind = EVENT_DEFECTS[k]
        defects[kind] += 1
        line = out[row]
        if kind == "malformed_json":
            out[row] = line[: len(line) // 2]
        elif kind == "unknown_event_type":
            out[row] = json.dumps({**json.loads(line), "type": "screen"}, separators=(",", ":"))
        elif kind == "bad_timestamp":
            out[row] = json.dumps({**json.loads(line), "timestamp": "yesterday"},
                                  separators=(",", ":"))
        else:
            out.insert(row + 1, line)
    return orders, out, defects
