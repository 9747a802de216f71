from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from pydantic import Field

from dagster_project.defs.transform.project import dbt_project


class SegmentaTranslator(DagsterDbtTranslator):
    """Keys dbt models by warehouse schema and name (`marts/customer_rfm`), as docs/architecture.md names them."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Sources carry the ingestion asset's key in meta.dagster.asset_key.
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # Seeds are reference inputs of the staging layer, the membership snapshot belongs with
        # the segment marts; models group by their folder.
        if dbt_resource_props["resource_type"] == "seed":
            return "staging"
        if dbt_resource_props["resource_type"] == "snapshot":
            return "marts"
        return dbt_resource_props["fqn"][1]


class DbtBuildConfig(dg.Config):
    """How the dbt step builds. Set in the launchpad (or `segmenta run --full-refresh`)."""

    full_refresh: bool = Field(
        default=False,
        description="Rebuild the incremental models (events, sessions, orders, order items, daily "
                    "customer activity) from all history instead of from what changed.",
    )


def dbt_build_args(config: DbtBuildConfig) -> list[str]:
    """The dbt command of a run. The incremental models need no partition window: each follows
    the ingestion change logs from its own watermark, whatever days the run loaded."""
    # A run may build the dbt models in several steps (before and after the ml and segment
    # assets); "buildable" runs a test in the step that builds its models, never before.
    # Unit tests run in CI (tests/test_rfm_scoring.py), not on production data.
    args = ["build", "--indirect-selection", "buildable", "--exclude-resource-type", "unit_test"]
    if config.full_refresh:
        args.append("--full-refresh")
    return args


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=SegmentaTranslator(),
    pool="duckdb",
)
def dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig
) -> Iterator[Any]:
    """Staging views and customer marts, built and tested by `dbt build`; the heavy models are
    incremental over what ingestion logged since their last refresh."""
    args = dbt_build_args(config)
    context.log.info("dbt %s", " ".join(args))
    yield from dbt.cli(args, context=context).stream()
