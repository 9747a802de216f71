"""The recommender (ml/recommendation.py) on tiny hand-made baskets, its metrics, and the
Online Retail benchmark against the published reference rows (skipped without the data)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml import recommendation as rec

SHARED = Path(os.environ.get("SEGMENTA_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
ONLINE_RETAIL = SHARED / "online_retail" / "online_retail_2010-12_2011-12.parquet"


def _lines(baskets: dict[str, list[list[str]]]) -> pd.DataFrame:
    rows = []
    for customer, orders in baskets.items():
        for number, order in enumerate(orders):
            for product in order:
                rows.append({"customer_id": customer, "product_id": product,
                             "ordered_at": pd.Timestamp("2026-01-01") + pd.Timedelta(days=number)})
    return pd.DataFrame(rows)


STORE = {
    # phones sell with cases; the popular item is a mug
    **{f"p{i}": [["phone", "case"], ["mug"]] for i in range(6)},
    **{f"m{i}": [["mug"], ["mug", "tea"]] for i in range(8)},
    "new_phone_buyer": [["phone"]],
    "mug_fan": [["mug"], ["mug"], ["mug"], ["tea"]],
}


def _recommend(model, lines, n=3, **kwargs) -> dict[str, list[tuple[str, str]]]:
    data = rec.Interactions.from_lines(lines)
    recs = rec.recommend(model.fit(data), data, n=n, **kwargs)
    return {c: list(zip(g["product_id"], g["reason"], strict=True))
            for c, g in recs.sort_values("rank").groupby("customer_id")}


def test_a_phone_buyer_gets_the_case_people_also_bought():
    recs = _recommend(rec.RepeatThenSimilar(shrinkage=1.0), _lines(STORE))
    products = [p for p, _ in recs["new_phone_buyer"]]
    assert products[0] == "phone"  # buy again first (phones are replenishable here)
    assert products[1] == "case" and recs["new_phone_buyer"][1][1] == rec.REASON_SIMILAR


def test_own_purchases_come_first_most_ordered_first():
    recs = _recommend(rec.RepeatThenSimilar(), _lines(STORE))
    assert recs["mug_fan"][:2] == [("mug", rec.REASON_OWN), ("tea", rec.REASON_OWN)]


def test_a_bought_one_time_product_is_never_recommended_again():
    lines = _lines(STORE)
    data = rec.Interactions.from_lines(lines)
    one_time = np.asarray(data.products == "phone")  # a non-replenishable category
    recs = rec.recommend(rec.RepeatThenSimilar().fit(data), data, n=4,
                         one_time_products=one_time)
    bought_phone = {c for c, orders in STORE.items() if any("phone" in o for o in orders)}
    shown = recs[recs["customer_id"].isin(bought_phone)]
    assert len(shown) > 0 and "phone" not in set(shown["product_id"])
    # customers who never bought a phone may still be offered one
    assert "phone" in set(recs.loc[~recs["customer_id"].isin(bought_phone), "product_id"])


def test_a_customer_without_history_gets_the_popular_products():
    data = rec.Interactions.from_lines(_lines({**STORE, "newcomer": [["case"]]}))
    model = rec.RepeatThenSimilar(similar_weight=0.0).fit(data)
    empty = rec.subset(data, ["newcomer"])
    empty.matrix = empty.matrix * 0  # no orders yet
    empty.recency = empty.recency * 0
    recs = rec.recommend(model, empty, n=2)
    assert recs["product_id"].iloc[0] == "mug"  # bought by the most customers
    assert set(recs["reason"]) == {rec.REASON_POPULAR}


def test_inactive_products_are_never_recommended():
    lines = _lines(STORE)
    data = rec.Interactions.from_lines(lines)
    inactive = np.asarray(data.products == "mug")
    recs = rec.recommend(rec.RepeatThenSimilar().fit(data), data, n=3, exclude=inactive)
    assert "mug" not in set(recs["product_id"])


def test_ranking_metrics_by_hand():
    recommended = {"a": ["x", "y", "z"], "b": ["q", "r", "s"]}
    relevant = {"a": {"y", "w"}, "b": {"t"}}
    m = rec.ranking_metrics(recommended, relevant, n_products=10, k=3)
    # a: one hit at rank 2 of 2 relevant; b: no hit
    assert m["hit_rate@3"] == 0.5
    assert m["recall@3"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["precision@3"] == pytest.approx((1 / 3 + 0) / 2)
    ideal = 1 + 1 / np.log2(3)
    assert m["ndcg@3"] == pytest.approx((1 / np.log2(3) / ideal) / 2)
    assert m["map@3"] == pytest.approx((0.5 / 2) / 2)
    assert m["coverage"] == pytest.approx(0.6)


@pytest.mark.skipif(not ONLINE_RETAIL.exists(), reason=f"real data not found at {ONLINE_RETAIL}")
@pytest.mark.parametrize("protocol", ["strict", "last_invoice"])
def test_online_retail_beats_the_strongest_same_code_baseline(protocol):
    """Every row is computed by the same code; the lift's paired bootstrap interval is above 0,
    and under the strict split the lift is at least issue 17's 8 %."""
    from ml.online_retail import PIPELINE, SHIPPED, benchmark

    table, chosen, lift = benchmark(ONLINE_RETAIL, protocol)
    # picked on the training data only, among the pipeline's candidates (the learned ranker
    # among them) and more TIFU-KNN blends
    assert chosen in {**rec.candidates(), **rec.tifu_candidates()}
    assert lift["pipeline_chosen"] in rec.candidates()
    customers = int(table["customers"].iloc[0])
    ours = table.loc[SHIPPED]
    baselines = table.drop(index=[SHIPPED, PIPELINE])
    assert lift["baseline"] == baselines["ndcg@10"].idxmax()
    assert lift["lift"] == pytest.approx(ours["ndcg@10"] / baselines["ndcg@10"].max() - 1)
    assert 0 < lift["low"] < lift["lift"] < lift["high"]
    assert 0 < lift["pipeline_low"] < lift["pipeline_lift"] < lift["pipeline_high"]
    if protocol == "last_invoice":
        assert customers == pytest.approx(2827, abs=5)  # ../shared/data/README.md
        # the baselines reproduce the published rows that do not depend on tie-breaking
        assert table.loc["global popularity", "ndcg@10"] == pytest.approx(0.0658, abs=0.002)
        assert table.loc["item-kNN (cosine, shrunk)", "hit_rate@10"] == pytest.approx(
            0.474, abs=0.02)
    else:  # one cutoff: customers known before it who bought in the last 28 days
        assert 1000 < customers < 2000
        assert lift["lift"] >= 0.08 and lift["low"] > 0.05, lift
        # ... and what the pipeline itself would ship
        assert lift["pipeline_lift"] >= 0.08 and lift["pipeline_low"] > 0.05, lift


