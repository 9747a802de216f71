"""The demo's campaign: a sample store whose uplift has something to find, and its uplift lines.

`make run DEMO=1` on an empty landing zone generates the sample store with a simulated campaign
on one demo audience (`DEMO_CAMPAIGN`: half the target arm of `at_risk_winback`, among the
customers whose last order is 30+ days old, places an extra order within 14 days, from 21 days
before the store's last day on). The landing days from the campaign's start to the store's last
day (22 days, 2026-10-10..2026-10-31) are moved out of the landing zone into
`SEGMENTA_HOME/generator/held_back/`; the pipeline runs and syncs on the days before them (the
first sync is stamped with the store's as-of date: the campaign's start; its summary is one
line), then the held-back days are moved back into the landing zone (the folder is removed) and
the pipeline runs again (removals allowed: three weeks arrive at once), so
`marts.audience_uplift` measures 22 days of outcomes after the first sync. The demo ends with
the uplift block once more, each audience's true effect (`true_effects`) next to its estimate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from core.settings import PROJECT_ROOT, Home

# no activation (nor pandas) import at module level: `activation.audiences` reads
# SEGMENTA_AUDIENCES when imported, and the demo sets it only after the CLI has imported this

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


def uplift_lines(con, truths: dict[str, dict] | None = None) -> list[str]:
    """The uplift block: audiences whose first sync has outcomes (days after it on the store's
    clock), their arms and the differences with 95 % intervals; with `truths` (the demo's
    `true_effects`), each audience's true effect next to its estimate."""
    frame = con.execute("""
        select audience_key, days_since_first_sync, n_synced, n_holdout,
               conversion_uplift, conversion_uplift_ci_low, conversion_uplift_ci_high,
               revenue_per_customer_uplift, revenue_per_customer_uplift_ci_low,
               revenue_per_customer_uplift_ci_high, email_ctr_uplift, email_ctr_uplift_ci_low,
               email_ctr_uplift_ci_high, n_email_opens_synced, n_email_opens_holdout
        from marts.audience_uplift where days_since_first_sync > 0 order by audience_key
    """).df()
    import pandas as pd

    rows = [{key: (None if pd.isna(value) else value) for key, value in row.items()}
            for row in frame.to_dict("records")]
    return format_uplift(rows, truths)


def format_uplift(rows: list[dict], truths: dict[str, dict] | None = None) -> list[str]:
    """`uplift_lines` from rows of marts.audience_uplift (None for a missing value): per
    audience a heading line, then conversion, revenue per customer and email CTR with their
    intervals (and the true effect, from `truths`), or why there is nothing to measure."""
    from activation.uplift import MIN_ARM_FOR_INTERVAL

    if not rows:
        return []
    width = max(len(row["audience_key"]) for row in rows)
    lines = [("Uplift (marts.audience_uplift: synced vs held-out customers since the first "
              "sync, on the store's clock; 95 % intervals):")]
    for row in rows:
        key, n_synced, n_holdout = row["audience_key"], row["n_synced"], row["n_holdout"]
        truth = (truths or {}).get(key)
        heading = (f"  {key:<{width}}  {row['days_since_first_sync']:>3} days  "
                   f"{n_synced:,} synced / {n_holdout:,} held out")
        small = [f"{arm} too small to measure ({n:,} < {MIN_ARM_FOR_INTERVAL})"
                 for arm, n in (("synced arm", n_synced), ("holdout", n_holdout))
                 if n < MIN_ARM_FOR_INTERVAL]
        if small:
            note = "" if truth is None or truth["campaign"] else "; no campaign simulated"
            lines.append(f"{heading}: {', '.join(small)}{note}")
            continue
        lines.append(heading)
        conversion = (f"{_pts(row['conversion_uplift'])} pts", _interval(
            _pts, row["conversion_uplift_ci_low"], row["conversion_uplift_ci_high"]))
        revenue = (_money(row["revenue_per_customer_uplift"]), _interval(
            _money, row["revenue_per_customer_uplift_ci_low"],
            row["revenue_per_customer_uplift_ci_high"]))
        if truth is not None:
            simulated = "(simulated)" if truth["campaign"] else "(no campaign simulated)"
            conversion += (f"true effect {_pts(truth['conversion'])} pts {simulated}",)
            revenue += (f"true effect {_money(truth['revenue_per_customer'])} {simulated}",)
        lines += [_measure("conversion", conversion), _measure("revenue/customer", revenue),
                  _measure("email CTR", _ctr(row))]
    return lines


def _measure(name: str, parts: tuple[str, ...]) -> str:
    columns = [f"{name:<16}", f"{parts[0]:>11}", *(f"{part:<20}" for part in parts[1:])]
    return "    " + "  ".join(columns).rstrip()


