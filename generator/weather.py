"""Each city's daily weather, simulated from its climate and the season, and the weather feed.

Temperatures follow the city's yearly cycle (its hemisphere decides when summer is) plus a
persistent day-to-day anomaly; rain is a two-state Markov chain (a wet day is more likely after a
wet day) whose chance rises in the city's wet season, with gamma-distributed amounts. Forecasts
are the truth plus the errors of a one- and two-day forecast. Weather draws come from their own
random stream, so the customers and their behaviour are drawn as before.

Demand responds to it (`generator.simulation._pick`): on a rainy day in a shopper's city part of
their browsing goes to raincoats and umbrellas, on a hot day to fans, swimwear and sunscreen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from generator.personas import COUNTRIES

# city -> (yearly mean °C, half the summer-winter swing °C, share of wet days, wet season)
CLIMATES: dict[str, tuple[float, float, float, str | None]] = {
    "Madrid": (15.0, 9.5, 0.17, "winter"), "Barcelona": (17.0, 7.0, 0.17, "autumn"),
    "Sevilla": (19.5, 8.0, 0.13, "winter"), "Bilbao": (14.5, 5.0, 0.42, "winter"),
    "Santiago de Compostela": (13.0, 5.0, 0.45, "winter"),
    "Berlin": (10.0, 9.5, 0.30, None), "Munich": (9.0, 9.0, 0.33, "summer"),
    "Hamburg": (9.5, 8.0, 0.36, None), "Cologne": (10.5, 8.0, 0.32, None),
    "Paris": (12.5, 8.0, 0.30, None), "Lyon": (12.5, 9.0, 0.28, None),
    "Marseille": (16.0, 8.0, 0.15, "autumn"), "Brest": (12.0, 5.0, 0.45, "winter"),
    "London": (11.5, 7.0, 0.32, None), "Manchester": (10.0, 6.0, 0.42, "winter"),
    "Edinburgh": (9.0, 6.0, 0.40, "winter"), "Cardiff": (10.5, 6.0, 0.42, "winter"),
    "Oslo": (6.0, 10.0, 0.30, "autumn"), "Bergen": (8.0, 6.0, 0.60, "autumn"),
    "Tromso": (3.0, 8.0, 0.45, "autumn"),
    "New York": (13.0, 11.0, 0.30, None), "Los Angeles": (18.5, 4.0, 0.08, "winter"),
    "Seattle": (11.5, 7.0, 0.40, "winter"), "Miami": (25.0, 3.5, 0.35, "summer"),
    "Sydney": (18.0, 5.0, 0.30, None), "Melbourne": (15.0, 5.0, 0.32, None),
    "Perth": (18.5, 6.0, 0.25, "winter"), "Darwin": (28.0, 2.0, 0.30, "summer"),
    "Sao Paulo": (20.0, 3.5, 0.35, "summer"), "Rio de Janeiro": (24.0, 3.0, 0.30, "summer"),
    "Porto Alegre": (19.5, 5.5, 0.30, None), "Manaus": (27.5, 1.0, 0.55, "summer"),
    "Singapore": (27.5, 0.7, 0.45, None),
}
# the day of the year when summer peaks, by hemisphere (the tropics barely swing)
SUMMER_PEAK = {"north": 200, "south": 17, "tropics": 120}
WET_SEASON_SHIFT = {"summer": 0, "autumn": 91, "winter": 182}
HOT_DAY_C = 28.0  # a day this warm or warmer is hot (as in the dbt mart weather_daily)
WET_DAY_MM = 1.0  # a day with this much rain or more is rainy (as in weather_daily)
FORECAST_DAYS = 2  # each day's delivery: the observed day and a forecast of the next two
ISSUE_HOUR_UTC = 23  # when a day's weather file is issued


@dataclass
class Weather:
    """True daily weather: arrays of [city, day] (cities in `COUNTRIES` order, day 0 = start)."""

    start: dt.date
    cities: list[tuple[str, str]]  # (city, country) per row
    temp_min: np.ndarray
    temp_max: np.ndarray
    precipitation: np.ndarray
    condition: np.ndarray  # strings

    @property
    def is_rainy(self) -> np.ndarray:
        return self.precipitation >= WET_DAY_MM

    @property
    def is_hot(self) -> np.ndarray:
        return self.temp_max >= HOT_DAY_C


def city_offsets() -> np.ndarray:
    """The row of each country's first city in `Weather` arrays (city k of country c is at
    `city_offsets()[c] + k`)."""
    return np.r_[0, np.cumsum([len(c.cities) for c in COUNTRIES])[:-1]]


def simulate_weather(start: dt.date, days: int, seed: int) -> Weather:
    """Every city's weather for `days` days from `start` (own random stream: `[seed, 3]`)."""
    rng = np.random.default_rng([seed, 3])
    cities = [(city[0], country.code) for country in COUNTRIES for city in country.cities]
    hemispheres = [country.hemisphere for country in COUNTRIES for _ in country.cities]
    doy = np.array([(start + dt.timedelta(days=d)).timetuple().tm_yday for d in range(days)])
    n = len(cities)
    temp_min, temp_max = np.zeros((n, days)), np.zeros((n, days))
    precipitation, condition = np.zeros((n, days)), np.empty((n, days), dtype=object)
    for row, ((city, _), hemisphere) in enumerate(zip(cities, hemispheres, strict=True)):
        mean, swing, wet_share, wet_season = CLIMATES[city]
        peak = SUMMER_PEAK[hemisphere]
        seasonal = mean + swing * np.cos(2 * np.pi * (doy - peak) / 365.25)
        anomaly = np.zeros(days)  # weather fronts: a day like the one before, mostly
        # day-to-day anomalies: 1.7-2.6 °C for a European city over a front's few days
        noise = rng.normal(0, 0.4 + 0.14 * swing, days)  # the tropics vary little
        for d in range(days):
            anomaly[d] = (0.7 * anomaly[d - 1] if d else 0.0) + noise[d]
        wet_peak = peak + (WET_SEASON_SHIFT[wet_season] if wet_season else 0)
        p_wet = wet_share * (1 + (0.45 if wet_season else 0.0)
                             * np.cos(2 * np.pi * (doy - wet_peak) / 365.25))
        wet = np.zeros(days, dtype=bool)
        draws = rng.random(days)
        for d in range(days):
            # persistence: wet after wet p + 0.35 (1 - p), wet after dry 0.65 p, so that the
            # chain's long-run share of wet days stays p
            wet[d] = draws[d] < (p_wet[d] + 0.35 * (1 - p_wet[d]) if d and wet[d - 1]
                                 else 0.65 * p_wet[d])
        amount = np.where(wet, np.round(WET_DAY_MM + rng.gamma(0.9, 6.0, days), 1), 0.0)
        mid = seasonal + anomaly - np.where(wet, 1.5, 0.0)  # rain cools the day
        half_range = np.clip(rng.normal(4.5, 1.2, days) - np.where(wet, 1.0, 0.0), 1.0, 9.0)
        temp_min[row], temp_max[row] = np.round(mid - half_range, 1), np.round(mid + half_range, 1)
        precipitation[row] = amount
        dry_sky = np.where(rng.random(days) < 0.04, "fog",
                           np.where(rng.random(days) < 0.45, "cloudy", "clear"))
        wet_sky = np.where(temp_max[row] < 1.0, "snow",
                           np.where(amount >= 20, "storm",
                                    np.where(amount < 2.0, "drizzle", "rain")))
        condition[row] = np.where(wet, wet_sky, dry_sky)
    return Weather(start, cities, temp_min, temp_max, precipitation, condition)


