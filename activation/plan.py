"""Planning one sync: the desired set, its diff against the confirmed state, and the batches.

- **Desired set** (`desired_set`): the segment's members with the consent the destination needs
  (`audience_members`), minus the audience's holdout arm (`in_holdout`), each turned into the
  destination's payload; a member the platform cannot match is skipped and counted.
- **Diff** (`diff`): adds, updates (a changed payload hash) and removes against `sync_state`; a
  full refresh re-sends every member.
- **Removal guard** (`removal_refusal`, `empty_segment_refusal`): the reasons a sync is refused
  before anything is sent. Removals the law requires (`required_removals`: consent withdrawn,
  erasure requested) never count toward the guard and are sent first, also when the guard
  holds back the rest.
- **Operations and batches** (`operations`, `batches`): the `_Planned` items, cut into batches
  of the platform's size, each keyed by `batch_key` per (audience, destination, run, operation,
  batch).
- **Resumption** (`rebuild_pending`): a pending batch of an interrupted run, rebuilt from the
  current members, with its original key while its content is unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pandas as pd

from activation.audiences import Audience
from activation.audit import payload_hash
from activation.destinations.base import Batch, Contact, Destination, Row
from activation.state import PendingBatch, record_assignments
from core.holdout import in_holdout  # the arm; the sample generator's campaigns use it too
from core.privacy import customer_key, erased_keys

# Fields an audience may send besides the identifiers, and where they come from.
FIELD_SQL = {
    "first_name": "contacts.first_name",
    "last_name": "contacts.last_name",
    "country": "contacts.country",
    "rfm_segment": "rfm.rfm_segment",
    "segment_name": "members.segment_name",
    "predicted_value_90d": "cast(round(clv.expected_value, 2) as varchar)",
    "top_3_recommendations": None,      # expands to recommended_product_1..3 (names)
}


def batch_key(audience_key: str, destination: str, run_id: str, operation: str, number: int) -> str:
    raw = f"{audience_key}|{destination}|{run_id}|{operation}|{number}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# ---- the desired set --------------------------------------------------------------------------

def audience_members(con: duckdb.DuckDBPyConnection, audience: Audience,
                     consent: str) -> pd.DataFrame:
    """Segment members with `consent` ("email" or "ads"), not erased, with their contact fields
    and the audience's fields; one row per customer."""
    if consent not in ("email", "ads"):
        raise ValueError(f"consent must be 'email' or 'ads', not {consent!r}")
    extra = []
    for name in audience.fields:
        if name == "top_3_recommendations":
            extra += [f"recs.product_{i} as recommended_product_{i}" for i in (1, 2, 3)]
        else:
            extra.append(f"{FIELD_SQL[name]} as {name}")
    has_recs = "top_3_recommendations" in audience.fields
    recs_join = """
        left join (
            select customer_id,
                   max(product_name) filter (where rank = 1) as product_1,
                   max(product_name) filter (where rank = 2) as product_2,
                   max(product_name) filter (where rank = 3) as product_3
            from marts.customer_product_recommendations
            where rank <= 3 and customer_id in (select customer_id from members)
            group by customer_id
        ) as recs using (customer_id)""" if has_recs else ""
    rfm_join = ("left join marts.customer_rfm as rfm using (customer_id)"
                if "rfm_segment" in audience.fields else "")
    clv_join = ("left join ml.customer_clv as clv using (customer_id)"
                if "predicted_value_90d" in audience.fields else "")
    # the members first: the recommendations of the segment's customers only are read
    sql = f"""
        with members as (
            select distinct customer_id, segment_name from marts.segment_memberships
            where segment_key = ?)
        select members.customer_id, contacts.email, contacts.phone, contacts.first_name,
               contacts.last_name, contacts.country
               {''.join(', ' + e for e in extra)}
        from members
        inner join marts.customer_contacts as contacts using (customer_id)
        {recs_join} {rfm_join} {clv_join}
        where contacts.has_{consent}_consent
        order by members.customer_id
    """
    return con.execute(sql, [audience.segment]).df()


def segment_size(con: duckdb.DuckDBPyConnection, segment_key: str) -> int:
    return con.execute("select count(distinct customer_id) from marts.segment_memberships "
                       "where segment_key = ?", [segment_key]).fetchone()[0]


def _contacts(frame: pd.DataFrame) -> Iterator[Contact]:
    base = {"customer_id", "email", "phone", "first_name", "last_name", "country"}
    frame = frame.astype(object).where(frame.notna(), None)
    for clean in frame.to_dict("records"):
        yield Contact(
            customer_id=str(clean["customer_id"]), email=clean["email"], phone=clean["phone"],
            first_name=clean["first_name"], last_name=clean["last_name"],
            country=clean["country"],
            properties={k: (None if v is None else str(v)) for k, v in clean.items()
                        if k not in base})


@dataclass
class Desired:
    rows: dict[str, Row]            # customer -> the destination's payload
    hashes: dict[str, str]          # customer -> payload_hash
    n_holdout: int
    n_skipped: int                  # members the platform cannot match (no identifier)


