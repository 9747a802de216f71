"""Non-blocking checks on every audience x destination (severity WARN), one step after the
syncs, read from the warehouse's activation tables:

- `size_vs_segment`: the destination holds no more customers than the segment has, and after a
  succeeded sync exactly the members it should (consenting, matchable, target arm);
- `consent`: everyone the destination holds gave the consent it needs (email for CRM and email
  tools, ads for ad platforms) according to marts.customer_contacts;
- `holdout_share`: the share of consenting members held out is the audience's `holdout` within
  a tolerance (3 standard errors of a binomial share, at least 2 points).

The `synced` check on each asset says whether the sync was refused or failed.
"""

import math

import dagster as dg
import duckdb

from activation.audiences import Audience, Target, configured_audiences
from activation.destinations.file import FileDestination
from activation.destinations.google import GoogleDataManagerDestination
from activation.destinations.hubspot import HubSpotDestination
from activation.destinations.klaviyo import KlaviyoDestination
from activation.destinations.meta import MetaDestination
from activation.destinations.webhook import WebhookDestination
from dagster_project.defs.activation.assets import sync_assets
from dagster_project.resources import WarehouseResource

CONSENT = {cls.platform: cls.consent for cls in (
    FileDestination, WebhookDestination, HubSpotDestination, KlaviyoDestination, MetaDestination,
    GoogleDataManagerDestination)}
SIZE, CONSENT_CHECK, HOLDOUT = "size_vs_segment", "consent", "holdout_share"
MIN_TOLERANCE = 0.02
WARN = dg.AssetCheckSeverity.WARN

# the sync assets are built in this order (activation/assets.py): pair each with its audience
SYNCS: list[tuple[dg.AssetKey, Audience, Target]] = [
    (assets_def.key, audience, target) for assets_def, (audience, target) in zip(
        sync_assets, [(a, t) for a in configured_audiences() for t in a.targets], strict=True)]


def holdout_tolerance(share: float, n: int) -> float:
    """How far the observed holdout share may stray from `share` among `n` members."""
    return max(MIN_TOLERANCE, 3 * math.sqrt(share * (1 - share) / n)) if n else 1.0


def audience_checks_for(con: duckdb.DuckDBPyConnection, key: dg.AssetKey, audience: Audience,
                        target: Target) -> list[dg.AssetCheckResult]:
    """The three checks of one audience at one destination, from the activation tables."""
    consent = CONSENT[target.type]
    segment = con.execute("select count(distinct customer_id) from marts.segment_memberships "
                          "where segment_key = ?", [audience.segment]).fetchone()[0]
    held = con.execute("select count(*) from activation.sync_state where audience_key = ? "
                       "and destination = ?", [audience.key, target.name]).fetchone()[0]
    last = con.execute(
        "select status, n_desired, n_holdout, n_skipped from activation.sync_runs "
        "where audience_key = ? and destination = ? order by started_at desc limit 1",
        [audience.key, target.name]).fetchone()
    status, desired, holdout, skipped = last or ("never synced", 0, 0, 0)
    size_ok = held <= segment and (status != "succeeded" or held == desired)
    size = dg.AssetCheckResult(
        asset_key=key, check_name=SIZE, passed=size_ok, severity=WARN,
        description=(f"{held} in {target.name} of {segment} in segment {audience.segment} "
                     f"({held / segment:.0%})" if segment else f"{held} in {target.name}, "
                     f"segment {audience.segment} empty")
                    + (f"; the last sync ({status}) wanted {desired}" if held != desired else ""),
        metadata={"segment_size": dg.MetadataValue.int(segment),
                  "in_destination": dg.MetadataValue.int(held),
                  "desired": dg.MetadataValue.int(desired or 0),
                  "last_sync": dg.MetadataValue.text(status)})
    without = con.execute(f"""
        select count(*) from activation.sync_state as state
        left join marts.customer_contacts as contacts using (customer_id)
        where state.audience_key = ? and state.destination = ?
          and not coalesce(contacts.has_{consent}_consent, false)""",
                          [audience.key, target.name]).fetchone()[0]
    consent_result = dg.AssetCheckResult(
        asset_key=key, check_name=CONSENT_CHECK, passed=without == 0, severity=WARN,
        description=(f"{without} of {held} in {target.name} without {consent} consent"
                     if without else f"all {held} in {target.name} gave {consent} consent"),
        metadata={"consent": dg.MetadataValue.text(consent),
                  "without_consent": dg.MetadataValue.int(without)})
    members = (desired or 0) + (holdout or 0) + (skipped or 0)
    observed = (holdout or 0) / members if members else 0.0
    tolerance = holdout_tolerance(audience.holdout, members)
    holdout_result = dg.AssetCheckResult(
        asset_key=key, check_name=HOLDOUT, severity=WARN,
        passed=abs(observed - audience.holdout) <= tolerance,
        description=(f"{holdout or 0} of {members} consenting members held out ({observed:.1%}; "
                     f"configured {audience.holdout:.0%} ± {tolerance:.1%})"),
        metadata={"observed_share": dg.MetadataValue.float(round(observed, 4)),
                  "configured_share": dg.MetadataValue.float(audience.holdout),
                  "tolerance": dg.MetadataValue.float(round(tolerance, 4)),
                  "members": dg.MetadataValue.int(members)})
    return [size, consent_result, holdout_result]


SPECS = [spec for key, audience, target in SYNCS for spec in (
    dg.AssetCheckSpec(SIZE, asset=key, blocking=False,
                      description=f"{target.name} holds at most the {audience.segment} segment's "
                                  "members, and after a succeeded sync exactly the consenting, "
                                  "matchable members of the target arm (WARN, non-blocking)."),
    dg.AssetCheckSpec(CONSENT_CHECK, asset=key, blocking=False,
                      description=f"Everyone {target.name} holds gave {CONSENT[target.type]} "
                                  "consent (marts.customer_contacts) (WARN, non-blocking)."),
    dg.AssetCheckSpec(HOLDOUT, asset=key, blocking=False,
                      description=f"The held-out share of consenting members is "
                                  f"{audience.holdout:.0%} within 3 standard errors (at least "
                                  "2 points) (WARN, non-blocking)."))]


@dg.multi_asset_check(specs=SPECS, name="audience_checks", can_subset=True, pool="duckdb",
                      description="Each audience x destination: size vs segment, consent, "
                                  "holdout share.")
def audience_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """The checks of the audiences synced in this run."""
    selected = context.selected_asset_check_keys
    with warehouse.warehouse.connect() as con:
        for key, audience, target in SYNCS:
            try:
                results = audience_checks_for(con, key, audience, target)
            except duckdb.Error as exc:  # a table missing: said so, the run goes on
                results = [dg.AssetCheckResult(
                    asset_key=key, check_name=check, passed=False, severity=WARN,
                    description=f"could not check: {str(exc).splitlines()[0]}")
                    for check in (SIZE, CONSENT_CHECK, HOLDOUT)]
            yield from (r for r in results if dg.AssetCheckKey(key, r.check_name) in selected)
