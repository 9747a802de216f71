"""Dagster resources: the runtime home, the warehouse, GX suites and MLflow, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from core import preload
from core.settings import Home
from core.warehouse import Warehouse
from ingest import quality


class HomeResource(dg.ConfigurableResource):
    """The runtime folder (SEGMENTA_HOME): landing zone, exports, published copy."""

    root: str = Field(description="Absolute path of SEGMENTA_HOME.")

    @property
    def home(self) -> Home:
        return Home(Path(self.root))


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse. Use `warehouse.connect()`; the file is closed even when a step fails."""

    path: str = Field(description="Absolute path of the warehouse DuckDB file.")

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.path)


class MlflowResource(dg.ConfigurableResource):
    """Where MLflow tracks runs and registers models (an absolute sqlite:/// URI)."""

    tracking_uri: str = Field(description="MLflow tracking and registry URI, sqlite:///<abs path>.")
    artifact_root: str = Field(description="Absolute folder for run artifacts.")

    def configure(self) -> None:
        preload.wait()  # (core/preload.py)
        import mlflow

        _ensure_tracking_db(self.tracking_uri, self.artifact_root)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The id of an experiment, created with an explicit artifact location on first use."""
        preload.wait()
        import mlflow

        self.configure()
        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = Path(self.artifact_root, name).as_uri()
        return mlflow.create_experiment(name, artifact_location=location)


def _ensure_tracking_db(uri: str, artifact_root: str) -> None:
    """Create MLflow's SQLite database whole, or not at all. MLflow creates it on first use,
    one schema migration after another: a run killed meanwhile (a kill at the first ML step
    of a new home) left a database no later run could open ("table _alembic_tmp_datasets
    already exists"). It is made under a temporary name and moved into place; what a killed
    creation left goes."""
    from core.processes import is_alive

    path = Path(uri.removeprefix("sqlite:///"))
    if not uri.startswith("sqlite:///") or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    for left in path.parent.glob(f".{path.name}.*.init"):
        pid = left.name.removeprefix(f".{path.name}.").removesuffix(".init")
        if not pid.isdigit() or not is_alive(int(pid)):
            left.unlink(missing_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.init")
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(f"sqlite:///{staged}", artifact_root).engine.dispose()
    os.replace(staged, path)


class ExpectationsResource(dg.ConfigurableResource):
    """The Great Expectations suites (one JSON file per checked table) and their validation."""

    suites_dir: str = Field(description="Folder of <schema>_<table>.json suite files.")

    def validate(self, table: str, group: str, frame: pd.DataFrame) -> quality.ValidationSummary:
        """Validate a frame against the `rows` or `daily` expectations of the table's suite."""
        return quality.validate(table, group, frame, suites_dir=Path(self.suites_dir))