def desired_set(con: duckdb.DuckDBPyConnection, audience: Audience, destination: Destination,
                record: bool) -> Desired:
    """The members the destination should hold; `record` stores new members' arms."""
    frame = audience_members(con, audience, destination.consent)
    customers = frame["customer_id"].astype(str).tolist()
    holdout = {c for c in customers if in_holdout(audience.key, c, audience.holdout)}
    if record:
        record_assignments(con, audience, customers, holdout)
    rows, hashes, skipped = {}, {}, 0
    for contact in _contacts(frame[~frame["customer_id"].astype(str).isin(holdout)]):
        payload = destination.payload(contact, audience.payload_fields)
        if payload is None:
            skipped += 1
            continue
        rows[contact.customer_id] = Row(contact.customer_id, payload)
        hashes[contact.customer_id] = payload_hash(payload)
    return Desired(rows, hashes, len(holdout), skipped)


# ---- the diff and its guards ------------------------------------------------------------------

@dataclass
class Diff:
    adds: list[str]
    updates: list[str]
    removes: list[str]
    n_confirmed: int
    required: list[str] = dataclasses.field(default_factory=list)  # removes the law requires
    erased: list[str] = dataclasses.field(default_factory=list)    # ... of them, erasures

    @property
    def ordinary_removes(self) -> list[str]:
        required = set(self.required)
        return [c for c in self.removes if c not in required]

    @property
    def withdrawn(self) -> list[str]:
        erased = set(self.erased)
        return [c for c in self.required if c not in erased]


