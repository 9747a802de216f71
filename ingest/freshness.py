"""Freshness of the landing feeds: which delivered days are due in the warehouse and missing.

"Fresh" needs a clock. A live store's clock is the wall clock: by the deadline (07:00 UTC) the
day before today must be loaded (`lag_days` 1). The sample store and an imported history end
long before today, so on the wall clock every check would fail forever (noise, not an alert):
there the store's own clock is used, its newest delivered orders/events day standing for
"yesterday", and fresh means every day up to it was delivered and loaded (no gap, nothing left
in the landing zone). `auto` (the default) uses the wall clock while the newest delivered day is
at most `live_days` old, the store's clock otherwise, and says which it used.

Settings (environment): SEGMENTA_FRESHNESS_CLOCK (auto | wall | store), SEGMENTA_FRESHNESS_DEADLINE
(HH:MM UTC, default 07:00), SEGMENTA_FRESHNESS_LAG_DAYS (default 1),
SEGMENTA_FRESHNESS_LIVE_DAYS (default 7).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

CLOCKS = ("auto", "wall", "store")
MAX_LISTED = 10


@dataclass(frozen=True)
class FreshnessPolicy:
    """When a day is due: the clock, the deadline (UTC) and the lag in days."""

    clock: str = "auto"
    deadline: dt.time = dt.time(7, 0)
    lag_days: int = 1
    live_days: int = 7

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"SEGMENTA_FRESHNESS_CLOCK must be one of {', '.join(CLOCKS)}, "
                             f"not {self.clock!r}")
        if self.lag_days < 0 or self.live_days < 0:
            raise ValueError("SEGMENTA_FRESHNESS_LAG_DAYS and _LIVE_DAYS must be >= 0")

    @classmethod
    def from_env(cls) -> FreshnessPolicy:
        """The policy the environment sets (defaults: auto, 07:00 UTC, lag 1, live 7 days)."""
        raw_deadline = os.environ.get("SEGMENTA_FRESHNESS_DEADLINE", "07:00")
        try:
            deadline = dt.time.fromisoformat(raw_deadline)
        except ValueError:
            raise ValueError(f"SEGMENTA_FRESHNESS_DEADLINE must be HH:MM (UTC), not "
                             f"{raw_deadline!r}") from None
        try:
            lag = int(os.environ.get("SEGMENTA_FRESHNESS_LAG_DAYS", "1"))
            live = int(os.environ.get("SEGMENTA_FRESHNESS_LIVE_DAYS", "7"))
        except ValueError:
            raise ValueError("SEGMENTA_FRESHNESS_LAG_DAYS and _LIVE_DAYS must be whole "
                             "numbers of days") from None
        return cls(clock=os.environ.get("SEGMENTA_FRESHNESS_CLOCK", "auto").strip().lower(),
                   deadline=deadline, lag_days=lag, live_days=live)

    def due_through(self, now: dt.datetime, newest_delivered: dt.date | None
                    ) -> tuple[dt.date | None, str]:
        """The newest day that must be loaded by `now` (UTC), and the clock used ("wall" or
        "store"). None: nothing is due (an empty store on its own clock)."""
        today = now.astimezone(dt.UTC).date() if now.tzinfo else now.date()
        clock = self.clock
        if clock == "auto":
            live = (newest_delivered is not None
                    and newest_delivered >= today - dt.timedelta(days=self.live_days))
            clock = "wall" if live else "store"
        if clock == "store":
            return newest_delivered, "store"
        past_deadline = (now.astimezone(dt.UTC) if now.tzinfo else now).time() >= self.deadline
        lag = self.lag_days if past_deadline else self.lag_days + 1
        return today - dt.timedelta(days=lag), "wall"


@dataclass(frozen=True)
class FeedFreshness:
    """A feed's freshness: the days due and not loaded (`missing`), the days delivered but not
    loaded among them (`not_loaded`), the newest loaded day and the clock it was judged on."""

    feed: str
    clock: str
    due_through: dt.date | None
    newest_loaded: dt.date | None
    missing: list[dt.date] = field(default_factory=list)
    not_loaded: list[dt.date] = field(default_factory=list)

    @property
    def fresh(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        """One line for the check's description."""
        if self.due_through is None:
            return f"{self.feed}: nothing delivered yet, nothing due ({self.clock} clock)"
        if self.fresh:
            return (f"{self.feed}: every day through {self.due_through} loaded "
                    f"({self.clock} clock)")
        listed = ", ".join(d.isoformat() for d in self.missing[:MAX_LISTED])
        more = f" and {len(self.missing) - MAX_LISTED} more" if len(self.missing) > MAX_LISTED \
            else ""
        waiting = (f"; {len(self.not_loaded)} delivered but not loaded" if self.not_loaded
                   else "; none of them delivered")
        return (f"{self.feed}: {len(self.missing)} day(s) due through {self.due_through} "
                f"missing ({self.clock} clock): {listed}{more}{waiting}")


def daily_feed_freshness(feed: str, delivered: set[dt.date], loaded: set[dt.date],
                         due_through: dt.date | None, clock: str) -> FeedFreshness:
    """A daily feed (orders, events): every day from its first delivered or loaded day through
    `due_through` must be loaded; a day never delivered is missing too (a gap is a day lost)."""
    newest = max(loaded, default=None)
    known = delivered | loaded
    if due_through is None or not known:
        return FeedFreshness(feed, clock, due_through, newest)
    first = min(known)
    days = [first + dt.timedelta(days=n) for n in range((due_through - first).days + 1)]
    missing = [d for d in days if d not in loaded]
    return FeedFreshness(feed, clock, due_through, newest, missing,
                         [d for d in missing if d in delivered])


def snapshot_feed_freshness(feed: str, delivered: set[dt.date], loaded: set[dt.date],
                            due_through: dt.date | None, clock: str) -> FeedFreshness:
    """A snapshot feed (profiles, catalogue, weather) arrives when it changes: fresh when every
    delivered day due by now is loaded (a day without a snapshot is not missing)."""
    if due_through is None:
        return FeedFreshness(feed, clock, None, max(loaded, default=None))
    missing = sorted(d for d in delivered - loaded if d <= due_through)
    return FeedFreshness(feed, clock, due_through, max(loaded, default=None), missing, missing)
