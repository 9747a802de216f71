"""The retraining policy (ml/retraining.py): when a daily run trains, and when it only scores."""

from __future__ import annotations

import datetime as dt

import pytest

from ml import retraining
from ml.retraining import Policy, decide

TODAY = dt.date(2026, 10, 31)
CONFIG = retraining.config_fingerprint({"features": ["a", "b"]})


def champion(trained: dt.date, customers: int = 1000, config: str = CONFIG) -> dict[str, str]:
    return retraining.tags(trained, customers, config)


def test_a_champion_of_this_week_scores_and_names_the_next_retrain():
    decision = decide(champion(TODAY - dt.timedelta(days=3)), TODAY, 1040, CONFIG, Policy(7, 0.1))
    assert not decision.retrain
    assert "2026-10-28" in decision.reason and "2026-11-04" in decision.reason


@pytest.mark.parametrize(("tags", "customers", "policy", "why"), [
    (None, 1000, Policy(), "no champion"),
    (champion(TODAY - dt.timedelta(days=7)), 1000, Policy(7, 0.1), "7 days older"),
    (champion(TODAY + dt.timedelta(days=1)), 1000, Policy(), "newer than today's"),
    (champion(TODAY), 1100, Policy(7, 0.1), "10% >= 10%"),
    (champion(TODAY), 880, Policy(7, 0.1), "12% >= 10%"),
    (champion(TODAY, config="other"), 1000, Policy(), "another configuration"),
    ({"promoted": "passed quality gate"}, 1000, Policy(), "does not record"),
    (champion(TODAY), 1000, Policy(0, 0.1), "every run"),
])
def test_what_makes_a_model_retrain(tags, customers, policy, why):
    decision = decide(tags, TODAY, customers, CONFIG, policy)
    assert decision.retrain and why in decision.reason


def test_the_policy_comes_from_the_environment_and_refuses_nonsense(monkeypatch):
    monkeypatch.setenv(retraining.EVERY_DAYS_ENV, "1")
    monkeypatch.setenv(retraining.DRIFT_ENV, "0.5")
    assert Policy.from_env() == Policy(1, 0.5)
    monkeypatch.setenv(retraining.EVERY_DAYS_ENV, "weekly")
    with pytest.raises(ValueError, match="SEGMENTA_RETRAIN_EVERY_DAYS='weekly'"):
        Policy.from_env()
    monkeypatch.setenv(retraining.EVERY_DAYS_ENV, "-1")
    with pytest.raises(ValueError, match="0 or more"):
        Policy.from_env()


def test_the_configuration_fingerprint_ignores_key_order():
    assert (retraining.config_fingerprint({"a": 1, "b": [2]})
            == retraining.config_fingerprint({"b": [2], "a": 1})
            != retraining.config_fingerprint({"a": 2, "b": [2]}))
