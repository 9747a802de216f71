"""Load landing files into `raw.<feed>`, sending rows that cannot be loaded to `quarantine.<feed>`.

Each feed is declared once, as data (`FEEDS`): its columns, their warehouse types and whether they
are required. Files are read as text, each value is cast with `try_cast`, and a row whose
required value is missing or does not cast gets a reason code instead of being loaded.

A file is read whole or not at all. Before DuckDB reads a text file, one streaming pass
(`_scan`, 1 MiB chunks, C-speed byte operations) decompresses it to its end (so a truncated or
corrupt gzip fails on its CRC / end-of-stream check), checks that it is UTF-8 and that no line
is over `MAX_LINE_BYTES`, and counts its records: that count, not what DuckDB happened to read,
is what the load's reconciliation compares with the rows loaded plus quarantined. A clean file
is then read by DuckDB's CSV reader (a clean JSON lines file is split into lines from the text
that pass decompressed, so it is inflated once); a file with row-level faults (a ragged row, bytes that are
not UTF-8, a quoted line break, mixed line endings) is parsed in Python instead, so that each
bad row is quarantined with its line number (`ragged_row`, `bad_encoding`, `malformed_csv`)
while the rest loads. A file that cannot be read at all raises `LandingFileError`, which names
the file, the position, the cause and the fix; the transaction around the load is rolled back,
so the warehouse stays as it was.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip, isal_zlib

from core.privacy import apply_erasures, erased_files, erasures_on_record
from core.warehouse import Warehouse

PARTITION_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
# Accepted file kinds for every feed; `.gz` compression is detected from the name.
SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".jsonl": "jsonl", ".jsonl.gz": "jsonl",
            ".json": "jsonl", ".json.gz": "jsonl", ".parquet": "parquet"}
# ISO 4217 codes a store is likely to sell in; extend when a store sells in another currency.
CURRENCIES = ("AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "INR",
              "JPY", "KRW", "MXN", "NOK", "NZD", "PLN", "RON", "SEK", "SGD", "TRY", "USD", "ZAR")

# A weather row's condition (Open-Meteo's WMO codes map onto these: mappings/open_meteo_daily.yaml)
WEATHER_CONDITIONS = ("clear", "cloudy", "fog", "drizzle", "rain", "snow", "storm")


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
    rules: tuple[tuple[str, ...], ...] = ()  # (reason, SQL predicate[, hint for the fix])
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
        # optional, normalised by dbt (stg_shop__customers): an unknown band falls back to the
        # postal area's (seed postal_area_income), so a typo never costs the profile's consents
        Column("income_band", "VARCHAR"),
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
    # one row per city, weather day, kind and issue: observed weather and forecasts; downstream
    # an observation wins over any forecast, and a later issue over an earlier one
    "weather": Feed("weather", "csv", (
        Column("date", "DATE", required=True),
        Column("city", "VARCHAR", required=True),
        Column("country", "VARCHAR", required=True),
        Column("kind", "VARCHAR", required=True, allowed=("observed", "forecast")),
        Column("condition", "VARCHAR", required=True, allowed=WEATHER_CONDITIONS),
        Column("precipitation_mm", "DOUBLE"),
        Column("temp_min_c", "DOUBLE"),
        Column("temp_max_c", "DOUBLE"),
        Column("issued_at", "TIMESTAMP", required=True),
    ), partitioned=False, key=("date", "city", "country", "kind", "issued_at"),
        timestamp="issued_at",
        rules=(("negative_precipitation", "precipitation_mm < 0"),
               ("invalid_value", "temp_min_c > temp_max_c"),
               ("invalid_value", "temp_min_c < -90 or temp_max_c > 60",
                "temperatures are in degrees Celsius: from Fahrenheit, (F - 32) / 1.8"))),
}

# The feeds delivered as snapshots (a day's files add rows; the newest wins downstream).
SNAPSHOT_FEEDS = tuple(name for name, feed in FEEDS.items() if not feed.partitioned)

LOAD_COLUMNS_DDL = ("_source_file VARCHAR, _source_line BIGINT, _partition_date DATE, "
                    "_loaded_at TIMESTAMP")
BAD_VALUE_REASON = {"INTEGER": "bad_number", "DOUBLE": "bad_number", "BOOLEAN": "bad_boolean",
                    "DATE": "bad_date", "TIMESTAMP": "bad_timestamp", "JSON": "malformed_json"}
# Every reason code a quarantined row can carry (docs/data-contract.md explains each).
REASONS = ("ragged_row", "malformed_csv", "bad_encoding", "malformed_json",
           "missing_required_field", "bad_number", "bad_boolean", "bad_date", "bad_timestamp",
           "timestamp_without_offset", "bad_json_type", "future_timestamp", "invalid_value",
           "unknown_event_type", "unknown_currency", "negative_price", "negative_discount",
           "negative_precipitation", "duplicate_key")
# Checks on the marts that warn and load anyway (dbt singular tests with severity warn, in
# dbt_project/tests/<name>.sql): facts that are only wrong together with other rows or feeds.
MART_WARNINGS = ("unknown_product", "returns_exceed_units")
# A timestamp names its UTC offset: `...10:00:00Z`, `+02:00`, `+0200` or `+02` after the time.
UTC_OFFSET = r"(?i)\d{2}:\d{2}(:\d{2}([.,]\d+)?)?\s*(z|[+-]\d{2}(:?\d{2})?)$"
# The longest line a landing file may have (DuckDB's default max_line_size).
MAX_LINE_BYTES = 2 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024  # files are read in chunks of this size (must stay below the above)
CSV_DELIMITERS = (",", ";", "\t", "|")  # a CSV's delimiter is the one its header splits best on
PYTHON_BATCH_ROWS = 50_000  # rows per Arrow batch when a file is parsed in Python
STAGE_AHEAD = 2  # files read and checked while earlier ones are written (`_Stager`)
# A JSON lines file up to this size (uncompressed) is kept in memory by the verifying pass and
# split into lines from there; a larger one is read again by DuckDB's reader.
KEEP_TEXT_BYTES = 512 * 1024 * 1024
ARROW_BATCH_ROWS = 65_536  # lines per Arrow batch handed to DuckDB (a batch is a unit of work)
# `segmenta run --force` and `segmenta backfill` set it: the snapshot feeds reload every day,
# not only the changed ones, and the daily feeds reload days already loaded as they are now
RELOAD_SNAPSHOTS_ENV = "SEGMENTA_RELOAD_SNAPSHOTS"
# Columns of the staging tables that a landing file's header may not use (nor `_f_*`).
INTERNAL_COLUMNS = ("_line_number", "_fault", "_detail", "_raw")
# A timestamp more than this many days after its landing day is in the future.
FUTURE_SLACK_DAYS = 1


class LandingFileError(Exception):
    """A landing file that cannot be read at all. The message says which file and what to do."""


@dataclass
class LoadReport:
    """What one load did: rows read, loaded and quarantined (by reason), per partition day.

    `read` is the files' own record counts, taken by the pass that verified each file (not
    what the loader read), so a day reconciles only when every record of its files was loaded
    or quarantined.
    """

    feed: str
    files: list[str] = field(default_factory=list)
    read: Counter = field(default_factory=Counter)
    loaded: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    reasons_by_day: dict[str, Counter] = field(default_factory=dict)
    extra_columns: Counter = field(default_factory=Counter)
    erased_customers: int = 0
    resumed: list[dt.date] = field(default_factory=list)  # days loaded by an earlier run as-is

    @property
    def totals(self) -> dict[str, int]:
        return {"rows_read": sum(self.read.values()), "rows_loaded": sum(self.loaded.values()),
                "rows_quarantined": sum(self.quarantined.values()), "files": len(self.files)}

    @property
    def reconciles(self) -> bool:
        return all(self.read[d] == self.loaded[d] + self.quarantined[d] for d in self.read)


class _Stager:
    """Stages the files of a load (`_stage_file`) ahead of the loop that writes them.

    Reading a file (its gzip is one thread), parsing and checking it touch no warehouse table,
    so up to STAGE_AHEAD files are staged on cursors of their own while the loop writes the
    earlier ones, in order, one transaction a day: both cores work, and the result is the one
    a file-by-file load gives. A file that fails raises when the loop reaches it, so the days
    before it are committed as before.

    A staged file is the table `rows` of an in-memory database attached for it (a temp table
    is seen only by the cursor that made it): the loop reads it where it is, with no copy out
    through Arrow and back (that round trip was 14 % of a day's events load), and `done`
    detaches it. One database per file, because a transaction sees a database as it was when
    the transaction first read it: a file staged into a shared one after that is not there.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, feed: Feed, landing: Path,
                 files: list[tuple[dt.date, Path]]) -> None:
        self.con, self.feed, self.landing = con, feed, landing
        self.todo = list(enumerate(files))
        self.futures: dict[Path, Future] = {}
        self.pool = ThreadPoolExecutor(max_workers=STAGE_AHEAD, thread_name_prefix="stage")
        # attached databases belong to the DuckDB instance, which connections to one file share
        self.prefix = f"_landing_staged_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> Self:
        for _ in range(STAGE_AHEAD):
            self._submit()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        with self.con.cursor() as cursor:  # what a failed load left staged
            for (database,) in cursor.execute(
                    "select database_name from duckdb_databases() where starts_with("
                    "database_name, ?)", [self.prefix]).fetchall():
                cursor.execute(f"detach database if exists {database}")

    def _submit(self) -> None:
        if self.todo:
            number, (day, path) = self.todo.pop(0)
            self.futures[path] = self.pool.submit(self._stage, path, day,
                                                  f"{self.prefix}_{number}")

    def _stage(self, path: Path, day: dt.date, database: str) -> _Staged:
        cursor = self.con.cursor()
        try:
            cursor.execute("set TimeZone = 'UTC'")
            cursor.execute(f"attach ':memory:' as {database}")
            return _stage_file(cursor, self.feed, self.landing, path, day, f"{database}.rows")
        finally:
            cursor.close()

    def next(self, path: Path) -> _Staged:
        """The staged file (files are asked for in the order they were given)."""
        future = self.futures.pop(path)
        self._submit()
        return future.result()

    def done(self, staged: _Staged) -> None:
        """Let go of a staged file written to the warehouse (on a cursor of its own: the
        staging database is not written in the caller's transaction)."""
        with self.con.cursor() as cursor:
            cursor.execute(f"detach database if exists {staged.table.split('.')[0]}")


