"""The runs `segmenta run` executes in its own process, attached to the code location the UI
serves (`make ui`), so the UI treats them like the runs it launches itself: they appear on the
Overview timeline under `refresh_all`, carry the location's label, and can be re-executed or
opened in the launchpad.

A run Dagster executes in process has no origin: the UI lists it under "Runs" only and offers
"Re-execute all (*)". The origin is what `dg dev` would record: the module it loads, in this
checkout, under the location name `[tool.dg.project] code_location_name` of pyproject.toml
(dg would otherwise name the location after the checkout's folder, so a clone in another folder
would start a second location).
"""

from __future__ import annotations

import functools
import sys
import tomllib
from pathlib import Path

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS_MODULE = "dagster_project.definitions"
REPOSITORY_NAME = "__repository__"  # the repository Dagster makes of a module's Definitions


def location_name() -> str:
    """The code location's name, as `dg dev` reads it from pyproject.toml."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        config = tomllib.load(file)
    return config["tool"]["dg"]["project"]["code_location_name"]


def job_origin(job_name: str):
    """The remote origin of `job_name` in the code location `dg dev` serves from this checkout."""
    # the origin classes are Dagster's serialized records (dagster._core), stable within 1.13
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE,
                                  working_directory=str(REPO_ROOT))
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, location_name())
    return RemoteRepositoryOrigin(location, REPOSITORY_NAME).get_job_origin(job_name)


def attach_runs_to_code_location(instance: dg.DagsterInstance, job_name: str) -> None:
    """Every run `instance` creates for `job_name` from now on records the code location as its
    origin (`execute_in_process` creates its run through `create_run_for_job`, which takes
    one but is given none). Only this instance object changes."""
    create = instance.create_run_for_job
    origin = job_origin(job_name)

    @functools.wraps(create)
    def create_with_origin(*args, **kwargs):
        job_def = kwargs.get("job_def", args[0] if args else None)
        if job_def is not None and job_def.name == job_name:
            kwargs.setdefault("remote_job_origin", origin)
        return create(*args, **kwargs)

    instance.create_run_for_job = create_with_origin
