"""Great Expectations suites: every file loads, and volume anomalies are caught with their days."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ingest import quality


@pytest.mark.parametrize("path", sorted(quality.SUITES_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_suite_file_names_its_table(path):
    spec = json.loads(path.read_text())
    assert path == quality.suite_file(spec["table"])
    assert spec.get("rows") or spec.get("daily")


def test_a_day_with_no_orders_and_a_spike_fail_with_their_days():
    history = pd.DataFrame({"day": [f"2026-04-{d:02d}" for d in range(1, 29)],
                            "n_loaded": [100] * 28})
    read = {"2026-04-29": 102, "2026-04-30": 0, "2026-05-01": 900}
    loaded = {"2026-04-29": 101, "2026-04-30": 0, "2026-05-01": 900}
    quarantined = {day: read[day] - loaded[day] for day in read}
    stats = quality.daily_stats(read, loaded, quarantined, history)
    assert stats["ratio_to_recent_median"].round(2).tolist() == [1.01, 0.0, 9.0]
    summary = quality.validate("raw.orders", "daily", stats)
    assert not summary.success
    failed = {(f.column, tuple(sorted(map(str, f.sample)))) for f in summary.failures}
    assert ("n_loaded_when_busy", ("0",)) in failed
    assert ("ratio_to_recent_median", ("0.0", "9.0")) in failed
    assert "n_loaded_when_busy" in summary.markdown()


def test_a_quiet_store_s_quiet_days_are_no_incident():
    """A store of a dozen order lines a day has days with 2 lines, or none, by chance."""
    history = pd.DataFrame({"day": [f"2026-04-{d:02d}" for d in range(1, 29)],
                            "n_loaded": [12, 15, 9, 14, 11, 13, 16] * 4})
    read = loaded = {"2026-04-29": 2, "2026-04-30": 0}
    stats = quality.daily_stats(read, loaded, {day: 0 for day in read}, history)
    assert stats["ratio_to_recent_median"].isna().all()
    assert quality.validate("raw.orders", "daily", stats).success


def test_unknown_table_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no expectation suite for raw.nothing"):
        quality.validate("raw.nothing", "rows", pd.DataFrame())


def test_a_handful_of_bad_rows_on_a_quiet_day_is_not_material():
    stats = quality.daily_stats({"d1": 36, "d2": 40}, {"d1": 34, "d2": 34},
                                {"d1": 2, "d2": 6}, pd.DataFrame(columns=["day", "n_loaded"]))
    assert stats["material_quarantine_share"].isna().tolist() == [True, False]
    failures = quality.validate("raw.orders", "daily", stats).failures
    assert [(f.column, f.sample) for f in failures] == [("material_quarantine_share", [0.15])]


def test_a_suite_reads_only_the_columns_it_names(tmp_path):
    """The mart checks read the columns their suite names, not the whole mart; a row count needs
    rows, not columns, and an expectation on the table's columns needs them all."""
    def suite(*expectations):
        (tmp_path / "marts_t.json").write_text(json.dumps(
            {"name": "t", "table": "marts.t", "rows": list(expectations)}))
        return quality.suite_columns("marts.t", "rows", tmp_path)

    count = {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}
    unique = {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}
    pair = {"type": "expect_compound_columns_to_be_unique",
            "kwargs": {"column_list": ["id", "day"]}}
    listed = {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["id"]}}
    assert suite(count, unique, pair) == ["id", "day"]
    assert suite(count) is None  # nothing named: the whole table
    assert suite(unique, listed) is None
    # the columns read validate as the whole table does: the row count fails on no rows
    assert suite(count, unique, pair) == ["id", "day"]
    frame = pd.DataFrame({"id": [1, 2, 2], "day": ["a", "a", "b"], "other": [0, 0, 0]})
    assert not quality.validate("marts.t", "rows", frame[["id", "day"]], suites_dir=tmp_path
                                ).success  # id repeats
    assert quality.validate("marts.t", "rows", frame.iloc[:2][["id", "day"]],
                            suites_dir=tmp_path).success
    assert not quality.validate("marts.t", "rows", frame.iloc[:0][["id", "day"]],
                                suites_dir=tmp_path).success
