"""The storefront's content rules: for each slot of a page, ordered rules and a default.

`segments/content.yml` (or the file `SEGMENTA_CONTENT` names) maps a slot (the home page's
banner, say) to rules tried in order, each a condition over the columns of
`customer_360` and the content shown when it holds; the first rule that holds wins, and the
slot's `default` is shown when none does and to customers the cache does not know:

    slots:
      home_banner:
        description: The banner at the top of the home page.
        rules:
          - key: rain_in_spain
            condition: country = 'ES' and is_rainy_today
            content: {title: Rain today? Raincoats for Spain, url: /c/raincoats}
        default: {title: The new season is here, url: /new}

A condition is parsed by the segments' rule parser (`segments.rules.parse_condition`: a
vocabulary of columns, literals, comparisons and a few functions, never SQL pasted in) and
evaluated for every customer when the cache is built (`personalization.cache`), so a request
is a lookup. Content is any mapping of YAML values, passed to the storefront as JSON.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.settings import PROJECT_ROOT
from segments.rules import RuleError, parse_condition

CONTENT_FILE = Path(os.environ.get("SEGMENTA_CONTENT")
                    or PROJECT_ROOT / "segments" / "content.yml")
KEY = re.compile(r"^[a-z][a-z0-9_]{1,60}$")
DEFAULT_VARIANT = "default"


class ContentError(ValueError):
    """A content file that cannot be used; the message names the file, the slot and the fix."""


@dataclass(frozen=True)
class ContentRule:
    """One rule of a slot: its key (the variant the storefront reports), its condition as
    written and as checked SQL, the columns it reads and the content it shows."""

    key: str
    condition: str
    sql: str
    columns: tuple[str, ...]
    content: dict


@dataclass(frozen=True)
class Slot:
    """A place on a page with content chosen per customer: rules in order, then the default."""

    key: str
    description: str
    rules: tuple[ContentRule, ...]
    default: dict

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for rule in self.rules for c in rule.columns))


def _content(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise ContentError(f"{where}: `content` must be a mapping (title, url, image, ...)")
    try:
        json.dumps(value, default=str)
    except (TypeError, ValueError) as exc:
        raise ContentError(f"{where}: content cannot be sent as JSON ({exc})") from exc
    return json.loads(json.dumps(value, default=str))  # dates as ISO text, keys as strings


def load_content(path: Path = CONTENT_FILE) -> list[Slot]:
    """The slots of a content file, every condition parsed and checked against the rule
    vocabulary; raises ContentError naming the file, slot and rule of the first problem."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ContentError(f"{path}: no content file (set SEGMENTA_CONTENT or create "
                           f"segments/content.yml)") from exc
    except yaml.YAMLError as exc:
        raise ContentError(f"{path}: not valid YAML ({exc})") from exc
    slots = document.get("slots") if isinstance(document, dict) else None
    if not isinstance(slots, dict) or not slots:
        raise ContentError(f"{path}: expected a top-level `slots:` mapping of slot -> rules")
    found = []
    for slot_key, entry in slots.items():
        where = f"{path}: slot '{slot_key}'"
        if not isinstance(slot_key, str) or not KEY.match(slot_key):
            raise ContentError(f"{where}: a slot key is lowercase letters, digits and _ "
                               f"(2-61 characters)")
        if not isinstance(entry, dict):
            raise ContentError(f"{where}: a slot is a mapping with `rules` and `default`")
        if "default" not in entry:
            raise ContentError(f"{where}: missing `default` (the content shown when no rule "
                               f"holds, and to unknown customers; `default: {{}}` shows nothing)")
        rules = entry.get("rules") or []
        if not isinstance(rules, list):
            raise ContentError(f"{where}: `rules` must be a list")
        parsed, seen = [], {DEFAULT_VARIANT}
        for number, rule in enumerate(rules, start=1):
            if not isinstance(rule, dict):
                raise ContentError(f"{where}: rule #{number} is a mapping with key, condition "
                                   f"and content")
            key = str(rule.get("key", ""))
            rule_where = f"{where}, rule '{key or '#' + str(number)}'"
            if not KEY.match(key):
                raise ContentError(f"{rule_where}: key must be lowercase letters, digits and _ "
                                   f"(2-61 characters)")
            if key in seen:
                raise ContentError(f"{rule_where}: key is used twice in the slot (or is "
                                   f"`{DEFAULT_VARIANT}`)")
            seen.add(key)
            missing = [f for f in ("condition", "content") if rule.get(f) in (None, "")]
            if missing:
                raise ContentError(f"{rule_where}: missing {', '.join(missing)}")
            condition = str(rule["condition"]).strip()
            try:
                sql, columns = parse_condition(condition, rule_where)
            except RuleError as exc:
                raise ContentError(str(exc)) from exc
            parsed.append(ContentRule(key, condition, sql, columns,
                                      _content(rule["content"], rule_where)))
        found.append(Slot(slot_key, str(entry.get("description", "")), tuple(parsed),
                          _content(entry["default"], f"{where}, default")))
    return found
