"""The published marts are a contract for analysts: every column declared with its type
(enforced by dbt) and described, and every model's primary key recognised by dbt; the
contracts hold on a store built empty (docs/analysts.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from core.settings import DBT_PROJECT_DIR
from dagster_project.defs.publish.assets import NOT_PUBLISHED
from dagster_project.defs.transform.project import dbt_project
from ingest import landing

# every dbt model the published copy (published/marts.duckdb) holds: those of schema marts
PUBLISHED = {"dim_customers", "dim_products", "fct_orders", "fct_order_items", "fct_sessions",
             "customer_rfm", "customer_features", "customer_360", "customer_fairness_groups",
             "customer_product_recommendations", "segment_memberships", "segment_summary",
             "segment_transitions", "weather_daily"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(Path(dbt_project().manifest_path).read_text())


def _models(manifest: dict) -> dict[str, dict]:
    return {node["name"]: node for node in manifest["nodes"].values()
            if node["resource_type"] == "model"}


def published_marts(manifest: dict) -> dict[str, dict]:
    """The dbt models the publish step copies: schema marts, but not contact details."""
    return {name: node for name, node in _models(manifest).items()
            if node["schema"] == "marts" and f"marts.{name}" not in NOT_PUBLISHED}


def test_every_published_mart_is_a_contract_with_every_column_typed_and_described(manifest):
    marts = published_marts(manifest)
    assert set(marts) == PUBLISHED  # a new published mart is added here, with its contract
    problems = []
    for name, node in sorted(marts.items()):
        if not node["config"].get("contract", {}).get("enforced"):
            problems.append(f"{name}: no enforced contract")
        if not node["columns"]:
            problems.append(f"{name}: no columns declared")
        for column, info in node["columns"].items():
            if not (info.get("data_type") or "").strip():
                problems.append(f"{name}.{column}: no data_type")
            if not (info.get("description") or "").strip():
                problems.append(f"{name}.{column}: no description")
        if node["config"].get("materialized") == "incremental" \
                and node["config"].get("on_schema_change") not in ("fail", "append_new_columns"):
            problems.append(f"{name}: an incremental contract needs on_schema_change")
    assert not problems, problems
    assert len(marts["customer_360"]["columns"]) >= 76


def _compound_keys(manifest: dict) -> dict[str, list[str]]:
    """Each model's compound key test (unique_combination_of_columns, enabled or not)."""
    tests = [node for node in manifest["nodes"].values() if node["resource_type"] == "test"]
    tests += [node for nodes in manifest.get("disabled", {}).values() for node in nodes
              if node["resource_type"] == "test"]
    keys = {}
    for test in tests:
        metadata = test.get("test_metadata") or {}
        if metadata.get("name") == "unique_combination_of_columns":
            model = test["attached_node"] or test["depends_on"]["nodes"][0]
            keys[model.split(".")[-1]] = sorted(metadata["kwargs"]["combination_of_columns"])
    return keys


def test_every_model_has_a_primary_key_dbt_recognises(manifest):
    """dbt infers a model's primary key (the manifest's `primary_key`, shown by dbt docs) from
    a primary_key constraint, unique + not_null on a column, or a unique_combination_of_columns
    test on its columns (dbt_utils' name and argument; tests declared only for this are
    disabled where a cheaper check runs: unique_in_latest_change, unique_in_new_loads)."""
    models = _models(manifest)
    missing = sorted(name for name, node in models.items() if not node.get("primary_key"))
    assert not missing, missing
    for model, columns in _compound_keys(manifest).items():
        if model in models:
            assert models[model]["primary_key"] == columns, model
    assert models["fct_orders"]["primary_key"] == ["order_id"]
    assert models["segment_memberships"]["primary_key"] == ["customer_id", "segment_key"]