def test_online_retail_ii_column_names_read_like_online_retail(tmp_path):
    from ml.online_retail import load_lines

    rows = {"Invoice": ["1", "C2", "3"], "StockCode": ["A", "A", "POST"], "Quantity": [2, -1, 1],
            "InvoiceDate": ["2010-12-01 08:26", "2010-12-02 09:00", "2010-12-03 10:00"],
            "Price": [1.5, 1.5, 3.0], "Customer ID": [17850.0, 17850.0, 17850.0]}
    path = tmp_path / "online_retail_ii.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    lines = load_lines(path)  # the cancellation and the postage line are dropped
    assert lines[["customer_id", "product_id", "InvoiceNo"]].values.tolist() == [
        ["17850", "A", "1"]]
    pd.DataFrame(rows).drop(columns="Price").to_csv(path, index=False)
    with pytest.raises(ValueError, match="no column for unit_price"):
        load_lines(path)


def test_a_new_customer_gets_what_is_popular_in_their_country():
    lines = _lines({"de1": [["beer"]], "de2": [["beer", "pretzel"]], "de3": [["pretzel"]],
                    "de4": [["beer"]], "fr1": [["wine"]], "fr2": [["wine", "cheese"]]})
    country = pd.Series({"de1": "DE", "de2": "DE", "de3": "DE", "de4": "DE", "fr1": "FR",
                         "fr2": "FR"})
    top = rec.popular_in_groups(lines, country, n=2, exclude={"cheese"})
    by_country = top.groupby("group")["product_id"].agg(list).to_dict()
    assert by_country == {"DE": ["beer", "pretzel"], "FR": ["wine"]}