class _Rewriter:
    """Rewrites the landing files of the days a load committed that name erased customers, on
    a thread of its own while the load goes on with the next days (at 1M customers, with
    15,383 requests on record, a full build rewrote every day's events file: about 1.5 s a day
    in the loop that writes the warehouse, with a core idle).

    `defer` puts a day's files on the sweep's list (`PENDING_FILE`) inside the day's
    transaction, `start` hands them to the thread after the commit; each file leaves the list
    once rewritten. A run killed in between leaves them on the list, where the sweep finds
    them (`SEGMENTA_ERASURE_SWEEP_DAYS`). Leaving the `with` block waits for the rewrites and
    raises the first one that failed (its file stays on the list)."""

    def __init__(self, landing: Path) -> None:
        self.landing = landing
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="erase")
        self.futures: list[Future] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.pool.shutdown(wait=True)
        if exc_type is None:
            for future in self.futures:
                future.result()

    def defer(self, files: dict[str, set[str]]) -> None:
        with _PENDING_LOCK:
            defer_landing_erasures(self.landing, files)

    def start(self, files: dict[str, set[str]], texts: dict[str, _Text | None]) -> None:
        """Rewrite `files` (after the commit); `texts`: their bytes as the load read them."""
        for relative in sorted(files):
            self.futures.append(self.pool.submit(_sweep_file, self.landing, relative,
                                                 texts.get(relative)))


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
    for column in feed.columns:  # a column the contract gained since the table was made
        con.execute(f'alter table raw.{feed.name} add column if not exists "{column.name}" '
                    f"{column.sql_type}")
    if feed.partitioned:
        _ensure_key_hash(con, feed)
    con.execute(
        f"create table if not exists quarantine.{feed.name} "
        f"(raw_record VARCHAR, reason VARCHAR, {LOAD_COLUMNS_DDL})"
    )
    # what exactly is wrong (the column, expected vs found fields, the byte): never a value
    con.execute(f"alter table quarantine.{feed.name} add column if not exists detail VARCHAR")


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


# The days of the daily feeds in raw: each one's landing fingerprint when it was loaded, the
# loader's code then, and the load's change id (`raw.change_seq`: dbt's `unique_in_new_loads`
# checks the days loaded after a model's watermark). Written in the day's transaction, so a run
# killed mid-load leaves exactly the committed days on record and the next run loads only the
# rest (`load_days`).
LOADED_DAYS = "raw.loaded_days"


