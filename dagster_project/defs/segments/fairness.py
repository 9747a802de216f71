"""The `marts/segment_fairness` asset and its non-blocking `selection_ratio` check.

The counts, rates and flags are computed in `segments/fairness.py`; the settings come from the
environment (`SEGMENTA_FAIRNESS_THRESHOLD`, `SEGMENTA_FAIRNESS_MIN_GROUP`; README, "Fairness
report"), and which attributes each rule segment selects on by definition from its condition
(`segments/rules.yml`, or `SEGMENTA_RULES`).
"""

import dagster as dg
import pandas as pd

from activation.audiences import configured_audiences
from dagster_project.defs.activation.assets import sync_assets
from dagster_project.resources import WarehouseResource
from segments import fairness
from segments.rules import RuleError, load_rules

FAIRNESS_CHECK = "selection_ratio"
SEGMENTS_NAMED = 5  # flagged segments named in the check's description (the metadata has all)
KEY = dg.AssetKey(["marts", "segment_fairness"])


def _markdown(frame: pd.DataFrame, threshold: float | None = None) -> str:
    """A table for the metadata, numbers to 3 decimals; a ratio under `threshold` never shows
    as it (a flagged 0.7996 shows 0.799, not 0.8: `fairness.shown_ratio`)."""
    if not len(frame):
        return "(none)"
    frame = frame.copy()
    if "ratio_to_most_selected" in frame:
        frame["ratio_to_most_selected"] = frame["ratio_to_most_selected"].map(
            lambda ratio: fairness.shown_ratio(ratio, threshold))
    return frame.round(3).to_markdown(index=False)


def _by_definition(report: pd.DataFrame) -> pd.DataFrame:
    """Each rule segment and audience with the attributes it selects on by definition."""
    rows = report[report["is_by_definition"]]
    return (rows.groupby(["selection_type", "selection_key"])["attribute"]
            .agg(lambda values: ", ".join(sorted(set(values)))).reset_index())


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["marts", "segment_memberships"]),
          dg.AssetKey(["marts", "customer_fairness_groups"]),
          *(a.key for a in sync_assets)],
    # after the syncs it reports on (audiences as sent), so in their group: in `segments` it
    # would be an edge back from activation
    group_name="activation",
    kinds={"duckdb", "python"},
    pool="duckdb",
)
def segment_fairness(context: dg.AssetExecutionContext,
                     warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Each segment's and audience's selection rate by gender, age band, income band and
    country, and its ratio to the most selected known group (four-fifths rule), one row per
    group; a rule segment's own attributes (and its audiences') are marked, never flagged."""
    try:
        settings = fairness.FairnessSettings.from_env()
        rules = load_rules()
    except (fairness.FairnessSettingError, RuleError) as exc:
        raise dg.Failure(description=str(exc)) from exc
    audiences = [(a.key, a.segment) for a in configured_audiences()]
    with warehouse.warehouse.connect() as con:
        report = fairness.build_fairness(con, audiences, settings, rules)
    lowest = fairness.lowest_ratios(report)
    context.log.info(f"{report['selection_key'].nunique()} segments and audiences, "
                     f"{int(report['is_flagged'].sum())} groups under a ratio of "
                     f"{settings.threshold}")
    return dg.MaterializeResult(metadata={
        "rows": dg.MetadataValue.int(len(report)),
        "segments": dg.MetadataValue.int(
            report.loc[report["selection_type"] == "segment", "selection_key"].nunique()),
        "audiences": dg.MetadataValue.int(len(audiences)),
        "threshold": dg.MetadataValue.float(settings.threshold),
        "min_group_size": dg.MetadataValue.int(settings.min_group_size),
        "flagged_groups": dg.MetadataValue.int(int(report["is_flagged"].sum())),
        "by_definition_groups": dg.MetadataValue.int(int(report["is_by_definition"].sum())),
        "lowest_ratios": dg.MetadataValue.md(_markdown(lowest, settings.threshold)),
        "selected_by_definition": dg.MetadataValue.md(_markdown(_by_definition(report))),
    })


@dg.asset_check(
    asset=KEY,
    name=FAIRNESS_CHECK,
    blocking=False,
    description="Every audience selects each group of sufficient size at no less than the "
                "threshold (SEGMENTA_FAIRNESS_THRESHOLD, default 0.8) times the rate of its most "
                "selected known group ('unknown' is never the reference); an attribute its rule "
                "segment selects on by definition (a column of the condition) is not judged. "
                f"Flagged segments are listed too (the lowest {SEGMENTS_NAMED} in the description, "
                "all in the metadata); ratios to 3 decimals, a flagged one never rounded up to "
                "the threshold. A warning, never blocks.",
)
def selection_ratio(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Fails (WARN) when an audience has a flagged group in marts.segment_fairness."""
    report = warehouse.warehouse.query_df(f"select * from {fairness.TABLE}")
    lowest = fairness.lowest_ratios(report)
    audiences = lowest[lowest["selection_type"] == "audience"]
    segments = lowest[lowest["selection_type"] == "segment"]
    threshold = (float(report["threshold"].iloc[0]) if len(report)
                 else fairness.FairnessSettings.from_env().threshold)

    def named(frame: pd.DataFrame) -> str:
        return ", ".join(f"{row.selection_key} "
                         f"({fairness.ratio_text(row.ratio_to_most_selected, threshold)}"
                         f", {row.attribute} {row.group_value} vs {row.most_selected_group})"
                         for row in frame.itertuples())

    description = (f"audiences under a selection-rate ratio of {threshold}: {named(audiences)}"
                   if len(audiences) else f"no audience under a ratio of {threshold}")
    if len(segments):  # all of them in the metadata; the lowest few here
        more = len(segments) - SEGMENTS_NAMED
        description += (f"; {len(segments)} segment{'s' if len(segments) > 1 else ''} under "
                        f"it: {named(segments.head(SEGMENTS_NAMED))}"
                        + (f", +{more} more (metadata `segments`)" if more > 0 else ""))
    by_definition = int(report["is_by_definition"].sum()) if len(report) else 0
    if by_definition:
        description += (f"; {by_definition} groups of attributes a rule selects on by "
                        "definition not judged")
    return dg.AssetCheckResult(
        passed=audiences.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "threshold": dg.MetadataValue.float(threshold),
            "flagged_audiences": dg.MetadataValue.int(len(audiences)),
            "flagged_segments": dg.MetadataValue.int(len(segments)),
            "by_definition_groups": dg.MetadataValue.int(by_definition),
            "audiences": dg.MetadataValue.md(_markdown(audiences, threshold)),
            "segments": dg.MetadataValue.md(_markdown(segments, threshold)),
            "flagged_groups": dg.MetadataValue.md(_markdown(
                report.loc[report["is_flagged"], ["selection_type", "selection_key",
                                                  "attribute", "group_value", "n_group",
                                                  "n_selected", "selection_rate",
                                                  "ratio_to_most_selected"]], threshold)),
        },
    )
