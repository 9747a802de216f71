"""Rule-based segments: marketers' YAML conditions evaluated over `marts.customer_360`.

A condition is user input, so it is parsed, never pasted: `load_rules` parses each one with
sqlglot and accepts only the vocabulary of a segment condition (columns, literals, comparison,
boolean, `in`/`between`/`like`/`is null` operators and the functions in `FUNCTIONS`); anything
else (subqueries, table references, file or network functions, set operations, comments) is
refused with the file, the segment key, the position and the allowed vocabulary. The SQL that
runs is rendered from the checked tree with every identifier quoted, and runs in an in-memory
DuckDB with external access disabled that holds only the columns the rules name.

`evaluate` checks every condition's columns against the warehouse and runs all of them before
it replaces the memberships in one transaction, so a bad rule never leaves half-updated
segments. Errors name the file, the segment and the problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import sqlglot
import yaml
from sqlglot import exp

from core.settings import PROJECT_ROOT
from core.warehouse import Warehouse

# The marketers' file; SEGMENTA_RULES points at another one (e.g. kept outside the repository).
RULES_FILE = Path(os.environ.get("SEGMENTA_RULES") or PROJECT_ROOT / "segments" / "rules.yml")
BASE_TABLE = "marts.customer_360"
TARGET_TABLE = "intermediate.rule_segment_memberships"
KINDS = ("demographic", "geographic", "technographic", "behavioural", "purchase", "hybrid")
KEY = re.compile(r"^[a-z][a-z0-9_]{1,60}$")


class RuleError(ValueError):
    """A segment rule that cannot be used; the message names the segment and the fix."""


# The vocabulary of a condition: sqlglot node types, by what they are.
OPERATORS = (exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT,
             exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is, exp.In, exp.Between, exp.Like,
             exp.ILike, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg)
VALUES = (exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Interval,
          exp.DataType, exp.Case, exp.If)
FUNCTIONS = {exp.Lower: "lower", exp.Upper: "upper", exp.Coalesce: "coalesce", exp.Abs: "abs",
             exp.Round: "round", exp.Length: "length", exp.Trim: "trim", exp.Least: "least",
             exp.Greatest: "greatest", exp.DateDiff: "date_diff", exp.CurrentDate: "current_date",
             exp.Cast: "cast", exp.TryCast: "try_cast"}
VOCABULARY = ("columns of marts.customer_360, literals, and/or/not, = <> < <= > >=, "
              "is [not] null, [not] in (literals), between, [i]like, + - * / %, case/if, "
              "and the functions " + ", ".join(sorted(FUNCTIONS.values())))
_T = exp.DataType.Type
CAST_TYPES = {_T.VARCHAR, _T.TEXT, _T.INT, _T.BIGINT, _T.SMALLINT, _T.TINYINT, _T.DOUBLE,
              _T.FLOAT, _T.DECIMAL, _T.BOOLEAN, _T.DATE, _T.TIMESTAMP, _T.TIMESTAMPTZ}
_DATE_UNITS = {"day", "week", "month", "quarter", "year", "hour", "minute", "second"}


@dataclass(frozen=True)
class Rule:
    key: str
    name: str
    kind: str
    description: str
    condition: str
    sql: str = ""  # the condition rendered from its checked syntax tree
    columns: tuple[str, ...] = ()  # the columns it reads

    @property
    def segment_key(self) -> str:
        return f"rule_{self.key}"


def _position(condition: str, node: exp.Expression) -> str:
    """Where a refused piece starts in the condition, for the message (1-based)."""
    meta = getattr(node, "meta", None) or {}
    if "start" in meta:
        return f"character {meta['start'] + 1}"
    text = (node.name or node.key or "").lower()
    at = condition.lower().find(text) if text else -1
    return f"character {at + 1}" if at >= 0 else "in the condition"


def parse_condition(condition: str, where: str) -> tuple[str, tuple[str, ...]]:
    """A condition checked against the vocabulary: the SQL to run and the columns it reads."""
    def refuse(problem: str, node: exp.Expression | None = None) -> RuleError:
        at = f" at {_position(condition, node)}" if node is not None else ""
        return RuleError(f"{where}: condition `{condition}` refused{at}: {problem}. "
                         f"A condition may use {VOCABULARY}.")

    try:
        statements = sqlglot.parse(condition, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        errors = getattr(exc, "errors", None) or [{}]
        column = errors[0].get("col")
        at = f" at character {column}" if column else ""
        raise RuleError(f"{where}: condition `{condition}` does not parse{at}; a condition is "
                        f"one SQL expression such as `country = 'ES' and n_orders >= 2`") from exc
    if len(statements) != 1 or statements[0] is None:
        raise refuse("a condition is one SQL expression (no ';')")
    tree = statements[0]
    columns = []
    for node in tree.walk():
        if node.comments:
            raise refuse("comments are not allowed", node)
        if isinstance(node, exp.Column):
            if node.table or node.args.get("db") or node.args.get("catalog"):
                raise refuse(f"`{node.sql()}` names a table; name the column alone", node)
            if isinstance(node.this, exp.Star):
                raise refuse("`*` is not a column", node)
            columns.append(node.name)
        elif isinstance(node, exp.Var):
            parent = node.parent
            if not (isinstance(parent, exp.DateDiff) and node.arg_key == "unit"
                    and node.name.lower() in _DATE_UNITS):
                raise refuse(f"`{node.sql()}` is not a column or a value", node)
        elif isinstance(node, exp.DataType):
            if node.this not in CAST_TYPES:
                raise refuse(f"cast to `{node.sql()}` is not allowed", node)
        elif isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")
                                           or node.args.get("field")):
            raise refuse("`in` takes a list of values, not a query", node)
        elif isinstance(node, (exp.Interval, exp.Literal, exp.Identifier, *FUNCTIONS)):
            continue
        elif not isinstance(node, OPERATORS + VALUES):
            what = (f"function `{node.name}`" if isinstance(node, exp.Anonymous)
                    else f"`{node.key}`" if isinstance(node, exp.Func) else None)
            if isinstance(node, exp.Query | exp.Subquery | exp.Table | exp.SetOperation):
                what = "a query or table reference"
            raise refuse(f"{what or '`' + node.key + '`'} is not allowed", node)
    sql = tree.sql(dialect="duckdb", identify=True, comments=False)
    return sql, tuple(dict.fromkeys(columns))


def load_rules(path: Path = RULES_FILE) -> list[Rule]:
    """The rules of a YAML file, checked for shape (keys, kinds, one condition each)."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML ({exc})") from exc
    entries = document.get("segments")
    if not isinstance(entries, list):
        raise RuleError(f"{path}: expected a top-level `segments:` list")
    rules, seen = [], set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: segment #{number}"
        if not isinstance(entry, dict):
            raise RuleError(f"{where}: each segment is a mapping with key, name, kind, condition")
        key = str(entry.get("key", ""))
        where = f"{path}: segment '{key or '#' + str(number)}'"
        if not KEY.match(key):
            raise RuleError(f"{where}: key must be lowercase letters, digits and _ (2-61 chars)")
        if key in seen:
            raise RuleError(f"{where}: key is used twice")
        seen.add(key)
        missing = [f for f in ("name", "kind", "condition") if not entry.get(f)]
        if missing:
            raise RuleError(f"{where}: missing {', '.join(missing)}")
        if entry["kind"] not in KINDS:
            raise RuleError(f"{where}: kind must be one of {', '.join(KINDS)}")
        condition = str(entry["condition"]).strip()
        sql, columns = parse_condition(condition, where)
        rules.append(Rule(key, str(entry["name"]), entry["kind"],
                          str(entry.get("description", "")), condition, sql, columns))
    return rules