def test_events_summed_in_the_warehouse_weigh_as_the_events_themselves():
    events = pd.DataFrame({"customer_id": ["v", "v", "v", "m0"],
                           "product_id": ["phone", "phone", "case", "tea"],
                           "event_name": ["Product Viewed", "Product Added", "Product Viewed",
                                          "Product Added"], "n_events": [2, 1, 1, 4]})
    summed = pd.DataFrame({"customer_id": ["m0", "v", "v"], "product_id": ["tea", "case", "phone"],
                           "engagement": [12.0, 1.0, 5.0]})
    one = rec.Interactions.from_lines(_lines(STORE), events=events)
    other = rec.Interactions.from_lines(_lines(STORE), events=summed)
    assert set(one.customers) == set(other.customers)
    for customer in ("v", "m0", "mug_fan"):
        left = pd.Series(one.engagement[one.customers.get_loc(customer)].toarray().ravel(),
                         index=one.products)
        right = pd.Series(other.engagement[other.customers.get_loc(customer)].toarray().ravel(),
                          index=other.products)
        assert left.to_dict() == right.to_dict(), customer


def test_a_visitor_who_only_viewed_a_phone_is_offered_the_case():
    events = pd.DataFrame({"customer_id": ["viewer", "viewer"], "product_id": ["phone", "phone"],
                           "event_name": ["Product Viewed", "Product Added"]})
    data = rec.Interactions.from_lines(_lines(STORE), events=events)
    assert "viewer" in data.customers and data.matrix[data.customers.get_loc("viewer")].sum() == 0
    own_first = rec.RepeatThenSimilar(shrinkage=1.0, use_events=True).fit(data)
    recs = rec.recommend(own_first, data, n=3)
    mine = recs[recs["customer_id"] == "viewer"].sort_values("rank")
    assert mine["product_id"].iloc[0] == "case"  # browsed, not bought: no "buy again" tier
    assert set(mine["reason"]) <= {rec.REASON_SIMILAR, rec.REASON_POPULAR}
    assert list(mine["product_id"]) == ["case", "mug", "tea"]  # then the best sellers
    # the blended model also brings back the phone itself (left in the cart) before the tea
    blended = rec.candidates()["similar first, own blended, orders + browsing"].fit(data)
    recs = rec.recommend(blended, data, n=3).sort_values("rank")
    assert list(recs.loc[recs["customer_id"] == "viewer", "product_id"]) == ["case", "mug",
                                                                             "phone"]
    # orders-only, the same visitor is a stranger: the most popular product comes first
    orders_only = rec.recommend(rec.RepeatThenSimilar(shrinkage=1.0).fit(data), data, n=3)
    assert orders_only.loc[orders_only["customer_id"] == "viewer", "product_id"].iloc[0] == "mug"


def test_views_and_cart_adds_weigh_against_purchases_as_configured():
    events = pd.DataFrame({"customer_id": ["a", "a", "a"], "product_id": ["x", "x", "y"],
                           "event_name": ["Product Viewed", "Product Added", "Product Viewed"],
                           "n_events": [2, 1, 1]})
    lines = _lines({"a": [["x"]], "b": [["y"]]})
    data = rec.Interactions.from_lines(lines, events=events,
                                       event_weights={"Product Viewed": 1, "Product Added": 3},
                                       purchase_weight=5)
    signal = pd.DataFrame(data.signal().toarray(), index=data.customers, columns=data.products)
    assert signal.loc["a", "x"] == 5 + 2 * 1 + 3 and signal.loc["a", "y"] == 1
    assert signal.loc["b", "y"] == 5
    assert (data.signal(use_events=False).toarray() == data.matrix.toarray()).all()