def weather_rows(weather: Weather, day_index: int, rng: np.random.Generator) -> pd.DataFrame:
    """The weather feed's file for a day: every city's observed day and the forecasts of the
    next `FORECAST_DAYS` days, issued that evening (forecast errors from `rng`)."""
    day = weather.start + dt.timedelta(days=day_index)
    issued = f"{day.isoformat()}T{ISSUE_HOUR_UTC:02d}:30:00Z"
    n_days = weather.temp_max.shape[1]
    frames = []
    for ahead in range(FORECAST_DAYS + 1):
        d = day_index + ahead
        if d >= n_days:
            break
        rows = len(weather.cities)
        t_min, t_max = weather.temp_min[:, d].copy(), weather.temp_max[:, d].copy()
        rain, sky = weather.precipitation[:, d].copy(), weather.condition[:, d].copy()
        if ahead:  # a forecast: further ahead, further off
            error = rng.normal(0, 1.2 * ahead, rows)
            t_min, t_max = np.round(t_min + error, 1), np.round(t_max + error, 1)
            wrong = rng.random(rows) < 0.12 * ahead  # the rain that did or did not come
            guessed = np.round(WET_DAY_MM + rng.gamma(0.9, 5.0, rows), 1)
            rain = np.where(wrong, np.where(rain > 0, 0.0, guessed), rain)
            sky = np.where(wrong, np.where(rain > 0, np.where(rain < 2.0, "drizzle", "rain"),
                                           "cloudy"), sky)
        frames.append(pd.DataFrame({
            "date": (day + dt.timedelta(days=ahead)).isoformat(),
            "city": [c for c, _ in weather.cities], "country": [k for _, k in weather.cities],
            "kind": "forecast" if ahead else "observed", "condition": sky,
            "precipitation_mm": rain, "temp_min_c": t_min, "temp_max_c": t_max,
            "issued_at": issued,
        }))
    return pd.concat(frames, ignore_index=True)
