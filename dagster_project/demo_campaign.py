"""The demo's campaign: a sample store whose uplift has something to find, and its summary lines.

`make run DEMO=1` on an empty landing zone generates the sample store with a simulated campaign
on one demo audience (`DEMO_CAMPAIGN`: half the target arm of `at_risk_winback`, among the
customers whose last order is 30+ days old, places an extra order within 14 days, from 21 days
before the store's last day on), holds the days from the
campaign's start back (`SEGMENTA_HOME/generator/held_back/`), runs and syncs on the days before
it (the first sync is stamped with the store's as-of date: the campaign's start), then delivers
the held-back days and runs again (removals allowed: three weeks arrive at once), so `marts.audience_uplift` measures
21 days of outcomes after the first sync.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from core.settings import PROJECT_ROOT, Home

DEMO_AUDIENCES = PROJECT_ROOT / "segments" / "audiences.demo.yml"
# the demo's campaign: a win-back email that brings half the target arm back within 14 days (a
# large effect, so that the demo's small audience shows it beyond its interval)
DEMO_CAMPAIGN = {"audience": "at_risk_winback", "days_before_end": 21, "conversion": 0.5,
                 "days": 14, "lapsed_days": 30}


def audience_holdouts(path: Path | None = None) -> dict[str, float] | None:
    """Audience key -> holdout share of the audiences file (`SEGMENTA_AUDIENCES` or the
    default), for the generator's campaigns; None when the file cannot be read."""
    from activation.audiences import AUDIENCES_FILE, AudienceError, load_audiences

    try:
        return {a.key: a.holdout for a in load_audiences(path or Path(
            os.environ.get("SEGMENTA_AUDIENCES") or AUDIENCES_FILE))}
    except (AudienceError, OSError):
        return None


def held_back(home: Home) -> Path:
    return home.generator / "held_back"


def prepare(home: Home) -> int:
    """On an empty landing zone: the sample store with the demo campaign, the days from its
    start held back. Returns how many landing days are held back (also ones an interrupted demo
    left)."""
    if not any(home.landing.glob("*/dt=*/*")):
        import generator
        from generator.campaigns import Campaign

        end = generator.DEFAULT_END_DATE
        start = end - dt.timedelta(days=DEMO_CAMPAIGN["days_before_end"])
        holdout = audience_holdouts(DEMO_AUDIENCES)[DEMO_CAMPAIGN["audience"]]
        campaign = Campaign(DEMO_CAMPAIGN["audience"], start, DEMO_CAMPAIGN["conversion"],
                            holdout, DEMO_CAMPAIGN["days"],
                            lapsed_days=DEMO_CAMPAIGN["lapsed_days"])
        print(f"No landing files in {home.landing}: generating the sample store with a simulated "
              f"campaign on {campaign.audience} from {start} (true effect: "
              f"{campaign.conversion:.0%} of its target arm's customers who last bought "
              f"{campaign.lapsed_days}+ days before buy once more within {campaign.days} days; "
              "the holdout does not).")
        generator.generate(home.landing, home.generator, campaigns=(campaign,))
        hold_back(home, start)
    return len(list(held_back(home).glob("*/dt=*")))


def hold_back(home: Home, first_day: dt.date) -> None:
    """Move every feed's landing days from `first_day` on out of the landing zone."""
    for folder in sorted(home.landing.glob("*/dt=*")):
        if dt.date.fromisoformat(folder.name[3:]) >= first_day:
            target = held_back(home) / folder.parent.name / folder.name
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(target)


def deliver(home: Home) -> int:
    """The held-back days into the landing zone, as a store delivers them; returns how many."""
    folders = sorted(held_back(home).glob("*/dt=*"))
    for folder in folders:
        target = home.landing / folder.parent.name / folder.name
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
    shutil.rmtree(held_back(home), ignore_errors=True)
    return len({folder.name for folder in folders})


def uplift_lines(con) -> list[str]:
    """The summary's uplift section: audiences whose first sync has outcomes (days after it on
    the store's clock), their arms and the differences with 95 % intervals."""
    rows = con.execute("""
        select audience_key, days_since_first_sync, n_synced, n_holdout,
               conversion_uplift, conversion_uplift_ci_low, conversion_uplift_ci_high,
               revenue_per_customer_uplift, revenue_per_customer_uplift_ci_low,
               revenue_per_customer_uplift_ci_high, email_ctr_uplift
        from marts.audience_uplift where days_since_first_sync > 0 order by audience_key
    """).fetchall()
    if not rows:
        return []
    width = max(len(r[0]) for r in rows)
    lines = [("Uplift (marts.audience_uplift: synced vs holdout since the first sync, on the "
              "store's clock; 95 % intervals):")]
    for (key, days, n_synced, n_holdout, conv, conv_low, conv_high, rev, rev_low, rev_high,
         ctr) in rows:
        ctr_text = "" if ctr is None else f"  email CTR {ctr * 100:+.1f} pts"
        lines.append(
            f"  {key:<{width}}  {days:>3} days  {n_synced:,} synced / {n_holdout:,} held out  "
            f"conversion {conv * 100:+.1f} pts [{_pts(conv_low)}, {_pts(conv_high)}]  "
            f"revenue/customer {rev:+,.2f} [{_money(rev_low)}, {_money(rev_high)}]{ctr_text}")
    return lines


def _pts(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:+,.2f}"
