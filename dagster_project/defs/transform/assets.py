import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, dbt_assets
from pydantic import Field

from core.settings import HOME
from dagster_project.defs.transform.check_descriptions import describe_test
from dagster_project.defs.transform.inprocess import build_events, parse_ahead
from dagster_project.defs.transform.project import dbt_project


def dbt_docs_url() -> str:
    """Where the dbt docs site is served: SEGMENTA_DBT_DOCS_URL, or `make docs`'s address."""
    return os.environ.get("SEGMENTA_DBT_DOCS_URL", "http://127.0.0.1:8080").rstrip("/")


class SegmentaTranslator(DagsterDbtTranslator):
    """Keys dbt models by warehouse schema and name (`marts/customer_rfm`), as docs/architecture.md names them."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Sources carry the ingestion asset's key in meta.dagster.asset_key.
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str,
                       project: Any) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] in ("model", "seed", "snapshot"):
            # the node's page in the dbt docs site (`make docs`): SQL, columns, lineage
            spec = spec.merge_attributes(metadata={"dbt_docs": dg.MetadataValue.url(
                f"{dbt_docs_url()}/#!/{props['resource_type']}/{unique_id}")})
        if props["resource_type"] == "seed":
            # A seed reads nothing, so Dagster would build it in a dbt invocation of its own,
            # before the day's load (a step per "layer" of the graph): about 5 s of start-up
            # (interpreter, dbt, the project's parse) in every run. Loaded after the profiles,
            # it joins the staging models' invocation; they wait for the load anyway.
            return spec.merge_attributes(deps=[dg.AssetKey(["raw", "customers"])])
        return spec

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any],
                             unique_id: str, project: Any) -> dg.AssetCheckSpec | None:
        # every check says what it asserts (check_descriptions.py), not "No description provided"
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or (spec.description or "").strip():
            return spec
        return spec._replace(description=describe_test(manifest["nodes"][unique_id]))

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # Seeds are reference inputs of the staging layer, the membership snapshot belongs with
        # the segment marts; models group by their folder (models/<group>/), so the groups
        # follow the data: staging, intermediate, marts, ml (the staging views of the model
        # outputs and the recommendations mart), segments (the segment marts).
        if dbt_resource_props["resource_type"] == "seed":
            return "staging"
        if dbt_resource_props["resource_type"] == "snapshot":
            return "segments"
        return dbt_resource_props["fqn"][1]


class DbtBuildResource(dg.ConfigurableResource):
    """How the dbt steps build: one `full_refresh` switch for the whole run, in the launchpad's
    `resources: dbt_build: config:` (or `segmenta run --full-refresh`). A run builds the dbt
    models in up to four steps (before and after the ml and segment assets); as op config each
    had a switch of its own (`dbt_models` ... `dbt_models_4`)."""

    full_refresh: bool = Field(
        default=False,
        description="Rebuild the incremental models (events, sessions, orders, order items, daily "
                    "customer activity) from all history instead of from what changed.",
    )


def dbt_build_args(config: DbtBuildResource) -> list[str]:
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
    # no `project=`: dagster-dbt would show the DbtProject object on every asset's page as
    # "dagster_dbt/project [DbtProject] (unserializable)", for code references we do not use
    manifest=dbt_project().manifest_path,
    dagster_dbt_translator=SegmentaTranslator(),
    pool="duckdb",
)
def dbt_models(
    context: dg.AssetExecutionContext, dbt_build: DbtBuildResource
) -> Iterator[Any]:
    """Staging views and customer marts, built and tested by `dbt build`; the heavy models are
    incremental over what ingestion logged since their last refresh."""
    target = _invocation_target(context)
    yield from build_events(dbt_build_args(dbt_build), context, SegmentaTranslator(), target,
                            Path(dbt_project().profiles_dir))
    _keep_partial_parse(target)


# the dbt steps' one setting, bound to the asset (it needs no resource from the definitions)
[dbt_models] = dg.with_resources([dbt_models], {"dbt_build": DbtBuildResource()})


# A process parses the dbt project once (`inprocess.parsed_manifest`), from a partial parse made
# with the same profile, which names this home's warehouse, when there is one. The parse in
# dbt_project/target (from `make install`) was made for another home, so each process would
# parse it all again (about 5 s). Each home keeps the newest parse and every invocation's target
# folder starts from it; dbt still re-parses whatever changed (files, vars, env vars), so this
# only saves time.
PARTIAL_PARSE = "partial_parse.msgpack"


def _kept_parse() -> Path:
    """The home's partial parse of this checkout's dbt project: dbt keeps absolute paths in it
    (a seed's CSV), so a checkout elsewhere (moved, or a second worktree on the same home)
    must not start from it: one file per project folder."""
    from core.settings import DBT_PROJECT_DIR

    digest = hashlib.sha256(str(DBT_PROJECT_DIR.resolve()).encode()).hexdigest()[:12]
    return HOME.dbt_target / f"partial_parse-{digest}.msgpack"


def _invocation_target(context: dg.AssetExecutionContext) -> Path:
    """A fresh target folder under the home for this invocation, seeded with its partial parse.
    The folders of earlier invocations go (a failed one stays until then, for its logs): the
    pool `duckdb` runs one dbt at a time per home."""
    root = HOME.dbt_target
    shutil.rmtree(root / "invocations", ignore_errors=True)
    target = root / "invocations" / f"{context.op.name}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    target.mkdir(parents=True)
    if _kept_parse().exists():
        shutil.copyfile(_kept_parse(), target / PARTIAL_PARSE)
    return target


def preparse() -> None:
    """dbt's parse of the project in place, for this process's dbt steps, ahead of the first
    (`segmenta run` calls it in a background thread while ingestion loads the day: see
    core/preload.py). Made as a step makes it (`parsed_manifest`, from the home's partial
    parse), in a scratch folder that goes afterwards; a step whose environment differs by then
    parses again."""
    from core.processes import is_alive
    from core.settings import DBT_PROJECT_DIR

    for left in HOME.dbt_target.glob("preparse-*"):  # by a process killed meanwhile
        pid = left.name.removeprefix("preparse-")
        if not pid.isdigit() or not is_alive(int(pid)):
            shutil.rmtree(left, ignore_errors=True)
    target = HOME.dbt_target / f"preparse-{os.getpid()}"
    target.mkdir(parents=True, exist_ok=True)
    try:
        if _kept_parse().exists():
            shutil.copyfile(_kept_parse(), target / PARTIAL_PARSE)
        profiles_dir = Path(dbt_project().profiles_dir)
        parse_ahead(["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(profiles_dir),
                     "--target-path", str(target), "--log-path", str(target)])
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _keep_partial_parse(target: Path) -> None:
    """After a successful invocation: its parse becomes the home's, its folder goes."""
    if (target / PARTIAL_PARSE).exists():
        staged = HOME.dbt_target / f".{PARTIAL_PARSE}.{os.getpid()}.tmp"
        shutil.copyfile(target / PARTIAL_PARSE, staged)
        os.replace(staged, _kept_parse())
    shutil.rmtree(target, ignore_errors=True)
