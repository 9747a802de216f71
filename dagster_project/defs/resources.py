import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

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


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
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
            "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=_dbt_executable()),
        }
    )
