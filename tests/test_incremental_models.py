"""The exact incremental refresh: whatever order and however often landing files arrive, with
refreshes (complete or stopped half-way) in between, the incremental dbt models and the marts
built on them end up with exactly the rows a full rebuild of the same final landing zone
computes.

Delivery histories are generated with Hypothesis over a small sample store: days in and out of
order, late files for old days, re-deliveries with order lines and events removed, changed and
added, devices identifying long after their first visit, erasure requests, and refreshes that
stop after the first models. `benchmarks/incremental_histories.py` runs many more.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import generator
from core.settings import DBT_PROJECT_DIR
from core.warehouse import Warehouse
from ingest import landing

pytestmark = pytest.mark.e2e

# the incremental models, and the marts computed from them: (table, sort key)
TABLES = {
    "intermediate.int_events_sessionized": ["event_id"],
    "intermediate.int_device_identities": ["anonymous_id"],
    "intermediate.int_customer_activity_daily": ["customer_id", "visitor_id", "activity_date",
                                                 "device_type", "os_name", "product_category",
                                                 "campaign_name"],
    "intermediate.int_events_summed_to_customer": ["customer_id"],
    "marts.fct_sessions": ["session_id"],
    "marts.fct_orders": ["order_id"],
    "marts.fct_order_items": ["order_line_id"],
    "marts.customer_features": ["customer_id"],
    "marts.dim_customers": ["customer_id"],
    "marts.customer_rfm": ["customer_id"],
    "marts.segment_memberships": ["customer_id", "segment_key"],
}
BOOKKEEPING = {"change_id"}  # when a row was written, not what it says
SELECT = ["--select", "+segment_memberships +customer_features +fct_order_items",
          "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]
# refreshes that stopped after these models (the rest catch up in the next one): before the
# daily activity, or after it and before the customers' totals (which then sum again the
# customers whose activity rows the stopped refresh deleted)
PARTIAL = ["--select", "int_device_identities int_events_sessionized fct_orders",
           "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]
PARTIAL_AFTER_ACTIVITY = ["--select", ("int_device_identities int_events_sessionized "
                                       "int_customer_activity_daily fct_orders"),
                          "--exclude-resource-type", "unit_test",
                          "--exclude-resource-type", "test"]
END = dt.date(2026, 6, 14)
DAYS = [END - dt.timedelta(days=13 - i) for i in range(14)]


def _command(home: Path, args: tuple[str, ...]) -> list[str]:
    return [*args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(TARGET), "--log-path", str(home / "dbt_logs")]


TARGET = DBT_PROJECT_DIR / "target" / "incremental_tests"
_manifest = []


def dbt(home: Path, *args: str) -> None:
    """dbt in this process, on the project parsed once (a subprocess per call would spend
    most of the test starting Python and parsing)."""
    from dbt.cli.main import dbtRunner

    previous = os.environ.get("SEGMENTA_HOME")
    os.environ["SEGMENTA_HOME"] = str(home)
    try:
        if not _manifest:
            parsed = dbtRunner().invoke(_command(home, ("parse", "--quiet")))
            assert parsed.success, parsed.exception
            _manifest.append(parsed.result)
        # --no-write-json: no manifest.json and run_results.json per call (0.4 s each)
        done = dbtRunner(manifest=_manifest[0]).invoke(
            _command(home, (*args, "--quiet", "--no-write-json")))
    finally:
        os.environ["SEGMENTA_HOME"] = previous or ""
        _close_dbt_duckdb()
    failures = [f"{r.node.name}: {r.message}" for r in (done.result or [])
                if str(r.status) in ("error", "fail")]
    assert done.success, failures or done.exception


def _close_dbt_duckdb() -> None:
    """Release the warehouse file: dbt-duckdb keeps its database open between invocations."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def dbt_process(home: Path, *args: str) -> subprocess.Popen:
    """dbt as its own process group (to be killed)."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "dbt"), *_command(home, args)],
        env={**os.environ, "SEGMENTA_HOME": str(home)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)


def prepare(home: Path) -> None:
    """The inputs dbt reads besides the landing feeds: no model scores or rule segments yet
    (the model tables as the ml assets write them without a champion: the staging views name
    every column)."""
    from ml.clv import empty_scores
    from ml.segmentation import empty_clusters

    with Warehouse(home / "warehouse.duckdb").connect() as con:
        con.execute("create schema if not exists ml")
        con.execute("create schema if not exists intermediate")
        for name, frame in (("customer_clusters", empty_clusters()),
                            ("customer_clv", empty_scores())):
            con.register("frame", frame)
            con.execute(f"create table if not exists ml.{name} as select * from frame")
            con.unregister("frame")
        con.execute("create table if not exists intermediate.rule_segment_memberships "
                    "(customer_id varchar, segment_key varchar, segment_name varchar, "
                    "segment_kind varchar)")


def tables(home: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        frames = {}
        for table, key in TABLES.items():
            columns = [row[0] for row in con.execute(f"describe {table}").fetchall()
                       if row[0] not in BOOKKEEPING]
            frame = con.execute(f"select {', '.join(columns)} from {table}").df()
            frames[table] = frame.sort_values(key, na_position="first").reset_index(drop=True)
    return frames


def assert_same_tables(incremental: dict[str, pd.DataFrame], rebuilt: dict[str, pd.DataFrame]):
    for table, frame in incremental.items():
        pd.testing.assert_frame_equal(frame, rebuilt[table], check_exact=True, obj=table)


def rebuild(landing_dir: Path, home: Path) -> dict[str, pd.DataFrame]:
    """A full build of a landing zone into a new warehouse: every day loaded in date order."""
    shutil.copytree(landing_dir, home / "landing")
    warehouse = Warehouse(home / "warehouse.duckdb")
    for feed in ("customers", "products"):
        landing.load_all_days(warehouse, home / "landing", feed)
    for feed in ("orders", "events"):
        landing.load_days(warehouse, home / "landing", feed,
                          landing.landing_days(home / "landing", feed))
    prepare(home)
    dbt(home, "build", *SELECT, "--full-refresh")
    return tables(home)


def sample_store(home: Path) -> Path:
    """The sample store every history is cut from: 14 days of 600 customers."""
    generator.generate(home / "landing", home / "generator", customers=600, days=14,
                       end_date=END, seed=11, progress=False)
    return home / "landing"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_store(tmp_path_factory.mktemp("store"))


# ---------- deliveries: what a store sends, and changes to a day's files

def _day_dir(root: Path, feed: str, day: dt.date) -> Path:
    return root / feed / f"dt={day.isoformat()}"


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    return rows[0], rows[1:]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    path.write_text(out.getvalue())


@dataclass(frozen=True)
class Change:
    """A change to a day's files before it is delivered again (indices wrap around)."""

    kind: str  # drop_lines | drop_events | refund_line | add_identify
    index: int
    count: int = 1


