"""One asset per audience x destination, built from the audiences file (segments/audiences.yml).

Each asset syncs its audience with `activation.engine` (the diff against the destination's
confirmed state, batches, retries, resumption) and reports the counts in its metadata. The assets
sit downstream of the segment marts, so the marts' blocking checks stop them on bad data.

A sync a safety rail refuses (an emptied segment, too many removals) or that stops part-way at
the destination concerns that audience x destination only: it is recorded in
`activation.sync_runs` (status `refused` or `failed`, with the reason), the asset materializes
with that status and reason in its metadata, its non-blocking check `synced` fails (severity
ERROR) and a warning goes to the run's logs; the other audiences, the uplift mart and the
published copy carry on. `segmenta run --strict` / `segmenta sync --strict` exit 1 on it.
"""


import dagster as dg
from pydantic import Field

from activation.audiences import (
    AUDIENCES_FILE,
    Audience,
    Target,
    configured_audiences,
)
from activation.engine import SyncFailed, SyncOptions, SyncRefused, sync
from dagster_project.defs.activation.resources import DESTINATION_RESOURCES
from dagster_project.defs.transform.checks import CHECKED_MARTS
from dagster_project.resources import WarehouseResource

# the platform as the node's kind: Dagster 1.13 shows an icon for "file", "meta" and "google",
# and the name as text for the others
KINDS = {"file": "file", "webhook": "webhook", "hubspot": "hubspot", "klaviyo": "klaviyo",
         "meta": "meta", "google": "google"}
PLATFORMS = {"file": "a file", "webhook": "a webhook", "hubspot": "HubSpot",
             "klaviyo": "Klaviyo", "meta": "Meta", "google": "Google"}
SYNCED_CHECK = "synced"


class SyncConfig(dg.Config):
    """How to sync (set in the launchpad, or with `segmenta sync`)."""

    dry_run: bool = Field(default=False, description="Compute the diff and show counts and a "
                          "sample of hashed keys; send nothing and change no state.")
    full_refresh: bool = Field(default=False, description="Send every member again (or replace "
                               "the audience where the platform can), not only the changes.")
    force_removals: bool = Field(default=False, description="Allow removing more than "
                                 "max_removal_share of the audience in one run.")
    max_removal_share: float = Field(default=0.2, description="Refuse a sync that would remove "
                                     "more than this share of the confirmed audience.")


def _markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(none)"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


# the marts a sync reads: their latest checks must have passed, also when the sync runs alone
SOURCE_MARTS = ("customer_rfm", "dim_customers", "segment_memberships", "customer_contacts")


def _is_warning(record: object) -> bool:
    """Whether a check execution's evaluation has severity WARN (a dbt test with severity warn,
    e.g. unknown_income_band on dim_customers: it lists rows to fix and stops nothing)."""
    event = getattr(record, "event", None)
    evaluation = getattr(getattr(event, "dagster_event", None), "event_specific_data", None)
    return getattr(evaluation, "severity", None) == dg.AssetCheckSeverity.WARN


def failed_upstream_checks(context: dg.AssetExecutionContext) -> list[str]:
    """The asset checks of the source marts whose latest execution failed (any run), warnings
    aside."""
    sources = {dg.AssetKey(["marts", name]) for name in SOURCE_MARTS}
    # the run's graph holds the checks of the assets it runs; the marts' Great Expectations
    # checks are named here too, for a sync launched on its own
    keys = {key for key in context.job_def.asset_layer.asset_graph.asset_check_keys
            if key.asset_key in sources}
    keys |= {dg.AssetCheckKey(dg.AssetKey(["marts", name]), "great_expectations")
             for name in CHECKED_MARTS}
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        sorted(keys, key=str))
    return sorted(f"{key.asset_key.to_user_string()}:{key.name}" for key, record
                  in latest.items() if record.status.value == "FAILED"
                  and not _is_warning(record))


