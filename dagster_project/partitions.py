"""The daily partitions of the orders and events feeds (one per landing folder `dt=YYYY-MM-DD`)."""

import os

import dagster as dg

# The first day a store has data for; landing days before it cannot be loaded. The last
# partition is yesterday (UTC): a day is loaded once it is over.
START_DATE = os.environ.get("SEGMENTA_START_DATE", "2025-01-01")

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE)
