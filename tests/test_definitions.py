"""The code location loads, and its assets, groups, pools and schedule are as docs/architecture.md says."""

from __future__ import annotations

import dagster as dg
import pytest

from dagster_project.definitions import defs


@pytest.fixture(scope="module")
def graph():
    dg.Definitions.validate_loadable(defs)
    return defs.resolve_asset_graph()


def _key(path: str) -> dg.AssetKey:
    return dg.AssetKey(path.split("/"))


def test_assets_and_groups(graph):
    groups = {key.to_user_string(): graph.get(key).group_name
              for key in graph.get_all_asset_keys()}
    expected = {
        "raw/orders": "ingest", "raw/events": "ingest", "raw/customers": "ingest",
        "raw/products": "ingest", "staging/stg_shop__order_lines": "staging",
        "marts/customer_rfm": "marts", "marts/fct_orders": "marts",
        "marts/dim_customers": "marts", "ml/customer_clusters": "ml",
        "activation/champions_newsletter_to_file": "activation",
        "marts/audience_uplift": "activation", "marts/segment_fairness": "activation",
        "marts/segment_memberships": "segments", "published/marts": "publish",
        "published/personalization_cache": "publish",
    }
    assert {k: groups.get(k) for k in expected} == expected


# The groups in the order data flows through them (docs/architecture.md, "Data flow").
GROUP_ORDER = ("ingest", "staging", "intermediate", "marts", "ml", "segments", "activation",
               "publish")


def test_groups_read_left_to_right_with_no_back_edge(graph):
    """Every asset is in one of the documented groups, and every dependency goes from a group to
    itself or to a later one: the group graph is the chain of GROUP_ORDER (no cycle, no edge
    back), so the UI's graph of groups reads left to right."""
    groups = {key: graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert set(groups.values()) == set(GROUP_ORDER)
    back_edges = sorted(
        f"{parent.to_user_string()} ({groups[parent]}) -> {key.to_user_string()} ({groups[key]})"
        for key in groups for parent in graph.get(key).parent_keys
        if GROUP_ORDER.index(groups[parent]) > GROUP_ORDER.index(groups[key]))
    assert not back_edges, back_edges
    # the segment marts are a group of their own, after the models they read
    for path in ("marts/segment_memberships", "marts/segment_summary",
                 "marts/segment_transitions", "snapshots/segment_memberships_snapshot",
                 "intermediate/rule_segment_memberships",
                 "staging/stg_segments__rule_segment_memberships"):
        assert groups[_key(path)] == "segments", path
    # the model outputs' staging views and the recommendations mart follow the models
    for path in ("ml/customer_clusters", "marts/customer_product_recommendations",
                 "staging/stg_ml__customer_clusters", "staging/stg_ml__customer_clv",
                 "staging/stg_ml__customer_recommendations"):
        assert groups[_key(path)] == "ml", path
    # the fairness report reads the audiences as synced
    assert groups[_key("marts/segment_fairness")] == "activation"


def test_one_lineage_from_landing_to_export(graph):
    upstream = graph.get(_key("activation/at_risk_winback_to_file")).parent_keys
    seen, frontier = set(), set(upstream)
    while frontier:
        key = frontier.pop()
        seen.add(key)
        frontier |= set(graph.get(key).parent_keys) - seen
    for path in ("marts/segment_memberships", "marts/customer_product_recommendations",
                 "ml/customer_clusters", "marts/customer_rfm", "staging/stg_shop__order_lines",
                 "raw/orders", "raw/customers"):
        assert _key(path) in seen, f"{path} is not upstream of the export"


def test_orders_and_events_are_daily_partitioned_single_run_backfills(graph):
    for path in ("raw/orders", "raw/events"):
        node = graph.get(_key(path))
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


# steps that read only the published copy (never locked by a run), so they need no pool slot
NOT_WAREHOUSE_STEPS = {_key("published/personalization_cache")}


def test_every_warehouse_step_is_in_the_duckdb_pool():
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition):
            if set(assets_def.keys) <= NOT_WAREHOUSE_STEPS:
                assert assets_def.node_def.pool is None, assets_def.keys
                continue
            pools = {node.pool for node in assets_def.node_def.node_defs} \
                if isinstance(assets_def.node_def, dg.GraphDefinition) \
                else {assets_def.node_def.pool}
            assert pools == {"duckdb"}, assets_def.keys


