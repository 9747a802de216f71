"""A preview of the key marts on their materialization in the Dagster UI: a short Markdown table
with units and rounded figures (`preview` metadata), read in the connection that reads the row
counts (table_metadata.py).

- `marts.segment_summary`: every segment (size, share, revenue, reach by channel, change vs the
  day and the week before);
- `marts.customer_rfm`: one row per RFM segment (customers, recency, orders, spend), not
  customers' rows: a customer's id in the Dagster event log would outlive their erasure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb

MAX_ROWS = 60


def _int(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _signed(value: Any) -> str:
    return "–" if value is None else f"{int(value):+,}"


def _share(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f} %"


def _money(decimals: int) -> Callable[[Any], str]:
    return lambda value: "–" if value is None else f"{float(value):,.{decimals}f}"


def _number(decimals: int) -> Callable[[Any], str]:
    return lambda value: "–" if value is None else f"{float(value):.{decimals}f}"


def _text(value: Any) -> str:
    return "–" if value is None else str(value).replace("|", "\\|")


# (schema, table) -> (query, [(header, formatter)], what the table shows); `{currency}` in a
# header is the store's currency (from dim_products).
PREVIEWS: dict[tuple[str, str], tuple[str, list[tuple[str, Callable[[Any], str]]], str]] = {
    ("marts", "segment_summary"): (
        ("select segment_name, segment_type, n_customers, share_of_customers, net_revenue,"
         " avg_order_value, n_reachable_email, n_reachable_ads, change_vs_day_before,"
         " change_vs_week_before from marts.segment_summary"
         f" order by segment_type, n_customers desc, segment_name limit {MAX_ROWS}"),
        [("segment", _text), ("type", _text), ("customers", _int), ("share", _share),
         ("net revenue ({currency})", _money(0)), ("avg order ({currency})", _money(2)),
         ("reachable by email", _int), ("reachable by ads", _int),
         ("vs day before", _signed), ("vs week before", _signed)],
        ("Every segment (largest first within its type); share of all customers; "
         "changes in members, – before the membership history reaches that far back."),
    ),
    ("marts", "customer_rfm"): (
        ("select rfm_segment, count(*), count(*) / sum(count(*)) over (),"
         " quantile_disc(recency_days, 0.5), avg(frequency), avg(monetary)"
         " from marts.customer_rfm"
         f" group by rfm_segment order by count(*) desc, rfm_segment limit {MAX_ROWS}"),
        [("RFM segment", _text), ("customers", _int), ("share", _share),
         ("median recency (days)", _int), ("avg orders in window", _number(2)),
         ("avg spend in window ({currency})", _money(2))],
        "One row per RFM segment, largest first.",
    ),
}


def _currency(con: duckdb.DuckDBPyConnection) -> str:
    try:
        found = con.execute("select string_agg(distinct currency, '/' order by currency)"
                            " from marts.dim_products").fetchone()
    except duckdb.Error:
        found = None
    return (found[0] if found and found[0] else "store currency")


def preview_markdown(con: duckdb.DuckDBPyConnection, relation: tuple[str, str]) -> str | None:
    """The Markdown preview of `relation`, or None when it has none."""
    if relation not in PREVIEWS:
        return None
    query, columns, caption = PREVIEWS[relation]
    rows = con.execute(query).fetchall()
    currency = _currency(con)
    headers = [header.format(currency=currency) for header, _ in columns]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if fmt is _text else "---:" for _, fmt in columns) + "|"]
    lines += ["| " + " | ".join(fmt(value) for (_, fmt), value in zip(columns, row, strict=True))
              + " |" for row in rows]
    return f"{caption}\n\n" + "\n".join(lines)
