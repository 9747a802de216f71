"""The calendar: weekly and yearly seasonality, the gift season, Black Friday, hemispheres."""

from __future__ import annotations

import datetime as dt

import numpy as np


def season_factor(day: dt.date) -> float:
    """Store-wide demand: weekends, the December gift season, Black Friday week, summer lull."""
    doy = day.timetuple().tm_yday
    factor = 1.0 + 0.25 * np.cos(2 * np.pi * (doy - 355) / 365.25)
    if day.weekday() >= 5:
        factor *= 1.25
    black_friday = _black_friday(day.year)
    if black_friday <= day <= black_friday + dt.timedelta(days=3):
        factor *= 2.2
    return float(factor)


def _black_friday(year: int) -> dt.date:
    november_first = dt.date(year, 11, 1)
    first_friday = november_first + dt.timedelta(days=(4 - november_first.weekday()) % 7)
    return first_friday + dt.timedelta(weeks=3)


def is_gift_season(day: dt.date) -> bool:
    return (day.month == 11 and day.day >= 15) or (day.month == 12 and day.day <= 24)


def in_season(season: str, hemisphere: str, month: int) -> bool:
    if hemisphere == "tropics":
        return season == "summer"
    summer = month in (6, 7, 8) if hemisphere == "north" else month in (12, 1, 2)
    winter = month in (12, 1, 2) if hemisphere == "north" else month in (6, 7, 8)
    return summer if season == "summer" else winter if season == "winter" else True
