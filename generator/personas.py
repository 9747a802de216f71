"""Who shops: countries (cities, names, time zones, hemispheres), devices and the hidden personas.

A persona drives how often a customer visits, what they browse, whether a cart turns into an
order, how much they spend, whether they answer emails and when they drift away.
"""

from __future__ import annotations

from dataclasses import dataclass


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