def required_removals(con: duckdb.DuckDBPyConnection, consent: str,
                      customers: list[str]) -> dict[str, str]:
    """Which of `customers` (confirmed members about to be removed) must be removed whatever
    the removal guard says, and why: they withdrew the destination's consent
    (`consent_withdrawn`: `customer_contacts` says so) or asked to be erased (`erased`: an
    `is_deleted` profile in `raw.customers`, or a request on record in
    `audit.erasure_requests`, by key). Both are explicit records, so a broken upstream
    that empties a segment or the contacts never counts here."""
    if not customers or consent not in ("email", "ads"):
        return {}
    tables = {name for (name,) in con.execute(
        "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
    con.register("_removing", pd.DataFrame({"customer_id": customers}))
    try:
        found: dict[str, str] = {}
        if "marts.customer_contacts" in tables:
            found |= {c: "consent_withdrawn" for (c,) in con.execute(f"""
                select customer_id from marts.customer_contacts
                where customer_id in (select customer_id from _removing)
                  and not coalesce(has_{consent}_consent, false)""").fetchall()}
        if "raw.customers" in tables:
            found |= {c: "erased" for (c,) in con.execute("""
                select distinct customer_id from raw.customers
                where is_deleted and customer_id in (select customer_id from _removing)
            """).fetchall()}
        if "audit.erasure_requests" in tables:  # requests on record, by key
            keys = erased_keys(con)
            found |= {c: "erased" for c in customers if customer_key(c) in keys}
    finally:
        con.unregister("_removing")
    return dict(sorted(found.items()))


def diff(desired: Desired, state: pd.DataFrame, full_refresh: bool) -> Diff:
    """The customers to add, update and remove so that the state becomes the desired set."""
    confirmed = set(state.index)
    confirmed_hash = dict(zip(state.index, state["payload_hash"], strict=True))
    removes = sorted(confirmed - set(desired.rows))
    if full_refresh:
        adds, updates = sorted(desired.rows), []
    else:
        adds = sorted(set(desired.rows) - confirmed)
        updates = sorted(c for c in set(desired.rows) & confirmed
                         if confirmed_hash[c] != desired.hashes[c])
    return Diff(adds, updates, removes, len(confirmed))


def empty_segment_refusal(audience: Audience) -> str:
    return (f"audience {audience.key!r}: segment {audience.segment!r} has no "
            "members in marts.segment_memberships; refusing to sync an empty source (it "
            "would empty the destination). Check the segment key and the upstream run.")


def removal_refusal(audience_key: str, destination: str, n_removes: int, n_confirmed: int, *,
                    max_removal_share: float, min_removals_guarded: int,
                    force_removals: bool) -> str | None:
    """Why removing `n_removes` of `n_confirmed` members is refused, or None when it is not."""
    share = n_removes / n_confirmed if n_confirmed else 0.0
    if (n_removes >= min_removals_guarded
            and share > max_removal_share and not force_removals):
        return (f"audience {audience_key!r} at {destination!r}: the sync would remove "
                f"{n_removes:,} of {n_confirmed:,} confirmed members ({share:.0%}), above the "
                f"limit of {max_removal_share:.0%}. Check the segment; if the drop "
                "is expected, run again with force_removals (CLI: --force-removals).")
    return None


# ---- operations and batches -------------------------------------------------------------------

@dataclass
class _Planned:
    operation: str
    rows: list[Row]
    hashes: dict[str, str]
    payloads: dict[str, str | None]


Work = list[tuple[_Planned, Batch, list[Row]]]


def keeps_payload(destination: Destination) -> bool:
    """Whether the state keeps the payload: only hashed identifiers (ad platforms)."""
    return destination.consent == "ads"


def _planned(operation: str, rows: list[Row], hashes: dict[str, str], keep: bool,
             label: str | None = None) -> _Planned:
    keep = keep and operation != "remove"
    return _Planned(label or operation, rows,
                    {r.customer_id: hashes.get(r.customer_id, "") for r in rows},
                    {r.customer_id: json.dumps(r.payload) if keep else None for r in rows})


def operations(changes: Diff, desired: Desired, state: pd.DataFrame, destination: Destination,
               full_refresh: bool) -> list[_Planned]:
    """The operations that make the destination equal to the desired set, in sending order."""
    rows, hashes, keep = desired.rows, desired.hashes, keeps_payload(destination)
    stored_payload = dict(zip(state.index, state["payload_json"], strict=True))
    stored_id = dict(zip(state.index, state["destination_id"], strict=True))

    def removal_row(customer: str) -> Row:
        stored = stored_payload[customer]
        payload = json.loads(stored) if isinstance(stored, str) else {}
        return Row(customer, payload, _none(stored_id[customer]))

    plan = []
    # erasures and withdrawals first, whatever comes after; an erasure also deletes the
    # person at platforms that keep records (Destination.erase)
    if changes.erased:
        plan.append(_planned("remove", [removal_row(c) for c in changes.erased], {}, keep,
                             "erase"))
    if changes.withdrawn:
        plan.append(_planned("remove", [removal_row(c) for c in changes.withdrawn], {}, keep))
    if full_refresh and destination.supports_replace:
        plan.append(_planned("replace", [rows[c] for c in changes.adds], hashes, keep))
        return plan
    if changes.ordinary_removes:
        plan.append(_planned("remove", [removal_row(c) for c in changes.ordinary_removes], {},
                             keep))
    if changes.updates and keep:
        # an ad platform matches on the hashed identifiers: a changed identifier is the
        # old member removed and the new one added
        plan.append(_planned("remove", [removal_row(c) for c in changes.updates], {}, keep))
        plan.append(_planned("add", [rows[c] for c in changes.updates], hashes, keep, "update"))
    elif changes.updates:
        plan.append(_planned("add", [dataclasses.replace(
            rows[c], destination_id=_none(stored_id[c]))
            for c in changes.updates], hashes, keep, "update"))
    if changes.adds:
        plan.append(_planned("add", [rows[c] for c in changes.adds], hashes, keep))
    return plan


def batches(plan: list[_Planned], destination: Destination, audience_key: str, target: str,
            run_id: str) -> Work:
    """The plan cut into batches of the platform's size, each with its deterministic key."""
    op_counter: dict[str, int] = {}
    work: Work = []
    for planned in plan:
        size = (destination.max_remove_batch if planned.operation in ("remove", "erase")
                else destination.max_batch)
        chunks = [planned.rows[i:i + size] for i in range(0, len(planned.rows), size)] or [[]]
        if not planned.rows and planned.operation != "replace":
            continue
        op_index = f"{planned.operation}{op_counter.setdefault(planned.operation, 0)}"
        op_counter[planned.operation] += 1
        work += [(planned, Batch("remove" if planned.operation == "erase" else planned.operation,
                                 n, len(chunks),
                                 batch_key(audience_key, target, run_id, op_index, n)), chunk)
                 for n, chunk in enumerate(chunks, start=1)]
    return work


# ---- resumption -------------------------------------------------------------------------------

@dataclass
class Rebuilt:
    batch: Batch
    rows: list[Row]
    hashes: dict[str, str]
    payloads: dict[str, str | None]
    changed: bool                   # some rows no longer hold: the batch has a new key


def rebuild_pending(pending: PendingBatch, state: pd.DataFrame, contacts: dict[str, Contact],
                    destination: Destination, fields: list[str]) -> Rebuilt:
    """A pending batch's rows as they are sent now: removals of customers still confirmed, adds
    and updates whose payload is unchanged. A batch whose customers changed since gets a new
    key (its key + "r"): a key is never reused for different content."""
    operation = pending.operation
    batch = Batch({"update": "add", "erase": "remove"}.get(operation, operation), pending.number,
                  pending.total, pending.key)
    rebuilt, hashes, payloads, same = [], {}, {}, True
    for record in pending.records:
        customer = record["customer_id"]
        if operation in ("remove", "erase"):
            if customer not in state.index:
                continue                      # confirmed gone before the kill
            stored = state["payload_json"].get(customer)
            dest_id = state["destination_id"].get(customer)
            rebuilt.append(Row(customer, json.loads(stored) if isinstance(stored, str)
                               else {}, _none(dest_id)))
            continue
        contact = contacts.get(customer)
        payload = destination.payload(contact, fields) if contact else None
        if payload is None or payload_hash(payload) != record["payload_hash"]:
            same = False
            continue
        rebuilt.append(Row(customer, payload))
        hashes[customer] = record["payload_hash"]
        payloads[customer] = record["payload_json"]
    if not same:
        batch = dataclasses.replace(batch, key=pending.key + "r")
    return Rebuilt(batch, rebuilt, hashes, payloads, not same)


def _none(value):
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value
