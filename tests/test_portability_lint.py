"""The portability lint (core/sql_portability.py, part of `make lint`): the dbt project passes,
and a model given DuckDB-only SQL outside macros/portable/ fails naming its file and line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core import sql_portability
from core.settings import DBT_PROJECT_DIR

MODEL = Path("models") / "staging" / "stg_shop__products.sql"


def _copy_of_model(tmp_path: Path, edit) -> tuple[Path, Path]:
    """A project holding a copy of stg_shop__products, edited; its folder and the copy."""
    project = tmp_path / "dbt_project"
    copy = project / MODEL
    copy.parent.mkdir(parents=True)
    text = (DBT_PROJECT_DIR / MODEL).read_text()
    edited = edit(text)
    assert edited != text
    copy.write_text(edited)
    return project, copy


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_the_project_is_portable():
    started = time.perf_counter()
    findings = sql_portability.lint(sql_portability.project_files())
    assert findings == [], "\n".join(map(str, findings))
    assert time.perf_counter() - started < 5


def test_the_portable_macros_are_left_out():
    files = sql_portability.project_files()
    assert DBT_PROJECT_DIR / MODEL in files
    assert not [path for path in files if "portable" in path.parts]


@pytest.mark.parametrize(
    ("old", "new", "construct"),
    [
        ("    where _snapshot_rank = 1", "    qualify _snapshot_rank = 1", "qualify"),
        ("        sku,\n", "        sku,\n        raw_json ->> '$.colour' as colour,\n", "->>"),
        ("    select * from renamed", "    select * exclude (sku) from renamed", "exclude"),
        ("        category,\n", "        cast(category as varchar) as category,\n", "varchar"),
        (
            "        brand,\n",
            "        brand,\n        last_value(brand ignore nulls) over (order by sku) as b,\n",
            "ignore nulls",
        ),
    ],
)
def test_duckdb_only_sql_in_a_model_fails(tmp_path, old, new, construct):
    project, copy = _copy_of_model(tmp_path, lambda text: text.replace(old, new, 1))

    findings = sql_portability.lint([copy], project_dir=project)

    assert findings, f"{construct} passed the lint"
    expected_line = _line_of(copy.read_text(), construct)
    assert [(f.path, f.line) for f in findings] == [
        (str(Path("dbt_project") / MODEL), expected_line)
    ]
    assert construct in findings[0].construct
    # the message says what to use instead
    assert findings[0].instead


def test_the_command_fails_and_names_the_file(tmp_path, capsys):
    _, copy = _copy_of_model(
        tmp_path,
        lambda text: text.replace(
            "    select * from renamed", "    select * exclude (sku) from renamed"
        ),
    )
    assert sql_portability.main([str(copy)]) == 1
    out = capsys.readouterr().out
    assert "stg_shop__products.sql:" in out and "exclude" in out and "star_except" in out


def test_a_duckdb_function_in_a_macro_fails_but_not_in_the_portable_macros(tmp_path):
    project = tmp_path / "dbt_project"
    (project / "macros" / "portable").mkdir(parents=True)
    body = "{%% macro digest(column) -%%}\n    %s\n{%%- endmacro %%}\n"
    (project / "macros" / "keys.sql").write_text(body % "left(sha256({{ column }}), 20)")
    (project / "macros" / "portable" / "keys.sql").write_text(body % "sha256({{ column }})")

    findings = sql_portability.lint(sql_portability.project_files(project), project_dir=project)

    assert [(f.path, f.line, f.construct) for f in findings] == [
        (str(Path("dbt_project") / "macros" / "keys.sql"), 2, "the function sha256")
    ]
    assert "sha2" in findings[0].instead


def test_regexp_replace_with_duckdb_options_fails(tmp_path):
    project, copy = _copy_of_model(
        tmp_path,
        lambda text: text.replace(
            "        brand,\n", "        regexp_replace(brand, ' +', ' ', 'g') as brand,\n", 1
        ),
    )
    findings = sql_portability.lint([copy], project_dir=project)
    assert [f.construct for f in findings] == ["regexp_replace with DuckDB's options ('g')"]
    assert findings[0].line == _line_of(copy.read_text(), "regexp_replace")
