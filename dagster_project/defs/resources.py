import os

import dagster as dg

from core.settings import HOME
from dagster_project.defs.activation.resources import DESTINATION_RESOURCES, FileDestinationResource
from dagster_project.resources import (
    ExpectationsResource,
    HomeResource,
    MlflowResource,
    WarehouseResource,
)
from ingest.quality import SUITES_DIR

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
        }
    )
