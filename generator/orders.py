"""Order lines out of a day's buying sessions, and the returns they send back days later.

Orders are cancelled, refunded and partly returned at realistic rates; a return is an extra
line of the same order with negative units, written on the day it comes back.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from generator.defaults import CURRENCY, ORDER_COLUMNS
from generator.personas import COUNTRIES, PLATFORMS
from generator.render import local_iso, padded_ids
from generator.world import World


def order_lines(world: World, day: dt.date, cart_session: np.ndarray, cart_product: np.ndarray,
                order_number: np.ndarray, persona: np.ndarray, country: np.ndarray,
                platform: np.ndarray, timestamp: np.ndarray, session: np.ndarray,
                kind: np.ndarray, customer: np.ndarray, n_known: int) -> pd.DataFrame:
    """The order lines of the sessions with an `order_number`, in the orders feed's columns.

    Also schedules the returns some of them will send back (`world.pending_returns`).
    """
    rng, cat = world.rng, world.catalogue
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
    discounted = pd.Series(rng.random(len(order_number)) < world.params[
        "discount_affinity"][persona])[sess].to_numpy()
    price = cat.price[lines["product"].to_numpy()]
    quantity = lines["quantity"].to_numpy()
    discount = np.where(discounted, np.round(price * quantity
                                             * rng.uniform(0.1, 0.3, len(lines)), 2), 0.0)
    mobile = np.array([PLATFORMS[p][0] == "mobile" for p in range(len(PLATFORMS))])
    app = mobile[platform[sess]] & (pd.Series(rng.random(len(order_number)))[sess]
                                    .to_numpy() < 0.5)
    known = customer[np.minimum(sess, n_known - 1)] + 1 if n_known else sess
    customer_id = np.where(sess < n_known, padded_ids("C", known, 7), "")
    frame = pd.DataFrame({
        "order_id": padded_ids("O", order_number[sess], 9),
        "line_number": lines["line_number"].to_numpy(),
        "customer_id": customer_id,
        "ordered_at": local_iso(when, offsets),
        "product_id": cat.product_id[lines["product"].to_numpy()],
        "quantity": quantity,
        "unit_price": np.char.mod("%.2f", price),
        "currency": CURRENCY,
        "status": status,
        "channel": np.where(app, "app", "web"),
        "shipping_country": np.array([c.code for c in COUNTRIES])[country[sess]],
        "discount_amount": np.char.mod("%.2f", discount),
    })
    _schedule_returns(world, frame, (day - world.start).days)
    return frame


def _schedule_returns(world: World, frame: pd.DataFrame, day_index: int) -> None:
    """About 4 % of completed orders send one line back 5-20 days later (negative units)."""
    rng = world.rng
    completed = frame[frame["status"] == "completed"]
    last = completed.groupby("order_id", sort=False).tail(1)
    chosen = last[rng.random(len(last)) < 0.04]
    for delay, rows in chosen.groupby(rng.integers(5, 21, len(chosen))):
        back = rows.copy()
        back["line_number"] = back["line_number"] + 1
        back["quantity"] = -np.minimum(back["quantity"], 1 + rng.integers(0, 2, len(back)))
        back["discount_amount"] = "0.00"
        world.pending_returns.setdefault(day_index + int(delay), []).append(back)
