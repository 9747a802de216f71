"""Rendering a day's frames into landing files: ids, local timestamps, event JSON, file handles.

Event rows are turned into Segment-spec JSON lines by DuckDB, joining small lookup tables
(products, platforms, countries, event kinds, search queries) registered once per run.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from generator.catalogue import Catalogue
from generator.personas import COUNTRIES, PLATFORMS, USER_AGENTS


def padded_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded ids, e.g. padded_ids("C", [12], 7) -> ["C0000012"]."""
    return np.char.add(prefix, np.char.zfill(np.asarray(numbers, dtype=np.int64).astype(str),
                                             width))


def local_iso(moment: np.ndarray, offset_hours: np.ndarray) -> np.ndarray:
    """UTC instants as local wall-clock ISO-8601 strings with their offset, as shops write them."""
    local = np.asarray(moment, dtype="datetime64[s]") + (np.asarray(offset_hours) * 3600).astype(
        "timedelta64[s]")
    text = np.datetime_as_string(local, unit="s")
    offsets = np.asarray(offset_hours)
    suffix = np.where(offsets >= 0, "+", "-")
    suffix = np.char.add(suffix, np.char.zfill(np.abs(offsets).astype(str), 2))
    return np.char.add(text, np.char.add(suffix, ":00"))


KINDS = ("page", "identify", "Products Searched", "Product Viewed", "Product Added",
         "Product Removed", "Cart Viewed", "Checkout Started", "Order Completed", "Email Opened",
         "Email Link Clicked")


def lookup_tables(con: duckdb.DuckDBPyConnection, catalogue: Catalogue) -> None:
    """Small tables the event renderer joins to: products, platforms, countries."""
    con.register("_products", pd.DataFrame({
        "product": np.arange(len(catalogue.product_id)), "product_id": catalogue.product_id,
        "category": catalogue.category, "price": catalogue.price}))
    con.register("_platforms", pd.DataFrame({
        "platform": np.arange(len(PLATFORMS)), "device": [p[0] for p in PLATFORMS],
        "os": [p[1] for p in PLATFORMS], "agent": [USER_AGENTS[p[1]] for p in PLATFORMS]}))
    con.register("_countries", pd.DataFrame({
        "country": np.arange(len(COUNTRIES)), "country_code": [c.code for c in COUNTRIES],
        "city": [c.cities[0][0] for c in COUNTRIES]}))
    con.register("_kinds", pd.DataFrame({"kind_code": np.arange(len(KINDS)), "kind": KINDS}))
    con.register("_categories", pd.DataFrame({
        "query_code": np.arange(len(catalogue.categories)),
        "query": [c.lower() for c in catalogue.categories]}))


def render_events(con: duckdb.DuckDBPyConnection, events: pd.DataFrame,
                  first_message: int) -> list[str]:
    """Segment-spec JSON lines for a day's event rows, formatted by DuckDB from numeric columns.

    Needs `lookup_tables` registered on the connection first.
    """
    if events.empty:
        return []
    frame = pd.DataFrame({
        "row": np.arange(len(events)),
        "kind_code": pd.Categorical(events["kind"], categories=KINDS).codes,
        "user": events["user"].to_numpy(dtype=np.int64),
        "anon": events["anon"].to_numpy(dtype=np.int64),
        "ts": events["ts"].to_numpy(dtype="datetime64[s]"),
        "product": events["product"].to_numpy(dtype=np.int64),
        "order_no": events["order"].to_numpy(dtype=np.int64),
        "platform": events["platform"].to_numpy(dtype=np.int64),
        "country": events["country"].to_numpy(dtype=np.int64),
        "query_code": events["query"].to_numpy(dtype=np.int64),
        "campaign_day": events["campaign"].to_numpy(dtype="datetime64[s]"),
    })
    con.register("_events", frame)
    lines = con.execute("""
        with e as (
            select
                e.row, k.kind,
                'msg-' || lpad(cast(e.row + ? as varchar), 10, '0') as message,
                strftime(e.ts, '%Y-%m-%dT%H:%M:%S.000Z') as timestamp,
                case when e.user >= 0 then 'C' || lpad(cast(e.user + 1 as varchar), 7, '0') end
                    as user_id,
                printf('%016x', e.anon) as anonymous,
                p.product_id, p.category, p.price,
                case when e.order_no > 0 then 'O' || lpad(cast(e.order_no as varchar), 9, '0')
                    end as order_id,
                q.query,
                'newsletter-' || strftime(e.campaign_day, '%Y-%m-%d') as campaign,
                json_object('device', json_object('type', pl.device),
                            'os', json_object('name', pl.os), 'userAgent', pl.agent,
                            'location', json_object('country', c.country_code, 'city', c.city))
                    as context
            from _events as e
            join _kinds as k using (kind_code)
            left join _products as p using (product)
            left join _platforms as pl using (platform)
            left join _countries as c using (country)
            left join _categories as q using (query_code)
        )
        select case
            when kind = 'page' then json_object(
                'type', 'page', 'messageId', message, 'timestamp', timestamp, 'userId', user_id,
                'anonymousId', anonymous, 'properties', json_object('path', '/', 'title', 'Home'),
                'context', context)
            when kind = 'identify' then json_object(
                'type', 'identify', 'messageId', message, 'timestamp', timestamp,
                'userId', user_id, 'anonymousId', anonymous, 'traits', json_object(),
                'context', context)
            when kind like 'Email%' then json_object(
                'type', 'track', 'event', kind, 'messageId', message, 'timestamp', timestamp,
                'userId', user_id, 'anonymousId', anonymous,
                'properties', json_object('campaign_id', campaign),
                'context', json_object('campaign', json_object('name', campaign,
                    'source', 'newsletter', 'medium', 'email')))
            else json_object(
                'type', 'track', 'event', kind, 'messageId', message, 'timestamp', timestamp,
                'userId', user_id, 'anonymousId', anonymous,
                'properties', case
                    when product_id is not null then json_object('product_id', product_id,
                        'category', category, 'price', price, 'quantity', 1)
                    when order_id is not null then json_object('order_id', order_id,
                        'currency', 'EUR')
                    when query is not null then json_object('query', query)
                    else json_object() end,
                'context', context)
            end::varchar as line
        from e order by row
    """, [first_message]).fetchnumpy()["line"]
    con.unregister("_events")
    return lines.tolist()


def open_landing(path: Path, compress: bool):
    """A text handle on a landing file (as `<name>.gz` when `compress`), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        return gzip.open(path.with_name(path.name + ".gz"), "wt", encoding="utf-8",
                         compresslevel=1, newline="")
    return path.open("w", encoding="utf-8", newline="")
