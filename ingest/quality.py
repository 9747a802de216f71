"""Great Expectations suites from `expectations/`, validated on pandas frames read from DuckDB.

Each file `expectations/<schema>_<table>.json` holds the expectations for one table, in Great
Expectations' own format (`type`, `kwargs`, `meta`), in up to two groups:

- `rows`: checked on the table's rows (for a daily feed: the days just loaded);
- `daily`: checked on one row of statistics per landing day (rows read, loaded, quarantined,
  quarantine share, and the ratio of loaded rows to the median of the 28 days before).

Thresholds may be `{"$PARAMETER": name}`, filled in at validation time.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from core import preload
from core.settings import PROJECT_ROOT

SUITES_DIR = PROJECT_ROOT / "expectations"
SAMPLE_SIZE = 5
# Below this many rows a day (the median of the 28 days before), volume swings are noise, not
# incidents: no ratio, and a day without rows is no alarm. Order lines come in orders of 2-3
# lines: at a median of 20 lines (8 orders) a day with under a quarter of it (2 orders or fewer)
# has a Poisson chance of 1.4 % a day, several times a year; at 50 (20 orders), 7e-5.
MIN_VOLUME_FOR_RATIO = 50
# A share of a handful of rows is noise too: fewer quarantined rows than this never fail a day.
MIN_QUARANTINED_ROWS = 5


@dataclass
class Failure:
    expectation: str
    column: str | None
    kwargs: dict
    observed: object
    unexpected_count: int | None
    sample: list = field(default_factory=list)


@dataclass
class ValidationSummary:
    suite: str
    success: bool
    evaluated: int
    failures: list[Failure]

    def markdown(self) -> str:
        if not self.failures:
            return f"All {self.evaluated} expectations of `{self.suite}` passed."
        lines = [f"{len(self.failures)} of {self.evaluated} expectations of `{self.suite}` failed:",
                 "", "| expectation | column | observed | unexpected | sample |", "|---|---|---|---|---|"]
        for f in self.failures:
            sample = ", ".join(str(v) for v in f.sample[:SAMPLE_SIZE])
            lines.append(f"| {f.expectation} | {f.column or ''} | {f.observed if f.observed is not None else ''} "
                         f"| {f.unexpected_count if f.unexpected_count is not None else ''} | {sample} |")
        return "\n".join(lines)

    @staticmethod
    def combine(summaries: list[ValidationSummary]) -> ValidationSummary:
        return ValidationSummary(
            suite=" + ".join(s.suite for s in summaries) or "nothing to validate",
            success=all(s.success for s in summaries),
            evaluated=sum(s.evaluated for s in summaries),
            failures=[f for s in summaries for f in s.failures],
        )


def suite_file(table: str, suites_dir: Path = SUITES_DIR) -> Path:
    return suites_dir / f"{table.replace('.', '_')}.json"


def load_suite(table: str, suites_dir: Path = SUITES_DIR) -> dict:
    path = suite_file(table, suites_dir)
    if not path.exists():
        raise FileNotFoundError(f"no expectation suite for {table}: expected {path}")
    return json.loads(path.read_text())


# Table-level expectations that count rows and read no column.
ROW_COUNT_EXPECTATIONS = ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal")


def suite_columns(table: str, group: str, suites_dir: Path = SUITES_DIR) -> list[str] | None:
    """The columns the `group` expectations of the table's suite read, in suite order; None
    when one of them reads the whole table (such as the table's column set). Row counts need
    rows, not columns: a frame of the named columns has them all (of no named column: None)."""
    columns: list[str] = []
    for item in load_suite(table, suites_dir).get(group, []):
        if item["type"] in ROW_COUNT_EXPECTATIONS:
            continue
        named = item["kwargs"].get("column_list") or [item["kwargs"].get("column")]
        if None in named:
            return None
        columns += [column for column in named if column not in columns]
    return columns or None


@cache
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    preload.wait()
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context


def validate(table: str, group: str, frame: pd.DataFrame, parameters: dict | None = None,
             suites_dir: Path = SUITES_DIR) -> ValidationSummary:
    """Validate `frame` against the `group` expectations of the table's suite file."""
    preload.wait()
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    spec = load_suite(table, suites_dir)
    name = f"{spec['name']}.{group}"
    expectations = spec.get(group, [])
    if not expectations:
        return ValidationSummary(name, True, 0, [])
    context = _context()
    suite = gx.ExpectationSuite(name=name)
    for item in expectations:
        suite.add_expectation_configuration(ExpectationConfiguration(
            type=item["type"], kwargs=item["kwargs"], meta=item.get("meta", {})))
    source_name = f"frames_{name}"
    source = context.data_sources.add_or_update_pandas(source_name)
    asset = source.add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
        batch_parameters={"dataframe": frame})
    result = batch.validate(suite, expectation_parameters=parameters or {},
                            result_format={"result_format": "SUMMARY",
                                           "partial_unexpected_count": SAMPLE_SIZE})
    failures = []
    for item in result.results:
        if item.success:
            continue
        details = item.result or {}
        kwargs = {k: v for k, v in item.expectation_config.kwargs.items() if k != "batch_id"}
        failures.append(Failure(
            expectation=item.expectation_config.type, column=kwargs.get("column"), kwargs=kwargs,
            observed=details.get("observed_value"),
            unexpected_count=details.get("unexpected_count"),
            sample=list(details.get("partial_unexpected_list") or []),
        ))
    return ValidationSummary(name, bool(result.success), len(result.results), failures)


def daily_stats(read: dict[str, int], loaded: dict[str, int], quarantined: dict[str, int],
                history: pd.DataFrame) -> pd.DataFrame:
    """One row per day: volumes, quarantine share, and loaded rows relative to recent history.

    `material_quarantine_share` is the share when at least MIN_QUARANTINED_ROWS rows were
    quarantined and null otherwise (2 bad lines of a quiet day's 36 are not a broken export).

    `history` has columns day (date string) and n_loaded for days loaded before; the ratio uses
    the median of the 28 days before each day (null while fewer than 7 such days exist, or
    while that median is below MIN_VOLUME_FOR_RATIO).
    """
    past = dict(zip(history["day"], history["n_loaded"], strict=True)) if len(history) else {}
    rows = []
    for day in sorted(read):
        days = sorted(d for d in past if d < day)[-28:]
        median = float(pd.Series([past[d] for d in days]).median()) if len(days) >= 7 else None
        if median is not None and median < MIN_VOLUME_FOR_RATIO:
            median = None
        rows.append({
            "day": day, "n_read": read[day], "n_loaded": loaded[day],
            "n_quarantined": quarantined[day],
            "quarantine_share": quarantined[day] / read[day] if read[day] else 0.0,
            "material_quarantine_share": quarantined[day] / read[day]
            if read[day] and quarantined[day] >= MIN_QUARANTINED_ROWS else None,
            "ratio_to_recent_median": loaded[day] / median if median else None,
            # a day without rows is an incident only where days are busy enough not to have
            # none by chance
            "n_loaded_when_busy": loaded[day] if median else None,
        })
    return pd.DataFrame(rows)
