"""The fairness report: whom each segment and audience selects, by gender, age band, income band
and country, against all customers (`marts.segment_fairness`).

For a selection s (a segment of `marts.segment_memberships`, or an audience: the customers of its
segment in the audience's `target` arm of `activation.audience_assignments`, i.e. those it sends
to its destinations) and a group g of one attribute (`female`, `25-34`, `ES`, ...):

- selection rate(g) = members of s in g / customers in g (all of `marts.dim_customers`, grouped
  by the dbt view `marts.customer_fairness_groups`);
- ratio to the most selected group = rate(g) / the highest rate among the *eligible* known
  groups of that attribute (the reference). The four-fifths rule calls a ratio under 0.8 adverse
  impact.

A missing value (no gender, birth date, income band or country on record) is the group
`unknown` (in the dbt view): it has its own rate and ratio and can be flagged, but it is never the
reference (a selection that mostly picks customers of unknown gender says nothing of how it
treats women and men). Tiny groups make noisy rates (2 customers, 1 selected: 50 %), so a group
is *eligible* (it can be the reference and it can be flagged) only when it has at least
`min_group_size` customers and at least `min_expected_selected` members would be expected in it
at the selection's overall rate (n_group x n_selected / n_customers); other groups are reported
with their rate and ratio but never flagged.

A rule segment whose condition reads an attribute's column (`ATTRIBUTE_COLUMNS`: `age_band`
from age_band, age_years or birth_date, ...) selects on that attribute *by definition* ("Women
45+" leaves out men): its rows of that attribute, and those of every audience of that segment,
are reported with `is_by_definition` and never flagged. A row is *assessed* when it is eligible
and not by definition, and flagged when it is assessed and its ratio is under `threshold`.

The counts are aggregated in DuckDB (one pass over the memberships, grouping sets per attribute);
the rates come from fairlearn's `MetricFrame` over those counts, each (selection, group) given as
two rows, selected and not, weighted by their counts: the same rates as a MetricFrame over one
row per customer, without a million-row frame per segment.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from segments.rules import Rule

TABLE = "marts.segment_fairness"
# every customer's group of each attribute (dbt: marts/customer_fairness_groups.sql, from
# marts.dim_customers; a missing value is 'unknown')
GROUPS_TABLE = "marts.customer_fairness_groups"
ATTRIBUTES = ("gender", "age_band", "income_band", "country")
UNKNOWN = "unknown"
# the columns of marts.customer_360 each attribute is (or is derived from): a rule condition that
# reads one selects on the attribute by definition
ATTRIBUTE_COLUMNS: dict[str, tuple[str, ...]] = {
    "gender": ("gender",),
    "age_band": ("age_band", "age_years", "birth_date"),
    "income_band": ("income_band", "income_band_source"),
    # where a customer lives decides these too: a rule on the hemisphere, the climate or
    # today's weather in the customer's city selects by place, so by country
    "country": ("country", "city", "region", "hemisphere", "climate_zone",
                "weather_condition_today", "is_rainy_today", "is_hot_today",
                "precipitation_mm_today", "temp_min_today", "temp_max_today",
                "weather_condition_tomorrow", "is_rainy_tomorrow", "is_hot_tomorrow",
                "temp_max_tomorrow"),
}
RATIO_DECIMALS = 3  # ratios are shown to this many decimals, never rounded up to the threshold
COLUMNS = [
    "selection_type", "selection_key", "segment_key", "segment_type", "attribute", "group_value",
    "n_selected", "n_group", "n_selected_total", "n_customers", "share_of_selection",
    "share_of_customers", "selection_rate", "most_selected_group", "ratio_to_most_selected",
    "is_by_definition", "is_assessed", "is_flagged", "threshold", "min_group_size", "as_of_date",
]


class FairnessSettingError(ValueError):
    """A fairness setting (environment variable) that cannot be used."""


@dataclass(frozen=True)
class FairnessSettings:
    """When a group's selection-rate ratio is flagged.

    threshold: a ratio under it is flagged (0.8: the four-fifths rule);
    min_group_size: groups with fewer customers are reported, never flagged nor the reference;
    min_expected_selected: nor are groups where fewer members than this would be expected at the
    selection's overall rate (a 12-member segment says nothing about a 40-customer country).
    """

    threshold: float = 0.8
    min_group_size: int = 50
    min_expected_selected: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise FairnessSettingError(
                f"the fairness threshold must be in (0, 1], not {self.threshold}")
        if self.min_group_size < 1:
            raise FairnessSettingError(
                f"the minimum group size must be at least 1, not {self.min_group_size}")
        if self.min_expected_selected < 0:
            raise FairnessSettingError("the minimum expected selection must be >= 0, not "
                                       f"{self.min_expected_selected}")

    @classmethod
    def from_env(cls) -> FairnessSettings:
        """SEGMENTA_FAIRNESS_THRESHOLD (default 0.8), SEGMENTA_FAIRNESS_MIN_GROUP (default 50)."""
        def read(name: str, default: str, kind: type) -> float | int:
            text = os.environ.get(name, default).strip()
            try:
                return kind(text)
            except ValueError:
                raise FairnessSettingError(f"{name} must be a {kind.__name__}, not {text!r}"
                                           ) from None

        try:
            return cls(threshold=read("SEGMENTA_FAIRNESS_THRESHOLD", "0.8", float),
                       min_group_size=read("SEGMENTA_FAIRNESS_MIN_GROUP", "50", int))
        except FairnessSettingError as exc:
            raise FairnessSettingError(f"{exc} (SEGMENTA_FAIRNESS_THRESHOLD, "
                                       "SEGMENTA_FAIRNESS_MIN_GROUP)") from None


def by_definition(rules: Sequence[Rule]) -> dict[str, frozenset[str]]:
    """segment_key -> the attributes each rule segment selects on by definition: those with a
    column (ATTRIBUTE_COLUMNS) its condition reads. Rules that read none are left out."""
    selected = {}
    for rule in rules:
        attributes = frozenset(attribute for attribute, columns in ATTRIBUTE_COLUMNS.items()
                               if set(columns) & set(rule.columns))
        if attributes:
            selected[rule.segment_key] = attributes
    return selected


def shown_ratio(ratio: float, threshold: float | None = None) -> float:
    """`ratio` rounded to RATIO_DECIMALS decimals, or floored (exactly, from the float's own
    value) when rounding would lift a ratio under `threshold` to it or above: a flagged ratio
    never shows as the threshold (0.7996 -> 0.799 under 0.8; 0.7996 -> 0.8 with no threshold)."""
    if ratio is None or not np.isfinite(ratio):
        return ratio
    rounded = round(float(ratio), RATIO_DECIMALS)
    if threshold is None or ratio >= threshold or rounded < threshold:
        return rounded
    step = Decimal(1).scaleb(-RATIO_DECIMALS)
    return float(Decimal(float(ratio)).quantize(step, rounding=ROUND_FLOOR))


def ratio_text(ratio: float, threshold: float | None = None) -> str:
    """A ratio as the summary and the check show it: `shown_ratio`, RATIO_DECIMALS decimals."""
    return f"{shown_ratio(ratio, threshold):.{RATIO_DECIMALS}f}"


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_catalog = current_database()").fetchall()}


def selection_counts(con: duckdb.DuckDBPyConnection,
                     audiences: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """One row per selection x attribute x group, with `n_selected` (members of the selection in
    the group) and `n_group` (customers in the group), counted in DuckDB: every segment of
    marts.segment_memberships, and every audience (key, segment key) of `audiences` (its
    segment's members in the audience's target arm; none before its first sync). Every group
    of every attribute appears for every selection, with n_selected 0 where it has none."""
    tables = _tables(con)
    for needed in (GROUPS_TABLE, "marts.segment_memberships"):
        if needed not in tables:
            raise ValueError(f"{needed} does not exist yet: build the marts first (make run)")
    # never null there (dbt tests); coalesced all the same, as grouping sets tell the attribute
    # of a row by its one non-null group
    groups = ", ".join(f"coalesce({a}, '{UNKNOWN}') as {a}" for a in ATTRIBUTES)
    frame = pd.DataFrame({"audience_key": pd.Series([a for a, _ in audiences], dtype="string"),
                          "segment_key": pd.Series([s for _, s in audiences], dtype="string")})
    con.register("_fairness_audiences", frame)
    audience_members = ("""
        select 'audience' as selection_type, audiences.audience_key as selection_key,
               memberships.customer_id
        from _fairness_audiences as audiences
        inner join marts.segment_memberships as memberships
            on audiences.segment_key = memberships.segment_key
        inner join activation.audience_assignments as arms
            on arms.audience_key = audiences.audience_key
           and arms.customer_id = memberships.customer_id and arms.arm = 'target'
    """ if "activation.audience_assignments" in tables else """
        select 'audience' as selection_type, audience_key as selection_key,
               null::varchar as customer_id
        from _fairness_audiences where false
    """)
    sets = ", ".join(f"(selections.selection_type, selections.selection_key, customers.{a})"
                     for a in ATTRIBUTES)
    which = " ".join(f"when grouping(customers.{a}) = 0 then '{a}'" for a in ATTRIBUTES)
    try:
        return con.execute(f"""
            with customers as (
                select customer_id, {groups} from {GROUPS_TABLE}
            ),
            long as (
                select attribute, group_value, count(*) as n_group
                from customers
                unpivot (group_value for attribute in ({", ".join(ATTRIBUTES)}))
                group by all
            ),
            segment_types as (
                select segment_key, min(segment_type) as segment_type
                from marts.segment_memberships group by 1
            ),
            keys as (
                select 'segment' as selection_type, segment_key as selection_key, segment_key,
                       segment_type
                from segment_types
                union all
                select 'audience', audiences.audience_key, audiences.segment_key,
                       segment_types.segment_type
                from _fairness_audiences as audiences
                left join segment_types using (segment_key)
            ),
            selections as (
                select 'segment' as selection_type, segment_key as selection_key, customer_id
                from marts.segment_memberships
                union all
                {audience_members}
            ),
            selected as (
                select selections.selection_type, selections.selection_key,
                       case {which} end as attribute,
                       coalesce({", ".join(f"customers.{a}" for a in ATTRIBUTES)})
                           as group_value,
                       count(*) as n_selected
                from selections
                inner join customers using (customer_id)
                group by grouping sets ({sets})
            )
            select keys.selection_type, keys.selection_key, keys.segment_key, keys.segment_type,
                   long.attribute, long.group_value,
                   coalesce(selected.n_selected, 0)::bigint as n_selected,
                   long.n_group::bigint as n_group
            from keys
            cross join long
            left join selected
                on selected.selection_type = keys.selection_type
               and selected.selection_key = keys.selection_key
               and selected.attribute = long.attribute
               and selected.group_value = long.group_value
            order by 1, 2, 5, 6
        """).df()
    finally:
        con.unregister("_fairness_audiences")


def selection_rates(counts: pd.DataFrame) -> pd.Series:
    """fairlearn's selection rate of every (selection, attribute, group) of `counts`, from the
    counts alone: each becomes a selected row weighted n_selected and a not-selected row
    weighted n_group - n_selected, one MetricFrame per attribute with the selection as its
    control feature. Indexed like `counts`."""
    from fairlearn.metrics import MetricFrame, selection_rate

    rates = pd.Series(np.nan, index=counts.index, dtype=float)
    if counts.empty:
        return rates
    ids = counts["selection_type"].astype(str) + ":" + counts["selection_key"].astype(str)
    for _attribute, part in counts.groupby("attribute", sort=False):
        selected, rest = part["n_selected"], part["n_group"] - part["n_selected"]
        rows = pd.DataFrame({
            "selection": pd.concat([ids[part.index], ids[part.index]], ignore_index=True),
            "group": pd.concat([part["group_value"], part["group_value"]], ignore_index=True),
            "y": np.r_[np.ones(len(part)), np.zeros(len(part))],
            "weight": np.r_[selected.to_numpy(), rest.to_numpy()].astype(float),
        })
        frame = MetricFrame(
            metrics={"selection_rate": selection_rate}, y_true=rows["y"], y_pred=rows["y"],
            sensitive_features=rows["group"].astype(str).rename("group"),
            control_features=rows["selection"].rename("selection"),
            sample_params={"selection_rate": {"sample_weight": rows["weight"].to_numpy()}})
        by_group = frame.by_group["selection_rate"]
        keys = pd.MultiIndex.from_arrays([ids[part.index], part["group_value"].astype(str)])
        rates[part.index] = by_group.reindex(keys).to_numpy(dtype=float)
    return rates


def fairness_table(counts: pd.DataFrame, settings: FairnessSettings | None = None,
                   as_of_date: object = None,
                   selected_by_definition: Mapping[str, Collection[str]] | None = None,
                   ) -> pd.DataFrame:
    """The report from `selection_counts`: shares, selection rates (fairlearn), the ratio of
    each group's rate to the most selected eligible known group's, and the flags (module
    docstring). `selected_by_definition` maps a segment key to the attributes its rule selects
    on (`by_definition`): those rows, for the segment and its audiences, are never flagged."""
    settings = settings or FairnessSettings()
    selected_by_definition = selected_by_definition or {}
    missing = {"selection_type", "selection_key", "attribute", "group_value", "n_selected",
               "n_group"} - set(counts.columns)
    if missing:
        raise ValueError(f"counts lack column(s) {sorted(missing)}")
    report = counts.copy().reset_index(drop=True)
    for column in ("segment_key", "segment_type"):
        if column not in report:
            report[column] = report["selection_key"] if column == "segment_key" else None
    if (report["n_selected"] > report["n_group"]).any() or (report["n_selected"] < 0).any():
        raise ValueError("a group has more members selected than customers, or fewer than 0")
    per_attribute = report.groupby(["selection_type", "selection_key", "attribute"], sort=False)
    report["n_selected_total"] = per_attribute["n_selected"].transform("sum")
    report["n_customers"] = per_attribute["n_group"].transform("sum")
    report["share_of_selection"] = (report["n_selected"]
                                    / report["n_selected_total"].where(lambda n: n > 0))
    report["share_of_customers"] = report["n_group"] / report["n_customers"]
    report["selection_rate"] = selection_rates(report)
    expected = report["n_group"] * report["n_selected_total"] / report["n_customers"]
    eligible = ((report["n_group"] >= settings.min_group_size)
                & (expected >= settings.min_expected_selected)
                & (report["n_selected_total"] > 0))
    report["is_by_definition"] = [
        attribute in selected_by_definition.get(segment, ())
        for segment, attribute in zip(report["segment_key"], report["attribute"], strict=True)]
    report["is_by_definition"] = report["is_by_definition"].astype(bool)
    report["is_assessed"] = (eligible & ~report["is_by_definition"]).astype(bool)
    # the reference: the most selected eligible group whose value is known
    reference_rate = report["selection_rate"].where(
        eligible & (report["group_value"].astype(str) != UNKNOWN))
    reference = reference_rate.groupby([report["selection_type"], report["selection_key"],
                                        report["attribute"]], sort=False).transform("max")
    best = (report.assign(_rate=reference_rate.where(reference_rate > 0)).dropna(subset=["_rate"])
            .sort_values(["_rate", "n_group"], ascending=False)
            .drop_duplicates(["selection_type", "selection_key", "attribute"])
            .set_index(["selection_type", "selection_key", "attribute"])["group_value"])
    report["most_selected_group"] = pd.MultiIndex.from_frame(
        report[["selection_type", "selection_key", "attribute"]]).map(best.to_dict().get)
    report["ratio_to_most_selected"] = report["selection_rate"] / reference.where(reference > 0)
    report["is_flagged"] = (report["is_assessed"]
                            & (report["ratio_to_most_selected"] < settings.threshold)).astype(bool)
    report["threshold"] = settings.threshold
    report["min_group_size"] = settings.min_group_size
    report["as_of_date"] = as_of_date
    return report[COLUMNS]


def build_fairness(con: duckdb.DuckDBPyConnection, audiences: Sequence[tuple[str, str]] = (),
                   settings: FairnessSettings | None = None,
                   rules: Sequence[Rule] = ()) -> pd.DataFrame:
    """(Re)build marts.segment_fairness for every segment and the `audiences` (key, segment key)
    in one statement; `rules` (segments.rules.load_rules()) tell which attributes each rule
    segment selects on by definition. Returns the report."""
    counts = selection_counts(con, audiences)
    as_of = con.execute("select max(as_of_date) from marts.segment_memberships").fetchone()[0]
    report = fairness_table(counts, settings or FairnessSettings.from_env(), as_of_date=as_of,
                            selected_by_definition=by_definition(rules))
    con.register("_fairness_report", report)
    try:
        con.execute(f"""
            create or replace table {TABLE} as
            select selection_type::varchar as selection_type,
                   selection_key::varchar as selection_key, segment_key::varchar as segment_key,
                   segment_type::varchar as segment_type, attribute::varchar as attribute,
                   group_value::varchar as group_value, n_selected::bigint as n_selected,
                   n_group::bigint as n_group, n_selected_total::bigint as n_selected_total,
                   n_customers::bigint as n_customers,
                   share_of_selection::double as share_of_selection,
                   share_of_customers::double as share_of_customers,
                   selection_rate::double as selection_rate,
                   most_selected_group::varchar as most_selected_group,
                   ratio_to_most_selected::double as ratio_to_most_selected,
                   is_by_definition::boolean as is_by_definition,
                   is_assessed::boolean as is_assessed, is_flagged::boolean as is_flagged,
                   threshold::double as threshold, min_group_size::integer as min_group_size,
                   as_of_date::date as as_of_date
            from _fairness_report
        """)
    finally:
        con.unregister("_fairness_report")
    return report


def lowest_ratios(report: pd.DataFrame, flagged_only: bool = True) -> pd.DataFrame:
    """Per selection with an assessed group (only flagged ones by default): its lowest ratio of
    an assessed group, which attribute and group, and the most selected group; audiences
    first, then by ratio."""
    rows = report[report["is_flagged"]] if flagged_only else report[report["is_assessed"]]
    rows = rows.dropna(subset=["ratio_to_most_selected"])
    n_flagged = (report[report["is_flagged"]]
                 .groupby(["selection_type", "selection_key"]).size().rename("n_flagged_groups"))
    lowest = (rows.sort_values("ratio_to_most_selected")
              .drop_duplicates(["selection_type", "selection_key"])
              .join(n_flagged, on=["selection_type", "selection_key"]))
    lowest["n_flagged_groups"] = lowest["n_flagged_groups"].fillna(0).astype(int)
    lowest["_order"] = (lowest["selection_type"] != "audience").astype(int)
    return (lowest.sort_values(["_order", "ratio_to_most_selected", "selection_key"])
            [["selection_type", "selection_key", "attribute", "group_value", "n_group",
              "selection_rate", "most_selected_group", "ratio_to_most_selected",
              "n_flagged_groups"]].reset_index(drop=True))


SUMMARY_SEGMENTS = 5  # flagged segments the summary names (the lowest ratios); the rest counted


def summary_lines(report: pd.DataFrame, n_segments: int = SUMMARY_SEGMENTS) -> list[str]:
    """The fairness section of `segmenta summary`: every flagged audience, then the
    `n_segments` flagged segments with the lowest ratios (which group, against which; ratios
    to 3 decimals, never rounded up to the threshold) and how many more segments are flagged, or that none is flagged.
    Attributes a rule segment selects on by definition are never flagged, so never listed."""
    if report.empty:
        return ["Fairness (marts.segment_fairness): no segment yet"]
    threshold, size = report["threshold"].iloc[0], int(report["min_group_size"].iloc[0])
    lowest = lowest_ratios(report)
    if lowest.empty:
        return [(f"Fairness (marts.segment_fairness): no segment or audience selects a group "
                 f"of {size}+ customers at under {threshold:g} times its most selected group's "
                 "rate")]
    audiences = lowest[lowest["selection_type"] == "audience"]
    segments = lowest[lowest["selection_type"] != "audience"]
    shown = pd.concat([audiences, segments.head(n_segments)])
    width = max(len(key) for key in shown["selection_key"])
    lines = [(f"Fairness (marts.segment_fairness; lowest selection-rate ratio, flagged under "
              f"{threshold:g} for groups of {size}+ customers, not on what a rule selects by "
              "definition):")]
    lines += [f"  {row.selection_type:<8} {row.selection_key:<{width}}  "
              f"{ratio_text(row.ratio_to_most_selected, threshold)}  {row.attribute} {row.group_value} vs "
              f"{row.most_selected_group} ({row.n_flagged_groups} group"
              f"{'s' if row.n_flagged_groups != 1 else ''} flagged)"
              for row in shown.itertuples()]
    more = len(segments) - n_segments
    if more > 0:
        lines.append(f"  +{more} more segment{'s' if more != 1 else ''} flagged: "
                     f"select * from {TABLE} where is_flagged")
    return lines
