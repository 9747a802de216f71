"""`generate`: the whole store, day by day, plus the side files that are never ingested.

Writes the five landing feeds under `landing/<feed>/dt=<day>/`, and under the side folder
`manifest.json` (rows written per feed and day, defects written per reason) and `personas.csv`
(each customer's hidden persona, to measure how well models recover it).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from tqdm import tqdm

from generator.campaigns import Campaign, Campaigns
from generator.defaults import (
    CUSTOMER_COLUMNS,
    DEFAULT_CUSTOMERS,
    DEFAULT_DAYS,
    DEFAULT_DEFECT_RATE,
    DEFAULT_END_DATE,
    DEFAULT_PRODUCTS,
    DEFAULT_SEED,
    ORDER_COLUMNS,
    PRODUCT_COLUMNS,
)
from generator.defects import inject_defects
from generator.personas import PERSONAS
from generator.render import lookup_tables, open_landing, render_events
from generator.simulation import simulate_day
from generator.weather import weather_rows
from generator.world import World


def generate(landing: Path, side_dir: Path, customers: int = DEFAULT_CUSTOMERS,
             days: int = DEFAULT_DAYS, end_date: dt.date = DEFAULT_END_DATE,
             seed: int = DEFAULT_SEED, progress: bool = True,
             defect_rate: float = DEFAULT_DEFECT_RATE, products: int = DEFAULT_PRODUCTS,
             compress: bool = False, campaigns: tuple[Campaign, ...] = ()) -> dict:
    """Write the landing zone for `days` days ending on `end_date`; returns the manifest.

    `campaigns` add their target arms' campaign orders (`generator.campaigns`); without them the
    store is the same, file for file, as before campaigns existed."""
    start = end_date - dt.timedelta(days=days - 1)
    world = World(customers, start, days, seed, products)
    simulated = Campaigns(campaigns, world, seed) if campaigns else None
    counts: dict[str, dict[str, int]] = {feed: {} for feed in
                                          ("orders", "events", "customers", "products",
                                           "weather")}
    defects: Counter = Counter()
    defect_rng = np.random.default_rng([seed, 1])  # defects never change the clean world
    forecast_rng = np.random.default_rng([seed, 5])  # forecast errors: nor do these
    con = duckdb.connect()
    lookup_tables(con, world.catalogue)
    bar = tqdm(range(days), desc="generating days", unit="day", disable=not progress)
    for day_index in bar:
        day = start + dt.timedelta(days=day_index)
        partition = f"dt={day.isoformat()}"
        events, orders, profiles = simulate_day(world, day_index)
        if simulated:
            events, orders = simulated.apply(day_index, events, orders)
        lines = render_events(con, events, world.message_seq + 1)
        world.message_seq += len(lines)
        orders, lines, day_defects = inject_defects(orders, lines, defect_rate, defect_rng)
        defects.update(day_defects)
        with open_landing(landing / "events" / partition / "events.jsonl", compress) as handle:
            handle.write("\n".join(lines) + ("\n" if lines else ""))
        with open_landing(landing / "orders" / partition / "orders.csv", compress) as handle:
            orders[ORDER_COLUMNS].to_csv(handle, index=False, lineterminator="\n")
        counts["events"][day.isoformat()] = len(lines)
        counts["orders"][day.isoformat()] = len(orders)
        if len(profiles):
            with open_landing(landing / "customers" / partition / "customers.csv",
                              compress) as handle:
                profiles[CUSTOMER_COLUMNS].to_csv(handle, index=False, lineterminator="\n")
            counts["customers"][day.isoformat()] = len(profiles)
        weather = weather_rows(world.weather, day_index, forecast_rng)
        with open_landing(landing / "weather" / partition / "weather.csv", False) as handle:
            weather.to_csv(handle, index=False, lineterminator="\n")
        counts["weather"][day.isoformat()] = len(weather)
        if day_index == 0:
            rows = world.catalogue.rows(f"{day.isoformat()}T00:00:00+00:00")
            with open_landing(landing / "products" / partition / "products.csv", False) as handle:
                rows[PRODUCT_COLUMNS].to_csv(handle, index=False, lineterminator="\n")
            counts["products"][day.isoformat()] = len(rows)
        bar.set_postfix(orders=sum(counts["orders"].values()),
                        events=sum(counts["events"].values()))
    con.close()
    manifest = {"seed": seed, "customers": customers, "days": days, "products": products,
                "start_date": start.isoformat(), "end_date": end_date.isoformat(),
                "defect_rate": defect_rate, "defects": dict(sorted(defects.items())),
                "rows": counts}
    if simulated:
        manifest["campaigns"] = [c.as_dict() for c in campaigns]
        simulated.write(side_dir)
    side_dir.mkdir(parents=True, exist_ok=True)
    (side_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    pd.DataFrame({"customer_id": [f"C{i + 1:07d}" for i in range(customers)],
                  "persona": np.array([p.name for p in PERSONAS])[world.persona]}).to_csv(
        side_dir / "personas.csv", index=False)
    return manifest
