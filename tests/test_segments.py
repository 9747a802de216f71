"""Rule segments from YAML: shape checks, conditions checked against the warehouse, clear errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
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
    ("country = = 'ES'", r"segment 'broken': condition .* does not parse at character 11"),
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


# ---------- conditions are parsed, not pasted: what an attacker (or a typo) tries

HOSTILE = [
    "read_text('/etc/passwd') is not null",
    "length(read_text('/etc/passwd')) > 0",
    "read_csv('/etc/passwd') is not null",
    "exists (select * from read_csv_auto('/etc/passwd'))",
    "country in (select email from marts.customer_contacts)",
    ("false) union all by name select email as customer_id from marts.customer_contacts "
     "where (true"),
    "true union select email from marts.customer_contacts",
    "(select count(*) from marts.customer_contacts) > 0",
    "customer_contacts.email is not null",
    "marts.customer_360.country = 'ES'",
    "getenv('HOME') is not null",
    "current_setting('enable_external_access') = 'true'",
    "httpfs_get('http://127.0.0.1/') is null",
    "read_blob('http://169.254.169.254/latest/meta-data') is not null",
    "glob('/root/*') is not null",
    "country = 'ES' -- and more",
    "country = 'ES' /* hidden */ or true",
    "country = 'ES'; drop table marts.customer_360",
    "country = 'ES'; copy marts.customer_contacts to '/tmp/x.csv'",
    "REGEXP_MATCHES(country, 'E')",
    "ReAd_TeXt('/etc/passwd') is not null",
    "\"read_text\"('/etc/passwd') is not null",
    "country = chr(69) || chr(83)",
    "list_contains(['ES'], country)",
    "struct_extract({'a': 1}, 'a') = 1",
    "country = 'ES' and sleep_ms(100000) is null",
    "query('select 1') is not null",
    "country = (select 'ES')",
    "* is not null",
    "country = $$ES$$ or exists(from duckdb_settings())",
    "json_extract(country, '$') is null",
    "lambda x: x",
    "cast(country as struct(a int)) is null",
    "country = 'ES' and (select 1) = 1",
    "country::json is null",
]


@pytest.mark.parametrize("condition", HOSTILE)
def test_a_hostile_condition_is_refused_at_load_naming_the_segment(tmp_path, condition):
    entry = "  - key: hostile\n    name: Hostile\n    kind: hybrid\n    condition: " \
            + yaml_quote(condition) + "\n"
    with pytest.raises(segments.RuleError) as refused:
        segments.load_rules(_rules(tmp_path, entry))
    message = str(refused.value)
    assert "segment 'hostile'" in message and "rules.yml" in message
    assert "/etc/passwd" not in message.replace(condition, "")  # nothing was read


def yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_refusals_say_where_and_what_is_allowed(tmp_path):
    entry = "  - {key: reader, name: R, kind: hybrid, " \
            "condition: \"country = 'ES' and read_text('/etc/passwd') is not null\"}\n"
    with pytest.raises(segments.RuleError, match=r"function `read_text` is not allowed") as err:
        segments.load_rules(_rules(tmp_path, entry))
    assert "at character 20" in str(err.value)
    assert "the functions abs, cast, coalesce" in str(err.value)


def test_every_shipped_rule_parses_and_runs_as_rendered_sql():
    for rule in segments.load_rules():
        assert rule.sql and rule.columns, rule.key
        assert '"' in rule.sql  # identifiers are quoted in what runs


def test_a_runtime_error_names_the_file_and_the_segment(tmp_path, warehouse):
    path = _rules(tmp_path, "  - {key: overflow, name: O, kind: hybrid, "
                            "condition: \"cast(country as integer) > 1\"}\n")
    with pytest.raises(segments.RuleError, match=r"rules.yml: segment 'overflow' has a bad "
                                                 r"condition .*Conversion Error"):
        segments.evaluate(warehouse, segments.load_rules(path), path)


def test_a_string_trick_stays_a_string(tmp_path, warehouse):
    """A quote inside a literal cannot end it: the rendered SQL comes from the parsed tree."""
    path = _rules(tmp_path, "  - {key: tricky, name: T, kind: hybrid, "
                            "condition: \"country = 'ES'' or ''1'' = ''1'\"}\n")
    sizes = segments.evaluate(warehouse, segments.load_rules(path), path)
    assert sizes["members"].tolist() == [0]


def test_conditions_run_where_files_cannot_be_read(tmp_path, warehouse):
    """Defence in depth: had a file function slipped past the parser, the connection the
    conditions run on has no file or network access and holds only the columns they read."""
    path = _rules(tmp_path, "  - {key: spain, name: S, kind: geographic, "
                            "condition: \"country = 'ES'\"}\n")
    rules = segments.load_rules(path)
    with warehouse.connect() as con:
        sandbox = segments._sandbox(con, rules, path)
    try:
        with pytest.raises(duckdb.PermissionException):
            sandbox.execute("select * from read_text('/etc/passwd')")
        with pytest.raises(duckdb.PermissionException):
            sandbox.execute(f"attach '{warehouse.path}' as w")
        assert [c for (c,) in sandbox.execute("select column_name from "
                                              "information_schema.columns").fetchall()] == [
            "customer_id", "country"]
    finally:
        sandbox.close()
