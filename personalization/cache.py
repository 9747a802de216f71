"""The personalization cache: one SQLite file built from the published copy in one pass.

The storefront API answers from `SEGMENTA_HOME/personalization/cache.sqlite`, never from the
warehouse or the published DuckDB file (a DuckDB point lookup costs milliseconds, a SQLite
primary-key lookup microseconds). `build_cache` reads `published/marts.duckdb` read-only with
DuckDB, writes the cache to a temporary file next to the target and renames it into place
(`os.replace`), so a reader sees the old file or the new one, never half of one. The server
notices the new file and opens it; requests in flight finish on the old one.

Tables of the cache:

- `customers` (one row per customer of `customer_360`, erased customers never): their
  recommendations as a JSON array of `[product_id, score, reason]` in rank order, their
  segment keys as a JSON array, and the variant of each content slot the content rules chose
  for them (a JSON array of rule indexes, one per slot, -1 for the default; NULL when every
  slot shows its default).
- `products` (one row per product of `dim_products`): the product as JSON (name, category,
  brand, price, ...), whether it is active, and its "people also bought" list (the active
  products of `item_similarities`) as a JSON array of `[product_id, similarity]`.
- `meta` (key, JSON value): the format version, when and from what it was built, the store's
  as-of date, the content slots with their rules and content, the segments' names and types,
  and the popular products (the answer for unknown customers).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from sqlglot import exp

from core.settings import Home
from core.warehouse import memory_limit
from personalization.content import CONTENT_FILE, Slot, load_content

FORMAT_VERSION = 1
POPULAR_N = 50  # popular products kept for unknown customers (an answer's limit is at most 50)
ERASED_PREFIX = "erased-"  # docs/privacy.md: an erased customer's rows carry a pseudonymous key
PUBLISHED_TABLES = ("customer_360", "customer_product_recommendations", "segment_memberships",
                    "dim_products", "item_similarities", "fct_order_items")
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


class CacheError(RuntimeError):
    """The cache cannot be built or opened; the message says what to do."""


def cache_path(home: Home) -> Path:
    """Where the API's cache lives under SEGMENTA_HOME."""
    return home.root / "personalization" / "cache.sqlite"


