"""Load landing files into `raw.<feed>`, sending rows that cannot be loaded to `quarantine.<feed>`.

Each feed is declared once, as data (`FEEDS`): its columns, their warehouse types and whether they
are required. Files are read by DuckDB as text, each value is cast with `try_cast`, and a row whose
required value is missing or does not cast gets a reason code instead of being loaded. A file
that cannot be read at all raises `LandingFileError`, which names the file, the problem and the
fix; the transaction around the load is rolled back, so the warehouse stays as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.warehouse import Warehouse

PARTITION_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
# Accepted file kinds for every feed; `.gz` compression is detected from the name.
SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".jsonl": "jsonl", ".jsonl.gz": "jsonl",
            ".json": "jsonl", ".json.gz": "jsonl", ".parquet": "parquet"}
# ISO 4217 codes a store is likely to sell in; extend when a store sells in another currency.
CURRENCIES = ("AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "INR",
              "JPY", "KRW", "MXN", "NOK", "NZD", "PLN", "RON", "SEK", "SGD", "TRY", "USD", "ZAR")


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # VARCHAR, INTEGER, DOUBLE, BOOLEAN, DATE, TIMESTAMP (UTC), JSON
    required: bool = False
    source: str | None = None  # the field's name in the landing file, when it differs
    allowed: tuple[str, ...] | None = None  # an enum: other values are quarantined
    allowed_reason: str = "invalid_value"

    @property
    def field(self) -> str:
        return self.source or self.name


@dataclass(frozen=True)
class Feed:
    name: str
    file_format: str  # "csv" or "jsonl"
    columns: tuple[Column, ...]
    partitioned: bool
    key: tuple[str, ...]  # a delivery of an already-loaded key is a duplicate_key
    # (reason, SQL predicate over the typed columns) checked in order after the casts
    rules: tuple[tuple[str, str], ...] = ()
    timestamp: str | None = None  # checked against the landing day for future_timestamp

    @property
    def source_names(self) -> list[str]:
        return [c.field for c in self.columns]


FEEDS: dict[str, Feed] = {
    "orders": Feed("orders", "csv", (
        Column("order_id", "VARCHAR", required=True),
        Column("line_number", "INTEGER", required=True),
        Column("customer_id", "VARCHAR"),
        Column("ordered_at", "TIMESTAMP", required=True),
        Column("product_id", "VARCHAR", required=True),
        Column("quantity", "INTEGER", required=True),
        Column("unit_price", "DOUBLE", required=True),
        Column("currency", "VARCHAR", required=True, allowed=CURRENCIES,
               allowed_reason="unknown_currency"),
        Column("status", "VARCHAR", required=True,
               allowed=("completed", "cancelled", "refunded")),
        Column("channel", "VARCHAR", allowed=("web", "app", "store", "marketplace")),
        Column("shipping_country", "VARCHAR"),
        Column("discount_amount", "DOUBLE"),
    ), partitioned=True, key=("order_id", "line_number"), timestamp="ordered_at",
        rules=(("negative_price", "unit_price < 0"),
               ("negative_discount", "discount_amount < 0"))),
    "events": Feed("events", "jsonl", (
        Column("type", "VARCHAR", required=True, allowed=("track", "page", "identify"),
               allowed_reason="unknown_event_type"),
        Column("event", "VARCHAR"),
        Column("message_id", "VARCHAR", required=True, source="messageId"),
        Column("timestamp", "TIMESTAMP", required=True),
        Column("user_id", "VARCHAR", source="userId"),
        Column("anonymous_id", "VARCHAR", source="anonymousId"),
        Column("properties", "JSON"),
        Column("context", "JSON"),
    ), partitioned=True, key=("message_id",), timestamp="timestamp",
        rules=(("missing_required_field", "user_id is null and anonymous_id is null"),
               ("missing_required_field", "type = 'track' and event is null"))),
    "customers": Feed("customers", "csv", (
        Column("customer_id", "VARCHAR", required=True),
        Column("email", "VARCHAR"),
        Column("phone", "VARCHAR"),
        Column("first_name", "VARCHAR"),
        Column("last_name", "VARCHAR"),
        Column("birth_date", "DATE"),
        Column("gender", "VARCHAR"),
        Column("city", "VARCHAR"),
        Column("region", "VARCHAR"),
        Column("postal_code", "VARCHAR"),
        Column("country", "VARCHAR"),
        Column("signup_at", "TIMESTAMP"),
        Column("email_consent", "BOOLEAN", required=True),
        Column("ads_consent", "BOOLEAN", required=True),
        Column("updated_at", "TIMESTAMP", required=True),
        Column("is_deleted", "BOOLEAN"),
    ), partitioned=False, key=("customer_id", "updated_at"), timestamp="updated_at"),
    "products": Feed("products", "csv", (
        Column("product_id", "VARCHAR", required=True),
        Column("sku", "VARCHAR"),
        Column("name", "VARCHAR"),
        Column("category", "VARCHAR"),
        Column("subcategory", "VARCHAR"),
        Column("brand", "VARCHAR"),
        Column("price", "DOUBLE"),
        Column("currency", "VARCHAR"),
        Column("is_active", "BOOLEAN"),
        Column("updated_at", "TIMESTAMP", required=True),
    ), partitioned=False, key=("product_id", "updated_at"), timestamp="updated_at",
        rules=(("negative_price", "price < 0"),)),
}

LOAD_COLUMNS_DDL = ("_source_file VARCHAR, _source_line BIGINT, _partition_date DATE, "
                    "_loaded_at TIMESTAMP")
BAD_VALUE_REASON = {"INTEGER": "bad_number", "DOUBLE": "bad_number", "BOOLEAN": "bad_boolean",
                    "DATE": "bad_date", "TIMESTAMP": "bad_timestamp", "JSON": "malformed_json"}
# Every reason code a quarantined row can carry (docs/data-contract.md explains each).
REASONS = ("malformed_json", "missing_required_field", "bad_number", "bad_boolean", "bad_date",
           "bad_timestamp", "future_timestamp", "invalid_value", "unknown_event_type",
           "unknown_currency", "negative_price", "negative_discount", "duplicate_key")
# A timestamp more than this many days after its landing day is in the future.
FUTURE_SLACK_DAYS = 1
# What an erasure request (is_deleted) removes from every stored snapshot of that customer.
PII_COLUMNS = ("email", "phone", "first_name", "last_name", "birth_date", "city", "postal_code")


class LandingFileError(Exception):
    """A landing file that cannot be read at all. The message says which file and what to do."""


@dataclass
class LoadReport:
    """What one load did: rows read, loaded and quarantined (by reason), per partition day."""

    feed: str
    files: list[str] = field(default_factory=list)
    read: Counter = field(default_factory=Counter)
    loaded: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    reasons_by_day: dict[str, Counter] = field(default_factory=dict)
    extra_columns: Counter = field(default_factory=Counter)
    erased_customers: int = 0

    @property
    def totals(self) -> dict[str, int]:
        return {"rows_read": sum(self.read.values()), "rows_loaded": sum(self.loaded.values()),
                "rows_quarantined": sum(self.quarantined.values()), "files": len(self.files)}

    @property
    def reconciles(self) -> bool:
        return all(self.read[d] == self.loaded[d] + self.quarantined[d] for d in self.read)


def file_kind(path: Path) -> str | None:
    """csv, jsonl or parquet from the file name (`.gz` allowed); None for other files."""
    name = path.name.lower()
    for suffix, kind in SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    return None


def landing_days(landing: Path, feed: str) -> list[dt.date]:
    """The days that have a `dt=YYYY-MM-DD` folder for this feed, oldest first."""
    feed_dir = landing / feed
    if not feed_dir.exists():
        return []
    days = []
    for child in feed_dir.iterdir():
        match = PARTITION_DIR.match(child.name)
        if child.is_dir() and match:
            days.append(dt.date.fromisoformat(match.group(1)))
    return sorted(days)


def day_files(landing: Path, feed: Feed, day: dt.date) -> list[Path]:
    """A day's landing files in name order (hidden and unknown files are left alone)."""
    folder = landing / feed.name / f"dt={day.isoformat()}"
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and file_kind(p))


