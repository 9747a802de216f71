from functools import cache

from dagster_dbt import DbtProject

from core.settings import DBT_PROJECT_DIR


@cache
def dbt_project() -> DbtProject:
    """The dbt project, built once. Outside `dg dev` its manifest comes from `dbt parse`."""
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    return project
