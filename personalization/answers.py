"""The API's answers, read from one opened cache file (`personalization.cache` builds it).

A `Cache` holds the small tables in memory (products, their similar products, the popular
products, the content of every slot's variants, the segments' names) and looks a customer up
by primary key in SQLite; each answer is JSON bytes, ready to send. Content variants and the
non-personal answers are serialized once, when the cache is opened.

Every customer answer says whether it is `personalized` (built from this customer's own row).
A customer the cache does not know, or an erased one (docs/privacy.md: the published copy
holds an erased person only under a pseudonymous key, so their id is simply unknown, and a
pseudonymous key itself is never looked up), gets the non-personal answer: the popular
products, no segments, every slot's default content.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import orjson

from personalization.cache import ERASED_PREFIX, FORMAT_VERSION, CacheError

MAX_LIMIT = 50  # the most items an answer lists


def file_identity(path: Path) -> tuple[int, int, int, int]:
    """What changes when the cache file is replaced: device, inode, mtime and size."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size


class UnknownSlot(KeyError):
    """A content slot the cache's content file does not define."""


class Cache:
    """One cache file, opened read-only; answers are built from it as JSON bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity = file_identity(path)  # before opening: a newer file is reopened later
        uri = f"file:{quote(str(path))}?mode=ro&immutable=1"  # never written once in place
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            meta = {key: json.loads(value)
                    for key, value in self._db.execute("select key, value from meta")}
        except sqlite3.Error as exc:
            raise CacheError(f"{path} is not a personalization cache ({exc}); build it with "
                             f"`python -m personalization build`") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise CacheError(f"{path} has format {meta.get('format_version')}, this server "
                             f"reads {FORMAT_VERSION}: build it again")
        self.meta = meta
        self.as_of_date: str | None = meta["as_of_date"]
        self.products: dict[str, dict] = {}
        self.similar: dict[str, list] = {}
        active = set()
        for product_id, product, is_active, similar in self._db.execute(
                "select product_id, product, is_active, similar_products from products"):
            self.products[product_id] = orjson.loads(product)
            if is_active:
                active.add(product_id)
            if similar:
                self.similar[product_id] = orjson.loads(similar)
        self.active = frozenset(active)
        self.popular = [pid for pid, _ in meta["popular"] if pid in self.products]
        self.segment_names = {key: orjson.Fragment(orjson.dumps({"segment_key": key, **value}))
                              for key, value in meta["segments"].items()}
        self.slots = [slot["key"] for slot in meta["slots"]]
        self._slot_index = {key: i for i, key in enumerate(self.slots)}
        # every slot's variants, serialized once: index -1 is the default, 0.. the rules
        self._variants: list[dict[int, bytes]] = []
        for slot in meta["slots"]:
            variants = {-1: orjson.dumps({"slot": slot["key"], "variant": "default",
                                          "personalized": False, "content": slot["default"]})}
            for i, rule in enumerate(slot["rules"]):
                variants[i] = orjson.dumps({"slot": slot["key"], "variant": rule["key"],
                                            "personalized": True, "content": rule["content"]})
            self._variants.append(variants)
        self._popular_answers: dict[int, bytes] = {}
        self._no_segments = orjson.dumps({"personalized": False, "as_of_date": self.as_of_date,
                                          "segments": []})

    def close(self) -> None:
        self._db.close()

    def info(self) -> dict:
        """What the health endpoint tells: when and from what this cache was built."""
        return {key: self.meta[key] for key in ("cache_id", "built_at", "published_modified_at",
                                                "as_of_date", "customers", "products")}

    # -- lookups ------------------------------------------------------------------------------
    def _row(self, customer_id: str) -> tuple | None:
        if customer_id.startswith(ERASED_PREFIX):
            return None  # a pseudonymous key names nobody the storefront may personalize for
        return self._db.execute("select recommendations, segments, content from customers "
                                "where customer_id = ?", (customer_id,)).fetchone()

    def _item(self, rank: int, product_id: str, score: float | None, reason: str) -> dict:
        return {"rank": rank, **self.products[product_id], "score": score, "reason": reason}

    def _popular(self, limit: int, exclude: set[str] | frozenset = frozenset()) -> list[dict]:
        chosen = [pid for pid in self.popular if pid not in exclude][:limit]
        return [self._item(rank, pid, None, "popular") for rank, pid in enumerate(chosen, 1)]

    def _popular_answer(self, limit: int) -> bytes:
        answer = self._popular_answers.get(limit)
        if answer is None:
            answer = self._popular_answers[limit] = orjson.dumps({
                "personalized": False, "source": "popular", "as_of_date": self.as_of_date,
                "items": self._popular(limit)})
        return answer

    # -- answers ------------------------------------------------------------------------------
    def recommendations(self, customer_id: str, limit: int = 10) -> bytes:
        """The customer's recommended products in rank order (the popular ones when the cache
        has none for them)."""
        return self._recommendations(self._row(customer_id), limit)

    def _recommendations(self, row: tuple | None, limit: int) -> bytes:
        if row is None or not row[0]:
            return self._popular_answer(limit)
        items = [(pid, score, reason) for pid, score, reason in orjson.loads(row[0])
                 if pid in self.active][:limit]
        return orjson.dumps({
            "personalized": True, "source": "recommendations", "as_of_date": self.as_of_date,
            "items": [self._item(rank, *item) for rank, item in enumerate(items, 1)]})

    def segments(self, customer_id: str) -> bytes:
        """The segments the customer belongs to (RFM, rule, ML cluster, predictive)."""
        return self._segments(self._row(customer_id))

    def _segments(self, row: tuple | None) -> bytes:
        if row is None or not row[1]:
            return self._no_segments
        keys = orjson.loads(row[1])
        return orjson.dumps({"personalized": True, "as_of_date": self.as_of_date,
                             "segments": [self.segment_names[k] for k in keys
                                          if k in self.segment_names]})

    @staticmethod
    def _choices(row: tuple | None) -> list[int] | None:
        return orjson.loads(row[2]) if row and row[2] else None

    def content(self, slot: str, customer_id: str | None) -> bytes:
        """The slot's content for the customer: the first rule that held for them when the
        cache was built, else the default (also for unknown customers)."""
        index = self._slot_index.get(slot)
        if index is None:
            raise UnknownSlot(slot)
        choices = self._choices(self._row(customer_id) if customer_id else None)
        return self._variants[index][choices[index] if choices else -1]

    def all_content(self, customer_id: str) -> bytes:
        """Every slot's content for the customer."""
        return self._all_content(self._row(customer_id))

    def _all_content(self, row: tuple | None) -> bytes:
        choices = self._choices(row)
        picked = [self._variants[i][choices[i] if choices else -1]
                  for i in range(len(self.slots))]
        return orjson.dumps({
            "personalized": bool(choices) and any(c >= 0 for c in choices),
            "slots": {key: orjson.Fragment(body) for key, body in zip(self.slots, picked,
                                                                      strict=True)}})

    def customer(self, customer_id: str, limit: int = 10) -> bytes:
        """Recommendations, segments and every slot's content in one answer (one lookup):
        a page that needs all three asks once."""
        row = self._row(customer_id)
        return orjson.dumps({
            "personalized": row is not None, "as_of_date": self.as_of_date,
            "recommendations": orjson.Fragment(self._recommendations(row, limit)),
            "segments": orjson.Fragment(self._segments(row)),
            "content": orjson.Fragment(self._all_content(row))})

    def similar_products(self, product_id: str, limit: int = 10) -> bytes:
        """"People also bought": the active products most similar to this one (the popular
        ones, less this one, for a product without similarities)."""
        similar = [(pid, score) for pid, score in self.similar.get(product_id, ())
                   if pid in self.active][:limit]
        if not similar:
            return orjson.dumps({"product_id": product_id, "personalized": False,
                                 "source": "popular",
                                 "items": self._popular(limit, exclude={product_id})})
        return orjson.dumps({"product_id": product_id, "personalized": False,
                             "source": "similar",
                             "items": [self._item(rank, pid, score, "also_bought")
                                       for rank, (pid, score) in enumerate(similar, 1)]})

    def cart_complements(self, product_ids: list[str], limit: int = 5) -> bytes:
        """The products that go best with a cart: each candidate scored by the sum of its
        similarities to the cart's products (the recommender's `cart_complements`, over the
        published top similar products), none already in the cart; the popular ones when the
        cart's products have no similar products."""
        cart = set(product_ids)
        scores: dict[str, float] = defaultdict(float)
        for product_id in cart:
            for pid, similarity in self.similar.get(product_id, ()):
                if pid not in cart and pid in self.active:
                    scores[pid] += similarity
        unknown = sorted(pid for pid in cart if pid not in self.products)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        if not ranked:
            return orjson.dumps({"personalized": False, "source": "popular",
                                 "unknown_product_ids": unknown,
                                 "items": self._popular(limit, exclude=cart)})
        return orjson.dumps({"personalized": False, "source": "cart",
                             "unknown_product_ids": unknown,
                             "items": [self._item(rank, pid, round(score, 6), "goes_with_cart")
                                       for rank, (pid, score) in enumerate(ranked, 1)]})
