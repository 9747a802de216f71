"""The sample-store generator: deterministic, in the contract's formats, and plausible."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import generator

END = dt.date(2026, 3, 31)


def _generate(root: Path, seed: int = 7, defect_rate: float = 0.0) -> dict:
    return generator.generate(root / "landing", root / "generator", customers=150, days=20,
                              end_date=END, seed=seed, progress=False, defect_rate=defect_rate)


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("world")
    return root, _generate(root)


def test_same_seed_writes_identical_files(world, tmp_path):
    root, _ = world
    _generate(tmp_path)
    assert _digest(tmp_path / "landing") == _digest(root / "landing")


def test_another_seed_writes_another_store(world, tmp_path):
    root, _ = world
    _generate(tmp_path, seed=8)
    assert _digest(tmp_path / "landing") != _digest(root / "landing")


def test_one_folder_per_feed_and_day_with_manifest_counts(world):
    root, manifest = world
    landing = root / "landing"
    days = sorted(p.name for p in (landing / "orders").iterdir())
    assert days[0] == "dt=2026-03-12" and days[-1] == "dt=2026-03-31" and len(days) == 20
    for day, n in manifest["rows"]["orders"].items():
        assert len(pd.read_csv(landing / "orders" / f"dt={day}" / "orders.csv")) == n
    for day, n in manifest["rows"]["events"].items():
        lines = (landing / "events" / f"dt={day}" / "events.jsonl").read_text().splitlines()
        assert len(lines) == n
    assert sum(manifest["rows"]["customers"].values()) >= 150


def test_files_follow_the_contract(world):
    root, _ = world
    landing = root / "landing"
    orders = pd.concat(pd.read_csv(p, dtype=str, keep_default_na=False)
                       for p in (landing / "orders").rglob("*.csv"))
    assert list(orders.columns) == generator.ORDER_COLUMNS
    assert set(orders["status"]) <= {"completed", "cancelled", "refunded"}
    assert set(orders["channel"]) <= {"web", "app", "store", "marketplace"}
    assert orders["ordered_at"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$").all()
    assert (orders["customer_id"] == "").any(), "guest checkouts are part of the contract"
    customers = pd.read_csv(next((landing / "customers").rglob("*.csv")), dtype=str)
    assert list(customers.columns) == generator.CUSTOMER_COLUMNS
    assert set(customers["email_consent"]) <= {"true", "false"}
    assert customers["birth_date"].notna().all() and customers["city"].notna().all()
    products = pd.read_csv(next((landing / "products").rglob("*.csv")))
    assert products["category"].nunique() >= 6 and products["product_id"].is_unique
    event = json.loads((next((landing / "events").rglob("*.jsonl"))).read_text().splitlines()[0])
    assert {"type", "messageId", "timestamp", "anonymousId", "properties", "context"} <= set(event)


def test_orders_follow_browsing(world):
    """Every order line's product was added to the cart in a session that completed the order."""
    root, _ = world
    landing = root / "landing"
    events = [json.loads(line) for p in sorted((landing / "events").rglob("*.jsonl"))
              for line in p.read_text().splitlines()]
    orders = pd.concat(pd.read_csv(p, dtype=str) for p in (landing / "orders").rglob("*.csv"))
    completed = {e["properties"]["order_id"] for e in events if e.get("event") == "Order Completed"}
    assert completed == set(orders["order_id"])
    added_by_visitor: dict[str, set[str]] = {}
    for e in events:
        if e.get("event") == "Product Added":
            added_by_visitor.setdefault(e["anonymousId"], set()).add(e["properties"]["product_id"])
    order_visitor = {e["properties"]["order_id"]: e["anonymousId"] for e in events
                     if e.get("event") == "Order Completed"}
    for order_id, product_id in orders[["order_id", "product_id"]].itertuples(index=False):
        assert product_id in added_by_visitor[order_visitor[order_id]]


def test_personas_side_file_is_outside_the_landing_zone(world):
    root, _ = world
    personas = pd.read_csv(root / "generator" / "personas.csv")
    assert len(personas) == 150 and personas["persona"].nunique() >= 4
    assert not list((root / "landing").rglob("personas*"))


def test_command_line_help_and_refusal_to_overwrite(world):
    root, _ = world
    help_text = subprocess.run([sys.executable, "-m", "generator", "--help"],
                               capture_output=True, text=True, check=True).stdout
    for flag in ("--customers", "--days", "--seed", "--end-date"):
        assert flag in help_text
    refused = subprocess.run([sys.executable, "-m", "generator",
                              "--home", str(root), "--days", "2"],
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "--force" in refused.stderr


def test_injected_defects_land_in_quarantine_with_their_reasons(tmp_path):
    from core.warehouse import Warehouse
    from ingest import landing

    manifest = _generate(tmp_path, defect_rate=0.03)
    assert sum(manifest["defects"].values()) > 20
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    days = landing.landing_days(tmp_path / "landing", "orders")
    reasons = landing.load_days(warehouse, tmp_path / "landing", "orders", days).reasons
    reasons += landing.load_days(warehouse, tmp_path / "landing", "events", days).reasons
    assert dict(reasons) == manifest["defects"]


def test_a_small_store_over_a_long_stretch_has_days_without_visits(tmp_path):
    """150 customers over 90 days: some days have no visit at all (the simulation crashed on
    such a day: an IndexError in generator/simulation.py)."""
    manifest = generator.generate(tmp_path / "landing", tmp_path / "generator", customers=150,
                                  days=90, end_date=END, seed=7, progress=False)
    assert len(manifest["rows"]["events"]) == 90
    assert sum(manifest["rows"]["orders"].values()) > 0
