import importlib.metadata
import os
import shutil
import sys
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging import version

from core.settings import HOME
from dagster_project.defs.activation.resources import DESTINATION_RESOURCES, FileDestinationResource
from dagster_project.defs.transform.project import dbt_project
from dagster_project.resources import (
    ExpectationsResource,
    HomeResource,
    MlflowResource,
    WarehouseResource,
)
from ingest.quality import SUITES_DIR


def _dbt_executable() -> str:
    """dbt from this interpreter's environment, so that it runs without the venv on PATH, through
    `segmenta-dbt` (core/processes.py): dbt that dies with the step that started it, so a killed
    run never leaves a dbt process holding the warehouse's lock."""
    for name in ("segmenta-dbt", "dbt"):
        beside_python = Path(sys.executable).parent / name
        if beside_python.exists():
            return str(beside_python)
    return shutil.which("segmenta-dbt") or shutil.which("dbt") or "dbt"


class SegmentaDbtResource(DbtCliResource):
    """dagster-dbt's resource without its in-process dbt adapter. dagster-dbt builds that
    adapter (parsing every macro of the project, about 3.4 s) before each invocation, only for
    `fetch_row_counts()` and `fetch_column_metadata()`, which Segmenta does not use; the dbt
    subprocess connects on its own. (Overrides a private method: check it on a dagster-dbt
    upgrade; `requirements.lock` pins the version.)"""

    def _initialize_dbt_core_adapter(self, args):
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        """The version of dbt-core in this environment, which `segmenta-dbt` runs. dagster-dbt
        asks the executable (`dbt --version`: a process importing dbt, 2.2 s of CPU, and a
        request to PyPI for the latest release) once per run."""
        return version.parse(importlib.metadata.version("dbt-core"))


EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}


def executor() -> dg.ExecutorDefinition:
    """How the runs that the UI, the schedule and the sensor launch execute their steps
    (`make run` always executes in its own process). `in_process` (the default): every step in
    the run's one process, as `make run` does. Warehouse steps run one at a time anyway (the
    `duckdb` pool), so a process per step (`multiprocess`) buys no parallelism on this
    pipeline and costs a fresh interpreter importing Dagster, dbt and MLflow for every step.
    Set SEGMENTA_EXECUTOR=multiprocess to isolate each step in its own process."""
    choice = os.environ.get("SEGMENTA_EXECUTOR", "in_process")
    if choice not in EXECUTORS:
        raise ValueError(f"SEGMENTA_EXECUTOR={choice!r}: use one of {', '.join(EXECUTORS)}")
    return EXECUTORS[choice]


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        executor=executor(),
        resources={
            "home": HomeResource(root=str(HOME.root)),
            "warehouse": WarehouseResource(path=str(HOME.warehouse)),
            "mlflow": MlflowResource(
                tracking_uri=f"sqlite:///{HOME.mlflow_db}",
                artifact_root=str(HOME.mlflow_artifacts),
            ),
            "expectations": ExpectationsResource(suites_dir=str(SUITES_DIR)),
            **{key: resource for key, resource in DESTINATION_RESOURCES.values()},
            "file_destination": FileDestinationResource(folder=str(HOME.exports / "audiences")),
            "dbt": SegmentaDbtResource(project_dir=dbt_project(),
                                       dbt_executable=_dbt_executable()),
        }
    )