def apply_change(store: Path, target: Path, day: dt.date, change: Change) -> None:
    orders = _day_dir(target, "orders", day) / "orders.csv"
    events = _day_dir(target, "events", day) / "events.jsonl"
    if change.kind in ("drop_lines", "refund_line"):
        header, rows = _read_csv(orders)
        if not rows:
            return
        at = change.index % len(rows)
        if change.kind == "drop_lines":
            del rows[at:at + change.count]
        else:  # the line is refunded: its order is refunded as a whole
            rows[at][header.index("status")] = "refunded"
        _write_csv(orders, header, rows)
    elif change.kind == "drop_events":
        lines = events.read_text().splitlines()
        at = change.index % max(len(lines), 1)
        del lines[at:at + change.count]
        events.write_text("".join(line + "\n" for line in lines))
    elif change.kind == "add_identify":
        # a device seen anonymously on the first day identifies on this one
        first = (_day_dir(store, "events", DAYS[0]) / "events.jsonl").read_text().splitlines()
        anonymous = sorted({e["anonymousId"] for e in map(_json_or_none, first)
                            if e and e.get("anonymousId") and not e.get("userId")})
        if not anonymous:
            return
        device = anonymous[change.index % len(anonymous)]
        moment = dt.datetime.combine(day, dt.time(12, change.index % 60), dt.UTC)
        event = {"type": "identify", "messageId": f"late-identify-{day}-{change.index}",
                 "timestamp": moment.isoformat().replace("+00:00", "Z"),
                 "userId": f"C{1 + change.index % 600:07d}", "anonymousId": device,
                 "context": {"device": {"type": "mobile"}}}
        with events.open("a") as out:
            out.write(json.dumps(event) + "\n")


def _json_or_none(line: str) -> dict | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def deliver(store: Path, home: Path, day: dt.date, changes: tuple[Change, ...] = ()) -> None:
    """The store (re-)sends a day's order and event files; ingestion replaces the day."""
    for feed in ("orders", "events"):
        target = _day_dir(home / "landing", feed, day)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(_day_dir(store, feed, day), target)
    for change in changes:
        apply_change(store, home / "landing", day, change)
    warehouse = Warehouse(home / "warehouse.duckdb")
    for feed in ("orders", "events"):
        landing.load_days(warehouse, home / "landing", feed, [day])


def erase(home: Path, number: int) -> None:
    """An erasure request for a customer arrives in the profile feed."""
    customers = home / "landing" / "customers"
    latest = max(customers.glob("dt=*/*.csv"))
    header, rows = _read_csv(latest)
    customer_id = f"C{1 + number % 600:07d}"
    row = next((r for r in rows if r[0] == customer_id), None) or [customer_id] + [""] * (
        len(header) - 1)
    row = list(row)
    row[header.index("is_deleted")] = "true"
    row[header.index("updated_at")] = "2026-06-15T00:00:00Z"
    for column in ("email_consent", "ads_consent"):
        row[header.index(column)] = row[header.index(column)] or "false"
    folder = customers / "dt=2026-06-15"
    folder.mkdir(exist_ok=True)
    _write_csv(folder / f"erasure-{customer_id}.csv", header, [row])
    landing.load_all_days(Warehouse(home / "warehouse.duckdb"), home / "landing", "customers")


