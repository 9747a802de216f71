"""What each dbt test checks, in words, for its asset check's description in the UI.

dagster-dbt takes a check's description from the test's `description` in the yml, which generic
tests (not_null, unique, accepted_values, ...) seldom have, so most checks said "No description
provided". `describe_test` keeps a written description, reads a singular test's opening comment
(each of `dbt_project/tests/*.sql` starts by saying what it finds and how to fix it) and
otherwise says what the generic test asserts from its arguments, which rows it reads (its
`where`) and whether it only warns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"""ref\(\s*['"]([^'"]+)['"]\s*\)""")


def _values(values: list[Any]) -> str:
    shown = ", ".join(str(value) for value in values[:12])
    return shown + (f" (and {len(values) - 12} more)" if len(values) > 12 else "")


def _opening_comment(sql: str) -> str:
    """The first block of `--` comment lines of a singular test's SQL, as one paragraph."""
    lines: list[str] = []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            lines.append(stripped.removeprefix("--").strip())
        elif lines:
            break
    return " ".join(lines).strip()


def _asserts(name: str, kwargs: Mapping[str, Any], column: str | None) -> str:
    col = f"`{column}`" if column else "the column"
    columns = ", ".join(f"`{c}`" for c in kwargs.get("columns")
                        or kwargs.get("combination_of_columns") or [column])
    if name == "not_null":
        return f"{col} is never null."
    if name == "unique":
        return f"{col} has no duplicates."
    if name == "accepted_values":
        return f"{col} is one of: {_values(list(kwargs.get('values') or []))}."
    if name == "relationships":
        to = _REF.search(str(kwargs.get("to", "")))
        target = to.group(1) if to else str(kwargs.get("to"))
        return f"Every {col} is a `{kwargs.get('field')}` of `{target}`."
    if name == "unique_combination_of_columns":
        return f"No two rows share ({columns})."
    if name == "unique_in_latest_change":
        return (f"No two rows share ({columns}): the rows the last refresh wrote, checked against "
                "all history (macros/tests/unique_in_latest_change.sql).")
    if name == "unique_in_new_loads":
        return (f"{col} has no duplicates: the rows of the `{kwargs.get('feed')}` days loaded "
                f"since `{kwargs.get('consumer')}` last ran, checked against all history "
                "(macros/tests/unique_in_new_loads.sql).")
    return f"dbt test `{name}` on {col}."


def describe_test(test: Mapping[str, Any]) -> str:
    """A one-paragraph description of the dbt test `test` (its manifest node)."""
    written = (test.get("description") or "").strip()
    if written:
        return written
    config = test.get("config") or {}
    warns = str(config.get("severity", "error")).lower() == "warn"
    metadata = test.get("test_metadata")
    if not metadata:  # a singular test
        said = _opening_comment(test.get("raw_code") or "")
        return said or f"Singular dbt test {test.get('original_file_path')}: fails on any row."
    kwargs = metadata.get("kwargs") or {}
    text = _asserts(metadata["name"], kwargs, kwargs.get("column_name") or test.get("column_name"))
    where = str(config.get("where") or "")
    if "__latest_change__" in where:
        text += " Checked on the rows the last refresh wrote (older ones passed when written)."
    elif "__new_loads" in where:
        text += " Checked on the rows loaded since the last refresh (older ones passed then)."
    elif where:
        text += f" Rows where {where}."
    return text + (" A warning: the run goes on." if warns else "")
