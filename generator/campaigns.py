"""Simulated campaigns: a known true effect on one audience's target arm, for the uplift to find.

A campaign names an audience key, a start day and a true effect. From the start day on, each
eligible customer of the audience's **target** arm places, with probability `conversion`, one
extra order (a campaign order: `items` products on average from their favourite categories, opened
from a campaign email) on a day drawn uniformly from the `days` days starting at `start`. The
**holdout** arm gets nothing. The arm is `core.holdout.in_holdout` with the audience's holdout
share, the very function `activation` splits the synced audience with.

The generator cannot know who the segment behind the audience will hold on the start day (the
pipeline computes it), so the effect goes to every *eligible* customer of the target arm: one
who bought before the start, and whose last completed order is at least `lapsed_days` days
before it (0 by default; a win-back audience takes the lapsed ones). The audience's members are
among them, and since the arm is a hash independent of everything else, the comparison inside
the audience measures the configured effect; a member who is not eligible is untreated in both
arms (the effect is diluted, not biased). Eligibility is fixed on the start day, from the
orders before it, as the sync's membership is.

Every draw comes from the campaign's own random stream (`[seed, 100 + i]`) and nothing of the
world's state is touched (no order number, no `has_ordered`, no return), so the store without
the campaign orders is exactly the store generated without the campaign: each customer's
outcome with and without the campaign is known. `campaign_orders.csv` in the generator's side
folder holds the campaign orders of *both* arms (`delivered` false for the holdout's, which
never reach the landing files), so a test can compute the true effect on any group of
customers: the potential outcomes under treatment and control of each of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.holdout import in_holdout
from generator.defaults import CURRENCY, ORDER_COLUMNS
from generator.personas import COUNTRIES
from generator.render import local_iso, padded_ids
from generator.world import World

# campaign order numbers start here (O900000001...): far above any order the world numbers
FIRST_ORDER_NUMBER = 900_000_001
SPEC_HELP = ("audience=KEY,start=YYYY-MM-DD,conversion=P[,holdout=SHARE][,days=N][,items=N]"
             "[,lapsed_days=N]: from START on, each customer of the audience's target arm who "
             "bought before START (last order at least lapsed_days before it) places one extra "
             "order with probability P within N days (default 14) of about `items` products "
             "(default 2); the holdout arm (SHARE: the audience's holdout share) does not")


class CampaignError(ValueError):
    """A campaign specification that cannot be simulated."""


@dataclass(frozen=True)
class Campaign:
    """One simulated campaign and its true effect (see the module docstring)."""

    audience: str
    start: dt.date
    conversion: float
    holdout: float
    days: int = 14
    items: float = 2.0
    lapsed_days: int = 0

    @classmethod
    def parse(cls, text: str, holdouts: dict[str, float] | None = None) -> Campaign:
        """`audience=KEY,start=YYYY-MM-DD,conversion=P[,holdout=S][,days=N][,items=N]`; the
        holdout share defaults to `holdouts[audience]` (the audiences file's)."""
        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise CampaignError(f"campaign {text!r}: {part!r} is not name=value ({SPEC_HELP})")
            fields[name.strip()] = value.strip()
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise CampaignError(f"campaign {text!r}: unknown {', '.join(sorted(unknown))} "
                                f"({SPEC_HELP})")
        missing = {"audience", "start", "conversion"} - set(fields)
        if missing:
            raise CampaignError(f"campaign {text!r}: missing {', '.join(sorted(missing))} "
                                f"({SPEC_HELP})")
        audience = fields["audience"]
        if "holdout" not in fields and audience not in (holdouts or {}):
            raise CampaignError(f"campaign {text!r}: give holdout= (the holdout share of "
                                f"audience {audience!r}; no audiences file names it)")
        try:
            campaign = cls(audience, dt.date.fromisoformat(fields["start"]),
                           float(fields["conversion"]),
                           float(fields.get("holdout", (holdouts or {}).get(audience, 0))),
                           int(fields.get("days", 14)), float(fields.get("items", 2)),
                           int(fields.get("lapsed_days", 0)))
        except ValueError as exc:
            raise CampaignError(f"campaign {text!r}: {exc}") from None
        campaign.check()
        return campaign

    def check(self) -> None:
        if not 0 <= self.conversion <= 1:
            raise CampaignError(f"campaign {self.audience}: conversion must be between 0 and 1")
        if not 0 < self.holdout <= 0.5:
            raise CampaignError(f"campaign {self.audience}: holdout must be above 0 and at most "
                                "0.5 (a campaign needs a holdout to be measured)")
        if self.days < 1 or self.items < 1 or self.lapsed_days < 0:
            raise CampaignError(f"campaign {self.audience}: days and items must be at least 1, "
                                "lapsed_days at least 0")

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "start": self.start.isoformat()}