def test_at_most_k_products_of_one_category_in_a_top_n():
    # four phone accessories and two kitchen products
    scores = np.array([[0.9, 0.4, 0.8, 0.7, 0.5, 0.6]])
    categories = np.array([0, 1, 0, 0, 1, 0])
    cols, values = rec.top_n_diverse(scores, categories, max_per_category=2, n=4)
    assert cols.tolist() == [[0, 2, 4, 1]] and values.tolist() == [[0.9, 0.8, 0.5, 0.4]]

    lines = _lines({**STORE, "fan": [["mug", "tea", "case"]]})
    data = rec.Interactions.from_lines(lines)
    kitchen = np.isin(data.products, ["mug", "tea"]).astype(int)  # category codes
    model = rec.RepeatThenSimilar(categories=kitchen, max_per_category=1).fit(data)
    recs = rec.recommend(model, data, n=3)
    per_category = recs.assign(category=kitchen[data.products.get_indexer(recs["product_id"])])
    assert per_category.groupby(["customer_id", "category"]).size().max() == 1
    fan = recs[recs["customer_id"] == "fan"].sort_values("rank")
    assert list(fan["rank"]) == [1, 2] and "case" in set(fan["product_id"])


def test_top_k_pruning_keeps_each_products_nearest_neighbours():
    data = rec.Interactions.from_lines(_lines(STORE))
    full = rec.item_similarity(data, shrinkage=1.0, min_common=1).toarray()
    pruned = rec.item_similarity(data, shrinkage=1.0, min_common=1, top_k=1,
                                 block_cells=10).toarray()
    assert ((pruned > 0).sum(axis=1) <= 1).all()
    assert np.allclose(pruned.max(axis=1), full.max(axis=1))
    assert np.allclose(rec.item_similarity(data, shrinkage=1.0, min_common=1,
                                          block_cells=10).toarray(),
                       full)


def test_a_new_customer_gets_segment_popularity():
    lines = _lines({"s1": [["tent"]], "s2": [["tent", "stove"]], "s3": [["stove"]],
                    "c1": [["lipstick"]], "c2": [["lipstick"]], "c3": [["perfume"]],
                    "lonely": [["kettle"]]})
    profile = pd.DataFrame({
        "customer_id": ["s1", "s2", "s3", "c1", "c2", "c3", "lonely",
                        "new_camper", "new_in_tiny_segment", "new_nowhere"],
        "segment": ["campers"] * 3 + ["beauty"] * 3 + ["tiny", "campers", "tiny", None],
        "country": ["DE", "DE", "FR", "FR", "FR", "FR", "DE", "FR", "DE", None]})
    recs = rec.cold_start(lines, profile, ["new_camper", "new_in_tiny_segment", "new_nowhere"],
                          n=2, min_buyers=3)
    got = {c: (list(g.sort_values("rank")["product_id"]), set(g["reason"]))
           for c, g in recs.groupby("customer_id")}
    # French like the beauty buyers, but their segment is campers: segment popularity wins
    assert got["new_camper"] == (["stove", "tent"], {rec.REASON_POPULAR_IN_SEGMENT})
    # a segment with one buyer is too small: what is popular in Germany (3 buyers)
    assert got["new_in_tiny_segment"] == (["tent", "kettle"], {rec.REASON_POPULAR_IN_COUNTRY})
    # no segment, no country: popular everywhere
    assert got["new_nowhere"][1] == {rec.REASON_POPULAR}
    assert got["new_nowhere"][0][0] in {"stove", "tent", "lipstick"}


