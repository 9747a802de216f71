import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pandas as pd
from pydantic import Field

from core import preload
from dagster_project.defs.ml.assets import (
    champion_check,
    champion_check_spec,
    mlflow_run_url,
    plot_metadata,
)
from dagster_project.resources import MlflowResource, WarehouseResource

RECOMMENDER_EXPERIMENT = "product_recommender"
HALF_LIFE_DAYS = 90.0  # Interactions.from_lines' default: the decay the models train with
# what the recommender learns from and the cold start ranks by: each completed order's products
BOUGHT = "is_completed and customer_id is not null and quantity > 0"
ORDER_LINES = f"""
    select distinct customer_id, product_id, order_id, ordered_at
    from marts.fct_order_items where {BOUGHT}"""
SCORE_CHUNK = 100_000  # customers scored at once (their histories in pandas: about 0.3 GB)
SHIPPED = "Segmenta: RepeatThenSimilar"
# the tables' columns, written empty when no recommender version passed its gate
_SCORED = {"model_name": "string", "model_version": "string", "scored_at": "datetime64[us]"}
EMPTY_TABLES = {
    "ml.customer_recommendations": {"customer_id": "string", "rank": "int64",
                                    "product_id": "string", "score": "float64",
                                    "reason": "string", **_SCORED},
    "ml.item_similarities": {"product_id": "string", "rank": "int64",
                             "similar_product_id": "string", "similarity": "float64",
                             "model_version": "string"},
    "ml.cart_complements": {"customer_id": "string", "rank": "int64", "product_id": "string",
                            "score": "float64", "model_version": "string",
                            "scored_at": "datetime64[us]"},
}


