"""What each table dbt built holds: its row count and column schema, on its materialization.

dagster-dbt fetches both through `DbtCliInvocation.stream().fetch_row_counts()
.fetch_column_metadata()`, which needs its dbt subprocess and adapter; dbt runs in the step's
process here (`inprocess.py`), so after the invocation one DuckDB connection reads them for every
model, seed and snapshot it built: the columns from `information_schema.columns` (types as DuckDB
stores them, descriptions from the dbt yml), and an exact `count(*)` of each table in one query
(DuckDB answers it from its row groups: 0.14 s for all 50 tables of the 1M-customer warehouse;
`duckdb_tables().estimated_size` is off by the deleted rows of the incremental tables). A view is
counted only within a time limit (`_count_views`): counting one runs its query (0.7 s for
`customer_product_recommendations` at 1M customers, which then shows columns but no count;
dagster-dbt never counts views). The key marts also get a `preview`
table (previews.py), and `marts.segment_summary` a picture of the segment mix
(`segment_mix_plot`, segments/report.py), also written to SEGMENTA_HOME/reports/segment_mix.png
(`segment_mix_plot_path`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from core.warehouse import Warehouse
from dagster_project.defs.transform.previews import PREVIEWS, preview_markdown
from dagster_project.plots import png_markdown

log = logging.getLogger(__name__)

BUILT = ("model", "seed", "snapshot")
VIEW_SECONDS = 0.25  # the longest a view's count may take
STEP_VIEW_SECONDS = 0.5  # the longest all of a dbt step's view counts may take


def relation_of(props: Mapping[str, Any]) -> tuple[str, str]:
    """(schema, table) of a dbt node in the warehouse."""
    return props["schema"], props.get("alias") or props["name"]


SEGMENT_SUMMARY = ("marts", "segment_summary")
SEGMENT_MIX_PNG = "segment_mix.png"


def table_metadata(warehouse: Path, nodes: Iterable[Mapping[str, Any]],
                   reports: Path | None = None) -> dict[str, dict[str, Any]]:
    """`dagster/column_schema`, `dagster/row_count` (views: within a time limit),
    `dagster/table_name` and, for
    the key marts, `preview` per unique_id of the dbt `nodes` (manifest entries) that exist in
    `warehouse`; for `marts.segment_summary` also `segment_mix_plot` (and, with `reports`, the
    same PNG written there, `segment_mix_plot_path`)."""
    nodes = [node for node in nodes if node["resource_type"] in BUILT]
    if not nodes:
        return {}
    wanted = {relation_of(node): node for node in nodes}
    store = Warehouse(warehouse)
    if store.engine == "spark":
        columns, tables, counts = _spark_catalog(set(wanted))
        with store.connect(read_only=True) as con:  # the bridge reads the previews' rows
            previews = {relation: preview_markdown(con, relation)
                        for relation in tables if relation in PREVIEWS}
            mix = _segment_mix_rows(con) if SEGMENT_SUMMARY in tables else None
        return _metadata(wanted, columns, counts, previews, mix, reports)
    with store.connect(read_only=False) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns"
            " where table_catalog = current_database()"
            " and (table_schema, table_name) in (select unnest(?), unnest(?))"
            " order by table_schema, table_name, ordinal_position",
            [[s for s, _ in wanted], [t for _, t in wanted]]).fetchall()
        tables = {(schema, name) for schema, name in con.execute(
            "select schema_name, table_name from duckdb_tables()"
            " where database_name = current_database()").fetchall()} & set(wanted)
        counts: dict[tuple[str, str], int] = {}
        if tables:
            ordered = sorted(tables)
            union = " union all ".join(
                f"select {i} as i, count(*) as n from \"{schema}\".\"{name}\""
                for i, (schema, name) in enumerate(ordered))
            counts = {ordered[i]: n for i, n in con.execute(union).fetchall()}
        previews = {relation: preview_markdown(con, relation)
                    for relation in tables if relation in PREVIEWS}
        mix = _segment_mix_rows(con) if SEGMENT_SUMMARY in tables else None
        counts.update(_count_views(con, set(wanted) - tables))  # last: it may interrupt
    return _metadata(wanted, columns, counts, previews, mix, reports)


def _spark_catalog(wanted: set[tuple[str, str]]) -> tuple[list, set, dict]:
    """On the Spark engine: the columns of the `wanted` relations that exist, the tables among
    them, and the tables' row counts (views are not counted: counting one runs its query)."""
    from core.spark import session

    spark = session()
    columns, tables, counts = [], set(), {}
    for schema, name in sorted(wanted):
        if not spark.catalog.tableExists(f"{schema}.{name}"):
            continue
        for column in spark.catalog.listColumns(f"{schema}.{name}"):
            columns.append((schema, name, column.name, column.dataType))
        if spark.catalog.getTable(f"{schema}.{name}").tableType != "VIEW":
            tables.add((schema, name))
            counts[(schema, name)] = spark.table(f"{schema}.{name}").count()
    return columns, tables, counts