def test_the_cold_start_ranks_the_same_from_the_warehouse_as_from_pandas(tmp_path):
    """The daily scoring run leaves the order lines in the warehouse (`WarehouseLines`, on a
    read-only connection as the asset opens it): the same lists, ranks, scores and reasons as
    from the lines in pandas, and the connection is left without the temp objects."""
    import duckdb

    rng = np.random.default_rng(5)
    n = 3_000
    lines = pd.DataFrame({
        "customer_id": [f"c{i}" for i in rng.integers(0, 400, n)],
        "product_id": [f"p{i}" for i in rng.zipf(1.6, n) % 60],
        "order_id": [f"o{i}" for i in rng.integers(0, 1_500, n)],
        "ordered_at": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 300 * 86_400,
                                                                                n), unit="s")})
    people = [f"c{i}" for i in range(450)]  # 50 without an order
    profile = pd.DataFrame({"customer_id": people,
                            "segment": [["a", "b", None, "tiny"][i % 4] if i != 7 else "tiny"
                                        for i in range(450)],
                            "country": [["DE", "FR", None][i % 3] for i in range(450)]})
    who = people[380:]
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table order_lines as select * from lines")
    expected = rec.cold_start(lines, profile, who, n=5, min_buyers=30, exclude={"p1", "p2"})
    assert set(expected["reason"]) == {rec.REASON_POPULAR_IN_SEGMENT,
                                       rec.REASON_POPULAR_IN_COUNTRY, rec.REASON_POPULAR}
    with duckdb.connect(str(path), read_only=True) as con:
        got = rec.cold_start(rec.WarehouseLines(con, "select * from order_lines"), profile, who,
                             n=5, min_buyers=30, exclude={"p1", "p2"})
        left = con.execute("select table_name from duckdb_tables() where temporary "
                           "union all select view_name from duckdb_views() where temporary "
                           "and view_name like '_popularity%'").fetchall()
    assert left == []
    key = ["customer_id", "rank"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  expected.sort_values(key).reset_index(drop=True),
                                  check_dtype=False)


def test_an_evaluation_scores_a_fixed_sample_of_a_large_holdout(monkeypatch):
    """At most MAX_EVALUATED held-out customers are scored: the same ones whatever the order
    of `relevant` and for every model (the per-customer NDCGs stay paired)."""
    relevant = {f"c{i}": {"p1"} for i in range(40)}
    sample = rec.evaluation_sample(relevant, 10)
    assert len(sample) == 10 and list(sample) == [c for c in relevant if c in sample]
    backwards = dict(reversed(list(relevant.items())))
    assert set(rec.evaluation_sample(backwards, 10)) == set(sample)
    assert rec.evaluation_sample(relevant, 40) is relevant
    lines = _lines({f"c{i}": [["p1"], ["p2"]] for i in range(40)})
    train = rec.Interactions.from_lines(lines)
    monkeypatch.setattr(rec, "MAX_EVALUATED", 10)
    scores: dict = {}
    table = rec.evaluate(rec.baselines(), train, relevant, per_customer=scores)
    assert (table["customers"] == 10).all()
    assert {len(v) for v in scores.values()} == {10}
    # the choice on the validation weeks scores its own, smaller sample
    monkeypatch.setattr(rec, "MAX_VALIDATED", 5)
    _, validated = rec.select_candidate(train, relevant)
    assert (validated["customers"] == 5).all()


def test_the_configuration_is_chosen_on_the_validation_split():
    # each week customers buy the coffee they bought before: own products first wins
    repeat = _lines({f"r{i}": [["coffee"], ["filter"], ["coffee"], ["coffee"]] for i in range(6)})
    train, validation = rec.time_split(repeat, holdout_days=1)
    chosen, table = rec.select_candidate(rec.Interactions.from_lines(train), validation)
    # no events: no browsing variants (two orders-only blends and the two TIFU-KNN ones); no
    # dated lines: no learned ranker
    assert chosen == "own first, orders" and len(table) == 4
    assert not any("browsing" in name for name in table.index)
    assert table.loc[chosen, "ndcg@10"] == table["ndcg@10"].max()


def test_the_fallback_is_the_strongest_baseline_and_copes_with_no_scores():
    """A store whose first model lost ships its strongest baseline; a store of a few weeks has
    no held-out purchase to score anything on (every NDCG is NaN) and still gets a name."""
    shipped, column = "shipped", f"ndcg@{rec.K}"
    scored = pd.DataFrame({column: [0.30, 0.10, 0.20]}, index=[shipped, "popularity", "own"])
    best, name, table = rec.fallback(scored, shipped)
    assert (best, name) == ("own", "fallback: own")
    assert table.loc[name, column] == 0.20 and shipped in table.index
    unscored = pd.DataFrame({column: [np.nan, np.nan]}, index=[shipped, "popularity"])
    assert rec.fallback(unscored, shipped)[0] == "popularity"