class RecommenderConfig(dg.Config):
    """Business rules and signals of the recommendations (set in the launchpad)."""

    one_time_subcategories: list[str] = Field(
        default=["Phones", "Cameras", "Laptops", "Coffee Makers", "Cookware", "Tents",
                 "Running Shoes", "Shoes"],
        description="Products nobody buys twice soon: never recommended again to a customer "
                    "who bought one (matched against dim_products.subcategory or category).")
    holdout_days: int = Field(default=28, description="Days held out for the offline evaluation "
                              "(the configuration is chosen on the same number of days before).")
    max_per_category: int | None = Field(
        default=5, description="At most this many products of one category in a customer's "
                               "top 10 (null: no limit).")
    view_weight: float = Field(default=1.0, description="Weight of a product view.")
    cart_add_weight: float = Field(default=3.0, description="Weight of a cart add.")
    purchase_weight: float = Field(default=5.0, description="Weight of an order of a product.")
    event_lookback_days: int = Field(
        default=180, description="Views and cart adds of identified customers from this many "
                                 "days before the newest event are used.")
    segment_min_buyers: int = Field(
        default=20, description="Customers without history get what is popular in their ML "
                                "cluster when it has this many buyers, else in their country.")
    ranker_max_customers: int = Field(
        default=50_000,
        description="The learned re-ranker is among the candidates only for stores with at most "
                    "this many buyers: it scores a customer with two TIFU-KNN passes and an "
                    "item-kNN pass, and a customer's list changes every day with the days since "
                    "their purchases, so it scores every customer every day "
                    "(docs/recommendations.md has the cost measured).")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["ml", "customer_recommendations"], kinds={"scipy", "mlflow", "duckdb"},
                     deps=[dg.AssetKey(["marts", "fct_order_items"]),
                           dg.AssetKey(["marts", "dim_products"]),
                           dg.AssetKey(["marts", "dim_customers"]),
                           dg.AssetKey(["marts", "fct_sessions"]),
                           dg.AssetKey(["ml", "customer_clusters"])],
                     description="Top 10 products per customer from the champion "
                                 "product_recommender, with a reason code and model version."),
        dg.AssetSpec(["ml", "item_similarities"], kinds={"duckdb"},
                     description="'People also bought': the 20 most similar products of each."),
        dg.AssetSpec(["ml", "cart_complements"], kinds={"duckdb"},
                     description="For each open cart of the last 7 days, the 5 products that go "
                                 "best with what is in it."),
    ],
    group_name="ml",
    pool="duckdb",
    check_specs=[champion_check_spec(["ml", "customer_recommendations"], "product_recommender")],
)
def product_recommendations(context: dg.AssetExecutionContext, config: RecommenderConfig,
                            warehouse: WarehouseResource, mlflow: MlflowResource):
    """Choose the recommender's configuration on a validation split, compare it offline with
    the baselines on the held-out weeks, register it, promote it if it beats them, and score
    every customer with the champion."""
    preload.wait()
    from ml import recommendation as rec
    from ml import retraining
    from ml.evaluation import FALLBACK_RECOMMENDER_GATE, RECOMMENDER_GATE
    from ml.recommendation_rules import (
        business_rules,
        sample_top10,
        with_category_cap,
        with_rules,
    )
    from ml.registry import (
        MODEL_VS_BASELINES_PNG,
        PRODUCT_RECOMMENDER,
        champion_params,
        champion_tags,
        champion_version,
        load_champion,
        log_recommender,
        tag_version,
    )

    plots = {MODEL_VS_BASELINES_PNG: ("recommender_vs_baselines_plot",
                                      ("NDCG@10 and hit rate@10 on the held-out weeks, the "
                                      "shipped model (orange) beside the baselines"))}
    db = warehouse.warehouse
    # the order lines come into pandas only to train: a daily scoring run reads their span
    # and buyers here, and the cold start aggregates them in the warehouse (1M customers: 7M
    # lines, about 4 s to read)
    first, last, buyers = db.query_df(f"""
        select min(ordered_at) as first, max(ordered_at) as last,
               count(distinct customer_id) as buyers
        from marts.fct_order_items where {BOUGHT}""").iloc[0]
    products = db.query_df("select product_id, product_name, category, subcategory, is_active "
                           "from marts.dim_products")
    if pd.isna(last):
        raise dg.Failure("No completed orders in marts.fct_order_items: nothing to learn from.")
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    # the holdout (last `holdout_days`) and, before it, the validation weeks
    holdout_start = last.normalize() - pd.Timedelta(days=config.holdout_days - 1)
    if not first < holdout_start:
        # a young store: every order is in the held-out weeks, nothing is left to learn from
        days = (last - first).days + 1
        check = champion_check(
            context, PRODUCT_RECOMMENDER, None, None, asset_key=["ml", "customer_recommendations"],
            not_trained=f"{days} days of orders, all in the held-out last {config.holdout_days} "
                        f"days (holdout_days); the recommender needs orders before them")
        yield from _without_recommendations(db, check, None)
        return
    weights = {"event_weights": {"Product Viewed": config.view_weight,
                                 "Product Added": config.cart_add_weight},
               "purchase_weight": config.purchase_weight}

    # retrain (choose, evaluate, register) when the policy says so; else score with the champion
    as_of = last.date()
    training_config = retraining.config_fingerprint(config.model_dump())
    mlflow.configure()
    decision = retraining.decide(champion_tags(PRODUCT_RECOMMENDER), as_of, int(buyers),
                                 training_config)
    registered = rejected = evaluation = validation_table = model = None
    if not decision.retrain:
        context.log.info(f"{PRODUCT_RECOMMENDER}: {decision.reason}")
        _, logged = champion_params(PRODUCT_RECOMMENDER)
        chosen = logged.get("configuration", "")
    else:
        from ml.ranker import LEARNED_RANKER, forget_windows

        # the learned re-ranker trains on dated order lines: a candidate on stores of a size
        # where scoring everyone every day stays affordable (and refitted to compare with a
        # champion that is one)
        _, champion_logged = champion_params(PRODUCT_RECOMMENDER) or (None, {})
        ranked = int(buyers) <= config.ranker_max_customers
        dated = ranked or champion_logged.get("configuration", "").endswith(LEARNED_RANKER)
        lines = db.query_df(ORDER_LINES)
        train_lines, relevant = rec.time_split(lines, config.holdout_days)
        validation_lines, validation = rec.time_split(train_lines, config.holdout_days)
        events = _engagement_events(db, rec.split_date(train_lines, config.holdout_days),
                                    holdout_start, config.event_lookback_days,
                                    weights["event_weights"])

        def interactions(order_lines: pd.DataFrame, before: str = "engagement"):
            """Orders plus the weighted views and cart adds `before` the validation weeks or the
            holdout, so no event of the weeks evaluated leaks into what is trained for them."""
            kept = events.loc[events[before] > 0, ["customer_id", "product_id", before]]
            return rec.Interactions.from_lines(
                order_lines, events=kept.rename(columns={before: "engagement"}),
                purchase_weight=weights["purchase_weight"], keep_lines=dated)

        # the configuration: chosen on the validation weeks
        train = interactions(train_lines, before="before_holdout")
        validation_data = interactions(validation_lines, before="before_validation")
        candidates = {name: model for name, model in rec.candidates().items()
                      if ranked or name != LEARNED_RANKER}
        chosen, validation_table = rec.select_candidate(
            validation_data, validation,
            with_category_cap(candidates, validation_data, products, config.max_per_category))
        context.log.info(f"recommender configuration chosen on the validation weeks: {chosen}")

        # offline evaluation of the chosen configuration on the holdout, against the baselines:
        # with every business rule, the top 10 that ships (per customer too, for the gate's
        # paired bootstrap)
        def shipping(name: str, model) -> dict:
            return with_rules({name: model}, train, products, config.one_time_subcategories,
                              config.max_per_category)

        scores: dict = {}
        shipped = shipping(SHIPPED, rec.candidates()[chosen])
        evaluation = rec.evaluate({**rec.baselines(), **shipped}, train, relevant,
                                  per_customer=scores)
        # ... and against the current champion, refitted the same way (its own model was trained
        # on weeks that include this holdout, so it is compared by its configuration)
        champion_row = None
        if (current := champion_params(PRODUCT_RECOMMENDER)) is not None:
            version, champion_logged = current
            name = champion_logged.get("configuration", "").removeprefix("fallback: ")
            if name in rec.candidates() or name in rec.baselines():
                champion_row = f"current champion (v{version}: {name})"
                model = (shipping(champion_row, rec.candidates()[name])
                         if name in rec.candidates()
                         else {champion_row: rec.baselines()[name]})
                evaluation = pd.concat([evaluation, rec.evaluate(model, train, relevant,
                                                                 per_customer=scores)])
                if champion_row not in evaluation.index:  # it could not learn from `train`
                    champion_row = None

        # the model to ship: fitted on all history, with the business rules
        data = interactions(lines)
        info = products.set_index(products["product_id"].astype(str)).reindex(data.products)
        rules = business_rules(info, config.one_time_subcategories, config.max_per_category)
        model = rec.configured(chosen, **rules).fit(data)
        data_window = {
            "first_order": str(pd.to_datetime(lines["ordered_at"]).min().date()),
            "last_order": str(pd.to_datetime(lines["ordered_at"]).max().date()),
            "holdout_days": str(config.holdout_days), "n_customers": str(len(data.customers)),
            "events": str(int(events["n_events"].sum()) if len(events) else 0)}
        params = {"configuration": chosen, "view_weight": config.view_weight,
                  "cart_add_weight": config.cart_add_weight,
                  "purchase_weight": config.purchase_weight}
        experiment_id = mlflow.experiment_id(RECOMMENDER_EXPERIMENT)
        registered = log_recommender(
            experiment_id, model, data.products, evaluation, SHIPPED, data_window, RECOMMENDER_GATE,
            params=params, tables={"validation": validation_table},
            purchase_weight=config.purchase_weight, champion_row=champion_row,
            per_customer=scores, training_lines=lines)
        tag_version(PRODUCT_RECOMMENDER, registered.version,
                    retraining.tags(as_of, int(buyers), training_config))
        rejected = registered
        if registered.champion_version is None:
            # a store's first model lost to a baseline: ship that baseline rather than nothing
            best, fallback, fallback_evaluation = rec.fallback(evaluation, SHIPPED)
            context.log.warning(f"No {PRODUCT_RECOMMENDER}@champion yet: registering the strongest "
                                f"baseline ({best}) as the first champion.")
            model = rec.baselines()[best]
            for key, value in rules.items():
                setattr(model, key, value)
            model.fit(data)
            # labelled "fallback: <baseline>"; gated only against a current champion (it is
            # the baseline: compared with it, it could only tie)
            registered = log_recommender(
                experiment_id, model, data.products, fallback_evaluation, fallback, data_window,
                FALLBACK_RECOMMENDER_GATE, params={**params, "configuration": fallback},
                purchase_weight=config.purchase_weight, training_lines=lines)
            tag_version(PRODUCT_RECOMMENDER, registered.version,
                        retraining.tags(as_of, int(buyers), training_config))
            chosen = fallback
        # the neighbours of the model just trained; then what only training needed goes
        # before scoring (at 1M customers the training frames are GBs)
        similar = rec.similar_items(model, data).assign(model_version=registered.version)
        del data, train, validation_data, events, lines, train_lines, validation_lines
        forget_windows()
    key = ["ml", "customer_recommendations"]
    scored_by = champion_version(PRODUCT_RECOMMENDER)
    check = champion_check(context, PRODUCT_RECOMMENDER, rejected, scored_by, asset_key=key)
    if scored_by is None:
        # not even the baseline passed (e.g. no purchase in the held-out weeks): no
        # recommendations this refresh, the rest of the run carries on
        yield from _without_recommendations(db, check, evaluation,
                                            plot_metadata(PRODUCT_RECOMMENDER, registered, plots))
        return

    # score every customer with history (orders, views, cart adds) with the champion
    champion, version = load_champion(PRODUCT_RECOMMENDER)
    # the open carts' complements need only the champion: found in a second thread while this
    # one scores (most of the scoring is single-threaded pandas; at 1M customers the carts'
    # query and complements took 4 s of the step)
    inner = champion.unwrap_python_model()
    pool = ThreadPoolExecutor(1, thread_name_prefix="cart-complements")
    carts_done = pool.submit(_cart_complements, db, inner, version)
    pool.shutdown(wait=False)  # the thread ends with its one task
    # products the catalogue marks inactive (a store without a catalogue feed has none: its
    # products are all recommendable)
    inactive = set(products.loc[products["is_active"].astype("boolean").eq(False).fillna(False),
                                "product_id"].astype(str))
    # only customers whose history changed are scored again when the champion, the active
    # catalogue and the scored table are those of the last run (a customer's list depends on
    # nothing else): at 1M customers scoring everyone took minutes a day. The histories stay
    # in DuckDB (25M rows at 1M customers); only those of the customers to score come out.
    with db.connect() as con:
        # the decayed counts only for a champion that scores from them (TIFU-KNN: 1.9 s more
        # at 1M customers)
        from ml.ranker import LearnedRanker

        champion_model = inner.model
        learned = isinstance(champion_model, LearnedRanker)
        _history(con, weights["event_weights"], config.event_lookback_days,
                 with_recency=isinstance(champion_model, (rec.TifuKnn, LearnedRanker)),
                 with_dates=learned)
        inputs = con.execute(rec.fingerprint_sql("_history", dated=learned)).df().astype(
            {"fingerprint": "uint64"})
        inputs["model_version"] = version
        # (the column keeps its name: it fingerprints the catalogue's inactive products)
        inputs["active_products"] = rec.fingerprint_of(sorted(inactive))
        previous = _scored_inputs(con) if model is None else None
        unchanged = rec.unchanged_customers(previous, inputs)
        # ... and those the champion found nothing personal for from the same history go to
        # the cold start without being scored again
        impersonal = rec.unchanged_customers(previous, inputs, personal=False)
        con.register("_skipped", pd.DataFrame({"customer_id": unchanged.append(impersonal)},
                                              dtype="str"))
        to_score = con.execute("select distinct customer_id from _history where customer_id "
                               "not in (select customer_id from _skipped) order by 1"
                               ).df()["customer_id"]
        # in chunks of customers (a customer's list depends on their history only), so at
        # most SCORE_CHUNK histories are in memory at once
        chunks = []
        for start in range(0, len(to_score), SCORE_CHUNK):
            con.register("_chunk", to_score.iloc[start:start + SCORE_CHUNK].to_frame())
            chunks.append(champion.predict(con.execute(
                "select * from _history where customer_id in "
                "(select customer_id from _chunk)").df()))
    recs = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(
        columns=["customer_id", "rank", "product_id", "score", "reason"])
    recs = recs[~rec.isin(recs["product_id"], inactive)].copy()  # inactive since it trained
    recs["rank"] = recs.groupby("customer_id").cumcount() + 1
    # erased customers get nothing; those without history: popular in their ML cluster (on the
    # sample store twice the NDCG of country popularity for first-time buyers), their country,
    # or everywhere
    profile = db.query_df("""
        select customers.customer_id, clusters.cluster_name as segment, customers.country
        from marts.dim_customers as customers
        left join ml.customer_clusters as clusters using (customer_id)
        where not customers.is_deleted
    """)
    # a customer the model found nothing personal for (only "popular") is a newcomer too
    personal = recs.loc[recs["reason"] != rec.REASON_POPULAR, "customer_id"].unique()
    recs = recs[rec.isin(recs["customer_id"], profile["customer_id"])
                & rec.isin(recs["customer_id"], personal)]
    kept = unchanged[rec.isin(unchanged, profile["customer_id"])]
    newcomers = profile.loc[~rec.isin(profile["customer_id"], recs["customer_id"])
                            & ~rec.isin(profile["customer_id"], kept), "customer_id"]
    with db.connect(read_only=True) as con:
        # (a buyer's last purchase of each product: no need for ORDER_LINES' distinct, which
        # doubled the aggregation's time)
        bought = ("select customer_id, product_id, ordered_at from marts.fct_order_items "
                  f"where {BOUGHT}")
        cold = rec.cold_start(rec.WarehouseLines(con, bought), profile, list(newcomers),
                              n=10, min_buyers=config.segment_min_buyers, exclude=inactive)
    recs = pd.concat([recs, cold], ignore_index=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = {"model_name": PRODUCT_RECOMMENDER, "model_version": version, "scored_at": now}
    inputs["personal"] = rec.isin(inputs["customer_id"], kept) | rec.isin(
        inputs["customer_id"], recs.loc[~recs["reason"].isin(rec.COLD_START_REASONS),
                                        "customer_id"])
    db.replace_rows("ml.customer_recommendations", recs.assign(**stamp),
                    keep=pd.DataFrame({"customer_id": kept}),
                    also={"ml.recommendation_inputs": inputs})
    scored_now = int(recs["customer_id"].nunique())
    recs_total = len(kept) + scored_now

    # every output comes from the champion: the version just trained only when it became it
    if registered is None or registered.version != version:
        # not retrained, or the new version was rejected: the champion's neighbours stay (or
        # are written from it when the table holds another version's); its carts are new
        similar = _champion_similarities(db, inner, version)
    else:
        db.replace_table("ml.item_similarities", similar)
    # the champion's complements (the version trained here when it became the champion)
    carts, complements = carts_done.result()
    db.replace_table("ml.cart_complements", complements.assign(scored_at=now))

    metadata = {
        "rows": dg.MetadataValue.int(_count(db, "ml.customer_recommendations")),
        "customers": dg.MetadataValue.int(recs_total),
        "customers_scored_this_run": dg.MetadataValue.int(scored_now),
        "customers_kept_unchanged": dg.MetadataValue.int(len(kept)),
        "model_version": dg.MetadataValue.text(version),
        "configuration": dg.MetadataValue.text(chosen),
        "training": dg.MetadataValue.text(f"retrained: {decision.reason}" if decision.retrain
                                          else decision.reason),
        "mlflow_experiment": dg.MetadataValue.text(RECOMMENDER_EXPERIMENT),
        "reasons_this_run": dg.MetadataValue.json(recs["reason"].value_counts().to_dict()),
        "sample": dg.MetadataValue.md(sample_top10(recs, products).to_markdown(index=False)),
    }
    if registered is not None:
        metadata.update({
            "trained_version": dg.MetadataValue.text(registered.version),
            "promoted": dg.MetadataValue.bool(registered.promoted),
            "mlflow_run_id": dg.MetadataValue.text(registered.run_id),
            "mlflow_run": mlflow_run_url(registered.run_id),
            "offline_evaluation": dg.MetadataValue.md(
                evaluation.drop(columns="customers").round(4).to_markdown()),
            "validation": dg.MetadataValue.md(
                validation_table.drop(columns="customers").round(4).to_markdown()
                if len(validation_table) else "(too little history to validate)")})
    metadata.update(plot_metadata(PRODUCT_RECOMMENDER, registered, plots))
    yield dg.MaterializeResult(asset_key=key, check_results=[check], metadata=metadata)
    yield dg.MaterializeResult(asset_key=["ml", "item_similarities"], metadata={
        "rows": dg.MetadataValue.int(len(similar)),
        "products": dg.MetadataValue.int(int(similar["product_id"].nunique()))})
    yield dg.MaterializeResult(asset_key=["ml", "cart_complements"], metadata={
        "rows": dg.MetadataValue.int(len(complements)),
        "open_carts": dg.MetadataValue.int(int(carts["customer_id"].nunique()))})



def _engagement_events(db, validation_start: pd.Timestamp, holdout_start: pd.Timestamp,
                       lookback_days: int, event_weights: dict[str, float]) -> pd.DataFrame:
    """Implicit feedback for training: per identified customer and product, the weighted
    product views and cart adds of the last `lookback_days` (engagement), those before the
    validation weeks and those before the holdout, and the number of events. Summed in DuckDB:
    one row per customer, event name and period in pandas held 10 GB at 1M customers."""
    return db.query_df("""
        select customer_id, product_id,
               coalesce(sum(weight) filter (where event_date < ?::date), 0)
                   as before_validation,
               coalesce(sum(weight) filter (where event_date < ?::date), 0) as before_holdout,
               sum(weight) as engagement,
               count(*) as n_events
        from (select customer_id, product_id, event_date,
                     case event_name when 'Product Viewed' then ?::double
                                     else ?::double end as weight
              from intermediate.int_events_sessionized
              where customer_id is not null and product_id is not null
                and event_name in ('Product Viewed', 'Product Added')
                and event_date >= (select max(event_date) - ?::integer
                                   from intermediate.int_events_sessionized))
        group by all
    """, [validation_start.date(), holdout_start.date(), event_weights["Product Viewed"],
          event_weights["Product Added"], lookback_days])


def _history(con, event_weights: dict[str, float], lookback_days: int,
             with_recency: bool = False, with_dates: bool = False) -> None:
    """Temp table `_history`: what the champion scores each customer from, per customer and
    product the completed orders (n_orders) and the weighted views and cart adds of the last
    `lookback_days` (engagement), the same events the model trains on; `with_recency` (for
    TIFU-KNN) adds a column `recency`, the same orders decayed by age (recency, half-life 90 days, ages counted from
    the customer's own last order: TIFU-KNN scales each customer's vector to sum 1, so the
    anchor cancels out, and a customer who orders nothing keeps the same history and
    fingerprint). In pandas, from the training frames, this took about 25 s at 1M customers and
    held 25M rows; in DuckDB 7 s, 9 s with the decayed counts (1M-customer home).

    `with_dates` (for the learned ranker) adds the dated history of `rec.Dated`, by the
    formulas of `Dated.from_lines`, ages counted from the store's newest order: d30 and d90
    (the orders decayed with half-lives of 30 and 90 days), last_seen and first_seen (1 + the
    days since the customer last and first ordered the product) and c_orders (the customer's
    distinct orders, on each of their rows)."""
    from ml import recommendation as rec

    with_recency = with_recency or with_dates
    dates = """,
                   sum(pow(0.5, age / 30)) as d30, sum(pow(0.5, age / 90)) as d90,
                   min(age) + 1 as last_seen, max(age) + 1 as first_seen""" if with_dates else ""
    orders = (f"""
        lines as (
            select distinct customer_id, product_id, order_id, ordered_at
            from marts.fct_order_items
            where is_completed and customer_id is not null and quantity > 0),
        dated as (
            select *, max(ordered_at) over (partition by customer_id) as last_ordered_at,
                   date_diff('second', ordered_at, (select max(ordered_at) from lines))
                   / 86400.0 as age
            from lines),
        orders as (
            select customer_id, product_id, count(distinct order_id)::double as n_orders,
                   sum(pow(0.5, date_diff('second', ordered_at, last_ordered_at)
                                / 86400.0 / {HALF_LIFE_DAYS})) as recency{dates}
            from dated
            group by all),
        customer_orders as (
            select customer_id, count(distinct order_id)::double as c_orders
            from lines group by all),""" if with_recency else """
        orders as (
            select customer_id, product_id, count(distinct order_id)::double as n_orders
            from marts.fct_order_items
            where is_completed and customer_id is not null and quantity > 0
            group by all),""")
    con.execute(f"""
        create or replace temp table _history as
        with {orders}
        engaged as (
            select customer_id, product_id,
                   sum(case event_name when 'Product Viewed' then ?::double
                                       else ?::double end) as engagement
            from intermediate.int_events_sessionized
            where customer_id is not null and product_id is not null
              and event_name in ('Product Viewed', 'Product Added')
              and event_date >= (select max(event_date) - ?::integer
                                 from intermediate.int_events_sessionized)
            group by all)
        select customer_id, product_id, coalesce(n_orders, 0) as n_orders,
               {"coalesce(recency, 0) as recency," if with_recency else ""}
               {"".join(f"coalesce({c}, 0) as {c}, " for c in rec.Dated.COLUMNS)
                if with_dates else ""}
               coalesce(engagement, 0) as engagement
        from orders full join engaged using (customer_id, product_id)
        {"left join customer_orders using (customer_id)" if with_dates else ""}
    """, [event_weights["Product Viewed"], event_weights["Product Added"], lookback_days])


def _cart_complements(db, inner, version: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The open carts (customers' cart adds in sessions of the last 7 days without an order)
    and, for each, the 5 products of the champion (`inner`: its unwrapped model) that go best
    with it. Runs in a thread of its own beside the scoring (its own connection)."""
    from ml import recommendation as rec

    carts = db.query_df("""
        select distinct events.customer_id, events.product_id
        from intermediate.int_events_sessionized as events
        inner join marts.fct_sessions as sessions on events.session_id = sessions.session_id
        where events.event_name = 'Product Added' and events.customer_id is not null
          and events.product_id is not null and not sessions.has_order
          and sessions.session_date >= (select max(session_date) - 7 from marts.fct_sessions)
          -- the same bound on the events (none of those sessions has an earlier event) lets
          -- DuckDB skip the older days' row groups: 3.5 s -> 2.2 s at 1M customers
          and events.event_date >= (select max(session_date) - 7 from marts.fct_sessions)
    """)
    complements = rec.cart_complements(inner.model, inner.products, carts)
    return carts, complements.assign(model_version=version)


def _champion_similarities(db, inner, version: str) -> pd.DataFrame:
    """`ml.item_similarities` as the champion (`inner`: its unwrapped model) wrote them; written
    again from it when the table is missing or holds another version's."""
    from ml import recommendation as rec

    with db.connect(read_only=True) as con:
        present = con.execute("select count(*) from information_schema.tables where "
                              "table_schema = 'ml' and table_name = 'item_similarities'"
                              ).fetchone()[0]
        written = con.execute("select distinct model_version from ml.item_similarities"
                              ).fetchall() if present else []
    if [str(v) for (v,) in written] == [str(version)]:
        return db.query_df("select * from ml.item_similarities")
    if inner.model.similarity is None:
        # A champion without neighbours of its own (a popularity fallback: its table came from
        # the interactions at its training, and is empty where no two products sold together).
        # An empty table is its own; another version's neighbours are not: none rather than a
        # rejected model's. (Recomputing needs the interactions: a UI re-execution of a run
        # with nothing new failed here.)
        if present and not written:
            return db.query_df("select * from ml.item_similarities")
        columns = EMPTY_TABLES["ml.item_similarities"]
        similar = pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})
    else:
        similar = rec.similar_items(inner.model, None, products=inner.products).assign(
            model_version=version)
    db.replace_table("ml.item_similarities", similar)
    return similar


def _scored_inputs(con) -> pd.DataFrame | None:
    """What the last scoring scored each customer from (`ml.recommendation_inputs`), or None."""
    present = con.execute("select count(*) from information_schema.tables where "
                          "table_schema = 'ml' and table_name in "
                          "('recommendation_inputs', 'customer_recommendations')").fetchone()[0]
    if present < 2:
        return None
    return con.execute("select * from ml.recommendation_inputs").df()


def _count(db, table: str) -> int:
    with db.connect(read_only=True) as con:
        return int(con.execute(f"select count(*) from {table}").fetchone()[0])


def _without_recommendations(db, check: dg.AssetCheckResult, evaluation: pd.DataFrame | None,
                             plots: dict[str, dg.MetadataValue] | None = None):
    """Empty recommendation tables and the failed `champion` check (with the `plots` of a
    version this run trained and rejected): the run goes on."""
    for table, columns in EMPTY_TABLES.items():
        db.replace_table(table, pd.DataFrame(
            {name: pd.Series(dtype=dtype) for name, dtype in columns.items()}))
    with db.connect() as con:  # nothing scored: the next champion scores everyone
        con.execute("drop table if exists ml.recommendation_inputs")
    metadata = {"rows": dg.MetadataValue.int(0),
                "status": dg.MetadataValue.text(check.description)}
    if evaluation is not None:
        metadata["offline_evaluation"] = dg.MetadataValue.md(
            evaluation.drop(columns="customers").round(4).to_markdown())
    metadata.update(plots or {})
    yield dg.MaterializeResult(asset_key=["ml", "customer_recommendations"],
                               check_results=[check], metadata=metadata)
    for other in ("item_similarities", "cart_complements"):
        yield dg.MaterializeResult(asset_key=["ml", other],
                                   metadata={"rows": dg.MetadataValue.int(0)})
