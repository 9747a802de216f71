"""Rule segments from YAML: shape checks, conditions checked against the warehouse, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.warehouse import Warehouse
from segments import rules as segments


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.transaction() as con:
        con.execute("create schema marts")
        con.execute("""
            create table marts.customer_360 as select * from (values
                ('C1', 'ES', 'rainy', true, 0.9, 2),
                ('C2', 'ES', 'hot', true, 0.2, 0),
                ('C3', 'DE', 'mild', false, 0.6, 1)
            ) as t(customer_id, country, climate_zone, has_ads_consent,
                   net_revenue_percentile, n_abandoned_carts_7d)
        """)
    return warehouse


def _rules(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text("segments:\n" + body)
    return path


def test_shipped_starter_set_covers_every_kind():
    rules = segments.load_rules()
    assert len(rules) >= 8
    assert {rule.kind for rule in rules} == set(segments.KINDS)


def test_rules_are_evaluated_into_memberships(tmp_path, warehouse):
    path = _rules(tmp_path, """
  - {key: rainy_spain_ads, name: Rainy Spain, kind: geographic,
     condition: "country = 'ES' and climate_zone = 'rainy' and has_ads_consent"}
  - {key: abandoners_high_value, name: Abandoners, kind: hybrid,
     condition: "n_abandoned_carts_7d > 0 and net_revenue_percentile > 0.5"}
""")
    sizes = segments.evaluate(warehouse, segments.load_rules(path), path)
    assert dict(zip(sizes["segment_key"], sizes["members"], strict=True)) == {
        "rule_rainy_spain_ads": 1, "rule_abandoners_high_value": 2}
    members = warehouse.query_df(
        "select segment_key, customer_id from intermediate.rule_segment_memberships order by 1, 2")
    assert members.values.tolist() == [["rule_abandoners_high_value", "C1"],
                                       ["rule_abandoners_high_value", "C3"],
                                       ["rule_rainy_spain_ads", "C1"]]


@pytest.mark.parametrize(("condition", "problem"), [
    ("colour = 'red'", r"segment 'broken' has a bad condition `colour = 'red'`: .*colour"),
    ("country = = 'ES'", r"segment 'broken' has a bad condition .*syntax error"),
])
def test_bad_condition_names_the_segment_and_keeps_the_old_memberships(tmp_path, warehouse,
                                                                      condition, problem):
    good = _rules(tmp_path, "  - {key: spain, name: Spain, kind: geographic, "
                            "condition: \"country = 'ES'\"}\n")
    segments.evaluate(warehouse, segments.load_rules(good), good)
    bad = _rules(tmp_path, "  - {key: spain, name: Spain, kind: geographic, "
                           "condition: \"country = 'ES'\"}\n"
                           f"  - {{key: broken, name: Broken, kind: hybrid, condition: \"{condition}\"}}\n")
    with pytest.raises(segments.RuleError, match=problem):
        segments.evaluate(warehouse, segments.load_rules(bad), bad)
    kept = warehouse.query_df("select count(*) as n from intermediate.rule_segment_memberships")
    assert kept["n"][0] == 2


@pytest.mark.parametrize(("entry", "problem"), [
    ("{key: Bad-Key, name: X, kind: hybrid, condition: 'true'}", "key must be lowercase"),
    ("{key: ok_key, name: X, kind: hybrid}", "missing condition"),
    ("{key: ok_key, name: X, kind: psychographic, condition: 'true'}", "kind must be one of"),
    ("{key: ok_key, name: X, kind: hybrid, condition: 'true; drop table x'}", "one SQL expression"),
])
def test_malformed_entries_are_refused_with_the_segment_named(tmp_path, entry, problem):
    with pytest.raises(segments.RuleError, match=problem):
        segments.load_rules(_rules(tmp_path, f"  - {entry}\n"))