def day_fingerprint(landing: Path, feed: Feed, day: dt.date) -> str:
    """A hash of a day's file names, sizes and modification times: changes when files arrive."""
    digest = hashlib.sha256()
    for path in day_files(landing, feed, day):
        stat = path.stat()
        digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def landing_fingerprints(landing: Path) -> dict[str, dict[str, str]]:
    """feed -> day -> day_fingerprint, for every day folder in the landing zone."""
    return {name: {day.isoformat(): day_fingerprint(landing, feed, day)
                   for day in landing_days(landing, name)}
            for name, feed in FEEDS.items()}


def changed_day_ranges(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str]]:
    """Contiguous (first, last) runs of days that are new, changed or gone since `old`."""
    changed = sorted({d for d, fp in new.items() if old.get(d) != fp} | (set(old) - set(new)))
    ranges: list[tuple[str, str]] = []
    for day in changed:
        if ranges and (dt.date.fromisoformat(day)
                       - dt.date.fromisoformat(ranges[-1][1])).days == 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def ensure_tables(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists quarantine")
    ensure_change_logs(con)
    columns = ", ".join(f'"{c.name}" {c.sql_type}' for c in feed.columns)
    con.execute(f"create table if not exists raw.{feed.name} ({columns}, {LOAD_COLUMNS_DDL})")
    con.execute(f"alter table raw.{feed.name} add column if not exists _extra JSON")
    con.execute(
        f"create table if not exists quarantine.{feed.name} "
        f"(raw_record VARCHAR, reason VARCHAR, {LOAD_COLUMNS_DDL})"
    )


# The change logs of the partitioned feeds: one row per entity a day's load touched, before and
# after (an order, or a visitor's events from a moment on), numbered in load order by
# `raw.change_seq`. The incremental dbt models rebuild exactly the entities logged after their
# own watermark (docs/architecture.md, "The exact incremental refresh").
CHANGE_LOGS = {
    "orders": ("raw.orders_changes",
               "change_id BIGINT, order_id VARCHAR, changed_at TIMESTAMP",
               ("select ?, order_id, current_timestamp from raw.orders "
               "where _partition_date = ? group by order_id")),
    "events": ("raw.events_changes",
               ("change_id BIGINT, anonymous_id VARCHAR, user_id VARCHAR, "
               "first_event_at TIMESTAMP, changed_at TIMESTAMP"),
               ("select ?, anonymous_id, user_id, min(timestamp), current_timestamp "
               "from raw.events where _partition_date = ? group by anonymous_id, user_id")),
}


def ensure_change_logs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    con.execute("create sequence if not exists raw.change_seq")
    for table, columns, _ in CHANGE_LOGS.values():
        con.execute(f"create table if not exists {table} ({columns})")


def _log_changes(con: duckdb.DuckDBPyConnection, feed: Feed, day: dt.date,
                 change_id: int) -> None:
    """Log the entities of `day`'s rows now in raw (called before and after a replace)."""
    if feed.name in CHANGE_LOGS:
        table, _, select = CHANGE_LOGS[feed.name]
        con.execute(f"insert into {table} {select}", [change_id, day])


def load_days(warehouse: Warehouse, landing: Path, feed_name: str,
              days: list[dt.date]) -> LoadReport:
    """Replace the given days of a partitioned feed, one transaction per day.

    A day is either fully replaced or left as it was. When a file fails, the days before it
    stay committed (the error says so), so a long backfill resumes where it stopped.
    """
    feed = FEEDS[feed_name]
    report = LoadReport(feed_name)
    with warehouse.connect() as con:
        ensure_tables(con, feed)
        for number, day in enumerate(days):
            con.execute("begin transaction")
            try:
                change_id = con.execute("select nextval('raw.change_seq')").fetchone()[0]
                _log_changes(con, feed, day, change_id)  # what the day held: may vanish
                for table in (f"raw.{feed.name}", f"quarantine.{feed.name}"):
                    con.execute(f"delete from {table} where _partition_date = ?", [day])
                for path in day_files(landing, feed, day):
                    _load_file(con, feed, landing, path, day, report)
                _log_changes(con, feed, day, change_id)  # what it holds now
            except BaseException as exc:
                con.execute("rollback")
                if isinstance(exc, LandingFileError) and number:
                    raise LandingFileError(
                        f"{exc} ({number} earlier day(s) of this load, {days[0]} to "
                        f"{days[number - 1]}, were loaded and committed; {day} and later were "
                        "not.)") from exc
                raise
            con.execute("commit")
    return report


def load_all_days(warehouse: Warehouse, landing: Path, feed_name: str) -> LoadReport:
    """Reload every day of a snapshot feed (customers, products), replacing the tables whole."""
    feed = FEEDS[feed_name]
    report = LoadReport(feed_name)
    with warehouse.transaction() as con:
        ensure_tables(con, feed)
        con.execute(f"delete from raw.{feed.name}")
        con.execute(f"delete from quarantine.{feed.name}")
        for day in landing_days(landing, feed_name):
            for path in day_files(landing, feed, day):
                _load_file(con, feed, landing, path, day, report)
        if feed_name == "customers":
            report.erased_customers = _apply_erasure(con)
    return report


def _apply_erasure(con: duckdb.DuckDBPyConnection) -> int:
    """Blank the PII of every customer with an erasure request, in raw and quarantine.

    The request itself stays (the snapshot rows keep customer_id and is_deleted) so that later
    steps know to exclude the customer and to remove them from every destination.
    """
    con.execute("""
        create or replace temp table _erased as
        select distinct customer_id from raw.customers where is_deleted
    """)
    erased = con.execute("select count(*) from _erased").fetchone()[0]
    if erased:
        blanks = ", ".join(f"{column} = null" for column in PII_COLUMNS)
        con.execute(f"update raw.customers set {blanks} "
                    "where customer_id in (select customer_id from _erased)")
        con.execute("""
            update quarantine.customers
            set raw_record = '{"erased": true}'
            where exists (select 1 from _erased
                          where strpos(quarantine.customers.raw_record, _erased.customer_id) > 0)
        """)
    con.execute("drop table _erased")
    return erased


def _load_file(con: duckdb.DuckDBPyConnection, feed: Feed, landing: Path, path: Path,
               day: dt.date, report: LoadReport) -> None:
    relative = path.relative_to(landing).as_posix()
    kind = file_kind(path)
    con.execute("drop table if exists _landing_text")
    # Each source value is extracted once into a `_f_<column>` text column; casts and checks
    # then read those columns (an expression repeated in the checks would be evaluated again).
    if kind == "csv":
        extra_names = _stage_csv(con, feed, path, relative)
        fields = {c.name: f'nullif(trim("{c.field}"), \'\')' for c in feed.columns}
        record = "to_json(struct_pack(" + ", ".join(
            f'"{n}" := "{n}"' for n in feed.source_names + extra_names) + "))"
        extra = ("to_json(struct_pack(" + ", ".join(f'"{n}" := "{n}"' for n in extra_names)
                 + "))") if extra_names else "null"
        parse_error = "null"
    else:
        _stage_json(con, feed, path, relative, kind)
        fields = {c.name: (f'_obj."{c.field}"' if c.sql_type == "JSON"
                           else f'nullif(trim(_obj."{c.field}"), \'\')') for c in feed.columns}
        record = "_line"
        extra = ("case when len(_unknown) > 0 then to_json(map_from_entries(list_transform("
                 "_unknown, k -> struct_pack(k := k, v := json_extract(_line, "
                 "'$.\"' || k || '\"'))))) end")
        parse_error = "case when not _is_json then 'malformed_json' end"
        extra_names = [row[0] for row in con.execute(
            "select distinct unnest(_unknown) as k from _landing_text order by k").fetchall()]
    report.extra_columns.update({name: 1 for name in extra_names})

    f = {c.name: f'"_f_{c.name}"' for c in feed.columns}  # the extracted text columns
    typed = {c.name: f'"{c.name}"' for c in feed.columns}  # the typed columns
    checks = ["_parse_error"]
    for c in feed.columns:
        if c.required:
            checks.append(f"case when {f[c.name]} is null then 'missing_required_field' end")
    for c in feed.columns:
        if c.sql_type not in ("VARCHAR", "JSON"):
            checks.append(f"case when {f[c.name]} is not null and {typed[c.name]} is null "
                          f"then '{BAD_VALUE_REASON[c.sql_type]}' end")
    for c in feed.columns:
        if c.allowed:
            values = ", ".join(f"'{v.upper()}'" for v in c.allowed)  # case does not matter
            checks.append(f"case when upper({f[c.name]}) not in ({values}) "
                          f"then '{c.allowed_reason}' end")
    for reason, predicate in feed.rules:
        checks.append(f"case when {_substitute(predicate, typed)} then '{reason}' end")
    if feed.timestamp:
        checks.append(f"case when {typed[feed.timestamp]} > "
                      f"cast('{day + dt.timedelta(days=1 + FUTURE_SLACK_DAYS)}' as timestamp) "
                      "then 'future_timestamp' end")
    reason = "coalesce(" + ", ".join(checks) + ")"

    con.execute(f"""
        create or replace temp table _landing_rows as
        with extracted as (
            select *, {", ".join(f'{fields[c.name]} as {f[c.name]}' for c in feed.columns)}
            from _landing_text
        ),
        typed as (
            select _line_number, {parse_error} as _parse_error, {record} as _record,
                   {extra} as _extra, {", ".join(f[c.name] for c in feed.columns)},
                   {", ".join(f'{_cast(f[c.name], c.sql_type)} as {typed[c.name]}'
                              for c in feed.columns)}
            from extracted
        )
        select {reason} as _reason, _record, _extra,
               _line_number, {", ".join(typed[c.name] for c in feed.columns)}
        from typed
    """)
    _mark_duplicates(con, feed)
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    names = ", ".join(f'"{c.name}"' for c in feed.columns)
    con.execute(f"""
        insert into raw.{feed.name} ({names}, _source_file, _source_line, _partition_date,
                                     _loaded_at, _extra)
        select {names}, ? as _source_file, _line_number, ? as _partition_date, ? as _loaded_at,
               _extra
        from _landing_rows where _reason is null order by _line_number
    """, [relative, day, loaded_at])
    con.execute(f"""
        insert into quarantine.{feed.name}
        select _record, _reason, ?, _line_number, ?, ?
        from _landing_rows where _reason is not null order by _line_number
    """, [relative, day, loaded_at])
    counts = dict(con.execute(
        "select coalesce(_reason, ''), count(*) from _landing_rows group by all").fetchall())
    read = sum(counts.values())
    loaded = counts.pop("", 0)
    key = day.isoformat()
    report.files.append(relative)
    report.read[key] += read
    report.loaded[key] += loaded
    report.quarantined[key] += read - loaded
    report.reasons.update(counts)
    report.reasons_by_day.setdefault(key, Counter()).update(counts)
    con.execute("drop table _landing_rows")
    con.execute("drop table _landing_text")


def _mark_duplicates(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """A key seen earlier in this file, or already loaded from any file, is a duplicate_key."""
    key = ", ".join(f'"{k}"' for k in feed.key)
    con.execute(f"""
        update _landing_rows set _reason = 'duplicate_key'
        where _reason is null and _line_number in (
            select _line_number from (
                select _line_number,
                       row_number() over (partition by {key} order by _line_number) as nth
                from _landing_rows where _reason is null
            ) where nth > 1
        )
    """)
    matches = " and ".join(f'loaded."{k}" = _landing_rows."{k}"' for k in feed.key)
    con.execute(f"""
        update _landing_rows set _reason = 'duplicate_key'
        where _reason is null
          and exists (select 1 from raw.{feed.name} as loaded where {matches})
    """)


def _substitute(predicate: str, typed: dict[str, str]) -> str:
    """Replace column names in a rule with their typed expressions."""
    return re.sub(r"\b([a-z_]+)\b", lambda m: typed.get(m.group(1), m.group(1)), predicate)


def _cast(expr: str, sql_type: str) -> str:
    if sql_type == "TIMESTAMP":  # any ISO-8601 offset, stored as UTC wall-clock time
        return f"(try_cast({expr} as timestamptz) at time zone 'UTC')"
    if sql_type == "JSON":
        return expr
    return f"try_cast({expr} as {sql_type})"


def _stage_csv(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path,
               relative: str) -> list[str]:
    """Read a CSV file as text into `_landing_text`; returns the names of extra columns."""
    try:
        con.execute("""
            create temp table _landing_text as
            select *, row_number() over () + 1 as _line_number
            from read_csv(?, all_varchar = true, header = true, auto_detect = true,
                          hive_partitioning = false)
        """, [str(path)])
    except duckdb.Error as exc:
        raise LandingFileError(
            f"{relative}: cannot be read as CSV with a header row ({_first_line(exc)}). "
            "Re-export it as UTF-8 CSV with a header row, or move it out of the landing folder."
        ) from exc
    present = [row[0] for row in con.execute("describe _landing_text").fetchall()
               if row[0] != "_line_number"]
    missing = [c.field for c in feed.columns if c.required and c.field not in present]
    if missing:
        raise LandingFileError(
            f"{relative}: missing required column(s) {', '.join(missing)}. The {feed.name} feed "
            f"needs {', '.join(c.field for c in feed.columns if c.required)} "
            "(see docs/data-contract.md); fix the export and drop the file in again."
        )
    for c in feed.columns:  # optional columns may be absent: add them as empty
        if c.field not in present:
            con.execute(f'alter table _landing_text add column "{c.field}" VARCHAR')
    return [name for name in present if name not in feed.source_names]


def _stage_json(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, relative: str,
                kind: str) -> None:
    """Read JSON lines (or Parquet rows, as JSON objects) into `_landing_text`, parsed once.

    Columns: `_line` (the raw text), `_is_json` (an object), `_line_number`, `_obj` (the
    contract's fields as a struct of text / JSON) and `_unknown` (keys the contract lacks).
    """
    if kind == "parquet":
        source = "select to_json(t) as _line from read_parquet(?, hive_partitioning = false) as t"
        what = "Parquet"
    else:
        source = ("select _line from read_csv(?, columns = {'_line': 'VARCHAR'}, header = false, "
                  "delim = '\x1f', quote = '', escape = '', auto_detect = false, "
                  "hive_partitioning = false)")
        what = "JSON lines"
    spec = json.dumps({c.field: "JSON" if c.sql_type == "JSON" else "VARCHAR"
                       for c in feed.columns})
    known = ", ".join(f"'{name}'" for name in feed.source_names)
    try:
        con.execute(f"""
            create temp table _landing_text as
            with lines as (
                select _line,
                       case when json_valid(_line) then json_type(_line) = 'OBJECT'
                            else false end as _is_json,
                       row_number() over () as _line_number
                from ({source})
            )
            select *,
                   case when _is_json then json_transform(_line, '{spec}') end as _obj,
                   case when _is_json then list_filter(json_keys(_line), k -> k not in ({known}))
                        else [] end as _unknown
            from lines
            where trim(_line) <> ''
        """, [str(path)])
    except duckdb.Error as exc:
        raise LandingFileError(
            f"{relative}: cannot be read as {what} ({_first_line(exc)}). Re-export it as "
            "UTF-8 text with one JSON object per line (or valid Parquet), or move it out of the "
            "landing folder."
        ) from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]
