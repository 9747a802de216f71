"""When a model retrains, and when the daily run only scores with the champion.

Scoring is daily and cheap: every run scores today's customers with each model's champion.
Training (fitting, the offline evaluation against baselines, logging and registering a
version) is what costs minutes at scale, and retraining on one more day of data changes little.
So a model retrains when one of these holds, and otherwise scores with its champion:

- there is no champion yet, or it was trained on another configuration (features, settings);
- the champion's training data ends `SEGMENTA_RETRAIN_EVERY_DAYS` (default 7) or more days
  before today's data, or after it (the store was rebuilt with less data);
- the number of customers the model covers moved by `SEGMENTA_RETRAIN_ON_DRIFT` (default 0.1,
  10 %) or more since the champion was trained;
- the run asks for it (`segmenta run --retrain`, `--force`, or SEGMENTA_RETRAIN_EVERY_DAYS=0).

Days are the data's days (the as-of date of the training data), not the wall clock: a rerun on
the same data never retrains, and a backfill retrains as its data moves on. A version that is
trained and rejected by its gate leaves the champion in place, so the next run tries again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass

EVERY_DAYS_ENV = "SEGMENTA_RETRAIN_EVERY_DAYS"
DRIFT_ENV = "SEGMENTA_RETRAIN_ON_DRIFT"
DEFAULT_EVERY_DAYS = 7
DEFAULT_DRIFT = 0.1
# tags on every trained model version
AS_OF_TAG, CUSTOMERS_TAG, CONFIG_TAG = "trained_as_of", "trained_customers", "training_config"


@dataclass(frozen=True)
class Policy:
    every_days: int = DEFAULT_EVERY_DAYS
    drift: float = DEFAULT_DRIFT

    @classmethod
    def from_env(cls) -> Policy:
        def number(name: str, default, kind):
            text = os.environ.get(name, "").strip()
            try:
                value = kind(text) if text else default
            except ValueError:
                raise ValueError(f"{name}={text!r} is not a {kind.__name__}") from None
            if value < 0:
                raise ValueError(f"{name}={text!r} must be 0 or more")
            return value

        return cls(number(EVERY_DAYS_ENV, DEFAULT_EVERY_DAYS, int),
                   number(DRIFT_ENV, DEFAULT_DRIFT, float))


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reason: str


def config_fingerprint(config: object) -> str:
    """A short, stable fingerprint of what a model is trained with (features, settings)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decide(champion_tags: dict[str, str] | None, as_of: dt.date, n_customers: int,
           config: str, policy: Policy | None = None) -> Decision:
    """Whether to retrain, given the champion's tags (None: no champion) and today's data."""
    policy = policy or Policy.from_env()
    if champion_tags is None:
        return Decision(True, "no champion yet")
    if policy.every_days == 0:
        return Decision(True, f"{EVERY_DAYS_ENV}=0: retrain on every run")
    if AS_OF_TAG not in champion_tags:
        return Decision(True, "the champion does not record its training data")
    if champion_tags.get(CONFIG_TAG) != config:
        return Decision(True, "the champion was trained with another configuration")
    trained = dt.date.fromisoformat(champion_tags[AS_OF_TAG])
    age = (as_of - trained).days
    if age < 0:
        return Decision(True, f"the champion's data as of {trained} is newer than today's "
                              f"({as_of})")
    if age >= policy.every_days:
        return Decision(True, f"the champion's data as of {trained} is {age} days older than "
                              f"today's (retrain every {policy.every_days} days)")
    before = int(champion_tags.get(CUSTOMERS_TAG, 0))
    moved = abs(n_customers - before) / max(before, 1)
    if moved >= policy.drift:
        return Decision(True, f"customers {before:,} -> {n_customers:,} since the champion was "
                              f"trained ({moved:.0%} >= {policy.drift:.0%})")
    due = trained + dt.timedelta(days=policy.every_days)
    return Decision(False, f"scored with the champion, trained on the data as of {trained} "
                           f"({age} day{'' if age == 1 else 's'} before today's; next retrain "
                           f"with the data as of {due})")


def tags(as_of: dt.date, n_customers: int, config: str) -> dict[str, str]:
    """The tags that `decide` reads, for a newly trained version."""
    return {AS_OF_TAG: as_of.isoformat(), CUSTOMERS_TAG: str(n_customers), CONFIG_TAG: config}
