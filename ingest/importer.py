"""Bring your own data: map a store's existing export onto a landing feed with a YAML mapping.

The mapping names, for each contract column, the source column and how to read it (a date
format and time zone, an id stored as a float, a table of values), constants for columns the
export lacks, how to number lines within an order, and rules for the order status. The importer
writes one CSV per day into `landing/<feed>/dt=YYYY-MM-DD/`, so the usual ingestion (with its
quarantine) loads it. Every source row is written exactly once, also rows that will not pass
the contract: those are quarantined with a reason at ingestion, never dropped here.

See mappings/online_retail.yaml and the README's "Bring your own data".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from ingest.landing import FEEDS

READERS = {"parquet": "read_parquet", "csv": "read_csv"}


class MappingError(Exception):
    """A mapping file that does not fit the contract; the message names the key to fix."""


@dataclass(frozen=True)
class ImportReport:
    source_rows: int
    written_rows: int
    days: int
    first_day: str
    last_day: str
    out_dir: Path

    def as_dict(self) -> dict:
        return {**self.__dict__, "out_dir": str(self.out_dir)}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _column_sql(target: str, spec: object, mapping_path: Path) -> str:
    """The SQL expression (text) for one contract column."""
    if isinstance(spec, str):
        return f"cast({_quote(spec)} as varchar)"
    if not isinstance(spec, dict) or "column" not in spec:
        raise MappingError(f"{mapping_path}: columns.{target} must be a source column name or "
                           "a mapping with a `column` key")
    source = _quote(spec["column"])
    text = f"cast({source} as varchar)"
    if spec.get("type") == "integer_id":
        text = f"cast(try_cast(try_cast({source} as double) as bigint) as varchar)"
    elif spec.get("type") not in (None, "text"):
        raise MappingError(f"{mapping_path}: columns.{target}.type must be text or integer_id")
    if "format" in spec:  # parse local wall-clock time, write UTC; unparseable stays as it was
        local = f"try_strptime(cast({source} as varchar), {_literal(spec['format'])})"
        if "timezone" in spec:
            local = f"timezone({_literal(spec['timezone'])}, {local})"
        text = (f"coalesce(strftime({local}, '%Y-%m-%dT%H:%M:%SZ'), "
                f"cast({source} as varchar))")
    if "values" in spec:
        cases = " ".join(f"when {_literal(k)} then {_literal(v)}"
                         for k, v in (spec["values"] or {}).items())
        text = f"case {text} {cases} else {text} end"
    return text


def _partition_sql(mapping: dict, mapping_path: Path,
                   overrides: dict[str, str] | None = None) -> str:
    """The local date that names a row's landing folder (the import day for unparseable rows).
    A value given for that column on the command line (`--set issued_at=...`) names it for
    every row."""
    column = mapping.get("partition_by")
    if column in (overrides or {}):
        value = overrides[column]
        return (f"coalesce(cast(try_cast({_literal(value)} as timestamptz) as date), "
                f"try_cast({_literal(value)} as date), current_date)")
    spec = mapping.get("columns", {}).get(column)
    if not isinstance(spec, dict) or "format" not in spec:
        raise MappingError(f"{mapping_path}: partition_by must name a mapped column with a "
                           "`format` (the date that decides each row's day folder)")
    parsed = f"try_strptime(cast({_quote(spec['column'])} as varchar), {_literal(spec['format'])})"
    return f"coalesce(cast({parsed} as date), current_date)"


def _status_sql(mapping: dict, mapping_path: Path) -> str:
    status = mapping.get("status", {"default": "completed"})
    cases = []
    for rule in status.get("rules", []):
        when = rule.get("when", {})
        if "column" not in when or "value" not in rule:
            raise MappingError(f"{mapping_path}: each status rule needs when.column and value")
        column = f"cast({_quote(when['column'])} as varchar)"
        if "starts_with" in when:
            test = f"starts_with({column}, {_literal(when['starts_with'])})"
        elif "equals" in when:
            test = f"{column} = {_literal(when['equals'])}"
        elif "less_than" in when:
            test = f"try_cast({column} as double) < {float(when['less_than'])}"
        else:
            raise MappingError(f"{mapping_path}: a status rule's `when` needs starts_with, "
                               "equals or less_than")
        cases.append(f"when {test} then {_literal(rule['value'])}")
    default = _literal(status.get("default", "completed"))
    return f"case {' '.join(cases)} else {default} end" if cases else default


def _reader_sql(mapping: dict, source: Path, mapping_path: Path) -> str:
    """The DuckDB table function reading the source file (`source.skip`: lines before a CSV's
    header, such as Open-Meteo's block of coordinates)."""
    options = mapping.get("source", {}) or {}
    reader = READERS.get(options.get("format", "csv"))
    if reader is None:
        raise MappingError(f"{mapping_path}: source.format must be one of {', '.join(READERS)}")
    skip = options.get("skip", 0)
    if not isinstance(skip, int) or skip < 0 or (skip and reader != "read_csv"):
        raise MappingError(f"{mapping_path}: source.skip must be a whole number of lines, and "
                           "only for csv")
    return (f"{reader}({_literal(source)}" + (f", skip = {skip}, header = true" if skip else "")
            + ")")


def build_select(mapping: dict, source: Path, mapping_path: Path,
                 overrides: dict[str, str] | None = None) -> str:
    """The SQL that turns the source file into contract rows plus a `_day` partition column.
    `overrides`: constants given on the command line (`--set city=Madrid`), over the mapping's."""
    feed_name = mapping.get("feed")
    if feed_name not in FEEDS:
        raise MappingError(f"{mapping_path}: feed must be one of {', '.join(FEEDS)}")
    feed = FEEDS[feed_name]
    reader = _reader_sql(mapping, source, mapping_path)
    columns = mapping.get("columns", {})
    constants = {**(mapping.get("constants") or {}), **(overrides or {})}
    for name in overrides or {}:
        columns.pop(name, None)  # a value given on the command line wins over a source column
    unknown = (set(columns) | set(constants)) - {c.field for c in feed.columns}
    if unknown:
        raise MappingError(f"{mapping_path}: {', '.join(sorted(unknown))} is not a column of the "
                           f"{feed_name} feed (see docs/data-contract.md)")
    outputs = []
    for column in feed.columns:
        name = column.field
        if name in columns:
            expr = _column_sql(name, columns[name], mapping_path)
        elif name in constants:
            expr = _literal(constants[name])
        elif name == "line_number" and "line_number" in mapping:
            within = mapping["line_number"].get("sequence_within")
            key = _column_sql(within, columns.get(within, within), mapping_path)
            expr = f"cast(row_number() over (partition by {key} order by _source_row) as varchar)"
        elif name == "status" and "status" in mapping:
            expr = _status_sql(mapping, mapping_path)
        elif column.required:
            raise MappingError(f"{mapping_path}: required column {name} is not mapped "
                               "(add it under columns or constants, or give it with --set)")
        else:
            expr = "null"
        outputs.append(f"{expr} as {_quote(name)}")
    return (f"select {', '.join(outputs)}, {_partition_sql(mapping, mapping_path, overrides)} as _day "
            f"from (select *, row_number() over () as _source_row "
            f"from {reader}) order by _source_row")


def import_file(mapping_path: Path, source: Path, landing: Path,
                overrides: dict[str, str] | None = None) -> ImportReport:
    """Write `source` into the landing zone as the mapping says; returns what was written."""
    mapping = yaml.safe_load(mapping_path.read_text()) or {}
    if not source.exists():
        raise FileNotFoundError(f"source file {source} does not exist")
    select = build_select(mapping, source, mapping_path, overrides)
    out_dir = landing / mapping["feed"]
    stem = source.name.split(".")[0]
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"create temp table _import as {select}")
        source_rows = con.execute(
            f"select count(*) from {_reader_sql(mapping, source, mapping_path)}").fetchone()[0]
        days = con.execute("select distinct _day from _import order by 1").fetchall()
        written = 0
        for (day,) in days:
            folder = out_dir / f"dt={day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{stem}.csv"
            # _import keeps source order (insertion order is preserved), and so does the copy
            con.execute(f"copy (select * exclude (_day) from _import where _day = ?) "
                        f"to {_literal(str(target))} (header, delimiter ',')", [day])
            written += con.execute("select count(*) from _import where _day = ?",
                                   [day]).fetchone()[0]
    report = ImportReport(source_rows=source_rows, written_rows=written, days=len(days),
                          first_day=days[0][0].isoformat() if days else "",
                          last_day=days[-1][0].isoformat() if days else "", out_dir=out_dir)
    (out_dir / f".import_{stem}.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report
