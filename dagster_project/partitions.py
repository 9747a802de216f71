"""The daily partitions of the orders and events feeds (one per landing folder `dt=YYYY-MM-DD`).

They start at the store's first landing day of orders or events (`SEGMENTA_START_DATE`
overrides it; 2025-01-01 while the landing zone is empty) and end yesterday (UTC): a day is
loaded once it is over.
"""

import os

import dagster as dg

from core.settings import HOME
from ingest import landing

EMPTY_STORE_START = "2025-01-01"


def first_landing_day() -> str:
    """The oldest `dt=` folder of the orders and events feeds."""
    days = [day for feed in ("orders", "events") for day in landing.landing_days(HOME.landing, feed)]
    return min(days).isoformat() if days else EMPTY_STORE_START


START_DATE = os.environ.get("SEGMENTA_START_DATE") or first_landing_day()

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE)
