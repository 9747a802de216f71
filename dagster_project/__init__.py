"""Segmenta's Dagster layer: the code location (definitions.py, defs/), its resources, the
command line (cli.py) and crash recovery (recovery.py); the domain code lives in the packages
below it (docs/architecture.md)."""
