"""Load landing files into `raw.<feed>`, sending rows that cannot be loaded to `quarantine.<feed>`.

Each feed is declared once, as data (`FEEDS`): its columns, their warehouse types and whether they
are required. Files are read by DuckDB as text, each value is cast with `try_cast`, and a row whose
required value is missing or does not cast gets a reason code instead of being loaded. A file
that cannot be read at all raises `LandingFileError`, which names the file, the problem and the
fix; the transaction around the load is rolled back, so the warehouse stays as it was.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.warehouse import Warehouse

PARTITION_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # VARCHAR, INTEGER, DOUBLE, BOOLEAN, DATE, TIMESTAMP (UTC), JSON
    required: bool = False
    source: str | None = None  # the field's name in the landing file, when it differs


@dataclass(frozen=True)
class Feed:
    name: str
    file_format: str  # "csv" or "jsonl"
    columns: tuple[Column, ...]
    partitioned: bool

    @property
    def source_names(self) -> list[str]:
        return [c.source or c.name for c in self.columns]


FEEDS: dict[str, Feed] = {
    "orders": Feed("orders", "csv", (
        Column("order_id", "VARCHAR", required=True),
        Column("line_number", "INTEGER", required=True),
        Column("customer_id", "VARCHAR"),
        Column("ordered_at", "TIMESTAMP", required=True),
        Column("product_id", "VARCHAR", required=True),
        Column("quantity", "INTEGER", required=True),
        Column("unit_price", "DOUBLE", required=True),
        Column("currency", "VARCHAR", required=True),
        Column("status", "VARCHAR", required=True),
        Column("channel", "VARCHAR"),
        Column("shipping_country", "VARCHAR"),
        Column("discount_amount", "DOUBLE"),
    ), partitioned=True),
    "events": Feed("events", "jsonl", (
        Column("type", "VARCHAR", required=True),
        Column("event", "VARCHAR"),
        Column("message_id", "VARCHAR", required=True, source="messageId"),
        Column("timestamp", "TIMESTAMP", required=True),
        Column("user_id", "VARCHAR", source="userId"),
        Column("anonymous_id", "VARCHAR", source="anonymousId"),
        Column("properties", "JSON"),
        Column("context", "JSON"),
    ), partitioned=True),
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
    ), partitioned=False),
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
    ), partitioned=False),
}

LOAD_COLUMNS_DDL = ("_source_file VARCHAR, _source_line BIGINT, _partition_date DATE, "
                    "_loaded_at TIMESTAMP")
BAD_VALUE_REASON = {"INTEGER": "bad_number", "DOUBLE": "bad_number", "BOOLEAN": "bad_boolean",
                    "DATE": "bad_date", "TIMESTAMP": "bad_timestamp", "JSON": "malformed_json"}


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

    @property
    def totals(self) -> dict[str, int]:
        return {"rows_read": sum(self.read.values()), "rows_loaded": sum(self.loaded.values()),
                "rows_quarantined": sum(self.quarantined.values()), "files": len(self.files)}

    @property
    def reconciles(self) -> bool:
        return all(self.read[d] == self.loaded[d] + self.quarantined[d] for d in self.read)


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
    folder = landing / feed.name / f"dt={day.isoformat()}"
    if not folder.exists():
        return []
    suffixes = CSV_SUFFIXES if feed.file_format == "csv" else JSONL_SUFFIXES
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in suffixes)


def ensure_tables(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists quarantine")
    columns = ", ".join(f'"{c.name}" {c.sql_type}' for c in feed.columns)
    con.execute(f"create table if not exists raw.{feed.name} ({columns}, {LOAD_COLUMNS_DDL})")
    con.execute(
        f"create table if not exists quarantine.{feed.name} "
        f"(raw_record VARCHAR, reason VARCHAR, {LOAD_COLUMNS_DDL})"
    )


def load_days(warehouse: Warehouse, landing: Path, feed_name: str,
              days: list[dt.date]) -> LoadReport:
    """Replace the given days of a partitioned feed, all in one transaction."""
    feed = FEEDS[feed_name]
    report = LoadReport(feed_name)
    with warehouse.transaction() as con:
        ensure_tables(con, feed)
        for day in days:
            for table in (f"raw.{feed.name}", f"quarantine.{feed.name}"):
                con.execute(f"delete from {table} where _partition_date = ?", [day])
            for path in day_files(landing, feed, day):
                _load_file(con, feed, landing, path, day, report)
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
    return report


def _load_file(con: duckdb.DuckDBPyConnection, feed: Feed, landing: Path, path: Path,
               day: dt.date, report: LoadReport) -> None:
    relative = path.relative_to(landing).as_posix()
    con.execute("drop table if exists _landing_text")
    if feed.file_format == "csv":
        _stage_csv(con, feed, path, relative)
        fields = {c.name: f'nullif(trim("{c.source or c.name}"), \'\')' for c in feed.columns}
        record = "to_json(struct_pack(" + ", ".join(
            f'"{n}" := "{n}"' for n in feed.source_names) + "))"
        parse_error = "null"
    else:
        _stage_jsonl(con, path, relative)
        fields = {}
        for c in feed.columns:  # a malformed line yields nulls here and is quarantined below
            path_expr = f"'$.{c.source or c.name}'"
            extract = (f"json_extract(_line, {path_expr})" if c.sql_type == "JSON"
                       else f"nullif(json_extract_string(_line, {path_expr}), '')")
            fields[c.name] = f"case when _is_json then {extract} end"
        record = "_line"
        parse_error = "case when not _is_json then 'malformed_json' end"

    typed = {c.name: _cast(fields[c.name], c.sql_type) for c in feed.columns}
    checks = [parse_error]
    for c in feed.columns:
        if c.required:
            checks.append(f"case when {fields[c.name]} is null then 'missing_required_field' end")
        if c.sql_type not in ("VARCHAR", "JSON"):
            checks.append(f"case when {fields[c.name]} is not null and {typed[c.name]} is null "
                          f"then '{BAD_VALUE_REASON[c.sql_type]}' end")
    if feed.name == "events":
        checks.append(f"case when {fields['user_id']} is null and {fields['anonymous_id']} is null "
                      "then 'missing_required_field' end")
    reason = "coalesce(" + ", ".join(checks) + ")"

    con.execute(f"""
        create or replace temp table _landing_rows as
        select {reason} as _reason, {record} as _record, _line_number,
               {", ".join(f'{typed[c.name]} as "{c.name}"' for c in feed.columns)}
        from _landing_text
    """)
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    names = ", ".join(f'"{c.name}"' for c in feed.columns)
    con.execute(f"""
        insert into raw.{feed.name}
        select {names}, ? as _source_file, _line_number, ? as _partition_date, ? as _loaded_at
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
    con.execute("drop table _landing_rows")
    con.execute("drop table _landing_text")


