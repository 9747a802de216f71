"""Rule-based segments: marketers' YAML conditions evaluated over `marts.customer_360`.

`load_rules` checks the file's shape; `evaluate` checks every condition against the warehouse
(DuckDB binds it without running it) and only then writes all memberships in one transaction,
so a bad rule never leaves half-updated segments. Errors name the segment and the problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import yaml

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


@dataclass(frozen=True)
class Rule:
    key: str
    name: str
    kind: str
    description: str
    condition: str

    @property
    def segment_key(self) -> str:
        return f"rule_{self.key}"


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
        if ";" in condition or "--" in condition:
            raise RuleError(f"{where}: a condition is one SQL expression (no ';' or comments)")
        rules.append(Rule(key, str(entry["name"]), entry["kind"],
                          str(entry.get("description", "")), condition))
    return rules


def check_rule(con: duckdb.DuckDBPyConnection, rule: Rule, path: Path = RULES_FILE) -> None:
    """Bind the condition against the base table without running it."""
    try:
        con.execute(f"explain select customer_id from {BASE_TABLE} where ({rule.condition})")
    except duckdb.Error as exc:
        problem = str(exc).strip().splitlines()[0]
        raise RuleError(f"{path}: segment '{rule.key}' has a bad condition "
                        f"`{rule.condition}`: {problem}") from exc


def evaluate(warehouse: Warehouse, rules: list[Rule], path: Path = RULES_FILE) -> pd.DataFrame:
    """Check every rule, then replace the memberships table; returns members per segment."""
    with warehouse.transaction() as con:
        for rule in rules:
            check_rule(con, rule, path)
        con.execute("create schema if not exists intermediate")
        con.execute(f"""
            create or replace table {TARGET_TABLE} (
                customer_id varchar, segment_key varchar, segment_name varchar,
                segment_kind varchar)
        """)
        for rule in rules:
            con.execute(f"""
                insert into {TARGET_TABLE}
                select customer_id, ?, ?, ? from {BASE_TABLE} where ({rule.condition})
            """, [rule.segment_key, rule.name, rule.kind])
        sizes = con.execute(f"""
            select segment_key, count(*) as members from {TARGET_TABLE} group by 1
        """).df()
    by_key = dict(zip(sizes["segment_key"], sizes["members"], strict=True))
    return pd.DataFrame([{"segment_key": r.segment_key, "name": r.name, "kind": r.kind,
                          "members": int(by_key.get(r.segment_key, 0))} for r in rules])