def _columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    schema, table = BASE_TABLE.split(".")
    return [name for (name,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? "
        "and table_name = ? order by ordinal_position", [schema, table]).fetchall()]


def _sandbox(con: duckdb.DuckDBPyConnection, rules: list[Rule],
             path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB without file or network access that holds only the columns of
    customer_360 the rules read, as table `customer_360`."""
    available = set(_columns(con))
    if not available:
        raise RuleError(f"{path}: {BASE_TABLE} does not exist yet; build the marts first")
    for rule in rules:
        unknown = [c for c in rule.columns if c not in available]
        if unknown:
            raise RuleError(f"{path}: segment '{rule.key}' has a bad condition "
                            f"`{rule.condition}`: unknown column {', '.join(unknown)} (the "
                            f"columns are those of {BASE_TABLE}; see README \"Segments\")")
    needed = list(dict.fromkeys(["customer_id", *(c for r in rules for c in r.columns)]))
    data = con.execute("select " + ", ".join(exp.to_identifier(c, quoted=True).sql("duckdb")
                                               for c in needed)
                       + f" from {BASE_TABLE}").to_arrow_table()
    sandbox = duckdb.connect(config={"enable_external_access": False,
                                     "lock_configuration": True})
    sandbox.register("customer_360_data", data)
    sandbox.execute("create table customer_360 as select * from customer_360_data")
    sandbox.unregister("customer_360_data")
    return sandbox


def _members(sandbox: duckdb.DuckDBPyConnection, rule: Rule, path: Path):
    try:
        return sandbox.execute(
            f"select customer_id from customer_360 where ({rule.sql})").to_arrow_table()
    except duckdb.Error as exc:
        problem = str(exc).strip().splitlines()[0]
        raise RuleError(f"{path}: segment '{rule.key}' has a bad condition "
                        f"`{rule.condition}`: {problem}") from exc


def evaluate(warehouse: Warehouse, rules: list[Rule], path: Path = RULES_FILE) -> pd.DataFrame:
    """Run every rule, then replace the memberships table; returns members per segment."""
    with warehouse.connect() as con:
        sandbox = _sandbox(con, rules, path)
    try:
        members = {rule.key: _members(sandbox, rule, path) for rule in rules}
    finally:
        sandbox.close()
    with warehouse.transaction() as con:
        con.execute("create schema if not exists intermediate")
        con.execute(f"""
            create or replace table {TARGET_TABLE} (
                customer_id varchar, segment_key varchar, segment_name varchar,
                segment_kind varchar)
        """)
        for rule in rules:
            con.register("rule_members", members[rule.key])
            con.execute(f"""
                insert into {TARGET_TABLE}
                select customer_id, ?, ?, ? from rule_members
            """, [rule.segment_key, rule.name, rule.kind])
            con.unregister("rule_members")
    return pd.DataFrame([{"segment_key": r.segment_key, "name": r.name, "kind": r.kind,
                          "members": members[r.key].num_rows} for r in rules])
