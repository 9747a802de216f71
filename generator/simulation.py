"""One simulated day: profile snapshots, browsing sessions and their events, the newsletter.

Each day is simulated with vectorised numpy over all customers, so memory stays bounded by one
day whatever the number of days. Orders come out of the sessions (`generator.orders`), so
events and orders agree.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from generator.defaults import CUSTOMER_COLUMNS
from generator.orders import order_lines
from generator.personas import COUNTRIES, PLATFORMS, P
from generator.seasons import in_season, is_gift_season, season_factor
from generator.weather import city_offsets
from generator.world import World

# On a rainy (hot) day in a shopper's city, this share of their product views goes to these
# subcategories instead of what they would have browsed.
RAIN_SHIFT, RAIN_PRODUCTS = 0.12, ("Raincoats", "Umbrellas")
HEAT_SHIFT, HEAT_PRODUCTS = 0.08, ("Fans", "Swimwear", "Sunscreen", "Sunglasses")


def simulate_day(world: World, day_index: int
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(events, order lines, profile snapshots) of one day; moves `world`'s state forward."""
    rng, n = world.rng, world.n
    day = world.start + dt.timedelta(days=day_index)
    midnight = np.datetime64(day, "s")

    # profiles: everyone who signed up earlier on the first day, then new signups,
    # a few consent changes and a few erasure requests
    if day_index == 0:
        new = np.flatnonzero((world.signup_day <= 0) & ~world.deleted)
    else:
        new = np.flatnonzero(world.signup_day == day_index)
    active = (world.signup_day <= day_index) & ~world.deleted
    signed_up = (np.datetime64(world.start, "s") + world.signup_day[new].astype("timedelta64[D]")
                 + world.signup_second[new].astype("timedelta64[s]"))
    first_seen = np.where(world.signup_day[new] < day_index, midnight + np.int64(60), signed_up)
    snapshots = [world.profiles(new, first_seen)] if len(new) else []
    if day_index > 0:
        flips = np.flatnonzero(active & (rng.random(n) < 0.0015))
        world.email_consent[flips] = ~world.email_consent[flips]
        if len(flips):
            snapshots.append(world.profiles(flips, np.full(len(flips), midnight
                                                           + np.int64(12 * 3600))))
        erased = np.flatnonzero(active & (rng.random(n) < 0.00005))
        if len(erased):
            world.deleted[erased] = True
            snapshots.append(world.profiles(erased, np.full(len(erased), midnight
                                                            + np.int64(13 * 3600)), True))
    profiles = pd.concat(snapshots) if snapshots else pd.DataFrame(columns=CUSTOMER_COLUMNS)

    # sessions of registered customers, then anonymous visitors
    rate = world.params["visit_rate"][world.persona] * season_factor(day)
    rate = np.where(day_index > world.lapse_day, rate * 0.05, rate)
    gift = world.persona == P["seasonal_gift_buyer"]
    if is_gift_season(day):
        rate = np.where(gift, rate * 8, rate)
    one_time = world.persona == P["one_time_buyer"]
    rate = np.where(one_time & world.has_ordered, rate * 0.1, rate)
    visits = rng.poisson(np.where(active, rate, 0.0))
    customer = np.repeat(np.arange(n), visits)
    n_anonymous = int(rng.poisson(n * 0.006 * season_factor(day)))
    events, orders = _sessions(world, day, customer, n_anonymous)
    events = pd.concat([events, _newsletter(world, day, active)], ignore_index=True)
    events = events.sort_values("ts", kind="stable", ignore_index=True)  # exports are in time order
    returns = world.pending_returns.pop(day_index, [])
    if returns:
        orders = pd.concat([orders, *returns], ignore_index=True)
    return events, orders, profiles


