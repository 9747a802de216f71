"""A deterministic synthetic store: writes the four landing feeds, one folder per day.

Customers belong to hidden personas that drive how often they visit, what they browse, whether a
cart turns into an order, how much they spend, whether they answer emails and when they drift
away. Orders come out of browsing sessions (Segment-spec events: search, views, cart adds and
removes, checkout, order completed), so events and orders agree. The calendar has weekly and
yearly seasonality (weekends, the gift season, Black Friday), seasonal categories follow each
country's hemisphere (swimwear in its summer, coats in its winter), and carts have real
complements (a phone brings a case and a charger, a camera a memory card). Orders are
cancelled, refunded and partly returned at realistic rates.

Each day is simulated with vectorised numpy over all customers and written at once, so memory
stays bounded by one day whatever the number of days, and `--customers 1000000 --days 365`
(about 10M order lines and 100M events) runs on a laptop-sized machine; see docs/benchmarks.md.

Besides the landing zone it writes side files under `SEGMENTA_HOME/generator/` that are never
ingested: `manifest.json` (rows written per feed and day, defects written per reason) and
`personas.csv` (each customer's hidden persona, to measure how well models recover it).

Run `python -m dagster_project.sample_data --help`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from tqdm import tqdm

DEFAULT_CUSTOMERS = 2_000
DEFAULT_DAYS = 120
DEFAULT_END_DATE = dt.date(2026, 10, 31)
DEFAULT_SEED = 42
DEFAULT_PRODUCTS = 400
# Share of order lines and events written with a defect, so that every run exercises the
# quarantine. Each defect kind maps to the reason code ingestion must give it.
DEFAULT_DEFECT_RATE = 0.002
ORDER_DEFECTS = ("missing_required_field", "bad_timestamp", "negative_price", "unknown_currency",
                 "invalid_value", "duplicate_key")
EVENT_DEFECTS = ("malformed_json", "unknown_event_type", "bad_timestamp", "duplicate_key")

ORDER_COLUMNS = [
    "order_id", "line_number", "customer_id", "ordered_at", "product_id", "quantity",
    "unit_price", "currency", "status", "channel", "shipping_country", "discount_amount",
]
CUSTOMER_COLUMNS = [
    "customer_id", "email", "phone", "first_name", "last_name", "birth_date", "gender", "city",
    "region", "postal_code", "country", "signup_at", "email_consent", "ads_consent", "updated_at",
    "is_deleted",
]
PRODUCT_COLUMNS = [
    "product_id", "sku", "name", "category", "subcategory", "brand", "price", "currency",
    "is_active", "updated_at",
]
CURRENCY = "EUR"


@dataclass(frozen=True)
class Country:
    code: str
    share: float
    utc_offset: int
    hemisphere: str  # north, south or tropics (no seasons)
    phone_prefix: str
    cities: tuple[tuple[str, str, str], ...]  # (city, region, postal prefix)
    first_names: tuple[str, ...]  # alternating female, male
    last_names: tuple[str, ...]


COUNTRIES = (
    Country("ES", 0.22, 1, "north", "+34", (("Madrid", "Madrid", "28"),
            ("Barcelona", "Catalonia", "08"), ("Sevilla", "Andalusia", "41"),
            ("Bilbao", "Basque Country", "48"), ("Santiago de Compostela", "Galicia", "15")),
            ("Lucia", "Mateo", "Sofia", "Hugo", "Martina", "Pablo", "Elena", "Javier"),
            ("Garcia", "Fernandez", "Lopez", "Martinez", "Sanchez", "Perez", "Gomez")),
    Country("DE", 0.16, 1, "north", "+49", (("Berlin", "Berlin", "10"),
            ("Munich", "Bavaria", "80"), ("Hamburg", "Hamburg", "20"),
            ("Cologne", "North Rhine-Westphalia", "50")),
            ("Emma", "Noah", "Mia", "Leon", "Hannah", "Paul", "Lena", "Felix"),
            ("Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner")),
    Country("FR", 0.12, 1, "north", "+33", (("Paris", "Ile-de-France", "75"),
            ("Lyon", "Auvergne-Rhone-Alpes", "69"), ("Marseille", "Provence", "13"),
            ("Brest", "Brittany", "29")),
            ("Louise", "Gabriel", "Jade", "Arthur", "Alice", "Louis", "Chloe", "Jules"),
            ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit")),
    Country("GB", 0.12, 0, "north", "+44", (("London", "England", "E1"),
            ("Manchester", "England", "M1"), ("Edinburgh", "Scotland", "EH"),
            ("Cardiff", "Wales", "CF")),
            ("Olivia", "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack"),
            ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans")),
    Country("NO", 0.04, 1, "north", "+47", (("Oslo", "Oslo", "01"), ("Bergen", "Vestland", "50"),
            ("Tromso", "Troms", "90")),
            ("Nora", "Jakob", "Emma", "Emil", "Sofie", "Noah", "Ella", "William"),
            ("Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen")),
    Country("US", 0.14, -5, "north", "+1", (("New York", "NY", "10"),
            ("Los Angeles", "CA", "90"), ("Seattle", "WA", "98"), ("Miami", "FL", "33")),
            ("Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Sophia", "Lucas"),
            ("Johnson", "Miller", "Davis", "Garcia", "Rodriguez", "Wilson", "Anderson")),
    Country("AU", 0.08, 10, "south", "+61", (("Sydney", "NSW", "20"),
            ("Melbourne", "VIC", "30"), ("Perth", "WA", "60"), ("Darwin", "NT", "08")),
            ("Charlotte", "Oliver", "Amelia", "William", "Isla", "Jack", "Mia", "Henry"),
            ("Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen")),
    Country("BR", 0.07, -3, "south", "+55", (("Sao Paulo", "SP", "01"),
            ("Rio de Janeiro", "RJ", "20"), ("Porto Alegre", "RS", "90"),
            ("Manaus", "AM", "69")),
            ("Ana", "Miguel", "Helena", "Arthur", "Alice", "Heitor", "Laura", "Davi"),
            ("Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Costa")),
    Country("SG", 0.05, 8, "tropics", "+65", (("Singapore", "Central", "01"),),
            ("Chloe", "Ethan", "Sophia", "Lucas", "Emma", "Ryan", "Grace", "Isaac"),
            ("Tan", "Lim", "Lee", "Ng", "Ong", "Wong", "Goh")),
)

# category -> [(subcategory, median price, complement subcategories, season)]
CATALOGUE: dict[str, list[tuple[str, float, tuple[str, ...], str | None]]] = {
    "Electronics": [("Phones", 420.0, ("Phone Cases", "Chargers"), None),
                    ("Phone Cases", 18.0, (), None), ("Chargers", 22.0, (), None),
                    ("Cameras", 520.0, ("Memory Cards",), None),
                    ("Memory Cards", 25.0, (), None), ("Headphones", 85.0, (), None),
                    ("Laptops", 950.0, ("Laptop Bags",), None), ("Laptop Bags", 45.0, (), None)],
    "Home": [("Coffee Makers", 120.0, ("Coffee",), None), ("Cookware", 60.0, (), None),
             ("Bedding", 75.0, (), None), ("Lighting", 40.0, ("Light Bulbs",), None),
             ("Light Bulbs", 8.0, (), None), ("Fans", 45.0, (), "summer"),
             ("Heaters", 70.0, (), "winter")],
    "Apparel": [("T-Shirts", 20.0, (), None), ("Shoes", 80.0, ("Socks",), None),
                ("Socks", 9.0, (), None), ("Swimwear", 35.0, ("Sunscreen",), "summer"),
                ("Coats", 140.0, ("Scarves",), "winter"), ("Scarves", 25.0, (), "winter"),
                ("Raincoats", 70.0, ("Umbrellas",), None)],
    "Beauty": [("Skincare", 28.0, (), None), ("Sunscreen", 15.0, (), "summer"),
               ("Fragrance", 65.0, (), None)],
    "Sports": [("Running Shoes", 110.0, ("Socks",), None), ("Yoga Mats", 30.0, (), None),
               ("Bikes", 600.0, ("Bike Helmets",), "summer"), ("Bike Helmets", 55.0, (), None),
               ("Skis", 450.0, ("Ski Goggles",), "winter"), ("Ski Goggles", 60.0, (), "winter")],
    "Grocery": [("Coffee", 12.0, (), None), ("Tea", 7.0, (), None), ("Snacks", 5.0, (), None)],
    "Outdoor": [("Umbrellas", 18.0, (), None), ("Tents", 180.0, (), "summer"),
                ("Sunglasses", 45.0, (), "summer")],
    "Toys": [("Board Games", 35.0, (), None), ("Building Sets", 60.0, (), None),
             ("Dolls", 30.0, (), None)],
    "Books": [("Fiction", 14.0, (), None), ("Cookbooks", 25.0, (), None),
              ("Travel Guides", 20.0, (), None)],
}
GIFT_CATEGORIES = ("Toys", "Books", "Beauty", "Electronics")
BRANDS = ("Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne",
          "Hooli", "Vandelay")
DEVICES = ("mobile", "desktop", "tablet")
OS_BY_DEVICE = {"mobile": ("iOS", "Android"), "desktop": ("Windows", "Mac OS X"),
                "tablet": ("iPadOS", "Android")}
USER_AGENTS = {"iOS": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)",
               "Android": "Mozilla/5.0 (Linux; Android 15; Pixel 9)",
               "Windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
               "Mac OS X": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6)",
               "iPadOS": "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X)"}
PLATFORMS = [(d, o) for d in DEVICES for o in OS_BY_DEVICE[d]]


@dataclass(frozen=True)
class Persona:
    """How a kind of customer behaves. Rates are per day; probabilities per session."""

    name: str
    share: float
    visit_rate: float
    conversion: float
    cart_add: float  # chance a viewed product goes into the cart when the visit does not buy
    price_quantile: float  # where in a subcategory's price range they shop (0 cheap, 1 dear)
    basket_items: float
    discount_affinity: float
    email_open: float
    email_click: float
    age_mean: float
    mobile_share: float


# Visit rates are calibrated so that 1M customers over 365 days make about 10M order lines and
# 100M events: most registered customers of a shop visit rarely.
PERSONAS = (
    Persona("loyal_high_value", 0.12, 0.060, 0.35, 0.20, 0.80, 2.6, 0.05, 0.55, 0.25, 44, 0.35),
    Persona("bargain_hunter", 0.18, 0.042, 0.22, 0.25, 0.15, 2.2, 0.85, 0.45, 0.20, 33, 0.70),
    Persona("window_shopper", 0.22, 0.048, 0.01, 0.55, 0.50, 1.1, 0.10, 0.10, 0.02, 27, 0.85),
    Persona("seasonal_gift_buyer", 0.13, 0.006, 0.30, 0.20, 0.60, 2.0, 0.15, 0.25, 0.08, 48, 0.50),
    Persona("one_time_buyer", 0.20, 0.012, 0.30, 0.15, 0.50, 1.4, 0.20, 0.15, 0.03, 38, 0.60),
    Persona("lapsing", 0.15, 0.036, 0.20, 0.18, 0.55, 1.6, 0.20, 0.08, 0.01, 52, 0.40),
)
P = {name: i for i, name in enumerate(p.name for p in PERSONAS)}


def _season_factor(day: dt.date) -> float:
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


def _is_gift_season(day: dt.date) -> bool:
    return (day.month == 11 and day.day >= 15) or (day.month == 12 and day.day <= 24)


def _in_season(season: str, hemisphere: str, month: int) -> bool:
    if hemisphere == "tropics":
        return season == "summer"
    summer = month in (6, 7, 8) if hemisphere == "north" else month in (12, 1, 2)
    winter = month in (12, 1, 2) if hemisphere == "north" else month in (6, 7, 8)
    return summer if season == "summer" else winter if season == "winter" else True


class Catalogue:
    """Products as arrays, grouped by subcategory for fast vectorised picks."""

    def __init__(self, n_products: int, rng: np.random.Generator) -> None:
        subs = [(cat, sub, median, comps, season) for cat, rows in CATALOGUE.items()
                for sub, median, comps, season in rows]
        self.categories = list(CATALOGUE)
        self.subcategories = [s[1] for s in subs]
        per_sub = max(2, n_products // len(subs))
        ids, names, cats, subcats, brands, prices, active = [], [], [], [], [], [], []
        self.sub_start, self.sub_len = [], []
        for s, (cat, sub, median, _, _) in enumerate(subs):
            self.sub_start.append(len(ids))
            self.sub_len.append(per_sub)
            sub_prices = np.sort(np.round(median * rng.lognormal(0, 0.35, per_sub), 2))
            for j in range(per_sub):
                n = len(ids) + 1
                brand = BRANDS[int(rng.integers(len(BRANDS)))]
                ids.append(f"P{n:05d}")
                names.append(f"{brand} {sub.rstrip('s')} {n}")
                cats.append(cat)
                subcats.append(s)
                brands.append(brand)
                prices.append(max(float(sub_prices[j]), 1.0))
                active.append(bool(rng.random() > 0.04))
        self.product_id = np.array(ids)
        self.name = names
        self.category = np.array(cats)
        self.subcategory = np.array(subcats)
        self.brand = brands
        self.price = np.array(prices)
        self.active = np.array(active)
        self.sub_start = np.array(self.sub_start)
        self.sub_len = np.array(self.sub_len)
        self.sub_category = np.array([self.categories.index(s[0]) for s in subs])
        self.sub_season = [s[4] for s in subs]
        self.subs_of_category = [np.flatnonzero(self.sub_category == c)
                                 for c in range(len(self.categories))]
        self.complements = [[self.subcategories.index(c) for c in s[3]] for s in subs]
        self.is_grocery = self.category == "Grocery"

    def rows(self, updated_at: str) -> pd.DataFrame:
        return pd.DataFrame({
            "product_id": self.product_id,
            "sku": [f"SKU-{c[:3].upper()}-{p[1:]}" for c, p in zip(self.category,
                                                                   self.product_id, strict=True)],
            "name": self.name, "category": self.category,
            "subcategory": [self.subcategories[s] for s in self.subcategory],
            "brand": self.brand, "price": [f"{p:.2f}" for p in self.price], "currency": CURRENCY,
            "is_active": np.where(self.active, "true", "false"), "updated_at": updated_at,
        })


class World:
    """Customers as arrays plus the per-day simulation of sessions, orders, emails, profiles."""

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
            "signup_at": _iso(signup, offsets),
            "email_consent": np.where(self.email_consent[idx], "true", "false"),
            "ads_consent": np.where(self.ads_consent[idx], "true", "false"),
            "updated_at": _iso(updated_at, offsets),
            "is_deleted": "true" if deleted else "false",
        })
        if deleted:  # an erasure request carries no PII
            for column in ("email", "phone", "first_name", "last_name", "birth_date", "city",
                           "region", "postal_code"):
                frame[column] = ""
        return frame

    # ---------------------------------------------------------------- one day

    def simulate_day(self, day_index: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(events, order lines, profile snapshots) of one day."""
        rng, n = self.rng, self.n
        day = self.start + dt.timedelta(days=day_index)
        midnight = np.datetime64(day, "s")

        # profiles: everyone who signed up earlier on the first day, then new signups,
        # a few consent changes and a few erasure requests
        if day_index == 0:
            new = np.flatnonzero((self.signup_day <= 0) & ~self.deleted)
        else:
            new = np.flatnonzero(self.signup_day == day_index)
        active = (self.signup_day <= day_index) & ~self.deleted
        signed_up = (np.datetime64(self.start, "s") + self.signup_day[new].astype("timedelta64[D]")
                     + self.signup_second[new].astype("timedelta64[s]"))
        first_seen = np.where(self.signup_day[new] < day_index, midnight + np.int64(60), signed_up)
        snapshots = [self.profiles(new, first_seen)] if len(new) else []
        if day_index > 0:
            flips = np.flatnonzero(active & (rng.random(n) < 0.0015))
            self.email_consent[flips] = ~self.email_consent[flips]
            if len(flips):
                snapshots.append(self.profiles(flips, np.full(len(flips), midnight
                                                              + np.int64(12 * 3600))))
            erased = np.flatnonzero(active & (rng.random(n) < 0.00005))
            if len(erased):
                self.deleted[erased] = True
                snapshots.append(self.profiles(erased, np.full(len(erased), midnight
                                                               + np.int64(13 * 3600)), True))
        profiles = pd.concat(snapshots) if snapshots else pd.DataFrame(columns=CUSTOMER_COLUMNS)

        # sessions of registered customers, then anonymous visitors
        rate = self.params["visit_rate"][self.persona] * _season_factor(day)
        rate = np.where(day_index > self.lapse_day, rate * 0.05, rate)
        gift = self.persona == P["seasonal_gift_buyer"]
        if _is_gift_season(day):
            rate = np.where(gift, rate * 8, rate)
        one_time = self.persona == P["one_time_buyer"]
        rate = np.where(one_time & self.has_ordered, rate * 0.1, rate)
        visits = rng.poisson(np.where(active, rate, 0.0))
        customer = np.repeat(np.arange(n), visits)
        n_anonymous = int(rng.poisson(n * 0.006 * _season_factor(day)))
        events, orders = self._sessions(day, customer, n_anonymous)
        events = pd.concat([events, self._newsletter(day, active)], ignore_index=True)
        events = events.sort_values("ts", kind="stable", ignore_index=True)  # exports are in time order
        returns = self.pending_returns.pop(day_index, [])
        if returns:
            orders = pd.concat([orders, *returns], ignore_index=True)
        return events, orders, profiles

    def _sessions(self, day: dt.date, customer: np.ndarray, n_anonymous: int
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng, cat = self.rng, self.catalogue
        n_known = len(customer)
        n_sessions = n_known + n_anonymous
        persona = np.concatenate([self.persona[customer],
                                  rng.choice([P["window_shopper"], P["one_time_buyer"]],
                                             n_anonymous, p=[0.7, 0.3])])
        country = np.concatenate([self.country[customer],
                                  rng.choice(len(COUNTRIES), n_anonymous,
                                             p=[c.share for c in COUNTRIES])])
        platform = np.concatenate([self.platform[customer],
                                   rng.integers(0, len(PLATFORMS), n_anonymous)])
        other_device = rng.random(n_sessions) < 0.15
        platform = np.where(other_device, rng.integers(0, len(PLATFORMS), n_sessions), platform)
        anon = np.concatenate([self.anonymous_id[customer],
                               rng.integers(0, 2**63, n_anonymous, dtype=np.int64)])
        favourite = np.concatenate([self.favourite[customer],
                                    np.argsort(rng.random((n_anonymous, len(cat.categories))),
                                               axis=1)[:, :3]])
        logged_in = np.concatenate([rng.random(n_known) < 0.8, np.zeros(n_anonymous, bool)])
        start = (np.datetime64(day, "s")
                 + rng.integers(6 * 3600, 82_000, n_sessions).astype("timedelta64[s]"))
        converts = rng.random(n_sessions) < self.params["conversion"][persona]

        # product views, then cart adds (at least one when the visit buys)
        n_views = 1 + rng.poisson(2.0, n_sessions)
        view_session = np.repeat(np.arange(n_sessions), n_views)
        view_rank = np.arange(len(view_session)) - np.repeat(np.cumsum(n_views) - n_views, n_views)
        view_product = self._pick(view_session, persona, favourite, country, day)
        add_p = np.where(converts, 0.9, self.params["cart_add"][persona])[view_session]
        added = rng.random(len(view_session)) < add_p
        last_view = view_rank == n_views[view_session] - 1
        added |= converts[view_session] & last_view & ~np.bincount(
            view_session, weights=added, minlength=n_sessions).astype(bool)[view_session]
        removed = added & (rng.random(len(view_session)) < 0.08)

        # extra items and complements for buying visits
        buyers = np.flatnonzero(converts)
        n_extra = rng.poisson(np.maximum(self.params["basket_items"][persona[buyers]] - 1.5, 0.1))
        extra_session = np.repeat(buyers, n_extra)
        extra_product = self._pick(extra_session, persona, favourite, country, day)
        kept = added & ~removed
        cart_session = np.concatenate([view_session[kept], extra_session])
        cart_product = np.concatenate([view_product[kept], extra_product])
        in_buyer = converts[cart_session]
        comp_session, comp_product = [], []
        subs = cat.subcategory[cart_product[in_buyer]]
        for s, p_sess in zip(subs, cart_session[in_buyer], strict=True):
            for comp in cat.complements[s]:
                if rng.random() < 0.45:
                    comp_session.append(p_sess)
                    comp_product.append(cat.sub_start[comp] + rng.integers(cat.sub_len[comp]))
        comp_session = np.array(comp_session, dtype=int)
        comp_product = np.array(comp_product, dtype=int)

        # event rows: (session, order within session, kind, product)
        kinds = []
        kinds.append((np.arange(n_sessions), 0.0, "page", -1))
        searched = np.flatnonzero(rng.random(n_sessions) < 0.35)
        kinds.append((searched, 1.0, "Products Searched", -1))
        kinds.append((view_session, 10.0 + view_rank, "Product Viewed", view_product))
        kinds.append((view_session[added], 10.5 + view_rank[added], "Product Added",
                      view_product[added]))
        kinds.append((view_session[removed], 100.0 + view_rank[removed], "Product Removed",
                      view_product[removed]))
        kinds.append((extra_session, 200.0 + np.arange(len(extra_session)) % 50, "Product Added",
                      extra_product))
        kinds.append((comp_session, 250.0 + np.arange(len(comp_session)) % 50, "Product Added",
                      comp_product))
        has_cart = np.bincount(cart_session, minlength=n_sessions) > 0
        kinds.append((np.flatnonzero(has_cart), 300.0, "Cart Viewed", -1))
        ordering = np.flatnonzero(converts & has_cart)
        kinds.append((ordering, 301.0, "Checkout Started", -1))
        identify = ordering[~logged_in[ordering] & (ordering < n_known)]
        kinds.append((identify, 302.0, "identify", -1))
        kinds.append((ordering, 303.0, "Order Completed", -1))
        session = np.concatenate([k[0] for k in kinds])
        seq = np.concatenate([np.broadcast_to(k[1], len(k[0])) for k in kinds])
        kind = np.concatenate([np.full(len(k[0]), k[2], dtype=object) for k in kinds])
        product = np.concatenate([np.broadcast_to(k[3], len(k[0])) for k in kinds])
        order = np.lexsort((seq, session))
        session, seq, kind, product = session[order], seq[order], kind[order], product[order]
        gaps = rng.integers(5, 140, len(session))
        first = np.r_[True, session[1:] != session[:-1]]
        elapsed = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first] - gaps[first],
                                              np.diff(np.r_[np.flatnonzero(first), len(session)]))
        timestamp = start[session] + elapsed.astype("timedelta64[s]")

        # orders: one per buying visit with a cart
        self.order_seq += len(ordering)
        order_number = np.full(n_sessions, -1)
        order_number[ordering] = np.arange(self.order_seq - len(ordering), self.order_seq) + 1
        identified = logged_in[session] | ((seq >= 302) & (session < n_known))
        user = np.where(session < n_known,
                        customer[np.minimum(session, max(n_known - 1, 0))] if n_known else -1, -1)
        orders = self._orders(day, np.concatenate([cart_session, comp_session]),
                              np.concatenate([cart_product, comp_product]), order_number,
                              persona, country, platform, timestamp, session, kind,
                              customer, n_known)
        if n_known:
            bought = customer[ordering[ordering < n_known]]
            self.has_ordered[bought] = True

        props_price = np.where(product >= 0, cat.price[np.maximum(product, 0)], np.nan)
        events = pd.DataFrame({
            "kind": kind,
            "user": np.where(identified & (user >= 0), user, -1),
            "anon": anon[session],
            "ts": timestamp,
            "product": product,
            "price": props_price,
            "order": order_number[session],
            "platform": platform[session],
            "country": country[session],
            "query": np.where(kind == "Products Searched", favourite[session, 0], -1),
            "campaign": np.datetime64("NaT"),
        })
        return events, orders

    def _pick(self, session: np.ndarray, persona: np.ndarray, favourite: np.ndarray,
              country: np.ndarray, day: dt.date) -> np.ndarray:
        """Products for browsing rows: favourite categories, in-season, at the persona's price."""
        rng, cat = self.rng, self.catalogue
        if len(session) == 0:
            return np.zeros(0, dtype=int)
        favourite_pick = favourite[session, rng.integers(0, 2, len(session))]
        category = np.where(rng.random(len(session)) < 0.8, favourite_pick,
                            rng.integers(0, len(cat.categories), len(session)))
        flat = np.concatenate(cat.subs_of_category)  # subcategories grouped by category
        n_per = np.array([len(o) for o in cat.subs_of_category])
        first = np.r_[0, np.cumsum(n_per)[:-1]]
        n_options = n_per[category]
        sub = flat[first[category] + (rng.random(len(session)) * n_options).astype(int)]
        # out-of-season subcategories are mostly skipped for another in the same category
        hemisphere = np.array([c.hemisphere for c in COUNTRIES])[country[session]]
        for season in ("summer", "winter"):
            seasonal = np.array([s == season for s in cat.sub_season])[sub]
            ok = {h: _in_season(season, h, day.month) for h in ("north", "south", "tropics")}
            off = seasonal & ~np.vectorize(ok.get)(hemisphere) & (rng.random(len(sub)) < 0.85)
            if off.any():
                sub[off] = flat[first[category[off]]
                                + (rng.random(off.sum()) * n_options[off]).astype(int)]
        quantile = np.clip(self.params["price_quantile"][persona[session]]
                           + rng.normal(0, 0.2, len(session)), 0, 0.999)
        return cat.sub_start[sub] + (quantile * cat.sub_len[sub]).astype(int)

    def _orders(self, day: dt.date, cart_session: np.ndarray, cart_product: np.ndarray,
                order_number: np.ndarray, persona: np.ndarray, country: np.ndarray,
                platform: np.ndarray, timestamp: np.ndarray, session: np.ndarray,
                kind: np.ndarray, customer: np.ndarray, n_known: int) -> pd.DataFrame:
        rng, cat = self.rng, self.catalogue
        in_order = order_number[cart_session] > 0
        lines = pd.DataFrame({"session": cart_session[in_order],
                              "product": cart_product[in_order]})
        if lines.empty:
            return pd.DataFrame(columns=ORDER_COLUMNS)
        lines = lines.groupby(["session", "product"], sort=False).size().rename(
            "quantity").reset_index().sort_values(["session", "product"], kind="stable")
        grocery = cat.is_grocery[lines["product"].to_numpy()]
        lines["quantity"] += np.where(grocery, rng.poisson(1.5, len(lines)), 0)
        lines["line_number"] = lines.groupby("session").cumcount() + 1
        sess = lines["session"].to_numpy()
        completed_at = pd.Series(timestamp[kind == "Order Completed"],
                                 index=session[kind == "Order Completed"])
        when = completed_at.loc[sess].to_numpy()
        offsets = np.array([c.utc_offset for c in COUNTRIES])[country[sess]]
        roll = pd.Series(rng.random(len(order_number)))[sess].to_numpy()
        status = np.where(roll < 0.92, "completed", np.where(roll < 0.97, "cancelled",
                                                             "refunded"))
        discounted = pd.Series(rng.random(len(order_number)) < self.params[
            "discount_affinity"][persona])[sess].to_numpy()
        price = cat.price[lines["product"].to_numpy()]
        quantity = lines["quantity"].to_numpy()
        discount = np.where(discounted, np.round(price * quantity
                                                 * rng.uniform(0.1, 0.3, len(lines)), 2), 0.0)
        mobile = np.array([PLATFORMS[p][0] == "mobile" for p in range(len(PLATFORMS))])
        app = mobile[platform[sess]] & (pd.Series(rng.random(len(order_number)))[sess]
                                        .to_numpy() < 0.5)
        known = customer[np.minimum(sess, n_known - 1)] + 1 if n_known else sess
        customer_id = np.where(sess < n_known, _ids("C", known, 7), "")
        frame = pd.DataFrame({
            "order_id": _ids("O", order_number[sess], 9),
            "line_number": lines["line_number"].to_numpy(),
            "customer_id": customer_id,
            "ordered_at": _iso(when, offsets),
            "product_id": cat.product_id[lines["product"].to_numpy()],
            "quantity": quantity,
            "unit_price": np.char.mod("%.2f", price),
            "currency": CURRENCY,
            "status": status,
            "channel": np.where(app, "app", "web"),
            "shipping_country": np.array([c.code for c in COUNTRIES])[country[sess]],
            "discount_amount": np.char.mod("%.2f", discount),
        })
        self._schedule_returns(frame, (day - self.start).days)
        return frame

    def _schedule_returns(self, frame: pd.DataFrame, day_index: int) -> None:
        """About 4 % of completed orders send one line back 5-20 days later (negative units)."""
        rng = self.rng
        completed = frame[frame["status"] == "completed"]
        last = completed.groupby("order_id", sort=False).tail(1)
        chosen = last[rng.random(len(last)) < 0.04]
        for delay, rows in chosen.groupby(rng.integers(5, 21, len(chosen))):
            back = rows.copy()
            back["line_number"] = back["line_number"] + 1
            back["quantity"] = -np.minimum(back["quantity"], 1 + rng.integers(0, 2, len(back)))
            back["discount_amount"] = "0.00"
            self.pending_returns.setdefault(day_index + int(delay), []).append(back)

    def _newsletter(self, day: dt.date, active: np.ndarray) -> pd.DataFrame:
        """The Tuesday newsletter: opens and clicks of consented customers."""
        if day.weekday() != 1:
            return pd.DataFrame()
        rng = self.rng
        reach = np.flatnonzero(active & self.email_consent)
        opened = reach[rng.random(len(reach)) < self.params["email_open"][self.persona[reach]]]
        click_p = (self.params["email_click"] / self.params["email_open"])[self.persona[opened]]
        clicked = opened[rng.random(len(opened)) < click_p]
        sent = np.datetime64(day, "s") + np.int64(9 * 3600)
        open_at = sent + rng.integers(60, 36_000, len(opened)).astype("timedelta64[s]")
        click_at = pd.Series(open_at, index=opened).loc[clicked].to_numpy() + rng.integers(
            5, 300, len(clicked)).astype("timedelta64[s]")
        rows = pd.DataFrame({
            "kind": np.r_[np.full(len(opened), "Email Opened", dtype=object),
                          np.full(len(clicked), "Email Link Clicked", dtype=object)],
            "user": np.r_[opened, clicked], "anon": self.anonymous_id[np.r_[opened, clicked]],
            "ts": np.r_[open_at, click_at], "product": -1, "price": np.nan, "order": -1,
            "platform": -1, "country": -1, "query": -1, "campaign": np.datetime64(day, "s"),
        })
        return rows.sort_values("ts", kind="stable")


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded ids, e.g. _ids("C", [12], 7) -> ["C0000012"]."""
    return np.char.add(prefix, np.char.zfill(np.asarray(numbers, dtype=np.int64).astype(str),
                                             width))


def _iso(moment: np.ndarray, offset_hours: np.ndarray) -> np.ndarray:
    """UTC instants as local wall-clock ISO-8601 strings with their offset, as shops write them."""
    local = np.asarray(moment, dtype="datetime64[s]") + (np.asarray(offset_hours) * 3600).astype(
        "timedelta64[s]")
    text = np.datetime_as_string(local, unit="s")
    offsets = np.asarray(offset_hours)
    suffix = np.where(offsets >= 0, "+", "-")
    suffix = np.char.add(suffix, np.char.zfill(np.abs(offsets).astype(str), 2))
    return np.char.add(text, np.char.add(suffix, ":00"))


KINDS = ("page", "identify", "Products Searched", "Product Viewed", "Product Added",
         "Product Removed", "Cart Viewed", "Checkout Started", "Order Completed", "Email Opened",
         "Email Link Clicked")


def lookup_tables(con: duckdb.DuckDBPyConnection, catalogue: Catalogue) -> None:
    """Small tables the event renderer joins to: products, platforms, countries."""
    con.register("_products", pd.DataFrame({
        "product": np.arange(len(catalogue.product_id)), "product_id": catalogue.product_id,
        "category": catalogue.category, "price": catalogue.price}))
    con.register("_platforms", pd.DataFrame({
        "platform": np.arange(len(PLATFORMS)), "device": [p[0] for p in PLATFORMS],
        "os": [p[1] for p in PLATFORMS], "agent": [USER_AGENTS[p[1]] for p in PLATFORMS]}))
    con.register("_countries", pd.DataFrame({
        "country": np.arange(len(COUNTRIES)), "country_code": [c.code for c in COUNTRIES],
        "city": [c.cities[0][0] for c in COUNTRIES]}))
    con.register("_kinds", pd.DataFrame({"kind_code": np.arange(len(KINDS)), "kind": KINDS}))
    con.register("_categories", pd.DataFrame({
        "query_code": np.arange(len(catalogue.categories)),
        "query": [c.lower() for c in catalogue.categories]}))


def render_events(con: duckdb.DuckDBPyConnection, events: pd.DataFrame,
                  first_message: int) -> list[str]:
    """Segment-spec JSON lines for a day's event rows, formatted by DuckDB from numeric columns.

    Needs `lookup_tables` registered on the connection first.
    """
    if events.empty:
        return []
    frame = pd.DataFrame({
        "row": np.arange(len(events)),
        "kind_code": pd.Categorical(events["kind"], categories=KINDS).codes,
        "user": events["user"].to_numpy(dtype=np.int64),
        "anon": events["anon"].to_numpy(dtype=np.int64),
        "ts": events["ts"].to_numpy(dtype="datetime64[s]"),
        "product": events["product"].to_numpy(dtype=np.int64),
        "order_no": events["order"].to_numpy(dtype=np.int64),
        "platform": events["platform"].to_numpy(dtype=np.int64),
        "country": events["country"].to_numpy(dtype=np.int64),
        "query_code": events["query"].to_numpy(dtype=np.int64),
        "campaign_day": events["campaign"].to_numpy(dtype="datetime64[s]"),
    })
    con.register("_events", frame)
    lines = con.execute("""
        with e as (
            select
                e.row, k.kind,
                'msg-' || lpad(cast(e.row + ? as varchar), 10, '0') as message,
                strftime(e.ts, '%Y-%m-%dT%H:%M:%S.000Z') as timestamp,
                case when e.user >= 0 then 'C' || lpad(cast(e.user + 1 as varchar), 7, '0') end
                    as user_id,
                printf('%016x', e.anon) as anonymous,
                p.product_id, p.category, p.price,
                case when e.order_no > 0 then 'O' || lpad(cast(e.order_no as varchar), 9, '0')
                    end as order_id,
                q.query,
                'newsletter-' || strftime(e.campaign_day, '%Y-%m-%d') as campaign,
                json_object('device', json_object('type', pl.device),
                            'os', json_object('name', pl.os), 'userAgent', pl.agent,
                            'location', json_object('country', c.country_code, 'city', c.city))
                    as context
            from _events as e
            join _kinds as k using (kind_code)
            left join _products as p using (product)
            left join _platforms as pl using (platform)
            left join _countries as c using (country)
            left join _categories as q using (query_code)
        )
        select case
            when kind = 'page' then json_object(
                'type', 'page', 'messageId', message, 'timestamp', timestamp, 'userId', user_id,
                'anonymousId', anonymous, 'properties', json_object('path', '/', 'title', 'Home'),
                'context', context)
            when kind = 'identify' then json_object(
                'type', 'identify', 'messageId', message, 'timestamp', timestamp,
                'userId', user_id, 'anonymousId', anonymous, 'traits', json_object(),
                'context', context)
            when kind like 'Email%' then json_object(
                'type', 'track', 'event', kind, 'messageId', message, 'timestamp', timestamp,
                'userId', user_id, 'anonymousId', anonymous,
                'properties', json_object('campaign_id', campaign),
                'context', json_object('campaign', json_object('name', campaign,
                    'source', 'newsletter', 'medium', 'email')))
            else json_object(
                'type', 'track', 'event', kind, 'messageId', message, 'timestamp', timestamp,
                'userId', user_id, 'anonymousId', anonymous,
                'properties', case
                    when product_id is not null then json_object('product_id', product_id,
                        'category', category, 'price', price, 'quantity', 1)
                    when order_id is not null then json_object('order_id', order_id,
                        'currency', 'EUR')
                    when query is not null then json_object('query', query)
                    else json_object() end,
                'context', context)
            end::varchar as line
        from e order by row
    """, [first_message]).fetchnumpy()["line"]
    con.unregister("_events")
    return lines.tolist()


def inject_defects(orders: pd.DataFrame, lines: list[str], rate: float,
                   rng: np.random.Generator) -> tuple[pd.DataFrame, list[str], Counter]:
    """Corrupt about `rate` of the order lines and events the way real exports go wrong.

    Returns the order rows, the event lines and the number of defects written per reason code.
    """
    defects: Counter = Counter()
    hit = np.flatnonzero(rng.random(len(orders)) < rate)
    kinds = rng.integers(0, len(ORDER_DEFECTS), len(hit))
    orders = orders.reset_index(drop=True).astype({"unit_price": str})
    duplicates = []
    for row, k in zip(hit, kinds, strict=True):
        kind = ORDER_DEFECTS[k]
        defects[kind] += 1
        if kind == "duplicate_key":  # the same line delivered twice
            duplicates.append(row)
        elif kind == "missing_required_field":
            orders.at[row, "product_id"] = ""
        elif kind == "bad_timestamp":
            orders.at[row, "ordered_at"] = "31/12/2026 25:61"
        elif kind == "negative_price":
            orders.at[row, "unit_price"] = f"-{orders.at[row, 'unit_price']}"
        elif kind == "unknown_currency":
            orders.at[row, "currency"] = "XYZ"
        else:
            orders.at[row, "status"] = "shipped"
    if duplicates:
        orders = pd.concat([orders, orders.loc[duplicates]]).sort_index(kind="stable")
    out = lines
    hit = np.flatnonzero(rng.random(len(out)) < rate)
    kinds = rng.integers(0, len(EVENT_DEFECTS), len(hit))
    for row, k in sorted(zip(hit, kinds, strict=True), reverse=True):
        kind = EVENT_DEFECTS[k]
        defects[kind] += 1
        line = out[row]
        if kind == "malformed_json":
            out[row] = line[: len(line) // 2]
        elif kind == "unknown_event_type":
            out[row] = json.dumps({**json.loads(line), "type": "screen"}, separators=(",", ":"))
        elif kind == "bad_timestamp":
            out[row] = json.dumps({**json.loads(line), "timestamp": "yesterday"},
                                  separators=(",", ":"))
        else:
            out.insert(row + 1, line)
    return orders, out, defects


def _open(path: Path, compress: bool):
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        return gzip.open(path.with_name(path.name + ".gz"), "wt", encoding="utf-8",
                         compresslevel=1, newline="")
    return path.open("w", encoding="utf-8", newline="")


def generate(landing: Path, side_dir: Path, customers: int = DEFAULT_CUSTOMERS,
             days: int = DEFAULT_DAYS, end_date: dt.date = DEFAULT_END_DATE,
             seed: int = DEFAULT_SEED, progress: bool = True,
             defect_rate: float = DEFAULT_DEFECT_RATE, products: int = DEFAULT_PRODUCTS,
             compress: bool = False) -> dict:
    """Write the landing zone for `days` days ending on `end_date`; returns the manifest."""
    start = end_date - dt.timedelta(days=days - 1)
    world = World(customers, start, days, seed, products)
    counts: dict[str, dict[str, int]] = {feed: {} for feed in
                                          ("orders", "events", "customers", "products")}
    defects: Counter = Counter()
    defect_rng = np.random.default_rng([seed, 1])  # defects never change the clean world
    con = duckdb.connect()
    lookup_tables(con, world.catalogue)
    bar = tqdm(range(days), desc="generating days", unit="day", disable=not progress)
    for day_index in bar:
        day = start + dt.timedelta(days=day_index)
        partition = f"dt={day.isoformat()}"
        events, orders, profiles = world.simulate_day(day_index)
        lines = render_events(con, events, world.message_seq + 1)
        world.message_seq += len(lines)
        orders, lines, day_defects = inject_defects(orders, lines, defect_rate, defect_rng)
        defects.update(day_defects)
        with _open(landing / "events" / partition / "events.jsonl", compress) as handle:
            handle.write("\n".join(lines) + ("\n" if lines else ""))
        with _open(landing / "orders" / partition / "orders.csv", compress) as handle:
            orders[ORDER_COLUMNS].to_csv(handle, index=False, lineterminator="\n")
        counts["events"][day.isoformat()] = len(lines)
        counts["orders"][day.isoformat()] = len(orders)
        if len(profiles):
            with _open(landing / "customers" / partition / "customers.csv", compress) as handle:
                profiles[CUSTOMER_COLUMNS].to_csv(handle, index=False, lineterminator="\n")
            counts["customers"][day.isoformat()] = len(profiles)
        if day_index == 0:
            rows = world.catalogue.rows(f"{day.isoformat()}T00:00:00+00:00")
            with _open(landing / "products" / partition / "products.csv", False) as handle:
                rows[PRODUCT_COLUMNS].to_csv(handle, index=False, lineterminator="\n")
            counts["products"][day.isoformat()] = len(rows)
        bar.set_postfix(orders=sum(counts["orders"].values()),
                        events=sum(counts["events"].values()))
    con.close()
    manifest = {"seed": seed, "customers": customers, "days": days, "products": products,
                "start_date": start.isoformat(), "end_date": end_date.isoformat(),
                "defect_rate": defect_rate, "defects": dict(sorted(defects.items())),
                "rows": counts}
    side_dir.mkdir(parents=True, exist_ok=True)
    (side_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    pd.DataFrame({"customer_id": [f"C{i + 1:07d}" for i in range(customers)],
                  "persona": np.array([p.name for p in PERSONAS])[world.persona]}).to_csv(
        side_dir / "personas.csv", index=False)
    return manifest


def main(argv: list[str] | None = None) -> int:
    from dagster_project.settings import HOME

    parser = argparse.ArgumentParser(
        prog="python -m dagster_project.sample_data",
        description="Write a deterministic synthetic store (orders, events, customers, products) "
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
    args = parser.parse_args(argv)
    if args.customers < 1 or args.days < 1 or args.products < 10:
        parser.error("--customers and --days must be at least 1, --products at least 10")

    landing = args.home / "landing"
    if landing.exists() and any(landing.glob("*/dt=*/*")) and not args.force:
        parser.error(f"{landing} already holds landing files; pass --force to write over them")
    manifest = generate(landing, args.home / "generator", args.customers, args.days,
                        args.end_date, args.seed, defect_rate=args.defect_rate,
                        products=args.products, compress=args.gzip)
    totals = {feed: sum(days.values()) for feed, days in manifest["rows"].items()}
    print(f"wrote {manifest['start_date']}..{manifest['end_date']} to {landing}: "
          + ", ".join(f"{n:,} {feed}" for feed, n in totals.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
