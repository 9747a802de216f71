"""The product catalogue: categories, subcategories with their prices, complements and seasons.

Seasonal subcategories follow each country's hemisphere (swimwear in its summer, coats in its
winter), and carts have real complements (a phone brings a case and a charger, a camera a
memory card).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from generator.defaults import CURRENCY

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


# nouns with no singular of their own in a product name ("Acme Sunglasses 333")
PLURAL_ONLY = ("Sunglasses", "Ski Goggles", "Headphones")


def _singular(subcategory: str) -> str:
    return subcategory if subcategory in PLURAL_ONLY else subcategory.removesuffix("s")


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
                names.append(f"{brand} {_singular(sub)} {n}")
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