def _history(rows):
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "n_orders", "engagement"])


def test_a_history_fingerprint_ignores_row_order_and_sees_every_change():
    base = _history([("C1", "P1", 2.0, 0.0), ("C1", "P2", 0.0, 3.0), ("C2", "P1", 1.0, 1.0)])
    prints = rec.history_fingerprints(base)
    assert prints.equals(rec.history_fingerprints(base.iloc[::-1]))
    for changed in (_history([("C1", "P1", 3.0, 0.0), ("C1", "P2", 0.0, 3.0)]),  # one more order
                    _history([("C1", "P1", 2.0, 0.0), ("C1", "P2", 0.0, 4.0)]),  # a view
                    _history([("C1", "P1", 2.0, 0.0)]),  # a product gone from the window
                    _history([("C1", "P1", 2.0, 0.0), ("C1", "P3", 0.0, 3.0)])):
        assert rec.history_fingerprints(changed)["C1"] != prints["C1"]
    assert rec.history_fingerprints(base[base["customer_id"] == "C2"])["C2"] == prints["C2"]


def test_only_customers_scored_personally_from_the_same_inputs_keep_their_list():
    inputs = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"],
                           "fingerprint": [1, 2, 3, 4], "model_version": "3",
                           "active_products": "a"})
    previous = inputs.assign(personal=[True, True, False, True])
    previous.loc[1, "fingerprint"] = 9  # C2's history changed
    assert list(rec.unchanged_customers(previous, inputs)) == ["C1", "C4"]  # C3: cold start
    assert rec.unchanged_customers(previous.assign(model_version="2"), inputs).empty
    assert rec.unchanged_customers(previous.assign(active_products="b"), inputs).empty
    assert rec.unchanged_customers(None, inputs).empty
    # C3 had nothing personal from the same inputs: it goes to the cold start without scoring
    assert list(rec.unchanged_customers(previous, inputs, personal=False)) == ["C3"]
    previous.loc[2, "fingerprint"] = 8
    assert rec.unchanged_customers(previous, inputs, personal=False).empty


def test_isin_on_strings_agrees_with_pandas():
    values = pd.Series(["C1", "C2", None, "C10", "c1", ""], dtype="str")
    for among in (["C1", "C10"], {"C2", ""}, pd.Index(["C10"]), pd.Series([], dtype="str"),
                  pd.Series(["C1", None], dtype="str")):
        expected = values.isin(list(among)).to_numpy()
        assert rec.isin(values, among).tolist() == expected.tolist(), among
    assert rec.isin(pd.Index(["a", "b"]), ["b"]).tolist() == [False, True]
    assert rec.isin(pd.Series([], dtype="str"), ["a"]).tolist() == []


def test_tifu_knn_blends_own_decayed_purchases_with_neighbours_and_keeps_the_rules():
    """A customer who bought tea and then cake, whose neighbours buy tea and mugs: the mug
    outranks their own cake (no 'own products first' tier, where the cake would come before
    it); a one-time product is never offered again."""
    lines = _lines({"me": [["tea"], ["cake"]], "n1": [["tea", "mug"], ["mug"]],
                    "n2": [["tea", "mug"]], "n3": [["tea", "mug"]]})
    data = rec.Interactions.from_lines(lines)
    me = rec.subset(data, ["me"])
    model = rec.TifuKnn(alpha=0.2, neighbours=2).fit(data)
    recs = rec.recommend(model, me, n=3)
    assert recs["product_id"].tolist() == ["tea", "mug", "cake"]
    assert recs["reason"].tolist() == [rec.REASON_OWN, rec.REASON_SIMILAR, rec.REASON_OWN]
    own_first = rec.recommend(rec.RepeatThenSimilar().fit(data), me, n=3)
    assert set(own_first["product_id"].tolist()[:2]) == {"tea", "cake"}
    model.one_time_products = data.products.isin(["cake"])
    assert "cake" not in set(rec.recommend(model, me, n=3)["product_id"])


