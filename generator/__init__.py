"""A deterministic synthetic store: writes the four landing feeds, one folder per day.

Customers belong to hidden personas that drive how often they visit, what they browse, whether a
cart turns into an order, how much they spend, whether they answer emails and when they drift
away. Orders come out of browsing sessions (Segment-spec events: search, views, cart adds and
removes, checkout, order completed), so events and orders agree. The calendar has weekly and
yearly seasonality (weekends, the gift season, Black Friday), seasonal categories follow each
country's hemisphere (swimwear in its summer, coats in its winter), and carts have real
complements (a phone brings a case and a charger, a camera a memory card). Orders are
cancelled, refunded and partly returned at realistic rates.

Each day is simulated with vectorised numpy over all customers and written at once, so memory
stays bounded by one day whatever the number of days, and `--customers 1000000 --days 365`
(about 10M order lines and 100M events) runs on a laptop-sized machine; see docs/benchmarks.md.

Besides the landing zone it writes side files under `SEGMENTA_HOME/generator/` that are never
ingested: `manifest.json` (rows written per feed and day, defects written per reason) and
`personas.csv` (each customer's hidden persona, to measure how well models recover it).

Run `python -m generator --help`.

The package is plain Python (numpy, pandas, DuckDB; never Dagster). Its modules:

- `defaults`: default sizes, and the landing files' column order and currency;
- `personas`: countries, devices and the hidden personas;
- `catalogue`: the product catalogue, its complements and seasons;
- `world`: the customers as arrays (`World`) and their profile snapshots;
- `seasons`: weekly and yearly seasonality, the gift season, Black Friday, hemispheres;
- `simulation`: one day (`simulate_day`): profiles, sessions and their events, the newsletter;
- `orders`: order lines out of buying sessions, and their returns;
- `render`: ids, local timestamps, event JSON lines and landing file handles;
- `defects`: defect injection for the quarantine to catch;
- `store`: `generate`, which drives a run and writes manifest.json and personas.csv;
- `cli`: the command line, `main` (`python -m generator`).
"""

from generator.cli import main
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
from generator.personas import PERSONAS
from generator.store import generate

__all__ = [
    "CUSTOMER_COLUMNS",
    "DEFAULT_CUSTOMERS",
    "DEFAULT_DAYS",
    "DEFAULT_DEFECT_RATE",
    "DEFAULT_END_DATE",
    "DEFAULT_PRODUCTS",
    "DEFAULT_SEED",
    "ORDER_COLUMNS",
    "PERSONAS",
    "PRODUCT_COLUMNS",
    "generate",
    "main",
]
