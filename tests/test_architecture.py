"""The import rule of docs/architecture.md, checked on the source tree.

Packages sit in layers. A package may import its own modules and the packages of the layers
below it, never one beside it or above it; the plain-Python packages never import Dagster:

    dagster_project                                  Dagster only: assets, checks, sensors, CLI
    personalization                                  the storefront API (uses segments' rules)
    ingest  generator  segments  ml  activation      plain Python, one domain each
    core                                             settings (SEGMENTA_HOME) and the warehouse
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from core.settings import PROJECT_ROOT

LAYERS = (
    ("core",),
    ("ingest", "generator", "segments", "ml", "activation"),
    ("personalization",),
    ("dagster_project",),
)
UPWARD = "(same layer or above; see docs/architecture.md)"
DAGSTER_FREE = {"core", "ingest", "generator", "segments", "ml", "activation", "personalization"}


def _layer_of(package: str) -> int | None:
    return next((i for i, layer in enumerate(LAYERS) if package in layer), None)


def _imported_packages(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in a file, also inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, package if node.level else (node.module or "").split(".")[0]))
    return found


def violations(root: Path) -> list[str]:
    """Every import under `root` that breaks the rule, as `file:line: why`."""
    problems = []
    for layer in LAYERS:
        for package in layer:
            for path in sorted((root / package).rglob("*.py")):
                where = path.relative_to(root)
                for line, imported in _imported_packages(path, package):
                    if package in DAGSTER_FREE and (imported == "dagster"
                                                    or imported.startswith("dagster_")):
                        problems.append(f"{where}:{line}: {package}/ is plain Python and may "
                                        f"not import {imported}")
                        continue
                    target = _layer_of(imported)
                    if imported == package or target is None:
                        continue
                    if target >= _layer_of(package):
                        problems.append(f"{where}:{line}: {package}/ may not import "
                                        f"{imported}/ {UPWARD}")
    return problems


def test_the_repository_follows_the_import_rule():
    assert violations(PROJECT_ROOT) == []


def test_every_package_of_the_rule_exists():
    for layer in LAYERS:
        for package in layer:
            assert (PROJECT_ROOT / package / "__init__.py").exists(), package


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_the_rule_catches_dagster_in_a_plain_package(tmp_path):
    root = _tree(tmp_path, {
        "ml/__init__.py": "",
        "ml/model.py": """
            import numpy as np

            def fit():
                import dagster as dg
                return dg
        """,
        "ingest/__init__.py": "",
        "ingest/load.py": "from dagster_dbt import DbtCliResource\n",
        "activation/__init__.py": "",
        "activation/sync.py": "from . import audiences\n",  # its own modules: fine
    })
    assert violations(root) == [
        "ingest/load.py:1: ingest/ is plain Python and may not import dagster_dbt",
        "ml/model.py:5: ml/ is plain Python and may not import dagster",
    ]


def test_the_rule_catches_an_import_upward_or_sideways(tmp_path):
    root = _tree(tmp_path, {
        "core/__init__.py": "",
        "core/settings.py": "from ingest import landing\n",
        "activation/__init__.py": "",
        "activation/engine.py": "from core.warehouse import Warehouse\nimport ml.features\n",
        "generator/__init__.py": "",
        "generator/store.py": "from dagster_project.settings import HOME\n",
        "dagster_project/__init__.py": "",
        "dagster_project/cli.py": "from ingest import landing\nfrom core import settings\n",
    })
    assert violations(root) == [
        f"core/settings.py:1: core/ may not import ingest/ {UPWARD}",
        "generator/store.py:1: generator/ is plain Python and may not import dagster_project",
        f"activation/engine.py:2: activation/ may not import ml/ {UPWARD}",
    ]