def _random_orders(seed: int, n: int, customers: int, products: int,
                   orders: int) -> pd.DataFrame:
    """`n` random order lines over 300 days (popular products Zipf-distributed), one customer
    and one date per order, one line per customer, product and order."""
    rng = np.random.default_rng(seed)
    lines = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in rng.integers(0, customers, n)],
        "product_id": [f"P{i:02d}" for i in (rng.zipf(1.6, n) % products)],
        "order_id": [f"O{i}" for i in rng.integers(0, orders, n)],
        "ordered_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300, n),
                                                                  unit="D"),
    })
    lines["ordered_at"] = lines.groupby("order_id")["ordered_at"].transform("min")
    lines["customer_id"] = lines.groupby("order_id")["customer_id"].transform("first")
    return lines.drop_duplicates(["customer_id", "product_id", "order_id"])


def _order_warehouse(lines: pd.DataFrame):
    """An in-memory DuckDB with `lines` as completed order items and no events: what the
    pipeline's scoring history (`_history`) reads."""
    import duckdb

    con = duckdb.connect()
    con.execute("create schema marts; create schema intermediate")
    con.register("_lines", lines.assign(is_completed=True, quantity=1))
    con.execute("create table marts.fct_order_items as select * from _lines")
    con.execute("create table intermediate.int_events_sessionized (customer_id varchar, "
                "product_id varchar, event_name varchar, event_date date)")
    return con


def test_tifu_knn_scores_the_same_from_the_pipelines_history_as_from_the_order_lines():
    """The pipeline scores from `_history` (counts decayed from each customer's own last order,
    in DuckDB) through the registered pyfunc; TIFU-KNN scales each customer's vector to sum 1,
    so that gives the lists of the order lines decayed from the as-of date."""

    from dagster_project.defs.ml.recommendations import _history
    from ml.registry import RecommenderPyfunc

    lines = _random_orders(seed=3, n=3_000, customers=150, products=60, orders=900)
    data = rec.Interactions.from_lines(lines)
    model = rec.candidates()[rec.TIFU_REPEAT_HEAVY].fit(data)
    expected = rec.recommend(model, data)

    con = _order_warehouse(lines)
    _history(con, rec.EVENT_WEIGHTS, 180, with_recency=True)
    history = con.execute("select * from _history").df()
    got = RecommenderPyfunc(model, data.products).predict(None, history)
    key = ["customer_id", "rank"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True)[["customer_id", "rank", "product_id"]],
        expected.sort_values(key).reset_index(drop=True)[["customer_id", "rank", "product_id"]])


def test_the_learned_ranker_scores_the_same_from_the_pipelines_dated_history():
    """The learned ranker trains on dated order lines and, in the pipeline, scores from
    `_history(with_dates=True)`: decayed counts, first and last purchase and orders per
    customer computed in DuckDB by the formulas of `rec.Dated`. Both give the same features,
    so the same lists; and a customer's list follows their history of today (the ages move
    with the store's newest order, and so does the scoring fingerprint)."""

    from dagster_project.defs.ml.recommendations import _history
    from ml.ranker import LEARNED_RANKER
    from ml.registry import RecommenderPyfunc

    lines = _random_orders(seed=5, n=6_000, customers=200, products=40, orders=1_500)
    data = rec.Interactions.from_lines(lines, keep_lines=True)
    model = rec.candidates()[LEARNED_RANKER]
    model.windows, model.window_days = 3, 28
    model.fit(data)
    expected = rec.recommend(model, data)

    con = _order_warehouse(lines)
    _history(con, rec.EVENT_WEIGHTS, 180, with_dates=True)
    history = con.execute("select * from _history").df()
    # the same dated history as the order lines give
    rows = data.customers.get_indexer(history["customer_id"])
    cols = data.products.get_indexer(history["product_id"])
    for column in ("d30", "d90", "last_seen", "first_seen"):
        np.testing.assert_allclose(history[column], np.asarray(
            getattr(data.dated, column)[rows, cols]).ravel(), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(history["c_orders"], data.dated.orders[rows])
    got = RecommenderPyfunc(model, data.products).predict(None, history)
    key = ["customer_id", "rank"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True)[["customer_id", "rank", "product_id"]],
        expected.sort_values(key).reset_index(drop=True)[["customer_id", "rank", "product_id"]])

    # a day later, with one new order by someone else: nobody's purchases changed, but every
    # buyer's ages did, so every fingerprint moves (and everyone is scored again)
    before = con.execute(rec.fingerprint_sql("_history", dated=True)).df()
    con.execute("insert into marts.fct_order_items (customer_id, product_id, order_id, "
                "ordered_at, is_completed, quantity) select 'C999', 'P01', 'O-new', "
                "max(ordered_at) + interval 1 day, true, 1 from marts.fct_order_items")
    _history(con, rec.EVENT_WEIGHTS, 180, with_dates=True)
    after = con.execute(rec.fingerprint_sql("_history", dated=True)).df()
    moved = before.merge(after, on="customer_id", suffixes=("", "_next"))
    assert len(moved) == len(before) and (moved["fingerprint"] != moved["fingerprint_next"]).all()
    undated = con.execute(rec.fingerprint_sql("_history")).df()
    assert set(undated["customer_id"]) == set(after["customer_id"])