def start_store(store: Path, home: Path) -> None:
    """Profiles and catalogue arrive first (snapshot feeds, loaded whole)."""
    for feed in ("customers", "products"):
        shutil.copytree(store / feed, home / "landing" / feed)
        landing.load_all_days(Warehouse(home / "warehouse.duckdb"), home / "landing", feed)
    prepare(home)


# ---------- the histories

changes = st.lists(st.builds(
    Change, kind=st.sampled_from(["drop_lines", "drop_events", "refund_line", "add_identify"]),
    index=st.integers(0, 10_000), count=st.integers(1, 10)), max_size=3).map(tuple)
steps = st.lists(st.one_of(
    st.tuples(st.just("deliver"), st.sampled_from(DAYS), changes),
    st.tuples(st.just("refresh")),
    st.tuples(st.just("stopped_refresh"), st.sampled_from(["before_activity",
                                                           "after_activity"])),
    st.tuples(st.just("erase"), st.integers(0, 599)),
), min_size=3, max_size=9)
histories = st.tuples(st.permutations(DAYS[:10]), steps)


def history_steps(first_days: list[dt.date], history: list[tuple]) -> list[tuple]:
    """A history as the steps that play it: the store starts, four days arrive and are built,
    then the history runs with the rest of the first days arriving late, anyhow, and the daily
    refresh ends it."""
    history = list(history)
    for i, day in enumerate(first_days[4:]):
        history.insert(min(2 * i, len(history)), ("deliver", day, ()))
    return [("start",), *[("deliver", day, ()) for day in first_days[:4]], ("first_build",),
            *history, ("refresh",)]


def apply_step(store: Path, home: Path, step: tuple) -> None:
    again = ("--exclude-resource-type", "seed")  # the seeds were loaded by the first build
    if step[0] == "start":
        start_store(store, home)
    elif step[0] == "first_build":
        dbt(home, "build", *SELECT)
    elif step[0] == "deliver":
        deliver(store, home, step[1], step[2])
    elif step[0] == "refresh":
        dbt(home, "build", *SELECT, *again)
    elif step[0] == "stopped_refresh":
        after = step[1:] == ("after_activity",)
        dbt(home, "build", *(PARTIAL_AFTER_ACTIVITY if after else PARTIAL), *again)
    elif step[0] == "erase":
        erase(home, step[1])
    else:
        raise ValueError(step)


def play(store: Path, home: Path, first_days: list[dt.date], history: list[tuple]) -> None:
    """A first build on a few days, then the history, then the daily refresh."""
    for step in history_steps(first_days, history):
        apply_step(store, home, step)


class Replays:
    """Plays histories, starting each from the home the last one had after the steps both
    begin with. Hypothesis tries a history, then variations of its end: a step's result depends
    only on the home before it (landing files and warehouse) and the step, so the common steps
    need not run twice. The home after each step of the last history is kept (a copy, about
    15 MB); a history that shares nothing with the last one plays from the start, as `play`
    does."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.last: list[tuple] = []

    def play(self, store: Path, home: Path, first_days: list[dt.date],
             history: list[tuple]) -> int:
        """Leaves `home` as `play` would; returns how many steps came from the last history."""
        steps = history_steps(first_days, history)
        common = 0
        while (common < min(len(steps), len(self.last))
               and steps[common] == self.last[common]):
            common += 1
        common = min(common, len(steps) - 1)  # the last step always runs here
        if common:
            shutil.copytree(self._after(common - 1), home, dirs_exist_ok=True)
        # a step that fails leaves only the homes before it known (Hypothesis then shrinks)
        self.last = steps[:common]
        for number in range(common, len(steps)):
            apply_step(store, home, steps[number])
            shutil.rmtree(self._after(number), ignore_errors=True)
            shutil.copytree(home, self._after(number), ignore=shutil.ignore_patterns("dbt_logs"))
            self.last = steps[:number + 1]
        return common

    def _after(self, number: int) -> Path:
        return self.root / f"after_step_{number:02d}"


def landing_digest(landing_dir: Path) -> str:
    """Every file of a landing zone: its path and its bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in landing_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(landing_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


EXAMPLES = int(os.environ.get("SEGMENTA_HISTORY_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replays]:
    root = tmp_path_factory.mktemp("replays")
    yield Replays(root)
    shutil.rmtree(root, ignore_errors=True)  # about 200 MB


@pytest.fixture(scope="module")
def rebuilds() -> dict[str, dict[str, pd.DataFrame]]:
    """Full rebuilds by landing zone (`landing_digest`): a rebuild reads nothing else, and
    histories that end with the same files (a day delivered in another order, a refresh more or
    less) are compared with the same tables."""
    return {}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories)
def test_any_delivery_history_equals_a_full_rebuild(store, tmp_path_factory, replays, rebuilds,
                                                     history):
    first_days, later = history
    home = tmp_path_factory.mktemp("history")
    replays.play(store, home, list(first_days), list(later))
    digest = landing_digest(home / "landing")
    if digest not in rebuilds:
        rebuilds[digest] = rebuild(home / "landing", tmp_path_factory.mktemp("rebuilt"))
    assert_same_tables(tables(home), rebuilds[digest])
