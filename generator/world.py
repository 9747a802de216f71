"""The customers of a store as arrays: who they are, their hidden persona and their state.

`World` holds everything drawn once at the start (the catalogue, each customer's persona,
country, name, age, consents, device and favourite categories) and the state the daily
simulation (`generator.simulation`) moves forward: who has ordered, who was erased, the order
and message counters and the returns still to come.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from generator.catalogue import GIFT_CATEGORIES, Catalogue
from generator.defaults import DEFAULT_PRODUCTS
from generator.personas import COUNTRIES, PERSONAS, P
from generator.render import local_iso
from generator.weather import city_offsets, simulate_weather

# the weather is simulated this many days past the last one (its forecasts)
FORECAST_HORIZON = 3
INCOME_BANDS = ("low", "lower_middle", "middle", "upper_middle", "high")
# each persona's chances of each income band (`INCOME_BANDS` order); a profile leaves the band
# out with `INCOME_MISSING` (dbt then falls back on the postal area's band)
INCOME_BY_PERSONA = {
    "loyal_high_value": (0.02, 0.08, 0.25, 0.35, 0.30),
    "bargain_hunter": (0.30, 0.35, 0.25, 0.08, 0.02),
    "window_shopper": (0.20, 0.30, 0.30, 0.15, 0.05),
    "seasonal_gift_buyer": (0.05, 0.15, 0.35, 0.30, 0.15),
    "one_time_buyer": (0.15, 0.25, 0.35, 0.18, 0.07),
    "lapsing": (0.12, 0.22, 0.36, 0.20, 0.10),
}
INCOME_MISSING = 0.3


def draw_income(persona: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each customer's income band index (-1: the profile leaves it out), by persona."""
    chances = np.array([INCOME_BY_PERSONA[p.name] for p in PERSONAS])[persona]
    band = (rng.random(len(persona))[:, None] > np.cumsum(chances, axis=1)).sum(axis=1)
    return np.where(rng.random(len(persona)) < INCOME_MISSING, -1, np.minimum(band, 4))


