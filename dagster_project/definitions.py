"""The Segmenta code location: everything under defs/, loaded by folder."""

import dagster as dg

from dagster_project.settings import PROJECT_ROOT

defs = dg.load_from_defs_folder(project_root=PROJECT_ROOT)
