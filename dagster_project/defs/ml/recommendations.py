import datetime as dt

import dagster as dg
import pandas as pd
from pydantic import Field

from dagster_project.resources import MlflowResource, WarehouseResource

RECOMMENDER_EXPERIMENT = "product_recommender"
SHIPPED = "Segmenta: RepeatThenSimilar"


class RecommenderConfig(dg.Config):
    """Business rules of the recommendations (set in the launchpad)."""

    one_time_subcategories: list[str] = Field(
        default=["Phones", "Cameras", "Laptops", "Coffee Makers", "Cookware", "Tents",
                 "Running Shoes", "Shoes"],
        description="Products nobody buys twice soon: never recommended again to a customer "
                    "who bought one (matched against dim_products.subcategory or category).")
    holdout_days: int = Field(default=28, description="Days held out for the offline evaluation.")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["ml", "customer_recommendations"], kinds={"scipy", "mlflow", "duckdb"},
                     deps=[dg.AssetKey(["marts", "fct_order_items"]),
                           dg.AssetKey(["marts", "dim_products"]),
                           dg.AssetKey(["marts", "dim_customers"]),
                           dg.AssetKey(["marts", "fct_sessions"])],
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
)
def product_recommendations(context: dg.AssetExecutionContext, config: RecommenderConfig,
                            warehouse: WarehouseResource, mlflow: MlflowResource):
    """Train the recommender, compare it offline with the baselines, register it, promote it
    if it beats them, and score every customer with the champion."""
    from ml import recommendation as rec
    from ml.evaluation import RECOMMENDER_GATE
    from ml.registry import PRODUCT_RECOMMENDER, load_champion, log_recommender

    db = warehouse.warehouse
    lines = db.query_df("""
        select distinct customer_id, product_id, order_id, ordered_at
        from marts.fct_order_items
        where is_completed and customer_id is not null and quantity > 0
    """)
    products = db.query_df("select product_id, category, subcategory, is_active "
                           "from marts.dim_products")
    if lines.empty:
        raise dg.Failure("No completed orders in marts.fct_order_items: nothing to learn from.")

    # offline evaluation on the last `holdout_days`
    train_lines, relevant = rec.time_split(lines, config.holdout_days)
    train = rec.Interactions.from_lines(train_lines)
    evaluation = rec.evaluate({**rec.baselines(), SHIPPED: rec.RepeatThenSimilar()}, train,
                              relevant)

    # the model to ship: fitted on all history, with the business rules
    data = rec.Interactions.from_lines(lines)
    info = products.set_index(products["product_id"].astype(str)).reindex(data.products)
    one_time = set(config.one_time_subcategories)
    model = rec.RepeatThenSimilar(
        exclude=~info["is_active"].fillna(False).astype(bool).to_numpy(),
        one_time_products=(info["subcategory"].isin(one_time)
                           | info["category"].isin(one_time)).to_numpy()).fit(data)
    registered = log_recommender(
        mlflow.experiment_id(RECOMMENDER_EXPERIMENT), model, data.products, evaluation, SHIPPED,
        {"first_order": str(pd.to_datetime(lines["ordered_at"]).min().date()),
         "last_order": str(pd.to_datetime(lines["ordered_at"]).max().date()),
         "holdout_days": str(config.holdout_days), "n_customers": str(len(data.customers))},
        RECOMMENDER_GATE)
    if registered.promoted:
        context.log.info(f"{PRODUCT_RECOMMENDER} v{registered.version} passed its gate")
    else:
        context.log.warning(f"{PRODUCT_RECOMMENDER} v{registered.version} rejected: "
                            f"{'; '.join(registered.gate_failures)}")
    if registered.champion_version is None:
        raise dg.Failure(f"No {PRODUCT_RECOMMENDER}@champion exists and v{registered.version} "
                         f"failed its gate ({'; '.join(registered.gate_failures)}).")

    # score every buyer with the champion
    champion, version = load_champion(PRODUCT_RECOMMENDER)
    history = lines.groupby(["customer_id", "product_id"], as_index=False).agg(
        n_orders=("order_id", "nunique")).astype({"n_orders": float})
    recs = champion.predict(history)
    active = set(products.loc[products["is_active"].fillna(False), "product_id"].astype(str))
    recs = recs[recs["product_id"].isin(active)].copy()  # inactive since the champion trained
    recs["rank"] = recs.groupby("customer_id").cumcount() + 1
    # erased customers get nothing; those who have not bought yet: popular in their country
    customers = db.query_df(
        "select customer_id, country from marts.dim_customers where not is_deleted")
    recs = recs[recs["customer_id"].isin(customers["customer_id"])]
    country = customers.set_index(customers["customer_id"].astype(str))["country"]
    popular = rec.popular_in_groups(lines, country, n=10,
                                    exclude=set(products["product_id"].astype(str)) - active)
    everywhere = rec.popular_in_groups(lines, pd.Series("all", index=country.index), n=10,
                                       exclude=set(products["product_id"].astype(str)) - active)
    newcomers = customers[~customers["customer_id"].isin(history["customer_id"])]
    in_country = newcomers.merge(popular, left_on="country", right_on="group")
    elsewhere = newcomers[~newcomers["customer_id"].isin(in_country["customer_id"])]
    columns = ["customer_id", "rank", "product_id", "score"]
    recs = pd.concat([
        recs,
        in_country[columns].assign(reason=rec.REASON_POPULAR_IN_GROUP),
        elsewhere.assign(group="all").merge(everywhere, on="group")[columns].assign(
            reason=rec.REASON_POPULAR),
    ], ignore_index=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = {"model_name": PRODUCT_RECOMMENDER, "model_version": version, "scored_at": now}
    db.replace_table("ml.customer_recommendations", recs.assign(**stamp))

    similar = rec.similar_items(model, data).assign(model_version=registered.version)
    db.replace_table("ml.item_similarities", similar)
    carts = db.query_df("""
        select distinct events.customer_id, events.product_id
        from intermediate.int_events_sessionized as events
        inner join marts.fct_sessions as sessions on events.session_id = sessions.session_id
        where events.event_name = 'Product Added' and events.customer_id is not null
          and events.product_id is not null and not sessions.has_order
          and sessions.session_date >= (select max(session_date) - 7 from marts.fct_sessions)
    """)
    complements = rec.cart_complements(model, data, carts).assign(
        model_version=registered.version, scored_at=now)
    db.replace_table("ml.cart_complements", complements)

    table = evaluation.drop(columns="customers").round(4)
    sample = recs[recs["customer_id"].isin(recs["customer_id"].drop_duplicates().head(3))]
    yield dg.MaterializeResult(asset_key=["ml", "customer_recommendations"], metadata={
        "rows": dg.MetadataValue.int(len(recs)),
        "customers": dg.MetadataValue.int(int(recs["customer_id"].nunique())),
        "model_version": dg.MetadataValue.text(version),
        "trained_version": dg.MetadataValue.text(registered.version),
        "promoted": dg.MetadataValue.bool(registered.promoted),
        "mlflow_run_id": dg.MetadataValue.text(registered.run_id),
        "mlflow_experiment": dg.MetadataValue.text(RECOMMENDER_EXPERIMENT),
        "offline_evaluation": dg.MetadataValue.md(table.to_markdown()),
        "reasons": dg.MetadataValue.json(recs["reason"].value_counts().to_dict()),
        "sample": dg.MetadataValue.md(sample.round(4).to_markdown(index=False)),
    })
    yield dg.MaterializeResult(asset_key=["ml", "item_similarities"], metadata={
        "rows": dg.MetadataValue.int(len(similar)),
        "products": dg.MetadataValue.int(int(similar["product_id"].nunique()))})
    yield dg.MaterializeResult(asset_key=["ml", "cart_complements"], metadata={
        "rows": dg.MetadataValue.int(len(complements)),
        "open_carts": dg.MetadataValue.int(int(carts["customer_id"].nunique()))})
