"""The fairness report (segments/fairness.py): hand-computed ratios and flags, the counts from a
real DuckDB warehouse, the same rates as fairlearn over one row per customer, the settings, and
the Dagster asset with its non-blocking check. The report on a whole built store is checked in
tests/test_end_to_end.py (it reuses that store)."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, selection_rate

from core.warehouse import Warehouse
from segments import fairness
from segments.fairness import FairnessSettingError, FairnessSettings, fairness_table


def _counts(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["selection_type", "selection_key", "attribute",
                                       "group_value", "n_selected", "n_group"])


def test_ratios_and_flags_by_hand():
    counts = _counts([
        ("segment", "s", "gender", "female", 40, 100),   # 0.40: the most selected
        ("segment", "s", "gender", "male", 30, 100),     # 0.30 / 0.40 = 0.75: flagged
        ("segment", "s", "gender", "unknown", 10, 10),   # 1.00, but 10 < 50 customers
        ("segment", "s", "country", "DE", 30, 60),       # 0.50: the most selected
        ("segment", "s", "country", "ES", 50, 150),      # 0.333 / 0.5 = 0.667: flagged
        ("audience", "a", "gender", "female", 3, 100),   # 3 members: 1.5 expected per group
        ("audience", "a", "gender", "male", 0, 100),
    ])
    report = fairness_table(counts, FairnessSettings(threshold=0.8, min_group_size=50))
    got = report.set_index(["selection_key", "attribute", "group_value"]).sort_index()

    female, male, unknown = (got.loc[("s", "gender", g)] for g in ("female", "male", "unknown"))
    assert female["selection_rate"] == pytest.approx(0.4)
    assert female["share_of_selection"] == pytest.approx(40 / 80)
    assert female["share_of_customers"] == pytest.approx(100 / 210)
    assert female["ratio_to_most_selected"] == pytest.approx(1.0) and not female["is_flagged"]
    assert male["ratio_to_most_selected"] == pytest.approx(0.75) and male["is_flagged"]
    # a tiny group is reported (its ratio against the reference too) but neither the reference
    # nor flagged
    assert unknown["ratio_to_most_selected"] == pytest.approx(2.5)
    assert not unknown["is_assessed"] and not unknown["is_flagged"]
    assert set(got.loc[("s", "gender"), "most_selected_group"]) == {"female"}

    es, de = got.loc[("s", "country", "ES")], got.loc[("s", "country", "DE")]
    assert es["ratio_to_most_selected"] == pytest.approx((50 / 150) / (30 / 60))
    assert es["is_flagged"] and not de["is_flagged"] and de["most_selected_group"] == "DE"
    assert (got.loc["s", "n_selected_total"] == 80).all()
    assert (got.loc["s", "n_customers"] == 210).all()

    # too few members for any group to be assessed: no reference group, so no ratio, no flag
    audience = got.loc["a"]
    assert audience.loc[("gender", "male"), "selection_rate"] == 0
    assert audience["ratio_to_most_selected"].isna().all()
    assert not audience["is_assessed"].any() and not audience["is_flagged"].any()

    lowest = fairness.lowest_ratios(report)
    assert lowest[["selection_key", "attribute", "group_value"]].values.tolist() == [
        ["s", "country", "ES"]]
    assert lowest["n_flagged_groups"].tolist() == [2]

    stricter = fairness_table(counts, FairnessSettings(threshold=0.7, min_group_size=5,
                                                       min_expected_selected=1))
    flagged = stricter.loc[stricter["is_flagged"] & (stricter["selection_key"] == "s"),
                           ["attribute", "group_value"]]
    # with groups of 5 counted (3.8 expected) the 10 unknowns (rate 1.0) are assessed, but
    # 'unknown' is never the reference: women (0.4) stay it, men (0.75) pass at 0.7
    assert sorted(map(tuple, flagged.values.tolist())) == [("country", "ES")]
    assert set(stricter.loc[stricter["selection_key"] == "s"].query(
        "attribute == 'gender'")["most_selected_group"]) == {"female"}


def test_unknown_is_reported_but_never_the_reference():
    """The user's case: 83 customers of unknown gender, 10 selected (0.12), made women (0.083)
    0.69 and men (0.093) 0.77 of it, both flagged. The reference is the most selected known
    group; 'unknown' keeps its own ratio (above 1 here) and could still be flagged when low."""
    counts = _counts([
        ("segment", "s", "gender", "female", 83, 1000),
        ("segment", "s", "gender", "male", 93, 1000),
        ("segment", "s", "gender", "unknown", 10, 83),
        ("segment", "t", "gender", "female", 100, 1000),
        ("segment", "t", "gender", "male", 90, 1000),
        ("segment", "t", "gender", "unknown", 2, 100),   # 0.02 / 0.1: flagged, not reference
    ])
    got = fairness_table(counts).set_index(["selection_key", "group_value"])
    assert set(got.loc["s", "most_selected_group"]) == {"male"}
    assert got.loc[("s", "female"), "ratio_to_most_selected"] == pytest.approx(83 / 93)
    assert got.loc[("s", "unknown"), "ratio_to_most_selected"] == pytest.approx(
        (10 / 83) / (93 / 1000))
    assert got.loc[("s", "unknown"), "is_assessed"] and not got.loc["s", "is_flagged"].any()
    assert got.loc[("t", "unknown"), "ratio_to_most_selected"] == pytest.approx(0.2)
    assert got.loc["t", "is_flagged"].tolist() == [False, False, True]
    # only unknowns selected: no known group to compare with, so no ratio and no flag
    only = fairness_table(_counts([("segment", "u", "gender", "female", 0, 1000),
                                   ("segment", "u", "gender", "unknown", 50, 100)]))
    assert only["ratio_to_most_selected"].isna().all() and not only["is_flagged"].any()
    assert only["most_selected_group"].isna().all()


def _rules(tmp_path, conditions: dict[str, str]):
    from segments.rules import load_rules

    path = tmp_path / "rules.yml"
    path.write_text("segments:\n" + "".join(
        f"  - key: {key}\n    name: {key}\n    kind: hybrid\n    condition: \"{condition}\"\n"
        for key, condition in conditions.items()))
    return load_rules(path)


def test_what_a_rule_selects_by_definition_is_reported_never_flagged(tmp_path):
    rules = _rules(tmp_path, {
        "women_45_plus": "gender = 'female' and age_band in ('45-54', '55-64', '65+')",
        "born_early": "birth_date < date '1970-01-01'",
        "rich": "income_band_source = 'profile' and n_orders > 2",
        "spain": "country = 'ES' and is_rainy_today",
        "mobile": "main_device = 'mobile'",
    })
    assert fairness.by_definition(rules) == {
        "rule_women_45_plus": {"gender", "age_band"}, "rule_born_early": {"age_band"},
        "rule_rich": {"income_band"}, "rule_spain": {"country"}}
    # the shipped rules: the user's three examples
    from segments.rules import load_rules

    shipped = fairness.by_definition(load_rules())
    assert shipped["rule_rainy_today_spain"] == {"country"}
    assert shipped["rule_affluent_full_price"] == {"income_band"}
    assert shipped["rule_women_45_plus"] == {"gender", "age_band"}

    rows = [("segment", "rule_women_45_plus", "gender", "female", 60, 100),
            ("segment", "rule_women_45_plus", "gender", "male", 0, 100),
            ("segment", "rule_women_45_plus", "country", "ES", 40, 100),
            ("segment", "rule_women_45_plus", "country", "DE", 20, 100)]  # 0.5: a proxy
    audience = [("audience", "women_crm", *row[2:]) for row in rows]
    rfm = [("segment", "rfm_women", *row[2:]) for row in rows]
    counts = _counts(rows + audience + rfm)
    counts["segment_key"] = counts["selection_key"].replace({"women_crm": "rule_women_45_plus"})
    report = fairness_table(counts, selected_by_definition=fairness.by_definition(rules))
    got = report.set_index(["selection_key", "attribute", "group_value"])
    for key in ("rule_women_45_plus", "women_crm"):
        male = got.loc[(key, "gender", "male")]
        # reported, with its ratio against the reference, but not judged
        assert male["is_by_definition"] and male["ratio_to_most_selected"] == 0
        assert not male["is_assessed"] and not male["is_flagged"]
        assert got.loc[(key, "gender", "female"), "most_selected_group"] == "female"
        de = got.loc[(key, "country", "DE")]  # not in the condition: flagged as ever
        assert not de["is_by_definition"] and de["is_flagged"]
    # the same selection as an RFM segment is judged on gender too
    assert got.loc[("rfm_women", "gender", "male"), "is_flagged"]
    assert not got.loc["rfm_women", "is_by_definition"].any()
    lowest = fairness.lowest_ratios(report).set_index("selection_key")
    assert lowest.loc["rule_women_45_plus", "attribute"] == "country"
    assert lowest.loc["rfm_women", "attribute"] == "gender"


def test_build_fairness_marks_a_rule_segments_own_attributes(tmp_path):
    warehouse = _store(tmp_path / "w.duckdb")
    rules = _rules(tmp_path, {"picked": "gender in ('female', 'male')"})
    with warehouse.connect() as con:
        fairness.build_fairness(con, [("picked_crm", "rule_picked")], FairnessSettings(), rules)
        mart = con.execute(f"select * from {fairness.TABLE}").df()
    assert str(mart["is_by_definition"].dtype) == "bool"
    by_definition = mart[mart["is_by_definition"]]
    assert set(by_definition["attribute"]) == {"gender"}
    assert set(by_definition["selection_key"]) == {"rule_picked", "picked_crm"}
    assert len(by_definition) == 2 * 3 and not by_definition["is_flagged"].any()
    assert (mart["is_flagged"] == (mart["is_assessed"] & (mart["ratio_to_most_selected"]
                                                          < mart["threshold"]))).all()


def test_a_flagged_ratio_never_shows_as_the_threshold():
    """3 decimals; a ratio under the threshold that would round to it is floored instead."""
    assert fairness.ratio_text(0.7996, 0.8) == "0.799"
    assert fairness.ratio_text(0.79996, 0.8) == "0.799"
    assert fairness.ratio_text(np.nextafter(0.8, 0), 0.8) == "0.799"
    assert fairness.ratio_text(0.7996) == "0.800"  # no threshold: plain rounding
    assert fairness.ratio_text(0.35 / 0.5, 0.8) == "0.700"  # 0.6999999999999999
    assert fairness.ratio_text(0.8, 0.8) == "0.800" and fairness.ratio_text(0.0, 0.8) == "0.000"
    assert fairness.ratio_text(0.8002, 0.8) == "0.800"  # not under it: rounded
    assert np.isnan(fairness.shown_ratio(np.nan, 0.8))
    counts = _counts([("segment", "s", "gender", "female", 10_000, 100_000),
                      ("segment", "s", "gender", "male", 7_996, 100_000)])  # 0.7996
    report = fairness_table(counts)
    assert report["is_flagged"].tolist() == [False, True]
    [_, line] = fairness.summary_lines(report)
    assert line.split()[2] == "0.799"


def test_inconsistent_counts_are_refused():
    with pytest.raises(ValueError, match="more members selected than customers"):
        fairness_table(_counts([("segment", "s", "gender", "f", 5, 4)]))
    with pytest.raises(ValueError, match="lack column"):
        fairness_table(_counts([]).drop(columns="n_group"))


def _store(path) -> Warehouse:
    """A warehouse of 1,000 customers in known groups (as the dbt view
    marts.customer_fairness_groups gives them), a rule segment selecting 60 % of women, 20 % of
    men and no one of unknown gender, and an audience on it whose target arm holds 9 in 10 of
    its members."""
    warehouse = Warehouse(path)
    with warehouse.transaction() as con:
        con.execute("create schema marts; create schema activation")
        con.execute("""
            create table marts.customer_fairness_groups as
            select 'C' || lpad(i::varchar, 4, '0') as customer_id,
                   case when i % 10 < 5 then 'female' when i % 10 < 9 then 'male'
                        else 'unknown' end as gender,
                   case when i % 2 = 0 then '25-34' else '45-54' end as age_band,
                   case when i % 5 = 0 then 'unknown' when i % 5 < 3 then 'low'
                        else 'high' end as income_band,
                   case when i % 4 = 0 then 'ES' else 'DE' end as country
            from range(1000) as t(i)
        """)
        con.execute("""
            create table marts.segment_memberships as
            select customer_id, 'rule_picked' as segment_key, 'Picked' as segment_name,
                   'rule' as segment_type, date '2026-10-31' as as_of_date
            from marts.customer_fairness_groups
            where (gender = 'female' and substr(customer_id, 2)::int // 10 % 5 < 3)
               or (gender = 'male' and substr(customer_id, 2)::int // 10 % 5 = 0)
        """)
        con.execute("""
            create table activation.audience_assignments as
            select 'picked_crm' as audience_key, customer_id,
                   case when hash(customer_id) % 10 = 0 then 'holdout' else 'target' end as arm,
                   0.1 as holdout_share, now()::timestamp as first_assigned_at
            from marts.segment_memberships
            union all  -- a former member: assigned once, no longer in the segment
            select 'picked_crm', 'C0009', 'target', 0.1, now()::timestamp
        """)
    return warehouse


def test_counts_from_the_warehouse(tmp_path):
    warehouse = _store(tmp_path / "w.duckdb")
    with warehouse.connect() as con:
        counts = fairness.selection_counts(con, [("picked_crm", "rule_picked"),
                                                 ("not_synced", "rule_picked")])
        members = con.execute("select customer_id from marts.segment_memberships").df()
        target = con.execute("select customer_id from activation.audience_assignments "
                             "where arm = 'target' and customer_id in (select customer_id from "
                             "marts.segment_memberships)").df()
    got = counts.set_index(["selection_key", "attribute", "group_value"]).sort_index()
    assert set(got.loc["rule_picked"].index) == {
        ("gender", "female"), ("gender", "male"), ("gender", "unknown"), ("age_band", "25-34"),
        ("age_band", "45-54"), ("income_band", "low"), ("income_band", "high"),
        ("income_band", "unknown"), ("country", "ES"), ("country", "DE")}
    assert got.loc[("rule_picked", "gender", "female"), "n_group"] == 500
    assert got.loc[("rule_picked", "gender", "unknown"), "n_group"] == 100
    assert got.loc[("rule_picked", "gender", "unknown"), "n_selected"] == 0
    assert got.loc[("rule_picked", "income_band", "unknown"), "n_group"] == 200
    assert got.loc[("rule_picked", "country", "ES"), "n_group"] == 250
    for attribute in fairness.ATTRIBUTES:
        assert got.loc[("rule_picked", attribute), "n_selected"].sum() == len(members)
        # the audience: its segment's members in the target arm (not the former member)
        assert got.loc[("picked_crm", attribute), "n_selected"].sum() == len(target)
        # an audience never synced: every group, none selected
        assert got.loc[("not_synced", attribute), "n_selected"].sum() == 0
    assert counts.loc[counts["selection_key"] == "picked_crm", "segment_key"].eq(
        "rule_picked").all()


def test_report_equals_fairlearn_over_one_row_per_customer(tmp_path):
    """The mart (counts as sample weights) against a MetricFrame over unaggregated rows."""
    warehouse = _store(tmp_path / "w.duckdb")
    settings = FairnessSettings(min_group_size=1, min_expected_selected=0)
    with warehouse.connect() as con:
        fairness.build_fairness(con, [("picked_crm", "rule_picked")], settings)
        mart = con.execute(f"select * from {fairness.TABLE}").df()
        customers = con.execute("""
            select customers.*,
                   customers.customer_id in (select customer_id from marts.segment_memberships)
                       as in_segment,
                   customers.customer_id in (
                       select customer_id from activation.audience_assignments
                       where arm = 'target' and customer_id in (
                           select customer_id from marts.segment_memberships)) as in_audience
            from marts.customer_fairness_groups as customers
        """).df()
    for key, column in (("rule_picked", "in_segment"), ("picked_crm", "in_audience")):
        y = customers[column].astype(int)
        for attribute in fairness.ATTRIBUTES:
            direct = MetricFrame(metrics=selection_rate, y_true=y, y_pred=y,
                                 sensitive_features=customers[attribute])
            rows = mart[(mart["selection_key"] == key) & (mart["attribute"] == attribute)]
            rates = rows.set_index("group_value")["selection_rate"]
            pd.testing.assert_series_equal(rates.sort_index(), direct.by_group.sort_index(),
                                           check_names=False, check_index_type=False)
            assert rows["ratio_to_most_selected"].min() == pytest.approx(
                direct.ratio(method="between_groups"))
            assert (rows["n_group"] == rows["group_value"].map(
                customers[attribute].value_counts())).all()
    assert len(mart) == 2 * (3 + 2 + 3 + 2)
    gender = mart[(mart["selection_key"] == "rule_picked") & (mart["attribute"] == "gender")]
    # 60 % of women, 20 % of men: 1/3, flagged; no one of unknown gender: 0, flagged
    assert gender.set_index("group_value")["ratio_to_most_selected"].round(2).to_dict() == {
        "female": 1.0, "male": 0.33, "unknown": 0.0}
    assert gender.set_index("group_value")["is_flagged"].to_dict() == {
        "female": False, "male": True, "unknown": True}


def test_missing_marts_are_a_clear_error():
    with duckdb.connect() as con, pytest.raises(ValueError, match="marts.customer_fairness_groups "
                                                "does not exist yet"):
        fairness.selection_counts(con)


def test_settings_from_the_environment(monkeypatch):
    assert FairnessSettings.from_env() == FairnessSettings(0.8, 50)
    monkeypatch.setenv("SEGMENTA_FAIRNESS_THRESHOLD", "0.9")
    monkeypatch.setenv("SEGMENTA_FAIRNESS_MIN_GROUP", "200")
    assert FairnessSettings.from_env() == FairnessSettings(0.9, 200)
    monkeypatch.setenv("SEGMENTA_FAIRNESS_THRESHOLD", "80%")
    with pytest.raises(FairnessSettingError, match="SEGMENTA_FAIRNESS_THRESHOLD must be a "
                                                   "float, not '80%'"):
        FairnessSettings.from_env()
    monkeypatch.setenv("SEGMENTA_FAIRNESS_THRESHOLD", "1.5")
    with pytest.raises(FairnessSettingError, match=r"in \(0, 1\]"):
        FairnessSettings.from_env()


def test_the_asset_writes_the_mart_and_its_check_warns_on_a_flagged_audience(tmp_path):
    """The shipped audiences file sends rfm_champions as `champions_newsletter`: in this store
    that segment leaves out men, so the audience is flagged and the check fails with severity
    WARN (non-blocking), naming it."""
    from dagster_project.defs.segments.fairness import (
        FAIRNESS_CHECK,
        segment_fairness,
        selection_ratio,
    )
    from dagster_project.resources import WarehouseResource

    warehouse = _store(tmp_path / "w.duckdb")
    with warehouse.transaction() as con:
        con.execute("update marts.segment_memberships set segment_key = 'rfm_champions'")
        con.execute("update activation.audience_assignments "
                    "set audience_key = 'champions_newsletter'")
    result = dg.materialize([segment_fairness, selection_ratio],
                            resources={"warehouse": WarehouseResource(path=str(warehouse.path))})
    assert result.success
    [materialization] = result.get_asset_materialization_events()
    # in the segment and in the audience: men, unknown gender, and the age band with fewer
    # women (a proxy: ages are not selected on)
    assert materialization.materialization.metadata["flagged_groups"].value == 6
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == FAIRNESS_CHECK and not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description.startswith(
        "audiences under a selection-rate ratio of 0.8: champions_newsletter (0.")
    assert ("; 1 segment under it: rfm_champions (0.000, gender unknown vs female)"
            in evaluation.description)
    assert evaluation.metadata["flagged_audiences"].value == 1
    # rfm_champions is no rule: nothing selected by definition
    assert evaluation.metadata["by_definition_groups"].value == 0
    assert "champions_newsletter" in evaluation.metadata["audiences"].value
    mart = warehouse.query_df(f"select * from {fairness.TABLE}")
    assert set(mart["selection_key"]) == {"rfm_champions", "champions_newsletter",
                                          "at_risk_winback", "cart_abandoners"}
    flagged = mart[mart["is_flagged"]]
    assert (flagged["ratio_to_most_selected"] < 0.8).all() and flagged["is_assessed"].all()


def test_a_selection_at_one_million_customers_is_counted_not_listed():
    """selection_rates takes counts: a group of a million customers is two weighted rows."""
    counts = _counts([("segment", "s", "gender", "f", 600_000, 1_000_000),
                      ("segment", "s", "gender", "m", 1, 3)])
    rates = fairness.selection_rates(counts)
    assert rates.tolist() == pytest.approx([0.6, 1 / 3])
    assert np.isfinite(rates).all()


def test_summary_lists_flagged_selections_with_their_lowest_ratio():
    counts = _counts([
        ("segment", "rule_young", "age_band", "18-24", 60, 100),
        ("segment", "rule_young", "age_band", "65+", 6, 100),      # 0.1: flagged
        ("segment", "rule_young", "gender", "female", 33, 100),
        ("segment", "rule_young", "gender", "male", 33, 100),
        ("audience", "young_crm", "age_band", "18-24", 50, 100),
        ("audience", "young_crm", "age_band", "65+", 35, 100),     # 0.7: flagged
        ("segment", "rfm_even", "age_band", "18-24", 30, 100),
        ("segment", "rfm_even", "age_band", "65+", 30, 100),
    ])
    lines = fairness.summary_lines(fairness_table(counts))
    assert lines[0] == ("Fairness (marts.segment_fairness; lowest selection-rate ratio, flagged "
                        "under 0.8 for groups of 50+ customers, not on what a rule selects by "
                        "definition):")
    assert [line.split() for line in lines[1:]] == [
        ["audience", "young_crm", "0.700", "age_band", "65+", "vs", "18-24", "(1", "group",
         "flagged)"],
        ["segment", "rule_young", "0.100", "age_band", "65+", "vs", "18-24", "(1", "group",
         "flagged)"]]
    # the same rule selecting on age by definition: nothing left to flag
    by_definition = fairness_table(counts, selected_by_definition={"rule_young": {"age_band"}})
    assert [line.split()[1] for line in fairness.summary_lines(by_definition)[1:]] == [
        "young_crm"]
    even = fairness.summary_lines(fairness_table(counts[counts["selection_key"] == "rfm_even"]))
    assert even == [("Fairness (marts.segment_fairness): no segment or audience selects a "
                     "group of 50+ customers at under 0.8 times its most selected group's rate")]


def test_summary_lists_audiences_then_at_most_five_segments():
    """Every flagged audience, the 5 segments with the lowest ratios, then a count of the rest
    and the query that lists them."""
    rows = []
    for i in range(8):  # segment s<i>: ratio 0.1 * (i + 1)... all flagged under 0.8
        rows += [("segment", f"s{i}", "gender", "female", 50, 100),
                 ("segment", f"s{i}", "gender", "male", 5 * (i + 1), 100)]
    for key, male in (("a_low", 10), ("a_high", 35)):
        rows += [("audience", key, "gender", "female", 50, 100),
                 ("audience", key, "gender", "male", male, 100)]
    lines = fairness.summary_lines(fairness_table(_counts(rows)))
    assert [line.split()[:3] for line in lines[1:-1]] == [
        ["audience", "a_low", "0.200"], ["audience", "a_high", "0.700"],
        ["segment", "s0", "0.100"], ["segment", "s1", "0.200"], ["segment", "s2", "0.300"],
        ["segment", "s3", "0.400"], ["segment", "s4", "0.500"]]
    assert lines[-1] == ("  +2 more segments flagged: select * from marts.segment_fairness "
                         "where is_flagged")
    six = fairness.summary_lines(fairness_table(_counts(rows[:12])))
    assert six[-1].startswith("  +1 more segment flagged: ") and len(six) == 1 + 5 + 1
    five = fairness.summary_lines(fairness_table(_counts(rows[:10])))
    assert len(five) == 1 + 5 and "more" not in five[-1]
