"""The analysts' copy (core.warehouse.publish_tables): atomic, and only what changed is copied."""

from __future__ import annotations

import duckdb

from core.warehouse import Warehouse, publish_tables


def _published(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [n for (n,) in con.execute("select table_name from information_schema.tables "
                                           "order by 1").fetchall()]
        return {n: con.execute(f"select * from {n} order by all").fetchall() for n in names}


def test_stamped_tables_are_copied_only_when_a_refresh_changed_them(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    target = tmp_path / "published" / "marts.duckdb"
    with warehouse.connect() as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_orders as "
                    "select * from (values ('o1', 10, 1), ('o2', 20, 1)) t(order_id, amount, change_id)")
        con.execute("create table marts.customer_rfm as select 'c1' as customer_id, 5 as score")
    tables = ["marts.fct_orders", "marts.customer_rfm"]
    first = publish_tables(warehouse, tables, target)
    assert first == {"fct_orders": (2, True), "customer_rfm": (1, True)}

    again = publish_tables(warehouse, tables, target)  # nothing changed: the stamped one stays
    assert again == {"fct_orders": (2, False), "customer_rfm": (1, True)}
    assert _published(target)["fct_orders"] == [("o1", 10, 1), ("o2", 20, 1)]

    with warehouse.connect() as con:  # a refresh rewrites o2 under change 2
        con.execute("delete from marts.fct_orders where order_id = 'o2'")
        con.execute("insert into marts.fct_orders values ('o2', 25, 2)")
    assert publish_tables(warehouse, tables, target)["fct_orders"] == (2, True)
    assert _published(target)["fct_orders"] == [("o1", 10, 1), ("o2", 25, 2)]

    with warehouse.connect() as con:  # an order removed, nothing rewritten: the count tells
        con.execute("delete from marts.fct_orders where order_id = 'o1'")
    assert publish_tables(warehouse, tables, target)["fct_orders"] == (1, True)
    assert _published(target)["fct_orders"] == [("o2", 25, 2)]

    # a table no longer published leaves the copy; no staging file is left behind
    publish_tables(warehouse, ["marts.fct_orders"], target)
    assert list(_published(target)) == ["fct_orders"]
    assert [p.name for p in target.parent.iterdir()] == ["marts.duckdb"]
