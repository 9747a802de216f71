"""Where everything lives: the repository root and the runtime home (`SEGMENTA_HOME`).

`SEGMENTA_HOME` is resolved to an absolute path once, at import, and written back to the
environment so that subprocesses (dbt, Dagster's step workers) see the same folder whatever their
working directory is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DAGSTER_YAML_TEMPLATE = PROJECT_ROOT / "dagster_project" / "dagster.yaml.template"

FEEDS = ("orders", "events", "customers", "products", "weather")

# The engines the dbt project builds on (SEGMENTA_ENGINE): each is an output of
# dbt_project/profiles.yml of the same name, which the profile's `target` follows.
ENGINES = ("duckdb", "spark")
ENGINE_ENV = "SEGMENTA_ENGINE"


@dataclass(frozen=True)
class Home:
    """The runtime folder and the fixed paths inside it (docs/architecture.md, "Runtime home")."""

    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def published(self) -> Path:
        return self.root / "published" / "marts.duckdb"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow" / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlflow" / "artifacts"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def reports(self) -> Path:
        """Pictures of the latest refresh (`segment_mix.png`), also shown in the Dagster UI."""
        return self.root / "reports"

    @property
    def spark(self) -> Path:
        """The local Spark engine's files (SEGMENTA_ENGINE=spark, core/spark.py): its warehouse
        (`spark/warehouse/`, unless SEGMENTA_SPARK_WAREHOUSE names another), its Derby
        metastore (`spark/metastore_db/`) and Derby's log."""
        return self.root / "spark"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def run_state(self) -> Path:
        """What the last successful `segmenta run` loaded (landing fingerprints, code hash)."""
        return self.dagster_home / "segmenta_run_state.json"

    @property
    def dbt_target(self) -> Path:
        """dbt's output for this home: one folder per invocation, and the partial parse of the
        project that the next invocation starts from."""
        return self.root / "dbt"

    @property
    def generator(self) -> Path:
        """Side files of the sample-data generator (never ingested)."""
        return self.root / "generator"

    def feed_dir(self, feed: str) -> Path:
        return self.landing / feed

    def ensure(self) -> Home:
        """Create the folder layout and DAGSTER_HOME's dagster.yaml (from the repo's template)."""
        for path in (self.landing, self.published.parent, self.mlflow_artifacts, self.exports,
                     self.dagster_home, self.generator):
            path.mkdir(parents=True, exist_ok=True)
        for feed in FEEDS:
            self.feed_dir(feed).mkdir(exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        rendered = DAGSTER_YAML_TEMPLATE.read_text().replace(
            "{dagster_home}", self.dagster_home.resolve().as_posix())
        if not dagster_yaml.exists() or dagster_yaml.read_text() != rendered:
            staged = dagster_yaml.with_name(f".dagster.yaml.{os.getpid()}.tmp")
            staged.write_text(rendered)
            os.replace(staged, dagster_yaml)  # a process starting now never reads half a file
        return self


class UnknownEngineError(ValueError):
    """SEGMENTA_ENGINE names no engine Segmenta builds on."""


def resolve_engine() -> str:
    """SEGMENTA_ENGINE (`duckdb`, the default, or `spark`), checked and exported in lower case
    for dbt's profile, whose `target` is this name."""
    raw = os.environ.get(ENGINE_ENV, "").strip()
    engine = raw.lower() or ENGINES[0]
    if engine not in ENGINES:
        raise UnknownEngineError(
            f"{ENGINE_ENV}={raw!r} is not an engine Segmenta builds on: use "
            f"{' or '.join(ENGINES)} (unset means {ENGINES[0]}; README.md, \"Engine\")")
    os.environ[ENGINE_ENV] = engine
    return engine


def resolve_home() -> Home:
    """Read SEGMENTA_HOME (default `data/` at the repo root) as an absolute path and export it."""
    raw = os.environ.get("SEGMENTA_HOME") or str(PROJECT_ROOT / "data")
    root = Path(raw).expanduser().resolve()
    os.environ["SEGMENTA_HOME"] = str(root)
    os.environ["DAGSTER_HOME"] = str(root / "dagster")
    from core.warehouse import memory_limit

    os.environ["SEGMENTA_DUCKDB_MEMORY_LIMIT"] = memory_limit()  # dbt's DuckDB uses it too
    return Home(root)


HOME = resolve_home()
ENGINE = resolve_engine()