@dataclass(frozen=True)
class BuildResult:
    """What `build_cache` wrote: rows per table, seconds taken and the file's size."""

    path: Path
    customers: int
    products: int
    personalized_content: int  # customers for whom some slot shows a rule's content
    seconds: float
    bytes: int


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files of builds whose process is gone (killed mid-build)."""
    for path in folder.glob(".*.tmp"):
        match = _TEMP.match(path.name)
        if match and not Path(f"/proc/{match['pid']}").exists():
            path.unlink(missing_ok=True)


def _check_tables(con: duckdb.DuckDBPyConnection, published: Path) -> None:
    held = {name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_catalog = 'pub'"
    ).fetchall()}
    missing = [t for t in PUBLISHED_TABLES if t not in held]
    if missing:
        raise CacheError(f"{published} lacks {', '.join(missing)}: it is not a complete "
                         f"published copy; run `make run` (or `segmenta run`) first")


def _quoted(column: str) -> str:
    return exp.to_identifier(column, quoted=True).sql("duckdb")


def _content_choices(con: duckdb.DuckDBPyConnection, slots: list[Slot], content_file: Path):
    """customer_id and the rule index chosen per slot (JSON array) of every customer for whom
    some rule holds, as Arrow. The conditions run in an in-memory DuckDB without file or
    network access that holds only the columns they read (as `segments.rules` does)."""
    available = {name for (name,) in con.execute(
        "select column_name from information_schema.columns where table_catalog = 'pub' "
        "and table_name = 'customer_360'").fetchall()}
    for slot in slots:
        for rule in slot.rules:
            unknown = [c for c in rule.columns if c not in available]
            if unknown:
                raise CacheError(
                    f"{content_file}: slot '{slot.key}', rule '{rule.key}': unknown column "
                    f"{', '.join(unknown)} in `{rule.condition}` (the columns are those of "
                    f"customer_360 in the published copy; see README \"Segments\")")
    needed = list(dict.fromkeys(["customer_id", *(c for s in slots for c in s.columns)]))
    data = con.execute(
        f"select {', '.join(map(_quoted, needed))} from pub.main.customer_360 "
        f"where customer_id is not null and customer_id not like '{ERASED_PREFIX}%' "
        f"and not coalesce(is_deleted, false)").to_arrow_table()
    sandbox = duckdb.connect(config={"enable_external_access": False,
                                     "lock_configuration": True})
    try:
        sandbox.register("customer_360_data", data)
        choices = [
            "case " + " ".join(f"when ({rule.sql}) then {i}" for i, rule in enumerate(slot.rules))
            + " else -1 end" if slot.rules else "-1"
            for slot in slots]
        picked = ", ".join(f"{choice} as s{i}" for i, choice in enumerate(choices))
        array = " || ',' || ".join(f"s{i}::varchar" for i in range(len(slots)))
        any_rule = " or ".join(f"s{i} >= 0" for i in range(len(slots)))
        try:
            return sandbox.execute(f"""
                select customer_id, '[' || {array} || ']' as content
                from (select customer_id, {picked} from customer_360_data)
                where {any_rule}
            """).to_arrow_table()
        except duckdb.Error as exc:
            for slot in slots:  # name the rule that fails
                for rule in slot.rules:
                    try:
                        sandbox.execute(f"select count(*) from customer_360_data where "
                                        f"({rule.sql})").fetchone()
                    except duckdb.Error as failed:
                        problem = str(failed).strip().splitlines()[0]
                        raise CacheError(f"{content_file}: slot '{slot.key}', rule "
                                         f"'{rule.key}': `{rule.condition}` cannot be "
                                         f"evaluated: {problem}") from exc
            raise CacheError(f"{content_file}: the content rules cannot be evaluated: "
                             f"{str(exc).strip().splitlines()[0]}") from exc
    finally:
        sandbox.close()


_CUSTOMERS = f"""
    with

    known as (
        select customer_id from pub.main.customer_360
        where customer_id is not null and customer_id not like '{ERASED_PREFIX}%'
          and not coalesce(is_deleted, false)
    ),

    recommended as (
        select
            customer_id,
            '[' || string_agg(json_array(product_id, round(score, 6), reason)::varchar, ','
                              order by rank) || ']' as recommendations
        from pub.main.customer_product_recommendations
        where product_id is not null
        group by customer_id
    ),

    segmented as (
        select
            customer_id,
            to_json(list(distinct segment_key order by segment_key))::varchar as segments
        from pub.main.segment_memberships
        group by customer_id
    ),

    final as (
        select known.customer_id, recommended.recommendations, segmented.segments,
               content_choices.content
        from known
        left join recommended on known.customer_id = recommended.customer_id
        left join segmented on known.customer_id = segmented.customer_id
        left join content_choices on known.customer_id = content_choices.customer_id
    )

    select * from final order by customer_id
"""

_PRODUCTS = """
    with

    similar_lists as (
        select
            similarities.product_id,
            '[' || string_agg(json_array(similarities.similar_product_id,
                                         round(similarities.similarity::double, 6))::varchar, ','
                              order by similarities.rank) || ']' as similar_products
        from pub.main.item_similarities as similarities
        inner join pub.main.dim_products as products
            on similarities.similar_product_id = products.product_id
        where products.is_active and similarities.similar_product_id <> similarities.product_id
        group by similarities.product_id
    ),

    final as (
        select
            products.product_id,
            json_object('product_id', products.product_id,
                        'product_name', products.product_name,
                        'category', products.category,
                        'subcategory', products.subcategory,
                        'brand', products.brand,
                        'price', products.price::double,
                        'currency', products.currency)::varchar as product,
            coalesce(products.is_active, false) as is_active,
            similar_lists.similar_products
        from pub.main.dim_products as products
        left join similar_lists on products.product_id = similar_lists.product_id
        where products.product_id is not null
    )

    select * from final order by product_id