def known_segments(con) -> set[str]:
    """Every segment key the definitions produce, also while it has no members: today's
    memberships, every key the membership snapshot ever held, and the rule segments of
    segments/rules.yml (a store without events has none in a rule on browsing). A key outside
    this set is a typo in the audiences file: its sync is refused."""
    from segments.rules import load_rules

    tables = {name for (name,) in con.execute(
        "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
    known = {rule.segment_key for rule in load_rules()}
    for table in ("marts.segment_memberships", "snapshots.segment_memberships_snapshot"):
        if table in tables:
            known |= {k for (k,) in con.execute(
                f"select distinct segment_key from {table}").fetchall()}
    return known


def sync_asset_key(audience: Audience, target: Target) -> dg.AssetKey:
    """`activation/<audience>_to_<destination>`: the graph labels a node with its key's last
    part, so it names the audience and the platform (`at_risk_winback_to_file`, not `file`).
    The sync state (activation.*) is keyed by the audience and destination names, not by this."""
    return dg.AssetKey(["activation", f"{audience.key}_to_{target.name.replace(':', '_')}"])


def sync_asset(audience: Audience, target: Target) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(["marts", "segment_memberships"]),
            dg.AssetKey(["marts", "customer_contacts"])]
    if "top_3_recommendations" in audience.fields:
        deps.append(dg.AssetKey(["marts", "customer_product_recommendations"]))
    if "rfm_segment" in audience.fields:
        deps.append(dg.AssetKey(["marts", "customer_rfm"]))
    if "predicted_value_90d" in audience.fields:
        deps.append(dg.AssetKey(["ml", "customer_clv"]))

    resource_key = DESTINATION_RESOURCES[target.type][0]
    key = sync_asset_key(audience, target)
    platform = PLATFORMS.get(target.type, target.type)

    @dg.asset(
        key=key,
        check_specs=[dg.AssetCheckSpec(
            SYNCED_CHECK, asset=key, blocking=False,
            description="The sync was not refused by a safety rail and the destination "
                        "confirmed it (activation.sync_runs); never blocks what comes after.")],
        required_resource_keys={resource_key, "warehouse"},
        deps=deps,
        group_name="activation",
        kinds={KINDS[target.type]},
        pool="duckdb",
        description=(f"Audience {audience.key} (segment {audience.segment}) synced to "
                     f"{platform}" + (f" ({target.name})" if target.name != target.type else "")
                     + f"; holdout {audience.holdout:.0%}. " + (audience.description or "")),
        tags={"audience": audience.key, "destination": target.type},
    )
    def _sync(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.MaterializeResult:
        destination = getattr(context.resources, resource_key).client()
        warehouse: WarehouseResource = context.resources.warehouse
        options = SyncOptions(dry_run=config.dry_run, full_refresh=config.full_refresh,
                              force_removals=config.force_removals,
                              max_removal_share=config.max_removal_share)
        failed = failed_upstream_checks(context)
        if failed:
            raise dg.Failure(
                f"refusing to sync {audience.key!r} to {target.name}: the latest run of "
                f"{', '.join(failed)} failed, so the segments may be built from bad data. Fix "
                "the data and re-run the checks (make run); nothing was sent.")
        with warehouse.warehouse.connect() as con:
            known = known_segments(con)
            try:
                report = sync(con, audience, target, destination, context.run.run_id, options,
                              log=context.log.info, known_segments=known,
                              source=str(AUDIENCES_FILE))
            except (SyncRefused, SyncFailed) as exc:
                # recorded in activation.sync_runs by the engine; this audience x destination
                # only: say so (metadata, failed check, warning) and let the run carry on
                return _not_synced(context, audience, target, exc)
        counts = {name: getattr(report, name) for name in (
            "n_desired", "n_holdout", "n_skipped", "n_to_add", "n_to_update", "n_to_remove",
            "n_added", "n_updated", "n_removed", "n_rejected", "n_resumed", "n_requests",
            "n_retries")}
        context.log.info(f"{audience.key} -> {target.name}: {report.status} "
                         + ", ".join(f"{k[2:]} {v}" for k, v in counts.items() if v))
        metadata = {
            "status": dg.MetadataValue.text(report.status),
            "mode": dg.MetadataValue.text(report.mode),
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
            "duration_seconds": dg.MetadataValue.float(round(report.seconds, 2)),
            "sync_log": dg.MetadataValue.text(
                f"select * from activation.sync_log where run_id = '{context.run.run_id}' and "
                f"audience_key = '{audience.key}' and destination = '{target.name}'"),
        }
        if report.message:
            metadata["message"] = dg.MetadataValue.text(report.message)
        if report.sample:
            metadata["dry_run_sample"] = dg.MetadataValue.md(_markdown_table(report.sample))
        return dg.MaterializeResult(metadata=metadata, check_results=[dg.AssetCheckResult(
            check_name=SYNCED_CHECK, passed=True, description=report.status,
            metadata={"status": dg.MetadataValue.text(report.status)})])

    return _sync


def _not_synced(context: dg.AssetExecutionContext, audience: Audience, target: Target,
                exc: Exception) -> dg.MaterializeResult:
    """A refused or failed sync as a materialization with its status and reason, and a failed
    non-blocking check."""
    status = "refused" if isinstance(exc, SyncRefused) else "failed"
    reason = str(exc)
    context.log.warning(f"{audience.key} -> {target.name}: sync {status}: {reason}")
    metadata = {
        "status": dg.MetadataValue.text(status),
        "message": dg.MetadataValue.text(reason),
        "sync_log": dg.MetadataValue.text(
            f"select * from activation.sync_log where run_id = '{context.run.run_id}' and "
            f"audience_key = '{audience.key}' and destination = '{target.name}'"),
    }
    return dg.MaterializeResult(metadata=metadata, check_results=[dg.AssetCheckResult(
        check_name=SYNCED_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
        description=f"sync {status}: {reason}",
        metadata={"status": dg.MetadataValue.text(status),
                  "reason": dg.MetadataValue.text(reason)})])


sync_assets = [sync_asset(audience, target) for audience in configured_audiences()
               for target in audience.targets]
