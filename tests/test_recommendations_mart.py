"""marts.customer_product_recommendations refreshes what changed and nothing else: after a
refresh it holds exactly the rows a full build writes, the customers whose rows did not change
keep the rows (and stamps) they had, and the analysts' copy is patched with the rewritten rows.

A small warehouse written here holds what the mart reads (the recommender's lists, the
customers and the catalogue); dbt builds the one model (real dbt, real DuckDB)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pandas as pd

from core.warehouse import Warehouse, publish_tables
from tests.test_incremental_models import dbt

MART = "marts.customer_product_recommendations"
SELECT = ("--select", "customer_product_recommendations")
T0 = dt.datetime(2026, 6, 1, 3, 0)


def _store(home: Path) -> None:
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for schema in ("raw", "marts", "ml"):
            con.execute(f"create schema {schema}")
        con.execute("create sequence raw.change_seq")
        con.execute("""create table marts.dim_customers as
            select 'C' || i as customer_id, false as is_deleted from range(190) as t(i)""")
        con.execute("""create table marts.dim_products as
            select 'P' || i as product_id, 'Product ' || i as product_name,
                   'cat' || (i % 3) as category, 'sub' || (i % 5) as subcategory,
                   round(5 + i * 1.5, 2) as price, 'EUR' as currency
            from range(110) as t(i)""")
        # 200 customers have lists (C190..C199 not in dim_customers yet), of products P0..P119
        # (P110 and up are not in the catalogue)
        con.execute("""create table ml.customer_recommendations as
            select 'C' || c as customer_id, r + 1 as rank, 'P' || ((c * 7 + r * 3) % 120)
                       as product_id,
                   1.0 / (r + 1) as score, 'buy_again' as reason,
                   'product_recommender' as model_name, '1' as model_version,
                   ?::timestamp as scored_at
            from range(200) as c(c), range(10) as r(r)""", [T0])


def _change_everything(home: Path) -> None:
    """A day's changes: some customers rescored, one dropped, one erased, two newly known, a
    price changed, a product added to and another removed from the catalogue."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        t1 = T0 + dt.timedelta(days=1)
        con.execute("""update ml.customer_recommendations
                       set product_id = 'P' || ((rank * 11) % 110), score = score / 2,
                           scored_at = ?, model_version = '2'
                       where customer_id in ('C1', 'C2', 'C3')""", [t1])
        con.execute("delete from ml.customer_recommendations where customer_id = 'C4'")
        con.execute("update marts.dim_customers set is_deleted = true where customer_id = 'C5'")
        con.execute("insert into marts.dim_customers values ('C190', false), ('C191', false)")
        con.execute("update marts.dim_products set price = price + 1 where product_id = 'P7'")
        con.execute("insert into marts.dim_products values "
                    "('P111', 'Product 111', 'cat1', 'sub1', 9.5, 'EUR')")
        con.execute("delete from marts.dim_products where product_id = 'P8'")


def _mart(home: Path) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(f"select * from {MART} order by customer_id, rank").df()


def test_the_recommendations_mart_refreshes_to_its_full_build(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    _store(home)
    dbt(home, "run", *SELECT)
    before = _mart(home)
    assert len(before) == 1900 and before["change_id"].nunique() == 1
    published = tmp_path / "published" / "marts.duckdb"
    keys = {"customer_product_recommendations": "customer_id"}
    assert publish_tables(Warehouse(home / "warehouse.duckdb"), [MART], published, keys)[
        "customer_product_recommendations"][1] == "copied"

    _change_everything(home)
    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(home, rebuilt)
    dbt(home, "run", *SELECT)
    dbt(rebuilt, "run", *SELECT, "--full-refresh")
    after, full = _mart(home), _mart(rebuilt)
    pd.testing.assert_frame_equal(after.drop(columns="change_id"),
                                  full.drop(columns="change_id"))
    # rewritten: the rescored, the newly known (C190, C191), and everyone with P7, P8 or P111;
    # gone: the dropped C4 and the erased C5; everyone else keeps their rows as they were
    stamp = before["change_id"].iloc[0]
    rewritten = set(after.loc[after["change_id"] != stamp, "customer_id"])
    touched = set(before.loc[before["product_id"].isin(["P7", "P8", "P111"]), "customer_id"])
    assert rewritten == {"C1", "C2", "C3", "C190", "C191"} | (touched - {"C4", "C5"})
    assert {"C4", "C5"}.isdisjoint(after["customer_id"])
    assert len(rewritten) < len(set(after["customer_id"])) / 2  # (else published whole)
    kept = before[~before["customer_id"].isin(rewritten | {"C4", "C5"})]
    pd.testing.assert_frame_equal(
        kept.reset_index(drop=True),
        after[after["customer_id"].isin(kept["customer_id"])].reset_index(drop=True))
    assert after.loc[after["product_id"] == "P111", "price"].eq(9.5).all()
    assert after.loc[after["product_id"] == "P8", "product_name"].isna().all()

    # the analysts' copy: patched with the rewritten rows, equal to the mart
    result = publish_tables(Warehouse(home / "warehouse.duckdb"), [MART], published, keys)
    assert result["customer_product_recommendations"] == (len(after), "patched")
    with duckdb.connect(str(published), read_only=True) as con:
        copy = con.execute("select * from customer_product_recommendations "
                           "order by customer_id, rank").df()
    pd.testing.assert_frame_equal(copy, after)

    # a refresh with nothing changed rewrites nothing
    dbt(home, "run", *SELECT)
    pd.testing.assert_frame_equal(_mart(home), after)