"""

# The most bought active products: by buyers in the store's last 30 days, then of all time.
_POPULAR = f"""
    with

    recent as (
        select product_id, count(distinct customer_id) as n_recent_buyers
        from pub.main.fct_order_items
        where is_completed and not is_return
          and order_date > (select max(order_date) - 30 from pub.main.fct_order_items)
        group by product_id
    ),

    final as (
        select products.product_id, coalesce(recent.n_recent_buyers, 0) as n_recent_buyers
        from pub.main.dim_products as products
        left join recent on products.product_id = recent.product_id
        where products.is_active
        order by n_recent_buyers desc, products.n_buyers desc nulls last, products.product_id
        limit {POPULAR_N}
    )

    select * from final
"""


def _segments(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    rows = con.execute("select segment_key, any_value(segment_name), any_value(segment_type) "
                       "from pub.main.segment_memberships group by 1 order by 1").fetchall()
    return {key: {"segment_name": name, "segment_type": kind} for key, name, kind in rows}


def _slots_meta(slots: list[Slot]) -> list[dict]:
    return [{"key": slot.key, "description": slot.description, "default": slot.default,
             "rules": [{"key": rule.key, "condition": rule.condition, "content": rule.content}
                       for rule in slot.rules]} for slot in slots]


def _write(db: sqlite3.Connection, table: str, reader, columns: int) -> int:
    """Insert every row of a DuckDB result (an Arrow record batch reader); returns the rows."""
    marks = ", ".join("?" * columns)
    rows = 0
    for batch in reader:
        values = [batch.column(i).to_pylist() for i in range(columns)]
        db.executemany(f"insert into {table} values ({marks})", zip(*values, strict=True))
        rows += batch.num_rows
    return rows


def build_cache(published: Path, target: Path, content_file: Path = CONTENT_FILE) -> BuildResult:
    """Build the cache from a published copy (read-only) and rename it into place at
    `target`; raises CacheError (no copy, an incomplete one, a bad content rule) without
    touching the cache in place."""
    started = time.perf_counter()
    slots = load_content(content_file)  # a bad rule fails before any work
    if not published.exists():
        raise CacheError(f"no published copy at {published}: run `make run` (or `segmenta "
                         f"run`) first")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target.parent)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    source_mtime = published.stat().st_mtime
    con = duckdb.connect(config={"memory_limit": memory_limit()})
    db = sqlite3.connect(staging)
    try:
        con.execute(f"attach '{published.as_posix()}' as pub (read_only)")
        _check_tables(con, published)
        db.executescript("""
            pragma journal_mode = off;
            pragma synchronous = off;
            pragma locking_mode = exclusive;
            create table customers (
                customer_id text primary key, recommendations text, segments text,
                content text) without rowid;
            create table products (
                product_id text primary key, product text not null, is_active integer not null,
                similar_products text) without rowid;
            create table meta (key text primary key, value text not null) without rowid;
        """)
        con.register("content_choices", _content_choices(con, slots, content_file))
        customers = _write(db, "customers",
                           con.execute(_CUSTOMERS).to_arrow_reader(100_000), 4)
        personalized = con.execute("select count(*) from content_choices").fetchone()[0]
        products = _write(db, "products", con.execute(_PRODUCTS).to_arrow_reader(), 4)
        popular = [[pid, n] for pid, n in con.execute(_POPULAR).fetchall()]
        as_of = con.execute("select max(as_of_date)::varchar from pub.main.segment_memberships"
                            ).fetchone()[0]
        meta = {
            "format_version": FORMAT_VERSION,
            "cache_id": uuid.uuid4().hex,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "published": str(published),
            "published_modified_at": datetime.fromtimestamp(source_mtime, UTC).isoformat(
                timespec="seconds"),
            "as_of_date": as_of,
            "content_file": str(content_file),
            "customers": customers,
            "products": products,
            "slots": _slots_meta(slots),
            "segments": _segments(con),
            "popular": popular,
        }
        db.executemany("insert into meta values (?, ?)",
                       [(key, json.dumps(value)) for key, value in meta.items()])
        db.commit()
    except BaseException:
        db.close()
        staging.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    db.close()
    with open(staging, "rb") as handle:  # on disk before the rename makes it the cache
        os.fsync(handle.fileno())
    os.replace(staging, target)
    return BuildResult(target, customers, products, personalized,
                       round(time.perf_counter() - started, 2), target.stat().st_size)
