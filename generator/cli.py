"""The command line, `python -m generator`: argument parsing around `generate`."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from generator.campaigns import SPEC_HELP, Campaign, CampaignError
from generator.defaults import (
    DEFAULT_CUSTOMERS,
    DEFAULT_DAYS,
    DEFAULT_DEFECT_RATE,
    DEFAULT_END_DATE,
    DEFAULT_PRODUCTS,
    DEFAULT_SEED,
)
from generator.store import generate


def main(argv: list[str] | None = None, holdouts: dict[str, float] | None = None) -> int:
    """`python -m generator`; `holdouts` (audience key -> holdout share, from the audiences
    file when `segmenta generate` calls it) fills a campaign's holdout share."""
    from core.settings import HOME

    parser = argparse.ArgumentParser(
        prog="python -m generator",
        description="Write a deterministic synthetic store (orders, events, customers, products, "
                    "each city's weather) "
                    "into SEGMENTA_HOME/landing, one folder per feed and day. The same arguments "
                    "always write the same files.",
    )
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS,
                        help="number of registered customers (default %(default)s)")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS,
                        help="number of days to simulate (default %(default)s)")
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=DEFAULT_END_DATE,
                        help="last simulated day, YYYY-MM-DD (default %(default)s)")
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS,
                        help="approximate catalogue size (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="random seed (default %(default)s)")
    parser.add_argument("--defect-rate", type=float, default=DEFAULT_DEFECT_RATE,
                        help="share of order lines and events written with a defect for the "
                             "quarantine to catch (default %(default)s; 0 for a clean store)")
    parser.add_argument("--gzip", action="store_true",
                        help="write .csv.gz / .jsonl.gz (about 8x smaller; for large stores)")
    parser.add_argument("--home", type=Path, default=HOME.root,
                        help="SEGMENTA_HOME to write into (default: $SEGMENTA_HOME or data/)")
    parser.add_argument("--force", action="store_true",
                        help="write even if the landing zone already holds files")
    parser.add_argument("--campaign", action="append", default=[], metavar="SPEC",
                        help="simulate a campaign with a known true effect (repeatable): "
                             + SPEC_HELP.replace("%", "%%") + "; e.g. audience=at_risk_winback,"
                             "start=2026-10-01,conversion=0.3 (README, 'Uplift')")
    args = parser.parse_args(argv)
    try:
        campaigns = tuple(Campaign.parse(spec, holdouts) for spec in args.campaign)
    except CampaignError as exc:
        parser.error(str(exc))
    if args.customers < 1 or args.days < 1 or args.products < 10:
        parser.error("--customers and --days must be at least 1, --products at least 10")

    landing = args.home / "landing"
    if landing.exists() and any(landing.glob("*/dt=*/*")) and not args.force:
        parser.error(f"{landing} already holds landing files; pass --force to write over them")
    try:
        manifest = generate(landing, args.home / "generator", args.customers, args.days,
                            args.end_date, args.seed, defect_rate=args.defect_rate,
                            products=args.products, compress=args.gzip, campaigns=campaigns)
    except CampaignError as exc:
        parser.error(str(exc))
    totals = {feed: sum(days.values()) for feed, days in manifest["rows"].items()}
    print(f"wrote {manifest['start_date']}..{manifest['end_date']} to {landing}: "
          + ", ".join(f"{n:,} {feed}" for feed, n in totals.items()))
    return 0