def _dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).parent / "dbt"
    return subprocess.run(
        [str(dbt), *args, "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(home / "dbt_target"),
         "--log-path", str(home / "dbt_logs")],
        env={**os.environ, "SEGMENTA_HOME": str(home)}, capture_output=True, text=True,
        check=False, timeout=600)


def _empty_model_outputs(con: duckdb.DuckDBPyConnection) -> None:
    """The tables the Python assets write, as they write them with no champion yet and no
    rules: their types reach the marts only through the staging views' casts."""
    from dagster_project.defs.ml.recommendations import EMPTY_TABLES
    from ml.clv import empty_scores
    from ml.segmentation import empty_clusters

    con.execute("create schema ml; create schema intermediate")
    frames = {"ml.customer_clusters": empty_clusters(), "ml.customer_clv": empty_scores(),
              **{name: pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
                 for name, columns in EMPTY_TABLES.items()}}
    for name, frame in frames.items():
        con.register("frame", frame)
        con.execute(f"create table {name} as select * from frame")
        con.unregister("frame")
    # as segments/rules.py writes it
    con.execute("create table intermediate.rule_segment_memberships (customer_id varchar, "
                "segment_key varchar, segment_name varchar, segment_kind varchar)")


def test_the_contracts_hold_and_the_built_columns_are_the_declared_ones(tmp_path, manifest):
    """dbt builds every model against its contract (names and types, or the build fails) on a
    store built empty, and each published mart's columns, in order and type, are the
    declared ones."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        for feed in landing.FEEDS.values():
            landing.ensure_tables(con, feed)
        _empty_model_outputs(con)
    built = _dbt(tmp_path, "build", "--empty", "--exclude", "test_type:unit", "test_type:data")
    assert built.returncode == 0, built.stdout[-3000:]

    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name, node in sorted(published_marts(manifest).items()):
            built_columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = ? order by ordinal_position",
                [name]).fetchall()
            declared = [(column, con.execute(f"select typeof(cast(null as {info['data_type']}))")
                         .fetchone()[0]) for column, info in node["columns"].items()]
            assert built_columns == declared, name


def test_each_audience_and_the_published_copy_is_an_exposure_of_what_it_reads(manifest):
    """models/exposures.yml has an exposure per audience of segments/audiences.yml, depending
    on the dbt nodes its sync asset reads, and one for the published copy over every
    published mart; dagster-dbt makes no asset of them."""
    from activation.audiences import load_audiences
    from core.settings import PROJECT_ROOT
    from dagster_project.definitions import defs
    from dagster_project.defs.activation.assets import sync_asset
    from dagster_project.defs.transform.assets import dbt_models

    exposures = {node["name"]: node for node in manifest["exposures"].values()}
    dbt_ids = {("marts", name): f"model.segmenta.{name}" for name in _models(manifest)}
    dbt_ids.update({(node["schema"], node["name"]): unique_id
                    for unique_id, node in manifest["sources"].items()})
    audiences = load_audiences(PROJECT_ROOT / "segments" / "audiences.yml")
    for audience in audiences:
        exposure = exposures[f"audience_{audience.key}"]
        assert exposure["type"] == "application"
        reads = set()
        for target in audience.targets:
            asset = sync_asset(audience, target)
            reads |= {dbt_ids[tuple(key.path)] for key in asset.asset_deps[asset.key]}
        assert set(exposure["depends_on"]["nodes"]) == reads, audience.key

    published = exposures["published_marts"]["depends_on"]["nodes"]
    assert {f"model.segmenta.{name}" for name in PUBLISHED} <= set(published)
    assert set(exposures) == {"published_marts", *(f"audience_{a.key}" for a in audiences)}
    # the dbt assets are the models, seeds and snapshots: no exposure among them
    nodes = [node for node in manifest["nodes"].values()
             if node["resource_type"] in ("model", "seed", "snapshot")]
    assert len(dbt_models.keys) == len(nodes)
    assert defs.resolve_asset_graph().get_all_asset_keys() >= dbt_models.keys
