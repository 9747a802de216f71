"""The checks on ML outputs and audiences, on a small real DuckDB warehouse: each passes on
whole, consistent tables and fails on the defect it is there for. (The end-to-end test shows
they all pass on a built store.)"""

from __future__ import annotations

import duckdb
import pytest

from activation import state
from activation.audiences import Audience, Target
from dagster_project.defs.activation import checks as audience
from dagster_project.defs.ml import checks as ml


@pytest.fixture
def con(tmp_path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts; create schema ml")
    con.execute("create table marts.customer_360 as select * from (values "
                "('C1', 2, 5), ('C2', 0, 3), ('C3', 0, 0)) t(customer_id, n_orders, "
                "n_sessions_lifetime)")
    con.execute("create table ml.customer_clusters as select * from (values "
                "('C1', 'customer_segmenter', '4'), ('C2', 'customer_segmenter', '4')) "
                "t(customer_id, model_name, model_version)")
    yield con
    con.close()


def _by_name(results):
    return {r.check_name: r for r in results}


CLUSTERS = ml.ML_OUTPUTS["customer_clusters"]


def test_ml_checks_pass_on_a_whole_stamped_table_scored_by_the_champion(con):
    once = ml.scored_once(con, CLUSTERS, "4")
    versions, unstamped = ml.stamped_versions(con, CLUSTERS)
    assert once.passed and once.metadata["rows"].value == 2
    assert ml.version_stamped(versions, unstamped, CLUSTERS).passed
    resolved = ml.champion_resolved("4", versions, CLUSTERS)
    assert resolved.passed and "resolves to v4" in resolved.description


def test_ml_checks_fail_on_a_missing_a_double_and_a_foreign_score(con):
    con.execute("delete from ml.customer_clusters where customer_id = 'C2'")
    con.execute("insert into ml.customer_clusters values ('C1', 'customer_segmenter', '4'), "
                "('C3', 'customer_segmenter', '4')")  # C1 twice, C3 never visited
    once = ml.scored_once(con, CLUSTERS, "4")
    assert not once.passed
    assert once.description == ("1 eligible customers without a score; 1 scored customers not "
                                "eligible; 1 duplicate rows (by customer_id)")


def test_ml_checks_fail_on_an_unstamped_row_and_a_version_that_is_not_the_champion(con):
    con.execute("insert into ml.customer_clusters values ('C9', null, null)")
    versions, unstamped = ml.stamped_versions(con, CLUSTERS)
    assert not ml.version_stamped(versions, unstamped, CLUSTERS).passed
    stale = ml.champion_resolved("5", versions, CLUSTERS)
    assert not stale.passed and "not the champion v5" in stale.description
    assert not ml.champion_resolved(None, versions, CLUSTERS).passed


def test_no_champion_and_an_empty_table_is_said_once_not_three_times(con):
    con.execute("delete from ml.customer_clusters")
    assert ml.scored_once(con, CLUSTERS, None).passed
    assert not ml.champion_resolved(None, set(), CLUSTERS).passed


WINBACK = Audience(key="winback", segment="rfm_at_risk", holdout=0.1,
                   targets=(Target(name="meta", type="meta"),))


@pytest.fixture
def synced(con) -> duckdb.DuckDBPyConnection:
    """200 at-risk members, all with ads consent but C0; 20 held out, 178 in Meta."""
    state.ensure_tables(con)
    con.execute("create table marts.segment_memberships as select 'C' || i as customer_id, "
                "'rfm_at_risk' as segment_key from range(200) t(i)")
    con.execute("create table marts.customer_contacts as select 'C' || i as customer_id, "
                "i > 0 as has_ads_consent, true as has_email_consent from range(200) t(i)")
    con.execute("insert into activation.sync_state select 'winback', 'meta', 'C' || i, 'h', "
                "null, null, now(), 'r1' from range(22, 200) t(i)")
    con.execute("insert into activation.sync_runs (run_id, audience_key, destination, status, "
                "n_desired, n_holdout, n_skipped, started_at) values "
                "('r1', 'winback', 'meta', 'succeeded', 178, 20, 1, now())")
    return con


def _audience(con) -> dict:
    return _by_name(audience.audience_checks_for(
        con, audience.dg.AssetKey(["activation", "winback_to_meta"]), WINBACK, WINBACK.targets[0]))


def test_audience_checks_pass_on_a_consistent_sync(synced):
    results = _audience(synced)
    assert all(r.passed for r in results.values()), {k: r.description for k, r in results.items()}
    assert results["size_vs_segment"].description == "178 in meta of 200 in segment rfm_at_risk (89%)"
    assert results["holdout_share"].metadata["observed_share"].value == round(20 / 199, 4)


def test_audience_checks_fail_on_extra_members_no_consent_and_a_skewed_holdout(synced):
    synced.execute("insert into activation.sync_state values "
                   "('winback', 'meta', 'C0', 'h', null, null, now(), 'r1')")  # no ads consent
    synced.execute("update activation.sync_runs set n_holdout = 60")
    results = _audience(synced)
    assert not results["size_vs_segment"].passed  # 179 held, the sync wanted 178
    assert not results["consent"].passed
    assert results["consent"].description == "1 of 179 in meta without ads consent"
    assert not results["holdout_share"].passed  # 60 of 239 is 25 %, not 10 % ± 5.8


def test_holdout_tolerance_narrows_with_size_to_two_points():
    assert audience.holdout_tolerance(0.1, 100) == pytest.approx(0.09)
    assert audience.holdout_tolerance(0.1, 1_000_000) == audience.MIN_TOLERANCE
