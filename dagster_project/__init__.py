"""Segmenta's Dagster code location and the plain-Python domain code its assets call."""
