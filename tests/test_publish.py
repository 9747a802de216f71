"""The analysts' copy (core.warehouse.publish_tables): atomic, and only what changed is copied."""

from __future__ import annotations

import duckdb

from core.warehouse import Warehouse, publish_tables


def _published(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [n for (n,) in con.execute("select table_name from information_schema.tables "
                                           "order by 1").fetchall()]
        return {n: con.execute(f"select * from {n} order by all").fetchall() for n in names}


def _build(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        con.execute("create schema if not exists marts")
        con.execute("create or replace table marts.fct_orders as select * from (values "
                    "('o1', 10, 1), ('o2', 20, 1), ('o3', 30, 1), ('o4', 40, 1)) "
                    "t(order_id, amount, change_id)")
        con.execute("create or replace table marts.customer_rfm as "
                    "select 'c1' as customer_id, 5 as score")


def _orders(warehouse: Warehouse) -> list[tuple]:
    with warehouse.connect() as con:
        return con.execute("select * from marts.fct_orders order by all").fetchall()


TABLES = ["marts.fct_orders", "marts.customer_rfm"]
KEYS = {"fct_orders": "order_id"}


def test_stamped_tables_are_kept_or_patched_with_what_a_refresh_wrote(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    target = tmp_path / "published" / "marts.duckdb"
    _build(warehouse)
    first = publish_tables(warehouse, TABLES, target, KEYS)
    assert first == {"fct_orders": (4, "copied"), "customer_rfm": (1, "copied")}

    again = publish_tables(warehouse, TABLES, target, KEYS)  # nothing changed: kept
    assert again == {"fct_orders": (4, "kept"), "customer_rfm": (1, "copied")}
    assert _published(target)["fct_orders"] == _orders(warehouse)

    with warehouse.connect() as con:  # a refresh rewrites o2 and adds o5 under change 2
        con.execute("delete from marts.fct_orders where order_id = 'o2'")
        con.execute("insert into marts.fct_orders values ('o2', 25, 2), ('o5', 50, 2)")
    assert publish_tables(warehouse, TABLES, target, KEYS)["fct_orders"] == (5, "patched")
    assert _published(target)["fct_orders"] == _orders(warehouse)

    with warehouse.connect() as con:  # an order removed, nothing rewritten: the count tells
        con.execute("delete from marts.fct_orders where order_id = 'o1'")
    assert publish_tables(warehouse, TABLES, target, KEYS)["fct_orders"] == (4, "patched")
    assert _published(target)["fct_orders"] == _orders(warehouse)

    with warehouse.connect() as con:  # o3 removed and o4 rewritten in one refresh
        con.execute("delete from marts.fct_orders where order_id in ('o3', 'o4')")
        con.execute("insert into marts.fct_orders values ('o4', 45, 3)")
    assert publish_tables(warehouse, TABLES, target, KEYS)["fct_orders"] == (3, "patched")
    assert _published(target)["fct_orders"] == _orders(warehouse)

    with warehouse.connect() as con:  # a full rebuild stamps every row anew: copied
        con.execute("update marts.fct_orders set change_id = 4")
    assert publish_tables(warehouse, TABLES, target, KEYS)["fct_orders"] == (3, "copied")
    assert _published(target)["fct_orders"] == _orders(warehouse)

    # without a key the stamped table is copied whenever it changed
    with warehouse.connect() as con:
        con.execute("insert into marts.fct_orders values ('o6', 60, 5)")
    assert publish_tables(warehouse, TABLES, target)["fct_orders"] == (4, "copied")

    # a table no longer published leaves the copy; no staging file is left behind
    publish_tables(warehouse, ["marts.fct_orders"], target, KEYS)
    assert list(_published(target)) == ["fct_orders"]
    assert [p.name for p in target.parent.iterdir()] == ["marts.duckdb"]


def test_a_warehouse_built_anew_is_copied_even_where_its_stamps_match(tmp_path):
    """Stamps restart in a warehouse built from scratch: (rows, newest stamp) equal to the
    copy's says nothing about its rows, so the copy remembers which warehouse it came from."""
    target = tmp_path / "published" / "marts.duckdb"
    old = Warehouse(tmp_path / "old.duckdb")
    _build(old)
    publish_tables(old, TABLES, target, KEYS)
    new = Warehouse(tmp_path / "new.duckdb")
    _build(new)
    with new.connect() as con:  # same rows and stamps, other values
        con.execute("update marts.fct_orders set amount = amount + 1")
    assert publish_tables(new, TABLES, target, KEYS)["fct_orders"] == (4, "copied")
    assert _published(target)["fct_orders"] == _orders(new)
    with new.connect() as con:
        con.execute("delete from marts.fct_orders where order_id = 'o1'")
        con.execute("insert into marts.fct_orders values ('o1', 11, 2)")
    assert publish_tables(new, TABLES, target, KEYS)["fct_orders"] == (4, "patched")
    assert _published(target)["fct_orders"] == _orders(new)


def test_a_table_whose_columns_changed_is_copied(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    target = tmp_path / "published" / "marts.duckdb"
    _build(warehouse)
    publish_tables(warehouse, TABLES, target, KEYS)
    with warehouse.connect() as con:  # a model gained a column, then a refresh ran
        con.execute("alter table marts.fct_orders add column currency varchar default 'EUR'")
        con.execute("insert into marts.fct_orders values ('o9', 90, 2, 'USD')")
    assert publish_tables(warehouse, TABLES, target, KEYS)["fct_orders"] == (5, "copied")
    assert _published(target)["fct_orders"] == _orders(warehouse)
