"""A deterministic synthetic store: writes the four landing feeds, one folder per day.

The world is small but behaves like a shop: customers belong to hidden personas that drive how
often they visit, what they browse, whether browsing turns into orders, how much they spend and
whether they answer emails. Orders come out of browsing sessions, so events and orders agree.

Besides the landing zone it writes two side files under `SEGMENTA_HOME/generator/` that are never
ingested: `manifest.json` (rows written per feed and day, for reconciliation tests) and
`personas.csv` (each customer's hidden persona, to measure how well models recover it).

Run `python -m dagster_project.sample_data --help`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

DEFAULT_CUSTOMERS = 2_000
DEFAULT_DAYS = 120
DEFAULT_END_DATE = dt.date(2026, 10, 31)
DEFAULT_SEED = 42
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

# country -> (utc offset hours, phone prefix, [(city, region, postal prefix)], first names, last names)
GEOGRAPHY: dict[str, tuple[int, str, list[tuple[str, str, str]], list[str], list[str]]] = {
    "ES": (1, "+34", [("Madrid", "Madrid", "28"), ("Barcelona", "Catalonia", "08"),
                      ("Sevilla", "Andalusia", "41"), ("Bilbao", "Basque Country", "48")],
           ["Lucia", "Mateo", "Sofia", "Hugo", "Martina", "Pablo", "Elena", "Javier"],
           ["Garcia", "Fernandez", "Lopez", "Martinez", "Sanchez", "Perez", "Gomez"]),
    "DE": (1, "+49", [("Berlin", "Berlin", "10"), ("Munich", "Bavaria", "80"),
                      ("Hamburg", "Hamburg", "20"), ("Cologne", "North Rhine-Westphalia", "50")],
           ["Emma", "Noah", "Mia", "Leon", "Hannah", "Paul", "Lena", "Felix"],
           ["Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner"]),
    "FR": (1, "+33", [("Paris", "Ile-de-France", "75"), ("Lyon", "Auvergne-Rhone-Alpes", "69"),
                      ("Marseille", "Provence-Alpes-Cote d'Azur", "13")],
           ["Louise", "Gabriel", "Jade", "Arthur", "Alice", "Louis", "Chloe", "Jules"],
           ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit"]),
    "GB": (0, "+44", [("London", "England", "E1"), ("Manchester", "England", "M1"),
                      ("Edinburgh", "Scotland", "EH")],
           ["Olivia", "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack"],
           ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans"]),
    "US": (-5, "+1", [("New York", "NY", "10"), ("Los Angeles", "CA", "90"),
                      ("Seattle", "WA", "98"), ("Miami", "FL", "33")],
           ["Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Sophia", "Lucas"],
           ["Johnson", "Miller", "Davis", "Garcia", "Rodriguez", "Wilson", "Anderson"]),
    "AU": (10, "+61", [("Sydney", "NSW", "20"), ("Melbourne", "VIC", "30"), ("Perth", "WA", "60")],
           ["Charlotte", "Oliver", "Amelia", "William", "Isla", "Jack", "Mia", "Henry"],
           ["Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen"]),
    "BR": (-3, "+55", [("Sao Paulo", "SP", "01"), ("Rio de Janeiro", "RJ", "20"),
                       ("Porto Alegre", "RS", "90")],
           ["Ana", "Miguel", "Helena", "Arthur", "Alice", "Heitor", "Laura", "Davi"],
           ["Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Costa"]),
}
COUNTRY_WEIGHTS = {"ES": 0.25, "DE": 0.18, "FR": 0.14, "GB": 0.14, "US": 0.14, "AU": 0.08,
                   "BR": 0.07}

# category -> [(subcategory, price median, complement subcategory or None)]
CATALOGUE: dict[str, list[tuple[str, float, str | None]]] = {
    "Electronics": [("Phones", 420.0, "Phone Cases"), ("Phone Cases", 18.0, None),
                    ("Headphones", 85.0, None), ("Laptops", 950.0, "Laptop Bags"),
                    ("Laptop Bags", 45.0, None), ("Chargers", 22.0, None)],
    "Home": [("Coffee Makers", 120.0, "Coffee"), ("Cookware", 60.0, None),
             ("Bedding", 75.0, None), ("Lighting", 40.0, "Light Bulbs"),
             ("Light Bulbs", 8.0, None)],
    "Apparel": [("Jackets", 110.0, None), ("T-Shirts", 20.0, None), ("Shoes", 80.0, "Socks"),
                ("Socks", 9.0, None), ("Raincoats", 70.0, "Umbrellas")],
    "Beauty": [("Skincare", 28.0, None), ("Sunscreen", 15.0, None), ("Fragrance", 65.0, None)],
    "Sports": [("Running Shoes", 110.0, "Socks"), ("Yoga Mats", 30.0, None),
               ("Bikes", 600.0, "Bike Helmets"), ("Bike Helmets", 55.0, None)],
    "Grocery": [("Coffee", 12.0, None), ("Tea", 7.0, None), ("Snacks", 5.0, None)],
    "Outdoor": [("Umbrellas", 18.0, None), ("Tents", 180.0, None), ("Sunglasses", 45.0, None)],
    "Books": [("Fiction", 14.0, None), ("Cookbooks", 25.0, None), ("Travel Guides", 20.0, None)],
}
BRANDS = ["Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne"]
PRODUCTS_PER_SUBCATEGORY = 7


@dataclass(frozen=True)
class Persona:
    """How a kind of customer behaves. Rates are per day; probabilities per session."""

    name: str
    share: float
    visit_rate: float
    conversion: float
    price_factor: float
    basket_items: float
    discount_affinity: float
    email_open: float
    email_click: float
    age_mean: float
    mobile_share: float
    lapse_after_days: int | None = None


PERSONAS = [
    Persona("loyal_high_value", 0.12, 0.22, 0.35, 1.6, 2.6, 0.05, 0.55, 0.25, 44, 0.35),
    Persona("discount_hunter", 0.18, 0.15, 0.22, 0.6, 2.0, 0.85, 0.45, 0.20, 33, 0.70),
    Persona("occasional", 0.30, 0.05, 0.18, 1.0, 1.4, 0.15, 0.20, 0.05, 40, 0.55),
    Persona("window_shopper", 0.22, 0.16, 0.012, 1.0, 1.1, 0.10, 0.10, 0.02, 27, 0.85),
    Persona("lapsing", 0.18, 0.12, 0.20, 1.1, 1.6, 0.20, 0.08, 0.01, 52, 0.40,
            lapse_after_days=45),
]

EVENT_DEVICE = {"mobile": ("iOS", "Android"), "desktop": ("Windows", "Mac OS X"),
                "tablet": ("iPadOS", "Android")}
USER_AGENTS = {"iOS": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)",
               "Android": "Mozilla/5.0 (Linux; Android 15; Pixel 9)",
               "Windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
               "Mac OS X": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6)",
               "iPadOS": "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X)"}


@dataclass
class Product:
    product_id: str
    sku: str
    name: str
    category: str
    subcategory: str
    brand: str
    price: float
    is_active: bool
    complement: str | None


@dataclass
class Customer:
    customer_id: str
    persona: Persona
    country: str
    city: str
    region: str
    postal_code: str
    first_name: str
    last_name: str
    email: str
    phone: str
    birth_date: dt.date
    gender: str
    signup_at: dt.datetime
    email_consent: bool
    ads_consent: bool
    device: str
    os_name: str
    anonymous_id: str
    favourite_categories: tuple[str, ...]


class World:
    """Builds the catalogue and customers, then simulates each day's sessions, orders, emails."""

    def __init__(self, n_customers: int, start: dt.date, days: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.start = start
        self.days = days
        self.end = start + dt.timedelta(days=days - 1)
        self.products = self._make_products()
        self.by_subcategory: dict[str, list[Product]] = defaultdict(list)
        for product in self.products:
            if product.is_active:
                self.by_subcategory[product.subcategory].append(product)
        self.categories = list(CATALOGUE)
        self.customers = [self._make_customer(i) for i in range(1, n_customers + 1)]
        self._order_seq = 0
        self._message_seq = 0
        self._anon_seq = 0

    # ---------------------------------------------------------------- world building

    def _make_products(self) -> list[Product]:
        products = []
        n = 0
        for category, subcategories in CATALOGUE.items():
            for subcategory, median, complement in subcategories:
                for _ in range(PRODUCTS_PER_SUBCATEGORY):
                    n += 1
                    brand = BRANDS[int(self.rng.integers(len(BRANDS)))]
                    price = round(float(median * self.rng.lognormal(0, 0.35)), 2)
                    products.append(Product(
                        product_id=f"P{n:05d}", sku=f"SKU-{category[:3].upper()}-{n:05d}",
                        name=f"{brand} {subcategory.rstrip('s')} {n}", category=category,
                        subcategory=subcategory, brand=brand, price=max(price, 1.0),
                        is_active=bool(self.rng.random() > 0.04), complement=complement,
                    ))
        return products

    def _make_customer(self, i: int) -> Customer:
        rng = self.rng
        persona = PERSONAS[int(rng.choice(len(PERSONAS), p=[p.share for p in PERSONAS]))]
        country = str(rng.choice(list(COUNTRY_WEIGHTS), p=list(COUNTRY_WEIGHTS.values())))
        _, phone_prefix, cities, first_names, last_names = GEOGRAPHY[country]
        city, region, postal_prefix = cities[int(rng.integers(len(cities)))]
        gender = str(rng.choice(["female", "male", "non_binary", ""], p=[0.5, 0.44, 0.02, 0.04]))
        # First-name lists alternate female, male.
        first = first_names[2 * int(rng.integers(len(first_names) // 2))
                            + (1 if gender == "male" else 0)]
        last = last_names[int(rng.integers(len(last_names)))]
        age = float(np.clip(rng.normal(persona.age_mean, 11), 18, 85))
        birth_date = self.start - dt.timedelta(days=int(age * 365.25))
        # 70 % signed up before the simulated window, the rest during it.
        if rng.random() < 0.7:
            signup_day = self.start - dt.timedelta(days=int(rng.integers(1, 730)))
        else:
            signup_day = self.start + dt.timedelta(days=int(rng.integers(0, self.days)))
        signup_at = dt.datetime.combine(signup_day, dt.time()) + dt.timedelta(
            seconds=int(rng.integers(0, 86_400)))
        mobile = rng.random() < persona.mobile_share
        device = "mobile" if mobile else str(rng.choice(["desktop", "tablet"], p=[0.85, 0.15]))
        os_name = EVENT_DEVICE[device][int(rng.integers(2))]
        n_fav = 2 if rng.random() < 0.7 else 3
        favourites = tuple(str(c) for c in rng.choice(self.categories, size=n_fav, replace=False))
        return Customer(
            customer_id=f"C{i:06d}", persona=persona, country=country, city=city, region=region,
            postal_code=f"{postal_prefix}{int(rng.integers(100, 999))}", first_name=first,
            last_name=last, email=f"{first.lower()}.{last.lower()}{i}@example.com",
            phone=f"{phone_prefix} {int(rng.integers(600_000_000, 699_999_999))}",
            birth_date=birth_date, gender=gender, signup_at=signup_at,
            email_consent=bool(rng.random() < 0.72), ads_consent=bool(rng.random() < 0.58),
            device=device, os_name=os_name, anonymous_id=self._hex(16),
            favourite_categories=favourites,
        )

    def _hex(self, n_bytes: int) -> str:
        return self.rng.bytes(n_bytes).hex()

    def _message_id(self) -> str:
        self._message_seq += 1
        return f"msg-{self._message_seq:09d}-{self._hex(4)}"

    # ---------------------------------------------------------------- simulation

    def pick_product(self, categories: tuple[str, ...], price_factor: float) -> Product:
        """A product from the shopper's favourite categories (mostly), pricier for big spenders."""
        rng = self.rng
        category = (str(rng.choice(categories)) if rng.random() < 0.8
                    else str(rng.choice(self.categories)))
        subcategory = CATALOGUE[category][int(rng.integers(len(CATALOGUE[category])))][0]
        candidates = self.by_subcategory[subcategory]
        prices = np.array([p.price for p in candidates])
        weights = np.exp(-np.abs(np.log(prices / prices.mean()) - np.log(price_factor)))
        return candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]

    def simulate_day(self, day: dt.date) -> tuple[list[dict], list[dict], list[dict]]:
        """One day's events, order lines and customer snapshots."""
        rng = self.rng
        events: list[dict] = []
        orders: list[dict] = []
        snapshots: list[dict] = []
        day_index = (day - self.start).days
        weekday_boost = 1.25 if day.weekday() >= 5 else 1.0
        day_start = dt.datetime.combine(day, dt.time())

        for customer in self.customers:
            signup_day = customer.signup_at.date()
            if signup_day == day or (day_index == 0 and signup_day < day):
                snapshots.append(self._snapshot(customer, customer.signup_at if signup_day == day
                                                else day_start + dt.timedelta(minutes=1)))
            if signup_day > day:
                continue
            persona = customer.persona
            rate = persona.visit_rate * weekday_boost
            if persona.lapse_after_days is not None and day_index > persona.lapse_after_days:
                rate *= 0.08
            for _ in range(int(rng.poisson(rate))):
                when = day_start + dt.timedelta(seconds=int(rng.integers(6 * 3600, 86_000)))
                self._session(customer, when, events, orders)
            if day_index > 5 and rng.random() < 0.0015:
                customer.email_consent = not customer.email_consent
                snapshots.append(self._snapshot(customer, day_start + dt.timedelta(hours=12)))

        # Anonymous visitors: browse, a few buy as guests.
        for _ in range(int(rng.poisson(len(self.customers) * 0.02))):
            when = day_start + dt.timedelta(seconds=int(rng.integers(0, 86_000)))
            self._session(None, when, events, orders)

        if day.weekday() == 1:  # the weekly newsletter goes out on Tuesdays
            self._newsletter(day, events)
        return events, orders, snapshots

    def _snapshot(self, c: Customer, updated_at: dt.datetime) -> dict:
        return {
            "customer_id": c.customer_id, "email": c.email, "phone": c.phone,
            "first_name": c.first_name, "last_name": c.last_name,
            "birth_date": c.birth_date.isoformat(), "gender": c.gender, "city": c.city,
            "region": c.region, "postal_code": c.postal_code, "country": c.country,
            "signup_at": _iso(c.signup_at, GEOGRAPHY[c.country][0]),
            "email_consent": str(c.email_consent).lower(),
            "ads_consent": str(c.ads_consent).lower(),
            "updated_at": _iso(updated_at, GEOGRAPHY[c.country][0]), "is_deleted": "false",
        }

    def _session(self, customer: Customer | None, when: dt.datetime, events: list[dict],
                 orders: list[dict]) -> None:
        rng = self.rng
        if customer is None:
            self._anon_seq += 1
            persona = PERSONAS[3] if rng.random() < 0.7 else PERSONAS[2]
            country = str(rng.choice(list(COUNTRY_WEIGHTS), p=list(COUNTRY_WEIGHTS.values())))
            device = "mobile" if rng.random() < 0.6 else "desktop"
            os_name = EVENT_DEVICE[device][int(rng.integers(2))]
            anonymous_id, user_id = self._hex(16), None
            favourites = tuple(str(c) for c in rng.choice(self.categories, size=2, replace=False))
            city = GEOGRAPHY[country][2][0][0]
        else:
            persona, country, city = customer.persona, customer.country, customer.city
            device, os_name = customer.device, customer.os_name
            if rng.random() < 0.15:  # sometimes on another device
                device = str(rng.choice(list(EVENT_DEVICE)))
                os_name = EVENT_DEVICE[device][int(rng.integers(2))]
            anonymous_id, favourites = customer.anonymous_id, customer.favourite_categories
            # Logged in from the start most of the time; otherwise identified at checkout.
            user_id = customer.customer_id if rng.random() < 0.8 else None
        context = {"device": {"type": device}, "os": {"name": os_name},
                   "userAgent": USER_AGENTS[os_name],
                   "location": {"country": country, "city": city}}
        clock = [when]

        def emit(kind: str, event: str | None, properties: dict) -> None:
            clock[0] += dt.timedelta(seconds=int(rng.integers(5, 140)))
            record = {"type": kind}
            if event is not None:
                record["event"] = event
            record.update({
                "messageId": self._message_id(),
                "timestamp": clock[0].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "userId": user_id, "anonymousId": anonymous_id,
                "properties": properties, "context": context,
            })
            events.append(record)

        emit("page", None, {"path": "/", "title": "Home"})
        if rng.random() < 0.35:
            emit("track", "Products Searched", {"query": str(rng.choice(favourites)).lower()})
        viewed = [self.pick_product(favourites, persona.price_factor)
                  for _ in range(1 + int(rng.poisson(2.5)))]
        for product in viewed:
            emit("track", "Product Viewed", {"product_id": product.product_id,
                                             "category": product.category,
                                             "price": product.price})
        converts = rng.random() < persona.conversion
        cart: list[Product] = []
        add_prob = 0.9 if converts else 0.18
        for product in viewed:
            if rng.random() < add_prob or (converts and not cart and product is viewed[-1]):
                cart.append(product)
                emit("track", "Product Added", {"product_id": product.product_id,
                                                "category": product.category,
                                                "price": product.price, "quantity": 1})
        if converts and cart:
            extra = int(rng.poisson(max(persona.basket_items - len(cart), 0.1)))
            for _ in range(extra):
                product = self.pick_product(favourites, persona.price_factor)
                cart.append(product)
                emit("track", "Product Added", {"product_id": product.product_id,
                                                "category": product.category,
                                                "price": product.price, "quantity": 1})
            for product in list(cart):  # the right case for the phone in the cart
                complements = self.by_subcategory.get(product.complement or "", [])
                if complements and rng.random() < 0.45:
                    complement = complements[int(rng.integers(len(complements)))]
                    cart.append(complement)
                    emit("track", "Product Added", {"product_id": complement.product_id,
                                                    "category": complement.category,
                                                    "price": complement.price, "quantity": 1})
            emit("track", "Cart Viewed", {"n_products": len(cart)})
            emit("track", "Checkout Started", {"n_products": len(cart)})
            if user_id is None and customer is not None:
                user_id = customer.customer_id
                emit("identify", None, {})
            self._order(customer, persona, cart, clock[0], country, device, orders)
            emit("track", "Order Completed", {"order_id": orders[-1]["order_id"],
                                              "revenue": round(sum(p.price for p in cart), 2),
                                              "currency": CURRENCY})

    def _order(self, customer: Customer | None, persona: Persona, cart: list[Product],
               when: dt.datetime, country: str, device: str, orders: list[dict]) -> None:
        rng = self.rng
        self._order_seq += 1
        order_id = f"O{self._order_seq:08d}"
        roll = rng.random()
        status = "completed" if roll < 0.92 else ("cancelled" if roll < 0.97 else "refunded")
        channel = "app" if device == "mobile" and rng.random() < 0.5 else "web"
        discounted = rng.random() < persona.discount_affinity
        offset = GEOGRAPHY[country][0]
        quantities: dict[str, int] = defaultdict(int)
        by_id = {}
        for product in cart:
            quantities[product.product_id] += 1
            by_id[product.product_id] = product
        for line_number, (product_id, quantity) in enumerate(quantities.items(), start=1):
            product = by_id[product_id]
            if product.category == "Grocery":
                quantity += int(rng.poisson(1.5))
            discount = round(product.price * quantity * float(rng.uniform(0.1, 0.3)), 2) \
                if discounted else 0.0
            orders.append({
                "order_id": order_id, "line_number": line_number,
                "customer_id": customer.customer_id if customer else "",
                "ordered_at": _iso(when, offset), "product_id": product_id,
                "quantity": quantity, "unit_price": f"{product.price:.2f}", "currency": CURRENCY,
                "status": status, "channel": channel, "shipping_country": country,
                "discount_amount": f"{discount:.2f}",
            })

    def _newsletter(self, day: dt.date, events: list[dict]) -> None:
        rng = self.rng
        campaign = f"newsletter-{day.isoformat()}"
        sent_at = dt.datetime.combine(day, dt.time(9, 0))
        for c in self.customers:
            if not c.email_consent or c.signup_at.date() > day:
                continue
            if rng.random() >= c.persona.email_open:
                continue
            opened = sent_at + dt.timedelta(minutes=int(rng.integers(1, 600)))
            base = {"userId": c.customer_id, "anonymousId": c.anonymous_id,
                    "context": {"campaign": {"name": campaign, "source": "newsletter",
                                             "medium": "email"}}}
            events.append({"type": "track", "event": "Email Opened",
                           "messageId": self._message_id(),
                           "timestamp": opened.strftime("%Y-%m-%dT%H:%M:%S.000Z"), **base,
                           "properties": {"campaign_id": campaign}})
            if rng.random() < c.persona.email_click / c.persona.email_open:
                clicked = opened + dt.timedelta(seconds=int(rng.integers(5, 300)))
                events.append({"type": "track", "event": "Email Link Clicked",
                               "messageId": self._message_id(),
                               "timestamp": clicked.strftime("%Y-%m-%dT%H:%M:%S.000Z"), **base,
                               "properties": {"campaign_id": campaign}})


def inject_defects(orders: list[dict], events: list[dict], rate: float,
                   rng: np.random.Generator) -> tuple[list[dict], list[str], Counter]:
    """Corrupt about `rate` of the rows the way real exports go wrong.

    Returns the order rows, the event lines (JSON text, so that some can be malformed) and the
    number of defects written per reason code.
    """
    defects: Counter = Counter()
    out_orders: list[dict] = []
    for row in orders:
        out_orders.append(row)
        if rng.random() >= rate:
            continue
        kind = ORDER_DEFECTS[int(rng.integers(len(ORDER_DEFECTS)))]
        defects[kind] += 1
        if kind == "duplicate_key":  # the same line delivered twice
            out_orders.append(dict(row))
            continue
        bad = dict(row)
        if kind == "missing_required_field":
            bad["product_id"] = ""
        elif kind == "bad_timestamp":
            bad["ordered_at"] = "31/12/2026 25:61"
        elif kind == "negative_price":
            bad["unit_price"] = f"-{row['unit_price']}"
        elif kind == "unknown_currency":
            bad["currency"] = "XYZ"
        else:
            bad["status"] = "shipped"
        out_orders[-1] = bad
    lines: list[str] = []
    for event in events:
        line = json.dumps(event, separators=(",", ":"))
        if rng.random() >= rate:
            lines.append(line)
            continue
        kind = EVENT_DEFECTS[int(rng.integers(len(EVENT_DEFECTS)))]
        defects[kind] += 1
        if kind == "malformed_json":
            lines.append(line[: len(line) // 2])
        elif kind == "unknown_event_type":
            lines.append(json.dumps({**event, "type": "screen"}, separators=(",", ":")))
        elif kind == "bad_timestamp":
            lines.append(json.dumps({**event, "timestamp": "yesterday"}, separators=(",", ":")))
        else:
            lines += [line, line]
    return out_orders, lines, defects


def _iso(moment: dt.datetime, offset_hours: int) -> str:
    """Local wall-clock time with its UTC offset, as shop exports write it."""
    tz = dt.timezone(dt.timedelta(hours=offset_hours))
    return moment.replace(tzinfo=dt.UTC).astimezone(tz).isoformat(timespec="seconds")


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")


def _product_rows(products: list[Product], updated_at: str) -> list[dict]:
    return [{
        "product_id": p.product_id, "sku": p.sku, "name": p.name, "category": p.category,
        "subcategory": p.subcategory, "brand": p.brand, "price": f"{p.price:.2f}",
        "currency": CURRENCY, "is_active": str(p.is_active).lower(), "updated_at": updated_at,
    } for p in products]


def generate(landing: Path, side_dir: Path, customers: int = DEFAULT_CUSTOMERS,
             days: int = DEFAULT_DAYS, end_date: dt.date = DEFAULT_END_DATE,
             seed: int = DEFAULT_SEED, progress: bool = True,
             defect_rate: float = DEFAULT_DEFECT_RATE) -> dict:
    """Write the landing zone for `days` days ending on `end_date`; returns the manifest."""
    start = end_date - dt.timedelta(days=days - 1)
    world = World(customers, start, days, seed)
    counts: dict[str, dict[str, int]] = {feed: {} for feed in
                                          ("orders", "events", "customers", "products")}
    defects: Counter = Counter()
    defect_rng = np.random.default_rng([seed, 1])  # defects never change the clean world
    for day_index in tqdm(range(days), desc="generating days", unit="day", disable=not progress):
        day = start + dt.timedelta(days=day_index)
        partition = f"dt={day.isoformat()}"
        events, orders, snapshots = world.simulate_day(day)
        orders, event_lines, day_defects = inject_defects(orders, events, defect_rate, defect_rng)
        defects.update(day_defects)
        _write_lines(landing / "events" / partition / "events.jsonl", event_lines)
        _write_csv(landing / "orders" / partition / "orders.csv", ORDER_COLUMNS, orders)
        counts["events"][day.isoformat()] = len(event_lines)
        counts["orders"][day.isoformat()] = len(orders)
        if snapshots:
            _write_csv(landing / "customers" / partition / "customers.csv", CUSTOMER_COLUMNS,
                       snapshots)
            counts["customers"][day.isoformat()] = len(snapshots)
        if day_index == 0:
            rows = _product_rows(world.products, f"{day.isoformat()}T00:00:00+00:00")
            _write_csv(landing / "products" / partition / "products.csv", PRODUCT_COLUMNS, rows)
            counts["products"][day.isoformat()] = len(rows)
    manifest = {"seed": seed, "customers": customers, "days": days,
                "start_date": start.isoformat(), "end_date": end_date.isoformat(),
                "defect_rate": defect_rate, "defects": dict(sorted(defects.items())),
                "rows": counts}
    side_dir.mkdir(parents=True, exist_ok=True)
    (side_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _write_csv(side_dir / "personas.csv", ["customer_id", "persona"],
               [{"customer_id": c.customer_id, "persona": c.persona.name}
                for c in world.customers])
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
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="random seed (default %(default)s)")
    parser.add_argument("--defect-rate", type=float, default=DEFAULT_DEFECT_RATE,
                        help="share of order lines and events written with a defect for the "
                             "quarantine to catch (default %(default)s; 0 for a clean store)")
    parser.add_argument("--home", type=Path, default=HOME.root,
                        help="SEGMENTA_HOME to write into (default: $SEGMENTA_HOME or data/)")
    parser.add_argument("--force", action="store_true",
                        help="write even if the landing zone already holds files")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.days < 1:
        parser.error("--customers and --days must be at least 1")

    landing = args.home / "landing"
    if landing.exists() and any(landing.glob("*/dt=*/*")) and not args.force:
        parser.error(f"{landing} already holds landing files; pass --force to write over them")
    manifest = generate(landing, args.home / "generator", args.customers, args.days,
                        args.end_date, args.seed, defect_rate=args.defect_rate)
    totals = {feed: sum(days.values()) for feed, days in manifest["rows"].items()}
    print(f"wrote {manifest['start_date']}..{manifest['end_date']} to {landing}: "
          + ", ".join(f"{n:,} {feed}" for feed, n in totals.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