def _ctr(row: dict) -> tuple[str, ...]:
    """Email click-through (clicks per open): the difference and its delta-method interval, or
    why there is none."""
    if row["email_ctr_uplift"] is None:
        arms = [arm for arm, opens in (("synced", row["n_email_opens_synced"]),
                                       ("held-out", row["n_email_opens_holdout"])) if not opens]
        why = (f"no email opened by the {' and '.join(arms) or 'compared'} customers since the "
               "first sync: no click-through rate to compare")
        return ("-", why)
    if row["email_ctr_uplift_ci_low"] is None:
        return (f"{_pts(row['email_ctr_uplift'])} pts", "no interval: too few email opens")
    return (f"{_pts(row['email_ctr_uplift'])} pts", _interval(
        _pts, row["email_ctr_uplift_ci_low"], row["email_ctr_uplift_ci_high"]))


def _interval(show: Callable[[float | None], str], low: float | None,
              high: float | None) -> str:
    return f"[{show(low)}, {show(high)}]"


def true_effects(con, generator_dir: Path) -> dict[str, dict]:
    """The demo's truth: for each audience in `uplift_lines`, the simulated campaigns' true
    effect on the members its estimate compares (`generator.campaigns.true_effect`, from the
    generator's side files `manifest.json` and `campaign_orders.csv`): conversion and revenue
    per customer, and `campaign` (whether a campaign targeted the audience; if not, its true
    effect is 0). Empty when the store was generated without campaigns (or not generated)."""
    import pandas as pd

    from generator.campaigns import true_effect

    manifest = generator_dir / "manifest.json"
    records_file = generator_dir / "campaign_orders.csv"
    if not manifest.exists() or not records_file.exists():
        return {}
    campaigns = {c["audience"] for c in json.loads(manifest.read_text()).get("campaigns", [])}
    if not campaigns:
        return {}
    records = pd.read_csv(records_file)
    orders = con.execute("select order_id, customer_id, order_date from marts.fct_orders "
                         "where is_completed").df()
    truths = {}
    for key, since in con.execute("""
            select audience_key, first_sync_as_of_date from marts.audience_uplift
            where days_since_first_sync > 0 order by audience_key""").fetchall():
        truths[key] = {**true_effect(records, key, compared_members(con, key), orders, since),
                       "campaign": key in campaigns}
    return truths


def compared_members(con, audience_key: str) -> list[str]:
    """The customers marts.audience_uplift compares for an audience (both arms): assigned by the
    end of its first sync's run, as `activation.uplift` selects them."""
    return [customer for (customer,) in con.execute("""
        with first_run as (
            select arg_min(run_id, started_at) as run_id, min(started_at) as started_at
            from activation.sync_runs
            where audience_key = $key and status in ('succeeded', 'add_only')
              and mode <> 'dry_run'
        )
        select customer_id from activation.audience_assignments
        where audience_key = $key and first_assigned_at <= (
            select coalesce(max(runs.finished_at),
                            min(first_run.started_at) + interval 1 day)
            from first_run
            inner join activation.sync_runs as runs
                on runs.audience_key = $key and runs.run_id = first_run.run_id)
        order by customer_id
    """, {"key": audience_key}).fetchall()]


def closing_lines(home: Home) -> list[str]:
    """The demo's last words: the uplift block with each audience's true effect (empty when no
    audience has outcomes since its first sync yet)."""
    if not home.warehouse.exists():
        return []
    from core.warehouse import Warehouse

    with Warehouse(home.warehouse).connect(read_only=True) as con:
        tables = {f"{schema}.{name}" for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        if "marts.audience_uplift" not in tables:
            return []
        truths = true_effects(con, home.generator)
        lines = uplift_lines(con, truths)
    if lines and truths:
        lines.append("  (true effect: the simulated campaign's effect on the same customers, "
                     "both arms' outcomes known from generator/campaign_orders.csv)")
    return lines


def _pts(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:+,.2f}"


def before_campaign_line(home: Home) -> str:
    """The demo's first run's summary (the days before the campaign): one line on its syncs; the
    full summary comes after the campaign's days."""
    from core.warehouse import Warehouse

    with Warehouse(home.warehouse).connect(read_only=True) as con:
        tables = {f"{schema}.{name}" for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        rows = con.execute("""
            select status, count(*), count(distinct audience_key), max(as_of_date)
            from activation.sync_runs where mode <> 'dry_run' group by 1 order by 1
        """).fetchall() if "activation.sync_runs" in tables else []
    if not rows:
        return ("Before the campaign's days: no audience synced (the full summary follows the "
                "campaign's days; `segmenta summary` prints it at any time).")
    as_of = max((row[3] for row in rows if row[3] is not None), default=None)
    statuses = ", ".join(f"{n:,} {status}" for status, n, _, _ in rows)
    return (f"Before the campaign's days (store as of {as_of}): first syncs of the demo "
            f"audiences: {statuses}. The full summary follows the campaign's days "
            "(`segmenta summary` prints it at any time).")