def loader_fingerprint() -> str:
    """A hash of the loading code (the contracts, checks and erasure): new code loads again."""
    digest = hashlib.sha256()
    for path in sorted([*Path(__file__).parent.glob("*.py"),
                        Path(__file__).parent.parent / "core" / "privacy.py"]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _already_loaded(con: duckdb.DuckDBPyConnection, landing: Path, feed: Feed,
                    days: list[dt.date]) -> set[dt.date]:
    """Which of `days` are in raw as their landing files are now, loaded by this code: a day
    whose recorded fingerprint is its fingerprint now, or the one an erasure rewrite of its
    files left (`rewritten_days`: the rewrite runs after the day's commit). With
    RELOAD_SNAPSHOTS_ENV set (`--force`, a backfill) none are."""
    if os.environ.get(RELOAD_SNAPSHOTS_ENV) == "1" or not days:
        return set()
    recorded = dict(con.execute(
        f"select day, fingerprint from {LOADED_DAYS} where feed = ? and loader = ? "
        "and day between ? and ?", [feed.name, loader_fingerprint(), min(days), max(days)]
    ).fetchall())
    rewritten = rewritten_days(landing).get(feed.name, {})
    done = set()
    for day in days:
        if day in recorded:
            now = day_fingerprint(landing, feed, day)
            if now in (recorded[day], rewritten.get(day.isoformat())):
                done.add(day)
    return done


def load_days(warehouse: Warehouse, landing: Path, feed_name: str,
              days: list[dt.date]) -> LoadReport:
    """Replace the given days of a partitioned feed, one transaction per day.

    A day is either fully replaced or left as it was. When a file fails, the days before it
    stay committed (the error says so), so a long backfill resumes where it stopped. A day
    already loaded from the same files by the same code (`raw.loaded_days`: a run killed after
    committing it) is not loaded again; its rows and change log are there from that load.
    """
    feed = FEEDS[feed_name]
    report = LoadReport(feed_name)
    with warehouse.connect() as con:
        ensure_tables(con, feed)
        con.execute(f"create table if not exists {LOADED_DAYS} (feed VARCHAR, day DATE, "
                    "fingerprint VARCHAR, loader VARCHAR, change_id BIGINT)")
        con.execute(f"alter table {LOADED_DAYS} add column if not exists change_id BIGINT")
        resumed = _already_loaded(con, landing, feed, days)
        report.resumed = sorted(resumed)
        days = [day for day in days if day not in resumed]
        files = {day: day_files(landing, feed, day) for day in days}
        # before anything is read: a file delivered again during the load changes the day's
        # fingerprint from the recorded one, so the next run loads the day again
        fingerprints = {day: day_fingerprint(landing, feed, day) for day in days}
        # a day without files that holds no rows has nothing to replace (a store without
        # events, a day without orders); erasure requests do not change during the load
        held = _days_holding_rows(con, feed, days)
        scrub, scrubbed = erasures_on_record(con), False
        stager = _Stager(con, feed, landing, [(day, path) for day in days for path in files[day]])
        with stager, _Rewriter(landing) as rewriter:
            for number, day in enumerate(days):
                if not files[day] and day not in held:
                    continue
                texts: dict[str, _Text | None] = {}
                con.execute("begin transaction")
                try:
                    change_id = con.execute("select nextval('raw.change_seq')").fetchone()[0]
                    _log_changes(con, feed, day, change_id)  # what the day held: may vanish
                    for table in (f"raw.{feed.name}", f"quarantine.{feed.name}"):
                        con.execute(f"delete from {table} where _partition_date = ?", [day])
                    for path in files[day]:
                        staged = stager.next(path)
                        _insert_staged(con, feed, staged, day, report)
                        stager.done(staged)
                        texts[staged.relative] = staged.text
                    # a day delivered after an erasure request is scrubbed as it lands; its
                    # files are put on the sweep's list before the commit and rewritten
                    # right after it, beside the next days' loading (`_Rewriter`)
                    # the profiles and requests do not change during a load of orders or
                    # events: the erased profiles found for its first day hold for the rest
                    erased = erased_files(con, feed.name, day,
                                          profiles_unchanged=scrubbed) if scrub else {}
                    if scrub:
                        apply_erasures(con, feed.name, day, collected=True)
                    rewriter.defer(erased)
                    _log_changes(con, feed, day, change_id)  # what it holds now
                    con.execute(f"delete from {LOADED_DAYS} where feed = ? and day = ?",
                                [feed.name, day])
                    con.execute(f"insert into {LOADED_DAYS} (feed, day, fingerprint, loader, "
                                "change_id) values (?, ?, ?, ?, ?)",
                                [feed.name, day, fingerprints[day], loader_fingerprint(),
                                 change_id])
                except BaseException as exc:
                    con.execute("rollback")
                    if isinstance(exc, LandingFileError) and number:
                        raise LandingFileError(
                            f"{exc} ({number} earlier day(s) of this load, {days[0]} to "
                            f"{days[number - 1]}, were loaded and committed; {day} and later "
                            "were not.)") from exc
                    raise
                con.execute("commit")
                scrubbed = scrub
                rewriter.start(erased, texts)
    return report


def _days_holding_rows(con: duckdb.DuckDBPyConnection, feed: Feed,
                       days: list[dt.date]) -> set[dt.date]:
    """Which of `days` have rows in raw.<feed> or quarantine.<feed>."""
    if not days:
        return set()
    return {day for (day,) in con.execute(f"""
        select distinct _partition_date from raw.{feed.name}
        where _partition_date between ? and ? and _partition_date in (select unnest(?::date[]))
        union
        select distinct _partition_date from quarantine.{feed.name}
        where _partition_date between ? and ? and _partition_date in (select unnest(?::date[]))
    """, [min(days), max(days), days] * 2).fetchall()}


def load_all_days(warehouse: Warehouse, landing: Path, feed_name: str) -> LoadReport:
    """Reload every day of a snapshot feed (customers, products, weather), replacing the tables whole."""
    return load_snapshot_days(warehouse, landing, feed_name, reload_all=True)


# The landing days of the snapshot feeds in raw, and each one's fingerprint when it was loaded.
SNAPSHOT_DAYS = "raw.snapshot_days"


def load_snapshot_days(warehouse: Warehouse, landing: Path, feed_name: str,
                       reload_all: bool = False) -> LoadReport:
    """Bring a snapshot feed (customers, products, weather) in raw up to its landing zone, in one
    transaction: the days that are new or whose files changed are loaded again, the days gone
    from the landing zone deleted, the others kept (`raw.snapshot_days` holds each loaded day's
    fingerprint). A daily run thus reads the day's profiles, not a year of them (1.47M rows at
    1M customers). `reload_all`, or a table loaded before the fingerprints were kept, reloads
    every day. Erasure requests are applied to the whole feed either way.

    As for the daily feeds, a key delivered on two days is loaded from the earlier load (the
    later one is quarantined as duplicate_key), so the result equals a whole reload as long as
    each key belongs to one day.
    """
    feed = FEEDS[feed_name]
    report = LoadReport(feed_name)
    with warehouse.transaction() as con:
        ensure_tables(con, feed)
        con.execute(f"create table if not exists {SNAPSHOT_DAYS} "
                    "(feed VARCHAR, day DATE, fingerprint VARCHAR)")
        loaded = dict(con.execute(f"select day, fingerprint from {SNAPSHOT_DAYS} where feed = ?",
                                  [feed_name]).fetchall())
        present = {day: day_fingerprint(landing, feed, day)
                   for day in landing_days(landing, feed_name)}
        if reload_all or not loaded:
            con.execute(f"delete from raw.{feed.name}")
            con.execute(f"delete from quarantine.{feed.name}")
            todo = sorted(present)
        else:
            todo = sorted(day for day, fingerprint in present.items()
                          if loaded.get(day) != fingerprint)
            for day in sorted(set(todo) | (set(loaded) - set(present))):
                for table in (f"raw.{feed.name}", f"quarantine.{feed.name}"):
                    con.execute(f"delete from {table} where _partition_date = ?", [day])
        files = [(day, path) for day in todo for path in day_files(landing, feed, day)]
        with _Stager(con, feed, landing, files) as stager:
            for day, path in files:
                staged = stager.next(path)
                _insert_staged(con, feed, staged, day, report)
                stager.done(staged)
        rewritten: list[str] = []
        if feed_name == "customers":
            # (the files of the erased customers' order lines and events are found as the
            # rows move: one pass over the events)
            erased = erased_files(con, moved_later=True)
            report.erased_customers = apply_erasures(con, collected=True, found=erased)
            # the warehouse is scrubbed now; the landing files, which name the person in up to
            # every day of a year, on the sweep (`SEGMENTA_ERASURE_SWEEP_DAYS`)
            defer_landing_erasures(landing, erased)
            rewritten = sweep_landing_erasures(landing)
        # the days whose files an erasure rewrote were loaded as they read now
        for folder in {relative.split("/")[1] for relative in rewritten
                       if relative.startswith(f"{feed_name}/")}:
            match = PARTITION_DIR.match(folder)
            day = dt.date.fromisoformat(match.group(1)) if match else None
            if day in present:
                present[day] = day_fingerprint(landing, feed, day)
        con.execute(f"delete from {SNAPSHOT_DAYS} where feed = ?", [feed_name])
        for day, fingerprint in sorted(present.items()):
            con.execute(f"insert into {SNAPSHOT_DAYS} values (?, ?, ?)",
                        [feed_name, day, fingerprint])
    return report


@dataclass
class _Staged:
    """A landing file read, typed and checked (`_stage_file`), not yet in the warehouse."""

    relative: str
    read: int  # the file's own record count
    extra_names: list[str]
    table: str  # in the load's staging database: the typed row, or its reason, per record
    # a JSON lines file's decompressed bytes, for the erasure rewrite after the day's commit
    # (which then need not read and inflate the file again while it is unchanged)
    text: _Text | None = None


@dataclass(frozen=True)
class _Text:
    """A landing file's decompressed bytes, and the file they were read from (`_file_id`)."""

    file_id: tuple[int, ...]
    data: bytes


def _file_id(stat: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is replaced or written: device, inode, size, modification."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _stage_file(con: duckdb.DuckDBPyConnection, feed: Feed, landing: Path, path: Path,
                day: dt.date, table: str) -> _Staged:
    """Read, type and check one file on `con` (a cursor of its own: files of later days are
    staged while earlier days are written) into `table` (in the load's staging database).
    Touches no warehouse table; duplicates within the file are marked here, those of loaded
    keys in the day's transaction (`_insert_staged`)."""
    relative = path.relative_to(landing).as_posix()
    kind = file_kind(path)
    text = None
    for temp in ("_landing_text", "_landing_lines"):
        con.execute(f"drop table if exists {temp}")
    # Each source value is extracted once into a `_f_<column>` text column; casts and checks
    # then read those columns (an expression repeated in the checks would be evaluated again).
    # A fault found while reading (`_fault`, `_detail`) comes first as the row's reason.
    if kind == "csv":
        read, extra_names = _stage_csv(con, feed, path, relative)
        fields = {c.name: f"nullif(trim({_ident(c.field)}), '')" for c in feed.columns}
        record = "coalesce(_raw, to_json(struct_pack(" + ", ".join(
            f"{_ident(n)} := {_ident(n)}" for n in feed.source_names + extra_names) + "))::varchar)"
        extra = ("to_json(struct_pack(" + ", ".join(f"{_ident(n)} := {_ident(n)}"
                                                     for n in extra_names)
                 + "))") if extra_names else "null"
        parse_error = "case when _fault is not null then _fault || '|' || coalesce(_detail, '') end"
    else:
        read, text = _stage_json(con, feed, path, relative, kind)
        fields = {c.name: (f'_obj."{c.field}"' if c.sql_type == "JSON"
                           else f'nullif(trim(_obj."{c.field}"), \'\')') for c in feed.columns}
        record = "_line"
        extra = ("case when len(_unknown) > 0 then to_json(map_from_entries(list_transform("
                 "_unknown, k -> struct_pack(k := k, v := json_extract(_line, "
                 "'$.\"' || k || '\"'))))) end")
        parse_error = ("case when _fault is not null then _fault || '|' || coalesce(_detail, '') "
                       "when not _is_json then 'malformed_json|the line is not a JSON object' end")
        extra_names = [row[0] for row in con.execute(
            "select distinct unnest(_unknown) as k from _landing_text order by k").fetchall()]
    f = {c.name: f'"_f_{c.name}"' for c in feed.columns}  # the extracted text columns
    typed = {c.name: f'"{c.name}"' for c in feed.columns}  # the typed columns
    # Each check gives 'reason|detail' (the detail names the column or rule, never a value).
    checks = ["_parse_error"]

    def check(condition: str, reason: str, detail: str) -> None:
        checks.append(f"case when {condition} then {_literal(f'{reason}|{detail}')} end")

    for c in feed.columns:
        if c.required:
            check(f"{f[c.name]} is null", "missing_required_field", f"{c.field} is empty")
    for c in feed.columns:
        if c.sql_type == "JSON" and kind == "csv":  # JSON lines arrive parsed already
            check(f"{f[c.name]} is not null and not json_valid({f[c.name]})", "malformed_json",
                  f"{c.field} is not JSON")
        elif c.sql_type not in ("VARCHAR", "JSON"):
            check(f"{f[c.name]} is not null and {typed[c.name]} is null",
                  BAD_VALUE_REASON[c.sql_type],
                  f"{c.field} does not parse as {c.sql_type.lower()}")
    for c in feed.columns:
        if c.sql_type == "TIMESTAMP":  # parses, but in which time zone?
            check(f"{typed[c.name]} is not null and not (right({f[c.name]}, 1) in ('Z', 'z') "
                  f"or regexp_matches({f[c.name]}, {_literal(UTC_OFFSET)}))",
                  "timestamp_without_offset",
                  f"{c.field} has no UTC offset (write e.g. +02:00 or Z)")
        elif c.sql_type == "JSON":
            valid = f"json_valid({f[c.name]}) and " if kind == "csv" else ""
            json_kind = (f"case json_type({f[c.name]}) when 'VARCHAR' then 'a string' "
                         "when 'ARRAY' then 'an array' when 'BOOLEAN' then 'a boolean' "
                         "else 'a number' end")
            checks.append(f"case when {f[c.name]} is not null and {valid}"
                          f"json_type({f[c.name]}) <> 'OBJECT' "
                          f"then {_literal(f'bad_json_type|{c.field} is ')} || {json_kind} || "
                          "', not a JSON object' end")
    for c in feed.columns:
        if c.allowed:
            values = ", ".join(f"'{v.upper()}'" for v in c.allowed)  # case does not matter
            named = ", ".join(c.allowed) if len(c.allowed) < 8 else "the known codes"
            check(f"upper({f[c.name]}) not in ({values})", c.allowed_reason,
                  f"{c.field} is not one of {named}")
    for reason, predicate, *hint in feed.rules:  # (reason, predicate[, what to do])
        check(_substitute(predicate, typed), reason, "; ".join([predicate, *hint]))
    if feed.timestamp:
        check(f"{typed[feed.timestamp]} > "
              f"cast('{day + dt.timedelta(days=1 + FUTURE_SLACK_DAYS)}' as timestamp)",
              "future_timestamp",
              f"{feed.timestamp} is after {day + dt.timedelta(days=FUTURE_SLACK_DAYS)}")
    reason = "coalesce(" + ", ".join(checks) + ")"

    con.execute(f"""
        create or replace table {table} as
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
        ),
        checked as (
            select {reason} as _check, _record, _extra,
                   _line_number, {", ".join(typed[c.name] for c in feed.columns)}
            from typed
        )
        select split_part(_check, '|', 1) as _reason,
               nullif(substr(_check, strpos(_check, '|') + 1), '') as _detail, * exclude (_check),
               {_key_hash_sql(feed)} as _key_hash
        from checked
    """)
    _mark_duplicates_in_file(con, feed, table)
    con.execute("drop table _landing_text")
    return _Staged(relative, read, extra_names, table, text)


def _insert_staged(con: duckdb.DuckDBPyConnection, feed: Feed, staged: _Staged, day: dt.date,
                   report: LoadReport) -> None:
    """Write a staged file into raw.<feed> and quarantine.<feed> (inside the day's
    transaction), marking the keys loaded before as duplicate_key, and count it in `report`."""
    relative, read, rows = staged.relative, staged.read, staged.table
    report.extra_columns.update({name: 1 for name in staged.extra_names})
    # the staged rows are read where they are (the staging database is not written in this
    # transaction): a key loaded before makes its row a duplicate_key here
    duplicate = ("_line_number in (select _line_number from _landing_duplicates)"
                 if _loaded_duplicates(con, feed, rows) else "false")
    reason = f"case when {duplicate} then 'duplicate_key' else _reason end"
    detail = f"case when {duplicate} then {_literal(_duplicate_detail(feed))} else _detail end"
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    names = ", ".join(f'"{c.name}"' for c in feed.columns) + (", _key_hash" if feed.partitioned
                                                                else "")
    # in line order without an ORDER BY (a third of the insert's time): the staged table is
    # in line order and DuckDB keeps a table's order (`preserve_insertion_order`, on)
    con.execute(f"""
        insert into raw.{feed.name} ({names}, _source_file, _source_line, _partition_date,
                                     _loaded_at, _extra)
        select {names}, ? as _source_file, _line_number, ? as _partition_date, ? as _loaded_at,
               _extra
        from {rows} where _reason is null and not ({duplicate})
    """, [relative, day, loaded_at])
    con.execute(f"""
        insert into quarantine.{feed.name} (raw_record, reason, detail, _source_file,
                                            _source_line, _partition_date, _loaded_at)
        select _record, {reason}, {detail}, ?, _line_number, ?, ?
        from {rows} where _reason is not null or {duplicate}
    """, [relative, day, loaded_at])
    counts = dict(con.execute(
        f"select coalesce({reason}, ''), count(*) from {rows} group by all").fetchall())
    loaded = counts.pop("", 0)
    key = day.isoformat()
    report.files.append(relative)
    # `read` is the file's own record count (from the pass that verified it), so a file
    # that DuckDB read only in part does not reconcile
    report.read[key] += read
    report.loaded[key] += loaded
    report.quarantined[key] += sum(counts.values())
    report.reasons.update(counts)
    report.reasons_by_day.setdefault(key, Counter()).update(counts)


def _key_hash_sql(feed: Feed, table: str | None = None) -> str:
    """DuckDB's 64-bit hash of a row's key (`table.` prefixed when given)."""
    prefix = f"{table}." if table else ""
    return "hash(" + ", ".join(f'{prefix}"{k}"' for k in feed.key) + ")"


def _ensure_key_hash(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """raw.<feed>._key_hash: the hash of each row's key, so that the duplicate check against
    everything loaded scans one integer column instead of every key string (at 100M events the
    string join took seconds a day, and the year's load grew with the square of its days).
    A warehouse from before the column gets it filled once."""
    present = con.execute(
        "select count(*) from information_schema.columns where table_schema = 'raw' "
        "and table_name = ? and column_name = '_key_hash'", [feed.name]).fetchone()[0]
    if not present:
        con.execute(f"alter table raw.{feed.name} add column _key_hash UBIGINT")
        con.execute(f"update raw.{feed.name} set _key_hash = {_key_hash_sql(feed)}")


def _duplicate_detail(feed: Feed) -> str:
    return f"{', '.join(feed.key)} delivered before (earlier in this file or loaded)"


def _mark_duplicates_in_file(con: duckdb.DuckDBPyConnection, feed: Feed, rows: str) -> None:
    """A key seen earlier in this file is a duplicate_key (in the staged table `rows`)."""
    key = ", ".join(f'"{k}"' for k in feed.key)
    detail = _duplicate_detail(feed)
    con.execute(f"""
        update {rows} set _reason = 'duplicate_key', _detail = ?
        where _reason is null and _line_number in (
            select _line_number from (
                select _line_number,
                       row_number() over (partition by {key} order by _line_number) as nth
                from {rows} where _reason is null
            ) where nth > 1
        )
    """, [detail])


def _loaded_duplicates(con: duckdb.DuckDBPyConnection, feed: Feed, rows: str) -> bool:
    """The line numbers of the staged rows (`rows`) whose key was loaded before, from any
    file, in the temp table `_landing_duplicates`; False when there are none.

    Partitioned feeds compare key hashes first (one integer column of the whole history) and
    the keys themselves only for the rows whose hash was seen: exact, and the history's key
    strings are read only where a hash matched.
    """
    matches = " and ".join(f'loaded."{k}" = staged."{k}"' for k in feed.key)
    con.execute("drop table if exists _landing_duplicates")
    if not feed.partitioned:  # the snapshot feeds are small: compare the keys
        con.execute(f"""
            create temp table _landing_duplicates as
            select _line_number from {rows} as staged
            where _reason is null
              and exists (select 1 from raw.{feed.name} as loaded where {matches})
        """)
    else:
        seen = [row[0] for row in con.execute(f"""
            select distinct _key_hash from raw.{feed.name}
            where _key_hash in (select _key_hash from {rows} where _reason is null)
        """).fetchall()]
        if not seen:
            return False
        # a few re-sent keys (or a hash collision): read those rows' keys through a filter on
        # the hash column; a whole day sent again: join on the key strings
        candidates = ("select unnest(?::ubigint[])" if len(seen) > 10_000
                      else ", ".join(str(h) for h in seen))
        con.execute(f"""
            create temp table _landing_duplicates as
            select _line_number from {rows} as staged
            where _reason is null and _key_hash in ({candidates})
              and exists (select 1 from raw.{feed.name} as loaded
                          where loaded._key_hash in ({candidates}) and {matches})
        """, [seen, seen] if len(seen) > 10_000 else [])
    return con.execute("select count(*) from _landing_duplicates").fetchone()[0] > 0


def _substitute(predicate: str, typed: dict[str, str]) -> str:
    """Replace column names in a rule with their typed expressions."""
    return re.sub(r"\b([a-z_]+)\b", lambda m: typed.get(m.group(1), m.group(1)), predicate)


def _cast(expr: str, sql_type: str) -> str:
    if sql_type == "TIMESTAMP":  # any ISO-8601 offset, stored as UTC wall-clock time
        return f"(try_cast({expr} as timestamptz) at time zone 'UTC')"
    if sql_type == "JSON":
        return expr
    return f"try_cast({expr} as {sql_type})"


def _literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    """A column name from a landing file as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------
# Reading a file whole: the verifying pass


class _Source:
    """A landing file's bytes, decompressed, in chunks of at most CHUNK_BYTES.

    A gzip file is decompressed (Intel ISA-L through `isal`: twice zlib's speed, the same
    checks) to its end, where each member's CRC and length are checked: a file that ends early,
    or whose data is corrupt, raises LandingFileError naming the file, the position and what to
    do, however much of it read fine before. With `keep_up_to`, the decompressed bytes of a
    file no larger than that are kept in `kept` (else `kept` is None).
    """

    def __init__(self, path: Path, relative: str, keep_up_to: int = 0) -> None:
        self.path = path
        self.relative = relative
        self.gzipped = path.name.lower().endswith(".gz")
        self.offset = 0  # uncompressed bytes read so far
        self.lines = 0  # line breaks read so far
        self.keep_up_to = keep_up_to
        self.kept: list[bytes] | None = None
        self.file_id: tuple[int, ...] | None = None  # of the file as last read

    def chunks(self) -> Iterator[bytes]:
        self.offset = self.lines = 0
        self.kept = [] if self.keep_up_to else None
        with open(self.path, "rb") as raw:
            self.file_id = _file_id(os.fstat(raw.fileno()))
            blocks = iter(lambda: raw.read(CHUNK_BYTES), b"")
            for chunk in self._gunzip(blocks) if self.gzipped else blocks:
                yield chunk
                self.offset += len(chunk)
                self.lines += chunk.count(b"\n")
                if self.kept is not None:
                    self.kept = self.kept if self.offset <= self.keep_up_to else None
                if self.kept is not None:
                    self.kept.append(chunk)

    def _gunzip(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        inflate = isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)  # gzip: header, CRC, length
        fed = False  # has the current gzip member had input?
        members = 1  # the gzip members begun
        read = 0  # compressed bytes read
        for block in blocks:
            start, read = read, read + len(block)
            data = block
            while data:
                if inflate.eof:  # another member follows (zero padding is ignored)
                    if not data.strip(b"\0"):
                        break
                    inflate, fed = isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS), False
                    members += 1
                try:
                    out = inflate.decompress(data, CHUNK_BYTES)
                except (isal_zlib.error, zlib.error) as exc:
                    raise LandingFileError(self._broken(
                        str(exc), start, read, not_gzip=members == 1 and not self.offset
                        and ("header" in str(exc) or "wrapper" in str(exc)))) from exc
                fed = True
                data = inflate.unconsumed_tail or (inflate.unused_data if inflate.eof else b"")
                if out:
                    yield out
            while not inflate.eof and fed:  # output held back by the CHUNK_BYTES cap
                out = inflate.decompress(b"", CHUNK_BYTES)
                if not out:
                    break
                yield out
        if fed and not inflate.eof:
            raise LandingFileError(self._broken(None, read, read))

    def _broken(self, error: str | None, start: int, end: int, not_gzip: bool = False) -> str:
        size = self.path.stat().st_size
        where = f"after {self.offset:,} uncompressed bytes (in line {self.lines + 1:,})"
        if error is None:
            cause = (f"it is truncated: its gzip data stops at byte {size:,} (the end of the "
                     f"file) before the end-of-stream marker, {where}")
        elif not_gzip:
            cause = ("its name ends in .gz but it is not gzip data; compress it with gzip or "
                     "drop the .gz from its name")
        else:
            cause = (f"its gzip data is corrupt ({error}), detected in compressed bytes "
                     f"{start:,} to {end:,} of {size:,}" + (f", {where}" if self.offset else ""))
        return (f"{self.relative}: cannot be read to its end: {cause}. A file is loaded whole "
                "or not at all, so nothing of this load was kept (the warehouse is as it was). "
                "Re-deliver the complete file (copy it again from the store's export) and "
                "materialize the day again.")


_QUOTED = re.compile(rb'"[^"]*"')  # one quoted stretch of a CSV line ("" escapes are two)
_BLANK_AFTER_BREAK = re.compile(rb"\n[ \t\r]*(?=\n)")  # a blank line that follows a line break
_BLANK_CHARS = b" \t\r"
_BOM = b"\xef\xbb\xbf"


@dataclass
class _Scan:
    """What one pass over a text file found (`_scan`)."""

    kind: str
    lines: int = 0  # physical lines (a last line without a line break counts)
    blank: int = 0  # lines of only spaces, tabs or carriage returns
    trailing_blank: int = 0  # blank lines after the last non-blank one
    line_breaks: int = 0  # LF bytes
    crlf: int = 0
    cr: int = 0
    first_line: bytes | None = None  # the first non-blank line, without its line break
    first_line_number: int = 0
    bad_utf8: tuple[int, int] | None = None  # (byte, line) of the first byte that is not UTF-8
    quoted_break: bool = False  # a CSV value holds a line break
    open_quote: bool = False  # a CSV quote that does not close on its line

    @property
    def mixed_line_ends(self) -> bool:
        return self.cr != self.crlf or 0 < self.crlf < self.line_breaks

    @property
    def records(self) -> int:
        """JSON lines: the non-blank lines; CSV (when `simple`): those after the header."""
        data = self.lines - self.blank
        return max(data - 1, 0) if self.kind == "csv" else data

    @property
    def simple(self) -> bool:
        """DuckDB's reader reads the file record for record, line numbers as counted."""
        if self.bad_utf8 or self.mixed_line_ends:
            return False
        if self.kind == "csv":
            return (not self.quoted_break and not self.open_quote
                    and self.first_line_number <= 1 and self.blank == self.trailing_blank)
        return True


def _scan(source: _Source, kind: str) -> _Scan:
    """One streaming pass over a text file: decompress (verifying a gzip to its end), count the
    lines and blank lines, check the encoding, the line ends, the line sizes and (CSV) whether a
    quoted value holds a line break. Constant memory; the work per chunk is C-speed byte
    operations (count, find, decode, one regular expression)."""
    scan = _Scan(kind)
    carry = b""
    offset = 0  # the uncompressed offset of `carry`
    for number, chunk in enumerate(source.chunks()):
        if number == 0 and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise LandingFileError(
                f"{source.relative}: is UTF-16 (it starts with a UTF-16 byte-order mark), not "
                "UTF-8: re-export it as UTF-8 and drop it in again.")
        buffer = carry + chunk
        cut = buffer.rfind(b"\n") + 1
        if not cut:
            carry = buffer
            if len(carry) > MAX_LINE_BYTES:
                raise LandingFileError(_long_line(source.relative, scan.lines + 1, len(carry),
                                                  b"\r" in carry))
            continue
        piece, carry = buffer[:cut], buffer[cut:]
        _scan_piece(scan, source.relative, piece, offset, terminated=True)
        offset += len(piece)
    if carry:
        _scan_piece(scan, source.relative, carry, offset, terminated=False)
    return scan


def _scan_piece(scan: _Scan, relative: str, piece: bytes, offset: int, terminated: bool) -> None:
    """Account for `piece`: whole lines (each ends in LF when `terminated`) from line
    `scan.lines + 1` on, at uncompressed byte `offset`."""
    breaks = piece.count(b"\n")
    lines = breaks if terminated else 1
    first_end = piece.find(b"\n") if terminated else len(piece)
    if first_end > MAX_LINE_BYTES:  # only the first line can hold bytes of earlier chunks
        raise LandingFileError(_long_line(relative, scan.lines + 1, first_end,
                                          b"\r" in piece[:first_end]))
    first_blank = not piece[:first_end].strip(_BLANK_CHARS)
    blank = first_blank + (len(_BLANK_AFTER_BREAK.findall(piece)) if breaks else 0)
    if scan.first_line is None and blank < lines:
        start, number = 0, scan.lines + 1
        while True:
            end = piece.find(b"\n", start)
            end = len(piece) if end < 0 else end
            if piece[start:end].strip(_BLANK_CHARS):
                break
            start, number = end + 1, number + 1
        line = piece[start:end].rstrip(b"\r")
        scan.first_line = line[3:] if number == 1 and line.startswith(_BOM) else line
        scan.first_line_number = number
    body = piece.rstrip(_BLANK_CHARS + b"\n")
    if not body:
        scan.trailing_blank += lines
    else:
        scan.trailing_blank = piece.count(b"\n", len(body)) - (1 if terminated else 0)
    if scan.bad_utf8 is None and not piece.isascii():
        try:
            piece.decode()
        except UnicodeDecodeError as exc:
            scan.bad_utf8 = (offset + exc.start,
                             scan.lines + piece.count(b"\n", 0, exc.start) + 1)
    if scan.kind == "csv" and not (scan.quoted_break or scan.open_quote) and b'"' in piece:
        outside = _QUOTED.sub(b"", piece)
        if b'"' in outside:
            scan.open_quote = True
        elif outside.count(b"\n") != breaks:
            scan.quoted_break = True
    scan.cr += piece.count(b"\r")
    scan.crlf += piece.count(b"\r\n")
    scan.line_breaks += breaks
    scan.blank += blank
    scan.lines += lines


def _long_line(relative: str, line: int, size: int, has_cr: bool) -> str:
    if has_cr:
        hint = ("it seems to use bare CR (old Mac) line ends: re-export it with LF or CRLF "
                "line ends")
    else:
        hint = ("a line this long is usually several records run together without line "
                "breaks, or a quote that never closes: re-deliver the file with one record per "
                f"line (each under {MAX_LINE_BYTES // 2**20} MiB)")
    return (f"{relative}: line {line:,} is over the maximum line size of {MAX_LINE_BYTES:,} "
            f"bytes (DuckDB's max_line_size; the line runs to at least {size:,} bytes): {hint}. "
            "Nothing of this load was kept.")


def _not_utf8(relative: str, byte: int, line: int, what: str = "") -> str:
    return (f"{relative}: not UTF-8 at byte {byte:,} (line {line:,}{what}): re-export the file "
            "as UTF-8 (it looks like Latin-1 / Windows-1252 or another legacy encoding) and "
            "drop it in again.")


def _unreadable(relative: str, what: str, exc: Exception) -> str:
    return (f"{relative}: DuckDB cannot read it as {what} ({_duckdb_cause(exc)}). Re-export it "
            f"as UTF-8 {what} or move it out of the landing folder; nothing of this load was "
            "kept.")


def _duckdb_cause(exc: Exception) -> str:
    """The lines of a DuckDB error that say what is wrong (never the 'Original Line', which
    may be megabytes long and hold customer data)."""
    kept = []
    for line in str(exc).strip().splitlines():
        text = line.strip()
        if not text or text.startswith(("Original Line", "Possible", "*", "file =")):
            continue
        if line.startswith("  "):  # the reader's option dump
            continue
        kept.append(text)
    return "; ".join(kept)[:400]


class _Batches:
    """Rows parsed in Python, appended to a staging table in Arrow batches."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str,
                 types: list[pa.DataType]) -> None:
        self.con, self.table, self.types = con, table, types
        self.names = [f"c{i}" for i in range(len(types))]
        self.rows: list[list] = []

    def add(self, row: list) -> None:
        self.rows.append(row)
        if len(self.rows) >= PYTHON_BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        columns = list(zip(*self.rows, strict=True))
        batch = pa.table([pa.array(values, type) for values, type in
                          zip(columns, self.types, strict=True)], names=self.names)
        self.con.register("_landing_batch", batch)
        try:
            self.con.execute(f"insert into {self.table} select * from _landing_batch")
        finally:
            self.con.unregister("_landing_batch")
        self.rows = []


# ---------------------------------------------------------------------------------------------
# CSV


def _rejects_options() -> str:
    return ("ignore_errors = true, store_rejects = true, rejects_table = '_landing_rejects', "
            "rejects_scan = '_landing_reject_scans'")


def _drop_rejects(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("drop table if exists _landing_rejects")
    con.execute("drop table if exists _landing_reject_scans")


def _stage_csv(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path,
               relative: str) -> tuple[int, list[str]]:
    """Read a CSV file as text into `_landing_text`: the header's columns (the contract's
    optional ones added when absent), `_line_number`, and `_fault` / `_detail` / `_raw` for a row
    that could not be split into the header's fields. Returns the file's record count and the
    names of its extra columns."""
    source = _Source(path, relative)
    scan = _scan(source, "csv")
    if scan.first_line is None:  # an empty file: a day without rows
        names, delimiter = [], ","
    else:
        if scan.bad_utf8 and scan.bad_utf8[1] <= scan.first_line_number:
            raise LandingFileError(_not_utf8(relative, *scan.bad_utf8, ", the header"))
        names, delimiter = _csv_header(feed, scan.first_line, scan.first_line_number, relative)
    columns = names + [c.field for c in feed.columns if c.field not in names]
    staged = False
    if scan.first_line is not None and scan.simple and scan.records:
        # the common case: DuckDB reads the file; any row it cannot split leaves a reject,
        # and then the file is parsed in Python below (a failed statement would abort the day)
        _drop_rejects(con)
        try:
            con.execute(f"""
                create temp table _landing_text as
                select *, row_number() over () + 1 as _line_number, null::varchar as _fault,
                       null::varchar as _detail, null::varchar as _raw
                from read_csv(?, columns = ?, header = true, auto_detect = false, delim = ?,
                              quote = '"', escape = '"', max_line_size = ?,
                              hive_partitioning = false, {_rejects_options()})
            """, [str(path), {name: "VARCHAR" for name in names}, delimiter, MAX_LINE_BYTES])
        except duckdb.Error as exc:
            raise LandingFileError(_unreadable(relative, "CSV", exc)) from exc
        rejects = con.execute("select count(*) from _landing_rejects").fetchone()[0]
        rows = con.execute("select count(*) from _landing_text").fetchone()[0]
        _drop_rejects(con)
        staged = not rejects and rows == scan.records
        if not staged:
            con.execute("drop table _landing_text")
    read = scan.records
    if not staged:
        con.execute("create temp table _landing_text ("
                    + ", ".join(f"{_ident(n)} VARCHAR" for n in names)
                    + (", " if names else "")
                    + "_line_number BIGINT, _fault VARCHAR, _detail VARCHAR, _raw VARCHAR)")
        read = _csv_in_python(con, source, delimiter, len(names)) if names else 0
    for name in columns[len(names):]:  # optional columns may be absent: add them as empty
        con.execute(f"alter table _landing_text add column {_ident(name)} VARCHAR")
    return read, [name for name in names if name not in feed.source_names]


def _csv_header(feed: Feed, line: bytes, number: int, relative: str) -> tuple[list[str], str]:
    """The column names and the delimiter of a CSV header line, checked against the feed."""
    text = line.decode()
    if text.count('"') % 2:
        raise LandingFileError(f"{relative}: the header (line {number}) has a quote that does "
                               "not close: fix the header row of the export.")

    def parse(delimiter: str) -> list[str]:
        return [name.strip() for name in next(csv.reader([text], delimiter=delimiter))]

    known = {name.lower() for name in feed.source_names}
    delimiter = max(CSV_DELIMITERS, key=lambda d: (
        len(known & {name.lower() for name in parse(d)}), d == ","))
    # a contract column is matched without case (DuckDB's identifiers ignore case, too)
    canonical = {name.lower(): name for name in feed.source_names}
    names = [canonical.get(name.lower(), name) or f"column{i}"
             for i, name in enumerate(parse(delimiter), start=1)]
    if not known & {name.lower() for name in names}:
        raise LandingFileError(
            f"{relative}: its first line (line {number}) names none of the {feed.name} feed's "
            f"columns, so it has no header row: export the file with the header "
            f"{','.join(c.field for c in feed.columns)} (see docs/data-contract.md) and drop it "
            "in again.")
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise LandingFileError(
                f"{relative}: the header (line {number}) names the column {name!r} twice "
                f"(column names are compared without case): give each column one name.")
        if name.lower() in INTERNAL_COLUMNS or name.lower().startswith("_f_"):
            raise LandingFileError(f"{relative}: the header may not use the column name "
                                   f"{name!r} (ingestion uses it): rename that column.")
        seen[name.lower()] = name
    missing = [c.field for c in feed.columns if c.required and c.field not in names]
    if missing:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise LandingFileError(
            f"{relative}: missing required column(s) {', '.join(missing)}. The {feed.name} feed "
            f"needs {', '.join(c.field for c in feed.columns if c.required)} "
            f"(see docs/data-contract.md); the header (line {number}) has: {shown}. Fix "
            "the export and drop the file in again.")
    return names, delimiter


def _lines(source: _Source, split_cr: bool) -> Iterator[tuple[int, int, bytes]]:
    """(line number, uncompressed byte offset, bytes) of every line of a file: with its line
    end when `split_cr` (lines end at LF, CRLF or a bare CR, as in Python's csv module), else
    without the LF (lines end at LF only, as in JSON lines)."""
    carry = b""
    number, offset = 1, 0

    def split(piece: bytes) -> list[bytes]:
        return piece.splitlines(keepends=True) if split_cr else piece.split(b"\n")

    for chunk in source.chunks():
        buffer = carry + chunk
        cut = buffer.rfind(b"\n") + 1
        if not cut:
            carry = buffer
            continue
        piece, carry = buffer[:cut], buffer[cut:]
        lines = split(piece)
        if not split_cr:
            lines.pop()  # the empty text after the last LF
        for line in lines:
            yield number, offset, line
            number += 1
            offset += len(line) + (0 if split_cr else 1)
    for line in split(carry) if carry else []:
        yield number, offset, line
        number += 1
        offset += len(line) + (0 if split_cr else 1)


def _csv_in_python(con: duckdb.DuckDBPyConnection, source: _Source, delimiter: str,
                   width: int) -> int:
    """Parse a CSV file that DuckDB's reader would reject whole, row by row: a row with another
    number of fields than the header (`ragged_row`), a quote out of place (`malformed_csv`) or
    bytes that are not UTF-8 (`bad_encoding`) is staged with its fault and raw text; the rest
    loads. Returns the number of records (blank lines are not records)."""
    pending: list[tuple[int, int, bytes]] = []  # the lines of the record being parsed
    bad: dict[int, int] = {}  # line -> the byte (in the file) that is not UTF-8

    def text_lines() -> Iterator[str]:
        for number, offset, line in _lines(source, split_cr=True):
            if number == 1 and line.startswith(_BOM):
                line = line[3:]
            pending.append((number, offset, line))
            try:
                yield line.decode()
            except UnicodeDecodeError as exc:
                bad[number] = offset + exc.start
                yield line.decode("utf-8", "surrogateescape")

    batches = _Batches(con, "_landing_text", [pa.string()] * width + [pa.int64(), pa.string(), pa.string(),
                                                pa.string()])
    reader = csv.reader(text_lines(), delimiter=delimiter, quotechar='"', doublequote=True,
                        strict=True)
    previous_limit = csv.field_size_limit(MAX_LINE_BYTES)
    records, header_seen = 0, False
    try:
        while True:
            fault = None
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    raise LandingFileError(
                        f"{source.relative}: the record that starts on line {pending[0][0]:,} "
                        f"runs over the maximum line size of {MAX_LINE_BYTES:,} bytes: a quote "
                        "that never closes swallows the lines after it. Fix the quoting (a "
                        "quote inside a value is written twice, \"\") and re-deliver the file."
                    ) from exc
                fields = None
                fault = ("malformed_csv", (f"not valid CSV ({exc}): quote a value that holds "
                                           "the delimiter, a quote or a line break, and write "
                                           "a quote inside a value twice"))
            lines, pending[:] = list(pending), []
            if fields is not None and (not fields or (len(fields) == 1 and width > 1
                                                      and not fields[0].strip())):
                continue  # a blank line
            if not header_seen:
                header_seen = True  # parsed and checked already (`_csv_header`)
                continue
            records += 1
            first = lines[0][0] if lines else 0
            broken = [n for n, _, _ in lines if n in bad]
            if broken:
                fault = ("bad_encoding", (f"not UTF-8 at byte {bad[broken[0]]:,} (line "
                                          f"{broken[0]:,}): re-export the file as UTF-8"))
            elif fault is None and len(fields) != width:
                fault = ("ragged_row", f"expected {width} fields (as in the header), found "
                         f"{len(fields)}" + (
                             ": a value with an unquoted delimiter (such as 1,234.50) splits "
                             "in two; quote such values or drop the thousands separator"
                             if len(fields) > width else ""))
            if fault:
                raw = b"".join(line for _, _, line in lines).decode("utf-8", "backslashreplace")
                batches.add([None] * width + [first, fault[0], fault[1], raw.rstrip("\r\n")])
            else:
                batches.add([*fields, first, None, None, None])
        batches.flush()
    finally:
        csv.field_size_limit(previous_limit)
    return records


# ---------------------------------------------------------------------------------------------
# JSON lines and Parquet


def _stage_json(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, relative: str,
                kind: str) -> tuple[int, _Text | None]:
    """Read JSON lines (or Parquet rows, as JSON objects) into `_landing_text`, parsed once.

    Columns: `_line` (the raw text), `_line_number`, `_fault` / `_detail` (a line that is not
    UTF-8), `_is_json` (an object), `_obj` (the contract's fields as a struct of text / JSON)
    and `_unknown` (keys the contract lacks). Returns the file's record count, and its
    decompressed bytes where they were kept whole.
    """
    if kind == "parquet":
        try:
            read = con.execute("select coalesce(sum(num_rows), 0) from parquet_file_metadata(?)",
                               [str(path)]).fetchone()[0]
            _parse_json_lines(con, feed, (
                "select to_json(t) as _line, row_number() over () as _line_number, "
                "null::varchar as _fault, null::varchar as _detail "
                "from read_parquet(?, hive_partitioning = false) as t"), [str(path)])
        except duckdb.Error as exc:
            raise LandingFileError(
                f"{relative}: cannot be read as Parquet ({_duckdb_cause(exc)}). Re-export it (a "
                "Parquet file that was cut short has no footer), or move it out of the landing "
                "folder; nothing of this load was kept.") from exc
        return int(read), None
    source = _Source(path, relative, keep_up_to=KEEP_TEXT_BYTES)
    scan = _scan(source, "jsonl")
    if scan.simple and scan.records and source.kept is not None and source.file_id:
        text = _Text(source.file_id, b"".join(source.kept))
        source.kept = None
        lines = _arrow_lines([text.data], crlf=bool(scan.crlf))
        con.register("_landing_arrow_lines", lines)
        try:
            _parse_json_lines(con, feed, "select * from _landing_arrow_lines", [])
        finally:
            con.unregister("_landing_arrow_lines")
        return scan.records, text
    if scan.simple and scan.records:
        _drop_rejects(con)
        try:
            _parse_json_lines(con, feed, (
                "select _line, row_number() over () as _line_number, null::varchar as _fault, "
                "null::varchar as _detail "
                "from read_csv(?, columns = {'_line': 'VARCHAR'}, header = false, "
                "delim = '\x1f', quote = '', escape = '', auto_detect = false, "
                f"max_line_size = ?, hive_partitioning = false, {_rejects_options()})"),
                [str(path), MAX_LINE_BYTES])
        except duckdb.Error as exc:
            raise LandingFileError(_unreadable(relative, "JSON lines", exc)) from exc
        rejects = con.execute("select count(*) from _landing_rejects").fetchone()[0]
        rows = con.execute("select count(*) from _landing_text").fetchone()[0]
        _drop_rejects(con)
        if not rejects and rows == scan.records:
            return scan.records, None
        con.execute("drop table _landing_text")
    # not UTF-8 throughout, mixed line ends, or lines DuckDB would not read: line by line
    con.execute("create temp table _landing_lines (_line VARCHAR, _line_number BIGINT, "
                "_fault VARCHAR, _detail VARCHAR)")
    batches = _Batches(con, "_landing_lines",
                       [pa.string(), pa.int64(), pa.string(), pa.string()])
    for number, offset, line in _lines(source, split_cr=False):
        if number == 1 and line.startswith(_BOM):
            line = line[3:]
        line = line.removesuffix(b"\r")
        try:
            batches.add([line.decode(), number, None, None])
        except UnicodeDecodeError as exc:
            batches.add([line.decode("utf-8", "backslashreplace"), number, "bad_encoding",
                         (f"not UTF-8 at byte {offset + exc.start:,} (line {number:,}): "
                          "re-export the file as UTF-8")])
    batches.flush()
    _parse_json_lines(con, feed, "select * from _landing_lines", [])
    con.execute("drop table _landing_lines")
    return scan.records, None


def _arrow_lines(chunks: list[bytes], crlf: bool) -> pa.Table:
    """The lines of a verified text file (UTF-8, one kind of line end: `_scan` said `simple`)
    as `_line`, `_line_number`, `_fault`, `_detail`, numbered as `_lines` numbers them (blank
    lines included, a byte-order mark dropped). Split by Arrow in C, in batches of
    ARROW_BATCH_ROWS so that DuckDB reads them on every core."""
    data = b"".join(chunks)
    chunks.clear()
    start = len(_BOM) if data.startswith(_BOM) else 0
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 1, [None, pa.py_buffer(np.array([start, end], np.int64)),
                               pa.py_buffer(data)]).cast(pa.large_string())
    lines = pc.list_flatten(pc.split_pattern(whole, "\n"))
    if crlf:  # every line ends in CRLF (a mix is not `simple`): drop the CR
        lines = pc.replace_substring_regex(lines, "\r$", "")
    numbers = pa.array(np.arange(1, len(lines) + 1, dtype=np.int64))
    empty = pa.nulls(len(lines), pa.string())
    table = pa.table([lines.cast(pa.string()), numbers, empty, empty],
                     names=["_line", "_line_number", "_fault", "_detail"])
    return pa.Table.from_batches(table.to_batches(max_chunksize=ARROW_BATCH_ROWS))


def _parse_json_lines(con: duckdb.DuckDBPyConnection, feed: Feed, source: str,
                      params: list) -> None:
    """`_landing_text` from the lines `source` selects (blank lines are not records)."""
    spec = json.dumps({c.field: "JSON" if c.sql_type == "JSON" else "VARCHAR"
                       for c in feed.columns})
    known = ", ".join(f"'{name}'" for name in feed.source_names)
    # The lines are stored first: reading a gzip file is one thread, and the JSON work on the
    # stored lines then runs on every core (in one pipeline with the read it ran on one).
    con.execute(f"create or replace temp table _landing_source as {source}", params)
    con.execute(f"""
        create temp table _landing_text as
        with source as (select * from _landing_source),
        lines as (
            select _line, _line_number, _fault, _detail,
                   -- valid JSON whose first character is a brace is an object (cheaper
                   -- than json_type, which parses the line again)
                   coalesce(_fault is null and json_valid(_line)
                            and regexp_matches(_line, '^[ \\t\\r]*[{{]'), false) as _is_json
            from source
            -- a blank line is not a record (a regexp: trim() took 0.2 s a day of 300k events)
            where _line is not null and not regexp_full_match(_line, '[ \\t\\r]*')
        )
        select *,
               case when _is_json then json_transform(_line, '{spec}') end as _obj,
               case when _is_json then list_filter(json_keys(_line), k -> k not in ({known}))
                    else [] end as _unknown
        from lines
    """)
    con.execute("drop table _landing_source")


# ---------------------------------------------------------------------------------------------
# Erasure in the landing zone: the delivered files keep no trace of an erased customer

# What an erased customer's rows keep, per feed (the rest is blanked): enough for the row to
# load as it did, under the pseudonymous key.
ERASED_KEEPS = {
    "customers": {"customer_id", "email_consent", "ads_consent", "updated_at", "is_deleted"},
    "orders": {c.field for c in FEEDS["orders"].columns},
}


def _trie_pattern(words: set[str], binary: bool = False) -> str | bytes:
    """A regular expression matching any of `words`, its alternatives nested by common prefix
    (C0001(?:25|3(?:0|1))...): Python's engine tries the alternatives of a flat `a|b|c` one by
    one at every position that starts like one of them, so a few hundred ids that all start
    with "C0" cost a few hundred comparisons per "C" in the text; nested, one per character.
    `binary`: a bytes pattern over the words' UTF-8 bytes (for text searched undecoded)."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in (word.encode() if binary else word):
            node = node.setdefault(bytes([char]) if binary else char, {})
        node[None] = {}  # a word ends here
    empty, open_, bar, close = (b"", b"(?:", b"|", b")") if binary else ("", "(?:", "|", ")")

    def emit(node: dict):
        ends = None in node
        branches = [re.escape(char) + emit(child)
                    for char, child in sorted((k, v) for k, v in node.items() if k is not None)]
        if not branches:
            return empty
        body = branches[0] if len(branches) == 1 else open_ + bar.join(branches) + close
        if ends:  # a shorter word ends here: the rest is optional (longest match first)
            return open_ + body + close + (b"?" if binary else "?")
        return body

    return open_ + emit(trie) + close


class _IdTokens:
    """Where any of `ids` occurs in a text as a whole token (not preceded or followed by a
    letter, digit, `_` or `-`: C1 matches "C1", not "C10" or "XC1"). The pattern starts with
    the ids themselves and the character before a match is checked here: with a look-behind
    first, Python's regex engine cannot skip ahead to the ids' first characters and took 20
    times as long over a day of events of the 1M-customer store (0.85 s vs 0.04 s)."""

    _TOKEN = re.compile(r"[A-Za-z0-9_-]")
    _TOKEN_BYTES = re.compile(rb"[A-Za-z0-9_-]")

    def __init__(self, ids: set[str], binary: bool = False) -> None:
        """`binary`: search UTF-8 bytes, not text (the same matches: the token characters are
        ASCII, and a UTF-8 id's bytes only match at character boundaries)."""
        after = rb"(?![A-Za-z0-9_-])" if binary else "(?![A-Za-z0-9_-])"
        self._pattern = re.compile(_trie_pattern(ids, binary) + after)
        self._token = self._TOKEN_BYTES if binary else self._TOKEN

    def starts(self, text: str | bytes) -> Iterator[int]:
        """The start of every match, left to right, as `finditer` of the pattern with the
        look-behind would give them."""
        at = 0
        while (match := self._pattern.search(text, at)) is not None:
            start = match.start()
            if start and self._token.match(text, start - 1):
                at = start + 1  # preceded by a token character: look again just after
                continue
            yield start
            at = match.end()

    def search(self, text: str) -> bool:
        return next(self.starts(text), None) is not None


def rewrite_erased(landing: Path, relative: str, ids: set[str],
                   text: _Text | None = None) -> bool:
    """Rewrite a landing file so that it names none of `ids` (erased customers): in their rows
    the id becomes `core.privacy.customer_key`, every other field not in `ERASED_KEEPS` is
    blanked (events: `traits`, `context.ip` and `context.traits` dropped); a line that names
    an id but does not parse becomes `{"erased": true}` (it was quarantined, and still is).
    The file keeps its format, delimiter, line ends and compression, and is replaced
    atomically; returns whether it changed. `text`: the file's decompressed bytes as a load
    read them, used while the file is still the one read (same inode, size and time)."""

    from core.privacy import customer_key

    path = landing / relative
    if not path.exists() or not ids:
        return False
    feed = relative.split("/", 1)[0]
    kind = file_kind(path)
    gzipped = path.name.lower().endswith(".gz")
    if text is not None and text.file_id == _file_id(path.stat()):
        data = text.data
    else:
        raw = path.read_bytes()
        data = igzip.decompress(raw) if gzipped else raw
    if kind == "parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        column = next((c for c in frame.columns if c.lower() in ("customer_id", "userid")), None)
        if column is None:
            return False
        hit = frame[column].astype(str).isin(ids)
        if not hit.any():
            return False
        keeps = {k.lower() for k in ERASED_KEEPS.get(feed, set())} | {column.lower()}
        for name in frame.columns:
            if name.lower() not in keeps:
                frame[name] = frame[name].where(~hit, None)
        frame.loc[hit, column] = frame.loc[hit, column].map(customer_key)
        out = path.with_name(f".{path.name}.erasing")
        frame.to_parquet(out, index=False)
        os.replace(out, path)
        return True
    if kind == "jsonl":
        # one search of the whole file, then each match's line: searching line by line ran the
        # pattern (an alternation of every id) once per line (a sampled 1M-store load spent
        # about a quarter of its time there); in its bytes, not decoded (decoding a day of
        # events and encoding it again cost as much as the search)
        matches = list(_IdTokens(ids, binary=True).starts(data))
        if not matches:
            return False
        # only the matched lines are cut out and replaced (splitting a day of 275k events
        # into lines and joining them again cost more than the search)
        pieces, done = [], 0
        for start in sorted({data.rfind(b"\n", 0, at) + 1 for at in matches}):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            line = data[start:end]
            cr = b"\r" if line.endswith(b"\r") else b""
            try:
                event = json.loads(line.decode("utf-8"))  # as text: a BOM does not parse
            except (json.JSONDecodeError, UnicodeDecodeError):
                event = None
            if not isinstance(event, dict) or str(event.get("userId")) not in ids:
                replacement = b'{"erased": true}' + cr
            else:
                event["userId"] = customer_key(str(event["userId"]))
                event.pop("traits", None)
                if isinstance(event.get("context"), dict):
                    event["context"].pop("ip", None)
                    event["context"].pop("traits", None)
                replacement = json.dumps(event).encode("utf-8") + cr
            pieces += [data[done:start], replacement]
            done = end
        _replace_landing_file(path, b"".join([*pieces, data[done:]]), gzipped)
        return True
    text = data.decode("utf-8")
    token = _IdTokens(ids)
    if not token.search(text):
        return False
    else:
        bom = text.startswith("\ufeff")
        body = text[1:] if bom else text
        newline = "\r\n" if "\r\n" in body[:65536] else "\n"
        header_line = body.split("\n", 1)[0].rstrip("\r")
        delimiter = max(CSV_DELIMITERS, key=lambda d: (
            len(next(csv.reader([header_line], delimiter=d))), d == ","))
        rows = list(csv.reader(io.StringIO(body, newline=""), delimiter=delimiter))
        header = [name.strip().lower() for name in rows[0]] if rows else []
        keeps = {k.lower() for k in ERASED_KEEPS.get(feed, set())}
        at = header.index("customer_id") if "customer_id" in header else None
        for row in rows[1:]:
            if not any(field in ids for field in row) and not any(token.search(f) for f in row):
                continue
            for index, field in enumerate(row):
                name = header[index] if index < len(header) else ""
                if index == at and field in ids:
                    row[index] = customer_key(field)
                elif name not in keeps or token.search(field):
                    row[index] = ""
        out_text = io.StringIO()
        csv.writer(out_text, delimiter=delimiter, lineterminator=newline).writerows(rows)
        changed = ("\ufeff" if bom else "") + out_text.getvalue()
        if not text.endswith(("\n", "\r")) and changed.endswith(newline):
            changed = changed[: -len(newline)]
    _replace_landing_file(path, changed.encode("utf-8"), gzipped)
    return True


def _replace_landing_file(path: Path, data: bytes, gzipped: bool) -> None:
    """Replace a landing file atomically with `data`, compressed again if it was."""
    out = path.with_name(f".{path.name}.erasing")
    # ISA-L's level 1: a day of events of the 1M-customer store (74 MB) took 0.06 s instead of
    # zlib's 0.23 s at level 1 (0.9 s at 6, 3.5 s at the default 9), for 7.4 MB where the
    # generator's zlib wrote 7.9 MB; a full build there rewrites every day's file
    out.write_bytes(igzip.compress(data, compresslevel=1, mtime=0) if gzipped else data)
    os.replace(out, path)


REWRITES_FILE = ".erasure_rewrites.json"  # in the landing folder; the loader skips it
# The landing files new erasure requests name, waiting for the sweep: relative path -> the ids
# it names, and since when the oldest waits. In the landing folder, next to the files that name
# those ids anyway, and gone once they are rewritten.
PENDING_FILE = ".erasure_pending.json"
SWEEP_ENV = "SEGMENTA_ERASURE_SWEEP_DAYS"
DEFAULT_SWEEP_DAYS = 7


def sweep_days() -> float:
    """`SEGMENTA_ERASURE_SWEEP_DAYS`: how long the landing files named by an erasure request
    may wait for their rewrite (0: at once, in the load that applies the request)."""
    text = os.environ.get(SWEEP_ENV, "").strip()
    try:
        days = float(text) if text else DEFAULT_SWEEP_DAYS
    except ValueError:
        raise ValueError(f"{SWEEP_ENV}={text!r} is not a number of days") from None
    if not 0 <= days <= 30:
        raise ValueError(f"{SWEEP_ENV}={text!r} must be between 0 and 30 days (the GDPR's "
                         "one month is the outer limit for an erasure)")
    return days


def pending_erasures(landing: Path) -> dict:
    """{"since": ISO time the oldest waiting request was recorded, "files": {relative: [ids]}}."""
    path = landing / PENDING_FILE
    if not path.exists():
        return {"since": None, "files": {}}
    return json.loads(path.read_text())


def _write_pending(landing: Path, pending: dict) -> None:
    path = landing / PENDING_FILE
    if not pending["files"]:
        path.unlink(missing_ok=True)
        return
    partial = landing / f"{PENDING_FILE}.partial"
    partial.write_text(json.dumps(pending, sort_keys=True) + "\n")
    partial.replace(path)


def defer_landing_erasures(landing: Path, files: dict[str, set[str]]) -> None:
    """Put the landing files that name newly erased customers on the sweep's list. Written
    before the load commits: a run killed after the commit still finds them there (the
    warehouse, scrubbed, no longer knows the ids)."""
    if not files:
        return
    pending = pending_erasures(landing)
    for relative, ids in files.items():
        pending["files"][relative] = sorted(set(pending["files"].get(relative, [])) | set(ids))
    pending["since"] = pending["since"] or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _write_pending(landing, pending)


def erasure_sweep_due(landing: Path, now: dt.datetime | None = None) -> bool:
    """Whether files wait for the sweep longer than `SEGMENTA_ERASURE_SWEEP_DAYS`."""
    pending = pending_erasures(landing)
    if not pending["files"]:
        return False
    waited = (now or dt.datetime.now(dt.UTC)) - dt.datetime.fromisoformat(pending["since"])
    return waited >= dt.timedelta(days=sweep_days())


def sweep_landing_erasures(landing: Path, force: bool = False) -> list[str]:
    """Rewrite the files on the sweep's list when it is due (or `force`); returns the files
    that changed. Each file leaves the list once rewritten, so a sweep that is stopped goes on
    where it was on the next call."""
    if not (force or erasure_sweep_due(landing)):
        return []
    changed: list[str] = []
    for relative in sorted(pending_erasures(landing)["files"]):
        changed += _sweep_file(landing, relative)
    return changed


# The sweep's list is read and written by a load's loop and its rewrite thread (`_Rewriter`).
_PENDING_LOCK = threading.Lock()


def _sweep_file(landing: Path, relative: str, text: _Text | None = None) -> list[str]:
    """Rewrite one file on the sweep's list for every id it waits for, then take it off the
    list; returns it if it changed. `text`: its decompressed bytes, if a load just read it."""
    with _PENDING_LOCK:
        ids = set(pending_erasures(landing)["files"].get(relative, []))
    changed = _erase_in_landing(landing, {relative: ids}, {relative: text}) if ids else []
    with _PENDING_LOCK:
        pending = pending_erasures(landing)
        if set(pending["files"].get(relative, [])) <= ids:  # no newer request for it
            pending["files"].pop(relative, None)
            if not pending["files"]:
                pending["since"] = None
            _write_pending(landing, pending)
    return changed


def _erase_in_landing(landing: Path, files: dict[str, set[str]],
                      texts: dict[str, _Text | None] | None = None) -> list[str]:
    """Rewrite every landing file that names an erased customer; returns those that changed.
    Each rewritten day's new fingerprint goes to `<landing>/.erasure_rewrites.json`, so
    `segmenta run` and the sensor know the change is their own and do not load the day again
    (`rewritten_days`). The record is written whether or not the load commits: the rewrite
    happened either way."""
    texts = texts or {}
    changed = [relative for relative, ids in sorted(files.items())
               if rewrite_erased(landing, relative, ids, texts.get(relative))]
    if not changed:
        return []
    record = rewritten_days(landing)
    for feed_name, folder in sorted({tuple(r.split("/")[:2]) for r in changed}):
        match = PARTITION_DIR.match(folder)
        if feed_name in FEEDS and match:
            day = dt.date.fromisoformat(match.group(1))
            record.setdefault(feed_name, {})[day.isoformat()] = day_fingerprint(
                landing, FEEDS[feed_name], day)
    partial = landing / f"{REWRITES_FILE}.partial"
    partial.write_text(json.dumps(record, sort_keys=True) + "\n")
    partial.replace(landing / REWRITES_FILE)
    return changed


def rewritten_days(landing: Path) -> dict[str, dict[str, str]]:
    """feed -> day -> the fingerprint the day had right after an erasure rewrote its files."""
    path = landing / REWRITES_FILE
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}