def _sessions(world: World, day: dt.date, customer: np.ndarray, n_anonymous: int
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events and order lines of the day's visits: `customer` per known visit, then anonymous."""
    rng, cat = world.rng, world.catalogue
    n_known = len(customer)
    n_sessions = n_known + n_anonymous
    persona = np.concatenate([world.persona[customer],
                              rng.choice([P["window_shopper"], P["one_time_buyer"]],
                                         n_anonymous, p=[0.7, 0.3])])
    country = np.concatenate([world.country[customer],
                              rng.choice(len(COUNTRIES), n_anonymous,
                                         p=[c.share for c in COUNTRIES])])
    n_cities = np.array([len(c.cities) for c in COUNTRIES])
    place = np.concatenate([world.place[customer],  # the row of the session's city's weather
                            city_offsets()[country[n_known:]] + (
                                rng.random(n_anonymous) * n_cities[country[n_known:]]
                            ).astype(int)])
    platform = np.concatenate([world.platform[customer],
                               rng.integers(0, len(PLATFORMS), n_anonymous)])
    other_device = rng.random(n_sessions) < 0.15
    platform = np.where(other_device, rng.integers(0, len(PLATFORMS), n_sessions), platform)
    anon = np.concatenate([world.anonymous_id[customer],
                           rng.integers(0, 2**63, n_anonymous, dtype=np.int64)])
    favourite = np.concatenate([world.favourite[customer],
                                np.argsort(rng.random((n_anonymous, len(cat.categories))),
                                           axis=1)[:, :3]])
    logged_in = np.concatenate([rng.random(n_known) < 0.8, np.zeros(n_anonymous, bool)])
    start = (np.datetime64(day, "s")
             + rng.integers(6 * 3600, 82_000, n_sessions).astype("timedelta64[s]"))
    converts = rng.random(n_sessions) < world.params["conversion"][persona]

    # product views, then cart adds (at least one when the visit buys)
    n_views = 1 + rng.poisson(2.0, n_sessions)
    view_session = np.repeat(np.arange(n_sessions), n_views)
    view_rank = np.arange(len(view_session)) - np.repeat(np.cumsum(n_views) - n_views, n_views)
    view_product = _pick(world, view_session, persona, favourite, country, place, day)
    add_p = np.where(converts, 0.9, world.params["cart_add"][persona])[view_session]
    added = rng.random(len(view_session)) < add_p
    last_view = view_rank == n_views[view_session] - 1
    added |= converts[view_session] & last_view & ~np.bincount(
        view_session, weights=added, minlength=n_sessions).astype(bool)[view_session]
    removed = added & (rng.random(len(view_session)) < 0.08)

    # extra items and complements for buying visits
    buyers = np.flatnonzero(converts)
    n_extra = rng.poisson(np.maximum(world.params["basket_items"][persona[buyers]] - 1.5, 0.1))
    extra_session = np.repeat(buyers, n_extra)
    extra_product = _pick(world, extra_session, persona, favourite, country, place, day)
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
    # seconds since each visit's start (a day of a small store may have no visit at all)
    first = np.r_[True, session[1:] != session[:-1]] if len(session) else np.zeros(0, bool)
    elapsed = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first] - gaps[first],
                                          np.diff(np.r_[np.flatnonzero(first), len(session)]))
    timestamp = start[session] + elapsed.astype("timedelta64[s]")

    # orders: one per buying visit with a cart
    world.order_seq += len(ordering)
    order_number = np.full(n_sessions, -1)
    order_number[ordering] = np.arange(world.order_seq - len(ordering), world.order_seq) + 1
    identified = logged_in[session] | ((seq >= 302) & (session < n_known))
    user = np.where(session < n_known,
                    customer[np.minimum(session, max(n_known - 1, 0))] if n_known else -1, -1)
    orders = order_lines(world, day, np.concatenate([cart_session, comp_session]),
                         np.concatenate([cart_product, comp_product]), order_number,
                         persona, country, platform, timestamp, session, kind,
                         customer, n_known)
    if n_known:
        bought = customer[ordering[ordering < n_known]]
        world.has_ordered[bought] = True

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


def _pick(world: World, session: np.ndarray, persona: np.ndarray, favourite: np.ndarray,
          country: np.ndarray, place: np.ndarray, day: dt.date) -> np.ndarray:
    """Products for browsing rows: favourite categories, in-season, at the persona's price;
    on a rainy or hot day in the shopper's city (`place`) some browsing goes to the weather's
    products instead."""
    rng, cat = world.rng, world.catalogue
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
        ok = {h: in_season(season, h, day.month) for h in ("north", "south", "tropics")}
        off = seasonal & ~np.vectorize(ok.get)(hemisphere) & (rng.random(len(sub)) < 0.85)
        if off.any():
            sub[off] = flat[first[category[off]]
                            + (rng.random(off.sum()) * n_options[off]).astype(int)]
    day_index = (day - world.start).days
    shift = rng.random(len(sub))
    for wanted, share, products in (
            (world.weather.is_rainy[place[session], day_index], RAIN_SHIFT, RAIN_PRODUCTS),
            (world.weather.is_hot[place[session], day_index], HEAT_SHIFT, HEAT_PRODUCTS)):
        swap = wanted & (shift < share)
        shift = np.where(swap, 1.0, shift - share)  # a row moves for one reason at most
        if swap.any():
            options = np.array([cat.subcategories.index(s) for s in products])
            sub[swap] = options[rng.integers(0, len(options), swap.sum())]
    quantile = np.clip(world.params["price_quantile"][persona[session]]
                       + rng.normal(0, 0.2, len(session)), 0, 0.999)
    return cat.sub_start[sub] + (quantile * cat.sub_len[sub]).astype(int)


def _newsletter(world: World, day: dt.date, active: np.ndarray) -> pd.DataFrame:
    """The Tuesday newsletter: opens and clicks of consented customers."""
    if day.weekday() != 1:
        return pd.DataFrame()
    rng = world.rng
    reach = np.flatnonzero(active & world.email_consent)
    opened = reach[rng.random(len(reach)) < world.params["email_open"][world.persona[reach]]]
    click_p = (world.params["email_click"] / world.params["email_open"])[world.persona[opened]]
    clicked = opened[rng.random(len(opened)) < click_p]
    sent = np.datetime64(day, "s") + np.int64(9 * 3600)
    open_at = sent + rng.integers(60, 36_000, len(opened)).astype("timedelta64[s]")
    click_at = pd.Series(open_at, index=opened).loc[clicked].to_numpy() + rng.integers(
        5, 300, len(clicked)).astype("timedelta64[s]")
    rows = pd.DataFrame({
        "kind": np.r_[np.full(len(opened), "Email Opened", dtype=object),
                      np.full(len(clicked), "Email Link Clicked", dtype=object)],
        "user": np.r_[opened, clicked], "anon": world.anonymous_id[np.r_[opened, clicked]],
        "ts": np.r_[open_at, click_at], "product": -1, "price": np.nan, "order": -1,
        "platform": -1, "country": -1, "query": -1, "campaign": np.datetime64(day, "s"),
    })
    return rows.sort_values("ts", kind="stable")
