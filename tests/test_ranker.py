"""The learned re-ranker (ml/ranker.py): it learns from windows of the store's own past what a
count-based rule misses, never from the weeks it is scored on, and it says what it needs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import recommendation as rec
from ml.ranker import LEARNED_RANKER, LearnedRanker

START = pd.Timestamp("2025-01-01")


def _store(n_customers: int = 240, seed: int = 0) -> pd.DataFrame:
    """Order lines where the customer's most-bought products are the ones they stopped buying:
    each customer has three "old" products bought weekly in their first months and three
    "current" products bought every three weeks since, until the end."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        products = rng.choice(60, 6, replace=False)
        old, current = products[:3], products[3:]
        order = 0
        for day in range(0, 120, 7):
            order += 1
            rows += [(f"C{c}", f"P{p}", f"O{c}-{order}", START + pd.Timedelta(days=day))
                     for p in old]
        for day in range(130 + c % 21, 400, 21):
            order += 1
            rows += [(f"C{c}", f"P{p}", f"O{c}-{order}", START + pd.Timedelta(days=day))
                     for p in current if rng.random() < 0.8]
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "InvoiceNo", "ordered_at"])


def test_the_ranker_learns_what_counts_miss_from_past_windows_only():
    lines, relevant = rec.time_split(_store(), 28)
    train = rec.Interactions.from_lines(lines, keep_lines=True)
    baseline = rec.baselines()["customer's own most-bought, then popularity"]
    ranker = LearnedRanker(windows=3)
    table = rec.evaluate({"own most-bought": baseline, "ranker": ranker}, train, relevant)
    assert ranker.trained_on > 0
    # the windows are cut from the training lines: nothing from the held-out weeks (the
    # products' recent popularity is that of the training data)
    assert np.allclose(ranker.items["i_recent"], np.asarray(train.dated.d30.sum(axis=0)).ravel())
    ndcg = table["ndcg@10"]
    assert ndcg["ranker"] > 1.3 * ndcg["own most-bought"], ndcg


def test_the_ranker_needs_dated_lines_and_enough_history():
    lines = _store(40)
    with pytest.raises(ValueError, match="order lines with their dates"):
        LearnedRanker().fit(rec.Interactions.from_lines(lines))
    young = lines[pd.to_datetime(lines["ordered_at"]) < START + pd.Timedelta(days=20)]
    with pytest.raises(rec.NotEnoughHistory, match="too little history"):
        LearnedRanker().fit(rec.Interactions.from_lines(young, keep_lines=True))
    # among the candidates, a store that young leaves it out of the comparison
    train, validation = rec.time_split(young, 7)
    chosen, table = rec.select_candidate(rec.Interactions.from_lines(train, keep_lines=True),
                                         validation)
    assert LEARNED_RANKER not in table.index and chosen in table.index and len(table) == 4


def test_a_fit_on_the_next_split_reuses_the_windows_and_learns_the_same_model():
    """Validation split, holdout training data, all history: each fit after the first labels
    one window and takes the others from the last fit, and learns exactly what a fit from
    scratch learns."""
    from ml import ranker as ranker_module

    lines = _store(120, seed=1)
    holdout_train, _ = rec.time_split(lines, 28)
    validation_train, _ = rec.time_split(holdout_train, 28)
    labelled = []
    original = LearnedRanker._window

    def counting(self, history, future):
        labelled.append(len(history))
        return original(self, history, future)

    fits = {}
    LearnedRanker._window = counting
    try:
        for name, split in (("validation", validation_train), ("holdout", holdout_train),
                            ("all", lines)):
            fits[name] = LearnedRanker(windows=3).fit(
                rec.Interactions.from_lines(split, keep_lines=True))
        assert len(labelled) == 3 + 1 + 1  # two of three windows came from the last fit
        ranker_module.forget_windows()
        fresh = LearnedRanker(windows=3).fit(rec.Interactions.from_lines(lines, keep_lines=True))
        assert len(labelled) == 3 + 1 + 1 + 3  # forgotten: all labelled again
    finally:
        LearnedRanker._window = original
        ranker_module.forget_windows()
    data = rec.Interactions.from_lines(lines, keep_lines=True)
    rows = np.arange(len(data.customers))
    assert fits["all"].trained_on == fresh.trained_on
    np.testing.assert_array_equal(fits["all"].score_batch(data, rows)[0],
                                  fresh.score_batch(data, rows)[0])