class World:
    """Customers as arrays: what is drawn once, and the state `simulate_day` moves forward."""

    def __init__(self, n_customers: int, start: dt.date, days: int, seed: int,
                 n_products: int = DEFAULT_PRODUCTS) -> None:
        self.rng = rng = np.random.default_rng(seed)
        self.start, self.days, self.n = start, days, n_customers
        self.catalogue = Catalogue(n_products, rng)
        n = n_customers
        self.persona = rng.choice(len(PERSONAS), n, p=[p.share for p in PERSONAS])
        self.country = rng.choice(len(COUNTRIES), n, p=[c.share for c in COUNTRIES])
        n_cities = np.array([len(c.cities) for c in COUNTRIES])
        self.city = (rng.random(n) * n_cities[self.country]).astype(int)
        self.gender = rng.choice(4, n, p=[0.5, 0.44, 0.02, 0.04])  # female, male, nb, unknown
        self.first_name = rng.integers(0, 4, n) * 2 + (self.gender == 1)
        self.last_name = rng.integers(0, 7, n)
        age_mean = np.array([p.age_mean for p in PERSONAS])
        ages = np.clip(rng.normal(age_mean[self.persona], 11), 18, 85)
        self.birth_offset = (ages * 365.25).astype(int)
        before = rng.random(n) < 0.7  # 70 % signed up before the simulated window
        self.signup_day = np.where(before, -rng.integers(1, 730, n), rng.integers(0, days, n))
        self.signup_second = rng.integers(0, 86_400, n)
        self.email_consent = rng.random(n) < 0.72
        self.ads_consent = rng.random(n) < 0.58
        mobile_share = np.array([p.mobile_share for p in PERSONAS])[self.persona]
        device = np.where(rng.random(n) < mobile_share, 0, np.where(rng.random(n) < 0.85, 1, 2))
        self.platform = device * 2 + rng.integers(0, 2, n)
        n_cat = len(self.catalogue.categories)
        self.favourite = np.argsort(rng.random((n, n_cat)), axis=1)[:, :3]
        gift = self.persona == P["seasonal_gift_buyer"]
        gift_cats = [self.catalogue.categories.index(c) for c in GIFT_CATEGORIES]
        self.favourite[gift] = rng.permuted(np.tile(gift_cats, (gift.sum(), 1)), axis=1)[:, :3]
        self.lapse_day = np.where(self.persona == P["lapsing"],
                                  rng.integers(max(1, days // 6), max(2, days), n), days + 1)
        # drawn from streams of their own, so the customers above are drawn as before
        self.weather = simulate_weather(start, days + FORECAST_HORIZON, seed)
        self.place = city_offsets()[self.country] + np.minimum(
            self.city, np.array([len(c.cities) for c in COUNTRIES])[self.country] - 1)
        self.income = draw_income(self.persona, np.random.default_rng([seed, 4]))
        self.has_ordered = np.zeros(n, dtype=bool)
        self.anonymous_id = rng.integers(0, 2**63, n, dtype=np.int64)
        self.deleted = np.zeros(n, dtype=bool)
        self.order_seq = 0
        self.message_seq = 0
        self.pending_returns: dict[int, list[pd.DataFrame]] = {}
        self.params = {field: np.array([getattr(p, field) for p in PERSONAS])
                       for field in ("visit_rate", "conversion", "cart_add", "price_quantile",
                                     "basket_items", "discount_affinity", "email_open",
                                     "email_click")}

    # ---------------------------------------------------------------- profiles

    def profiles(self, idx: np.ndarray, updated_at: np.ndarray, deleted: bool = False
                 ) -> pd.DataFrame:
        """Profile snapshots of customers `idx`, as the customers feed writes them."""
        countries = [COUNTRIES[c] for c in self.country[idx]]
        city = [c.cities[min(k, len(c.cities) - 1)] for c, k in
                zip(countries, self.city[idx], strict=True)]
        first = [c.first_names[f] for c, f in zip(countries, self.first_name[idx], strict=True)]
        last = [c.last_names[v] for c, v in zip(countries, self.last_name[idx], strict=True)]
        ids = [f"C{i + 1:07d}" for i in idx]
        offsets = np.array([c.utc_offset for c in countries])
        signup = (np.datetime64(self.start) + self.signup_day[idx].astype("timedelta64[D]")
                  + self.signup_second[idx].astype("timedelta64[s]"))
        frame = pd.DataFrame({
            "customer_id": ids,
            "email": [f"{f.lower()}.{v.lower()}{i + 1}@example.com"
                      for f, v, i in zip(first, last, idx, strict=True)],
            "phone": [f"{c.phone_prefix} {600_000_000 + (i * 7919) % 99_999_999}"
                      for c, i in zip(countries, idx, strict=True)],
            "first_name": first, "last_name": last,
            "birth_date": (np.datetime64(self.start)
                           - self.birth_offset[idx].astype("timedelta64[D]")).astype(str),
            "gender": np.array(["female", "male", "non_binary", ""])[self.gender[idx]],
            "city": [c[0] for c in city], "region": [c[1] for c in city],
            "postal_code": [f"{c[2]}{100 + (i * 37) % 899}" for c, i in
                            zip(city, idx, strict=True)],
            "country": [c.code for c in countries],
            "signup_at": local_iso(signup, offsets),
            "email_consent": np.where(self.email_consent[idx], "true", "false"),
            "ads_consent": np.where(self.ads_consent[idx], "true", "false"),
            "updated_at": local_iso(updated_at, offsets),
            "is_deleted": "true" if deleted else "false",
            "income_band": np.array([*INCOME_BANDS, ""])[self.income[idx]],
        })
        if deleted:  # an erasure request carries no PII
            for column in ("email", "phone", "first_name", "last_name", "birth_date", "city",
                           "region", "postal_code", "income_band"):
                frame[column] = ""
        return frame