def test_scoring_on_threads_gives_the_lists_of_one_thread():
    """`recommend` scores batches side by side: the same lists, in the same order, for every
    kind of model, with the business rules and the category cap."""
    from ml.ranker import LEARNED_RANKER

    rng = np.random.default_rng(11)
    n = 5_000
    lines = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in rng.integers(0, 300, n)],
        "product_id": [f"P{i:02d}" for i in (rng.zipf(1.5, n) % 50)],
        "order_id": [f"O{i}" for i in rng.integers(0, 1_200, n)],
        "ordered_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 200, n),
                                                                  unit="D"),
    }).drop_duplicates(["customer_id", "product_id", "order_id"])
    data = rec.Interactions.from_lines(lines, keep_lines=True)
    models = rec.candidates()
    models[LEARNED_RANKER].windows = 2
    for name, model in models.items():
        model.fit(data)
        model.categories = np.arange(len(data.products)) % 7
        model.max_per_category = 2
        model.one_time_products = np.arange(len(data.products)) % 5 == 0
        one = rec.recommend(model, data, batch=37, threads=1)
        three = rec.recommend(model, data, batch=37, threads=3)
        assert len(one) > 0, name
        pd.testing.assert_frame_equal(one, three, obj=name)


def test_sparse_scores_add_into_the_dense_ones_with_repeated_and_unsorted_cells():
    from scipy import sparse

    # row 0 names column 1 twice and its columns out of order; the positions permute columns
    matrix = sparse.csr_matrix((np.array([1.0, 2.0, 4.0, 8.0]), np.array([1, 0, 1, 2]),
                                np.array([0, 3, 4])), shape=(2, 3))
    dense = np.ones((2, 3))
    rec._add_into(dense, matrix, np.array([2, 0, 1]), weight=0.5)
    # column j lands in position[j]: 1 -> 0 (twice), 0 -> 2, 2 -> 1
    assert dense.tolist() == [[1 + 0.5 * (1 + 4), 1.0, 1 + 0.5 * 2], [1.0, 1 + 0.5 * 8, 1.0]]


def test_no_open_cart_gives_typed_empty_complements():
    """A store without open carts writes an empty ml.cart_complements whose customer_id is
    text: as an untyped empty frame it became INTEGER, and an erasure's delete by customer id
    failed on it (tests/test_personalization_api.py's store has no open cart)."""
    import duckdb

    empty = rec.cart_complements(rec.RepeatThenSimilar(), pd.Index(["P1"]),
                                 pd.DataFrame(columns=["customer_id", "product_id"]))
    with duckdb.connect() as con:
        con.register("empty", empty)
        types = dict(con.execute("select column_name, column_type from (describe empty)")
                     .fetchall())
    assert types == {"customer_id": "VARCHAR", "rank": "BIGINT", "product_id": "VARCHAR",
                     "score": "DOUBLE"}