def _metadata(wanted: Mapping[tuple[str, str], Mapping[str, Any]], columns: list, counts: dict,
              previews: dict, mix: Any, reports: Path | None) -> dict[str, dict[str, Any]]:
    by_relation: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, name, column, data_type in columns:
        by_relation.setdefault((schema, name), []).append((column, data_type))
    metadata: dict[str, dict[str, Any]] = {}
    for relation, node in wanted.items():
        if relation not in by_relation:
            continue  # not built (failed, or an ephemeral model)
        documented = {name.lower(): col.get("description") or None
                      for name, col in (node.get("columns") or {}).items()}
        schema = dg.TableSchema(columns=[
            dg.TableColumn(name=column, type=data_type, description=documented.get(column.lower()))
            for column, data_type in by_relation[relation]])
        entries = {"dagster/column_schema": dg.MetadataValue.table_schema(schema),
                   "dagster/table_name": dg.MetadataValue.text(".".join(relation))}
        if relation in counts:
            entries["dagster/row_count"] = dg.MetadataValue.int(counts[relation])
        if previews.get(relation):
            entries["preview"] = dg.MetadataValue.md(previews[relation])
        if relation == SEGMENT_SUMMARY and mix is not None:
            entries.update(_segment_mix_plot(mix, reports))
        metadata[node["unique_id"]] = entries
    return metadata


def _segment_mix_rows(con: duckdb.DuckDBPyConnection) -> Any:
    """marts.segment_summary's rows as the segment mix plot draws them."""
    from segments.report import COLUMNS

    return con.execute(f"select {', '.join(COLUMNS)}, as_of_date from marts.segment_summary"
                       ).df()


def _segment_mix_plot(mix: Any, reports: Path | None) -> dict[str, Any]:
    """`segment_mix_plot` (the PNG inline, as Markdown) and, with `reports`, the PNG written
    to reports/segment_mix.png (`segment_mix_plot_path`). Nothing when drawing fails: the
    other metadata stays. The sample store's 34 segments: 1100 x 890 px, 36 kB (49 kB of
    base64 in each materialization's event), drawn in 0.6 s."""
    try:
        import pandas as pd

        from core.plots import png_bytes
        from segments.report import segment_mix_figure

        as_of = mix["as_of_date"].max() if len(mix) else None
        title = f"Segment mix as of {as_of:%Y-%m-%d}" if pd.notna(as_of) else "Segment mix"
        png = png_bytes(segment_mix_figure(mix, title))
    except Exception as exc:  # noqa: BLE001
        log.warning("no segment mix plot: %s", exc)
        return {}
    entries: dict[str, Any] = {"segment_mix_plot": png_markdown(
        png, "segment mix", "Members of each segment by type (pale bar), reachable by email "
        "and by ads (thin bars inside), and the change since the day and week before.")}
    if reports is not None:
        reports.mkdir(parents=True, exist_ok=True)
        path = reports / SEGMENT_MIX_PNG
        staged = path.with_name(f".{SEGMENT_MIX_PNG}.{os.getpid()}.tmp")
        staged.write_bytes(png)
        os.replace(staged, path)  # a reader never sees half a file
        entries["segment_mix_plot_path"] = dg.MetadataValue.path(str(path))
    return entries


def _count_views(con: duckdb.DuckDBPyConnection, views: set[tuple[str, str]]
                 ) -> dict[tuple[str, str], int]:
    """Row counts of the views that count within VIEW_SECONDS each and STEP_VIEW_SECONDS in all
    (counting a view runs its query): a view that takes longer is interrupted and shows no
    count."""
    counts: dict[tuple[str, str], int] = {}
    deadline = time.monotonic() + STEP_VIEW_SECONDS
    for schema, name in sorted(views):
        left = min(VIEW_SECONDS, deadline - time.monotonic())
        if left <= 0:
            break
        timer = threading.Timer(left, con.interrupt)
        timer.start()
        try:
            counts[(schema, name)] = con.execute(
                f'select count(*) from "{schema}"."{name}"').fetchone()[0]
        except duckdb.Error:  # interrupted, or a view that no longer reads
            continue
        finally:
            timer.cancel()
    return counts


def with_table_metadata(events: list[Any], manifest: Mapping[str, Any],
                        warehouse: Path, reports: Path | None = None) -> list[Any]:
    """`events` with the table metadata of `table_metadata` added to each Output of a built dbt
    node (the others unchanged)."""
    def unique_id(event: Any) -> str | None:
        if not isinstance(event, dg.Output):
            return None
        value = event.metadata.get("unique_id")
        return getattr(value, "text", value)

    ids = [uid for uid in map(unique_id, events) if uid in manifest["nodes"]]
    extra = table_metadata(warehouse, (manifest["nodes"][uid] for uid in ids), reports)
    return [event.with_metadata({**_rounded(event.metadata), **extra[uid]})
            if (uid := unique_id(event)) in extra else event for event in events]


def _rounded(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """dagster-dbt's metadata with its seconds ("Execution Duration": 0.174693) to 2 decimals."""
    def rounded(value: Any) -> Any:
        number = getattr(value, "value", value)
        return dg.MetadataValue.float(round(number, 2)) if isinstance(number, float) else value

    return {key: rounded(value) if key == "Execution Duration" else value
            for key, value in metadata.items()}