def test_dbt_tests_are_asset_checks(graph):
    checks = {key.name for key in graph.asset_check_keys
              if key.asset_key == _key("marts/customer_rfm")}
    assert "unique_customer_rfm_customer_id" in checks


def test_daily_schedule_runs_by_default_and_covers_everything():
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def("refresh_all")
    assert _key("activation/champions_newsletter_to_file") in job.asset_layer.executable_asset_keys
    assert _key("raw/orders") in job.asset_layer.executable_asset_keys


def test_one_asset_per_audience_and_destination_with_its_platform(monkeypatch):
    """The demo audiences file yields one asset per audience x destination, kinds naming the
    platform, each requiring only its own destination resource."""
    from activation.audiences import load_audiences
    from core.settings import PROJECT_ROOT
    from dagster_project.defs.activation.assets import KINDS, sync_asset
    from dagster_project.defs.activation.resources import DESTINATION_RESOURCES

    audiences = load_audiences(PROJECT_ROOT / "segments" / "audiences.demo.yml")
    assets = {a.key.to_user_string(): (a, t) for audience in audiences
              for t in audience.targets for a in [sync_asset(audience, t)]}
    assert len(assets) == 10 and "activation/cart_abandoners_to_google" in assets
    for assets_def, target in assets.values():
        spec = next(iter(assets_def.specs))
        assert spec.group_name == "activation"
        assert spec.kinds == {KINDS[target.type]}  # the platform, shown on the node
        assert DESTINATION_RESOURCES[target.type][0] in assets_def.required_resource_keys
    # the graph labels a node with its key's last part: the audience and the platform
    assert {key.rsplit("/", 1)[1] for key in assets} >= {
        "cart_abandoners_to_google", "at_risk_winback_to_meta", "champions_newsletter_to_file"}
    google, _ = assets["activation/cart_abandoners_to_google"]
    spec = next(iter(google.specs))
    assert spec.kinds == {"google"} and spec.tags["audience"] == "cart_abandoners"
    assert spec.description.startswith("Audience cart_abandoners (segment "
                                       "rule_recent_cart_abandoners_high_value) synced to Google")


def test_models_and_syncs_have_non_blocking_checks_and_run_accepts_force_removals(graph):
    """A model without a champion and a refused sync are non-blocking checks (they never stop
    what comes after), and `segmenta run --force-removals` configures every activation asset
    with a run config the job accepts."""
    from dagster_project.cli import refresh_config

    checks = {key: graph.get_check_spec(key) for key in graph.asset_check_keys
              if key.name in ("champion", "synced")}
    assert {key.asset_key.to_user_string() for key in checks if key.name == "champion"} == {
        "ml/customer_clusters", "ml/customer_clv", "ml/customer_recommendations"}
    assert _key("activation/champions_newsletter_to_file") in {
        key.asset_key for key in checks if key.name == "synced"}
    assert not any(spec.blocking for spec in checks.values())

    job = defs.resolve_job_def("refresh_all")
    config = refresh_config(graph.get_all_asset_keys(), full_refresh=False, force_removals=True)
    assert config["ops"]["activation__at_risk_winback_to_file"] == {
        "config": {"force_removals": True}}
    assert dg.validate_run_config(job, config)