class Campaigns:
    """The campaigns of one generated store: their draws, their orders day by day, and the
    record of every campaign order of both arms."""

    def __init__(self, campaigns: tuple[Campaign, ...], world: World, seed: int):
        self.campaigns, self.world = campaigns, world
        ids = [f"C{i + 1:07d}" for i in range(world.n)]
        self.draws = []
        for number, campaign in enumerate(campaigns):
            if not world.start < campaign.start <= world.start + dt.timedelta(days=world.days - 1):
                raise CampaignError(f"campaign {campaign.audience}: start {campaign.start} is not "
                                    "after the first simulated day and within the store")
            rng = np.random.default_rng([seed, 100 + number])
            target = np.array([not in_holdout(campaign.audience, c, campaign.holdout)
                               for c in ids])
            buys = rng.random(world.n) < campaign.conversion
            day = ((campaign.start - world.start).days
                   + rng.integers(0, campaign.days, world.n))
            self.draws.append((rng, target, buys, day))
        self.eligible: list[np.ndarray | None] = [None] * len(campaigns)
        self.last_order = np.full(world.n, -1)  # the day of each customer's last order
        self.next_order = FIRST_ORDER_NUMBER
        self.records: list[pd.DataFrame] = []

    def apply(self, day_index: int, events: pd.DataFrame, orders: pd.DataFrame
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The day's events and order lines with the target arms' campaign orders added."""
        world, cat = self.world, self.world.catalogue
        more_events, more_orders = [events], [orders]
        day = world.start + dt.timedelta(days=day_index)
        for number, (campaign, (rng, target, buys, when)) in enumerate(
                zip(self.campaigns, self.draws, strict=True)):
            if day_index == (campaign.start - world.start).days:  # the orders before the start
                self.eligible[number] = ((self.last_order >= 0) & (
                    day_index - self.last_order >= max(campaign.lapsed_days, 1)))
            if self.eligible[number] is None:
                continue
            active = (world.signup_day <= day_index) & ~world.deleted
            who = np.flatnonzero(buys & (when == day_index) & active & self.eligible[number])
            if not len(who):
                continue
            numbers = np.arange(self.next_order, self.next_order + len(who))
            self.next_order += len(who)
            n_items = 1 + rng.poisson(campaign.items - 1, len(who))
            line_of = np.repeat(np.arange(len(who)), n_items)
            customer = who[line_of]
            category = world.favourite[customer, rng.integers(0, 3, len(customer))]
            n_per = np.array([len(s) for s in cat.subs_of_category])
            flat, first = np.concatenate(cat.subs_of_category), np.r_[0, np.cumsum(n_per)[:-1]]
            sub = flat[first[category] + (rng.random(len(customer)) * n_per[category]).astype(int)]
            product = cat.sub_start[sub] + (rng.random(len(customer)) * cat.sub_len[sub]).astype(int)
            opened = (np.datetime64(day, "s")
                      + rng.integers(7 * 3600, 20 * 3600, len(who)).astype("timedelta64[s]"))
            completed = opened + np.int64(600)
            revenue = np.bincount(line_of, weights=cat.price[product], minlength=len(who))
            delivered = target[who]
            self.records.append(pd.DataFrame({
                "audience_key": campaign.audience, "customer_id": padded_ids("C", who + 1, 7),
                "arm": np.where(delivered, "target", "holdout"),
                "order_id": padded_ids("O", numbers, 9), "order_date": day.isoformat(),
                "revenue": np.round(revenue, 2), "delivered": delivered}))
            if not delivered.any():  # only the holdout's, never delivered
                continue
            kept = delivered[line_of]
            country = world.country[customer[kept]]
            more_orders.append(pd.DataFrame({
                "order_id": padded_ids("O", numbers[line_of[kept]], 9),
                "line_number": _rank_within(line_of[kept]) + 1,
                "customer_id": padded_ids("C", customer[kept] + 1, 7),
                "ordered_at": local_iso(completed[line_of[kept]],
                                        np.array([c.utc_offset for c in COUNTRIES])[country]),
                "product_id": cat.product_id[product[kept]],
                "quantity": 1,
                "unit_price": np.char.mod("%.2f", cat.price[product[kept]]),
                "currency": CURRENCY, "status": "completed", "channel": "web",
                "shipping_country": np.array([c.code for c in COUNTRIES])[country],
                "discount_amount": "0.00"})[ORDER_COLUMNS])
            more_events.append(self._events(campaign, who[delivered], numbers[delivered],
                                            opened[delivered], line_of, product, delivered))
        bought = orders.loc[(orders["status"] == "completed") & (orders["customer_id"] != ""),
                            "customer_id"]
        self.last_order[bought.str[1:].astype(int).to_numpy() - 1] = day_index
        if len(more_orders) == 1:
            return events, orders
        return (pd.concat(more_events, ignore_index=True).sort_values(
                    "ts", kind="stable", ignore_index=True),
                pd.concat(more_orders, ignore_index=True))

    def _events(self, campaign: Campaign, who: np.ndarray, numbers: np.ndarray,
                opened: np.ndarray, line_of: np.ndarray, product: np.ndarray,
                delivered: np.ndarray) -> pd.DataFrame:
        """A campaign order's visit: the email opened and clicked, a product view and cart add
        per line, checkout and the completed order (the events feed's kinds)."""
        world = self.world
        position = np.full(len(delivered), -1)
        position[delivered] = np.arange(len(who))
        rows = []
        for offset, kind in ((-120, "Email Opened"), (-60, "Email Link Clicked"), (0, "page"),
                             (540, "Checkout Started"), (600, "Order Completed")):
            rows.append(pd.DataFrame({
                "kind": kind, "session": np.arange(len(who)),
                "ts": opened + np.int64(offset), "product": -1,
                "order": numbers if kind == "Order Completed" else -1,
                "email": kind.startswith("Email")}))
        line = position[line_of]
        keep = line >= 0
        for offset, kind in ((60, "Product Viewed"), (120, "Product Added")):
            rows.append(pd.DataFrame({
                "kind": kind, "session": line[keep],
                "ts": opened[line[keep]] + np.int64(offset) + _rank_within(line[keep]) * 150,
                "product": product[keep], "order": -1, "email": False}))
        frame = pd.concat(rows, ignore_index=True)
        customer = who[frame["session"].to_numpy()]
        email = frame["email"].to_numpy()
        return pd.DataFrame({
            "kind": frame["kind"].to_numpy(), "user": customer,
            "anon": world.anonymous_id[customer], "ts": frame["ts"].to_numpy(),
            "product": frame["product"].to_numpy(),
            "price": np.where(frame["product"] >= 0,
                              world.catalogue.price[np.maximum(frame["product"], 0)], np.nan),
            "order": frame["order"].to_numpy(),
            "platform": np.where(email, -1, world.platform[customer]),
            "country": np.where(email, -1, world.country[customer]),
            "query": -1,
            "campaign": np.where(email, np.datetime64(campaign.start, "s"),
                                 np.datetime64("NaT", "s")),
        })

    def write(self, side_dir: Path) -> None:
        """`campaign_orders.csv`: every campaign order of both arms (the holdout's never
        delivered), with its customer, arm, day and revenue."""
        columns = ["audience_key", "customer_id", "arm", "order_id", "order_date", "revenue",
                   "delivered"]
        frame = (pd.concat(self.records, ignore_index=True) if self.records
                 else pd.DataFrame(columns=columns))
        side_dir.mkdir(parents=True, exist_ok=True)
        frame[columns].to_csv(side_dir / "campaign_orders.csv", index=False)


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    if not len(groups):
        return np.zeros(0, dtype=int)
    start = np.r_[True, groups[1:] != groups[:-1]]
    index = np.arange(len(groups))
    return index - np.maximum.accumulate(np.where(start, index, 0))


def true_effect(records: pd.DataFrame, audience_key: str, members: list[str],
                orders: pd.DataFrame, since: dt.date) -> dict[str, float]:
    """The campaign's true effect on an audience's `members` (their arms mixed as the audience
    holds them): the mean over them of the outcome with the campaign minus the outcome without,
    both known for every member, since `records` (campaign_orders.csv) holds both arms'
    campaign orders.

    `orders`: the store's completed orders as loaded (order_id, customer_id, order_date); the
    outcome without the campaign leaves this campaign's orders out. Returns the effect on
    conversion (a completed order on or after `since`) and on revenue per customer."""
    mine = records[(records["audience_key"] == audience_key)
                   & (pd.to_datetime(records["order_date"]).dt.date >= since)]
    own = orders[~orders["order_id"].isin(mine["order_id"])
                 & (pd.to_datetime(orders["order_date"]).dt.date >= since)]
    members_index = pd.Index(members)
    converted_anyway = members_index.isin(own["customer_id"])
    campaign_buyer = members_index.isin(mine["customer_id"])
    revenue = mine.groupby("customer_id")["revenue"].sum().reindex(members_index, fill_value=0)
    return {"conversion": float(np.mean(campaign_buyer & ~converted_anyway)) if members else 0.0,
            "revenue_per_customer": float(revenue.mean()) if members else 0.0}