def _cast(expr: str, sql_type: str) -> str:
    if sql_type == "TIMESTAMP":  # any ISO-8601 offset, stored as UTC wall-clock time
        return f"(try_cast({expr} as timestamptz) at time zone 'UTC')"
    if sql_type == "JSON":
        return expr
    return f"try_cast({expr} as {sql_type})"


def _stage_csv(con: duckdb.DuckDBPyConnection, feed: Feed, path: Path, relative: str) -> None:
    try:
        con.execute("""
            create temp table _landing_text as
            select *, row_number() over () + 1 as _line_number
            from read_csv(?, all_varchar = true, header = true, auto_detect = true)
        """, [str(path)])
    except duckdb.Error as exc:
        raise LandingFileError(
            f"{relative}: cannot be read as CSV with a header row ({_first_line(exc)}). "
            "Re-export it as UTF-8 CSV with a header row, or move it out of the landing folder."
        ) from exc
    present = {row[0] for row in con.execute("describe _landing_text").fetchall()}
    missing = [c.source or c.name for c in feed.columns
               if c.required and (c.source or c.name) not in present]
    if missing:
        raise LandingFileError(
            f"{relative}: missing required column(s) {', '.join(missing)}. The {feed.name} feed "
            f"needs {', '.join(c.name for c in feed.columns if c.required)} "
            "(see docs/data-contract.md); fix the export and drop the file in again."
        )
    for c in feed.columns:  # optional columns may be absent: add them as empty
        if (c.source or c.name) not in present:
            con.execute(f'alter table _landing_text add column "{c.source or c.name}" VARCHAR')


def _stage_jsonl(con: duckdb.DuckDBPyConnection, path: Path, relative: str) -> None:
    try:
        con.execute("""
            create temp table _landing_text as
            select _line, coalesce(json_valid(_line), false) as _is_json,
                   row_number() over () as _line_number
            from read_csv(?, columns = {'_line': 'VARCHAR'}, header = false, delim = '\x1f',
                          quote = '', escape = '', auto_detect = false)
        """, [str(path)])
    except duckdb.Error as exc:
        raise LandingFileError(
            f"{relative}: cannot be read as JSON lines ({_first_line(exc)}). Re-export it as "
            "UTF-8 text with one JSON object per line, or move it out of the landing folder."
        ) from exc
    con.execute("delete from _landing_text where trim(_line) = ''")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]