def test_dg_dev_parses_the_dbt_project_again_only_when_a_file_of_it_changed(tmp_path):
    """Under `dg dev` the code loads in every launched run's worker: a fresh manifest is
    reused (dagster-dbt's own preparer parsed the project every time, 5 s of each run)."""
    import os

    from dagster_project.defs.transform.project import manifest_is_stale

    project = tmp_path / "dbt_project"
    for name in ("dbt_project.yml", "models/marts/dim_customers.sql", "macros/m.sql"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("select 1\n")
    manifest = project / "target" / "manifest.json"
    assert manifest_is_stale(project, manifest)  # never parsed

    manifest.parent.mkdir()
    manifest.write_text("{}")
    built = manifest.stat().st_mtime

    def age(*names: str) -> None:
        for name in names:
            os.utime(project / name, (built - 60, built - 60))

    age("dbt_project.yml", "models/marts/dim_customers.sql", "macros/m.sql", "models/marts",
        "models", "macros", ".")
    assert not manifest_is_stale(project, manifest)

    for output in ("target/run_results.json", "logs/dbt.log"):  # dbt's own output
        (project / output).parent.mkdir(exist_ok=True)
        (project / output).write_text("x")
        os.utime(project / output, (built + 60, built + 60))
    assert not manifest_is_stale(project, manifest)

    os.utime(project / "models/marts/dim_customers.sql", (built + 1, built + 1))  # edited
    assert manifest_is_stale(project, manifest)

    (project / "models/marts/dim_customers.sql").unlink()  # deleted: its folder changes
    assert manifest_is_stale(project, manifest)
    age("models/marts")
    assert not manifest_is_stale(project, manifest)


def test_no_asset_shows_unserializable_metadata(graph):
    """The asset pages list no Python object Dagster cannot show ("dagster_dbt/project
    [DbtProject] (unserializable)" was on every dbt asset)."""
    from dagster_dbt import DbtProject

    for key in graph.get_all_asset_keys():
        metadata = graph.get(key).metadata or {}
        assert not [name for name, value in metadata.items() if isinstance(value, DbtProject)], key


def test_every_asset_check_says_what_it_checks(graph):
    """No check reads "No description provided" in the UI; dbt's generic tests say what they
    assert from their arguments, singular tests give their opening comment."""
    specs = {key: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert len(specs) > 100
    undescribed = [key.to_user_string() for key, spec in specs.items()
                   if not (spec.description or "").strip()]
    assert not undescribed, undescribed
    by_name = {key.name: spec.description for key, spec in specs.items()}
    assert by_name["not_null_fct_orders_net_revenue"] == "`net_revenue` is never null."
    assert by_name["accepted_values_fct_orders_order_status__completed__cancelled__refunded"] \
        == "`order_status` is one of: completed, cancelled, refunded."
    assert by_name["relationships_fct_orders_customer_id__customer_id__ref_dim_customers_"] \
        .startswith("Every `customer_id` is a `customer_id` of `dim_customers`.")
    assert by_name["unknown_product"].startswith("unknown_product (a warning: the order lines")


def test_dbt_models_link_to_their_dbt_docs_page(graph):
    metadata = graph.get(_key("marts/customer_rfm")).metadata
    assert metadata["dbt_docs"].value == \
        "http://127.0.0.1:8080/#!/model/model.segmenta.customer_rfm"


def test_one_full_refresh_switch_for_every_dbt_step_of_a_run(graph):
    """The dbt models build in several steps of `refresh_all` (before and after the ml and
    segment assets); the launchpad has one `full_refresh` for all of them, not one per step."""
    from dagster_project.cli import refresh_config

    job = defs.resolve_job_def("refresh_all")
    dbt_steps = [name for name in job.graph.node_names() if name.startswith("dbt_models")]
    assert len(dbt_steps) > 1
    ops = job.run_config_schema.config_type.fields["ops"].config_type.fields
    assert not [name for name in dbt_steps
                if ops[name].config_type.fields["config"].config_type.fields]
    resource = job.run_config_schema.config_type.fields["resources"].config_type \
        .fields["dbt_build"].config_type.fields["config"].config_type.fields
    assert set(resource) == {"full_refresh"}
    config = refresh_config(graph.get_all_asset_keys(), full_refresh=True, force_removals=False)
    assert config["resources"] == {"dbt_build": {"config": {"full_refresh": True}}}
    assert dg.validate_run_config(job, config)
