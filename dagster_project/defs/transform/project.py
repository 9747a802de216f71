import os
from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

from core.settings import DBT_PROJECT_DIR

# what `dbt parse` does not read: its own output, its logs, installed packages
NOT_SOURCES = ("target", "logs", "dbt_packages")


@cache
def dbt_project() -> DbtProject:
    """The dbt project, built once. Outside `dg dev` its manifest comes from `dbt parse` (the
    Makefile's rule). Under `dg dev`, dagster-dbt parses the project again every time the code
    loads: when the code server starts and in the run worker of every launched run, where the
    parse and its `dbt --version` took 5 s of each run (docs/benchmarks.md). Here it parses
    only when the manifest is missing or older than a file of the project, as `make` does: an
    edited model still reaches the next load."""
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    if manifest_is_stale(Path(project.project_dir), Path(project.manifest_path)):
        project.prepare_if_dev()
    return project


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """Whether `manifest` is missing or older than a file `dbt parse` reads in `project_dir`,
    or than a folder of them (a model deleted or renamed changes its folder's time)."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for folder, subfolders, files in os.walk(project_dir):
        if Path(folder) == project_dir:
            subfolders[:] = [name for name in subfolders if name not in NOT_SOURCES]
        elif os.stat(folder).st_mtime > built:
            return True
        if any(os.stat(os.path.join(folder, name)).st_mtime > built for name in files):
            return True
    return False
