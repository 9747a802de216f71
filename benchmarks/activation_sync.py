"""Benchmark the sync engine: a large audience's first sync, a day's changes, and a no-op re-run.

    .venv/bin/python benchmarks/activation_sync.py --members 200000 --platform meta

Builds a warehouse with --members customers in one segment (in a temporary folder), starts the
platform's local emulator, and times the three syncs the pipeline does day after day: the first
sync of everyone, a day where 2 % leave and 2 % join, and a re-run with nothing to send.
Prints wall time, rows per second, requests and peak memory of the process. The emulator runs in
the same process, so the figures include the platform's side of every request.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from activation.audiences import Audience, Target
from activation.engine import SyncOptions, sync

TARGETS = {"meta": {"audience_id": "1"}, "google": {"operating_account_id": "1",
                                                   "user_list_id": "2"},
           "webhook": {}, "hubspot": {"list_id": "101"}, "klaviyo": {"list_id": "L1"}}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_warehouse(path: Path, n: int, members: np.ndarray) -> None:
    ids = [f"C{i:08d}" for i in range(n)]
    contacts = pd.DataFrame({
        "customer_id": ids, "email": [f"customer.{i}@example.com" for i in range(n)],
        "phone": [f"+34 6{i:08d}" for i in range(n)], "first_name": "Ana",
        "last_name": "Diaz", "country": "ES", "has_email_consent": True,
        "has_ads_consent": True})
    memberships = pd.DataFrame({"customer_id": np.array(ids)[members], "segment_key": "big",
                                "segment_name": "Big"})
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.register("_c", contacts)
        con.register("_m", memberships)
        con.execute("create or replace table marts.customer_contacts as select * from _c")
        con.execute("create or replace table marts.segment_memberships as select * from _m")


def emulator_and_destination(platform: str):
    if platform == "meta":
        from activation.destinations.meta import MetaDestination
        from activation.emulators.meta import MetaEmulator
        emulator = MetaEmulator(audience_id="1").start()
        return emulator, MetaDestination(emulator.token, base_url=emulator.url)
    if platform == "google":
        from activation.destinations.google import GoogleDataManagerDestination
        from activation.emulators.google import GoogleEmulator
        emulator = GoogleEmulator(user_list_id="2", operating_account_id="1").start()
        return emulator, GoogleDataManagerDestination(emulator.token, base_url=emulator.url)
    if platform == "hubspot":
        from activation.destinations.hubspot import HubSpotDestination
        from activation.emulators.hubspot import HubSpotEmulator
        emulator = HubSpotEmulator(list_id="101").start()
        return emulator, HubSpotDestination(emulator.token, base_url=emulator.url)
    if platform == "klaviyo":
        from activation.destinations.klaviyo import KlaviyoDestination
        from activation.emulators.klaviyo import KlaviyoEmulator
        emulator = KlaviyoEmulator(list_id="L1").start()
        return emulator, KlaviyoDestination(emulator.token, base_url=emulator.url,
                                            poll_interval=0.01)
    from activation.destinations.webhook import WebhookDestination
    from activation.emulators.webhook import WebhookEmulator
    emulator = WebhookEmulator().start()
    return emulator, WebhookDestination(emulator.url + "/hooks/audiences", "test-secret")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200_000, help="audience size")
    parser.add_argument("--platform", choices=sorted(TARGETS), default="meta")
    args = parser.parse_args()
    n = args.members
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "w.duckdb"
        pool = n + n // 50
        first = np.arange(n)
        make_warehouse(db, pool, first)
        emulator, destination = emulator_and_destination(args.platform)
        audience = Audience("big", "big", (), 0.0,
                            (Target(args.platform, args.platform, TARGETS[args.platform]),))
        leaving = rng.choice(n, n // 50, replace=False)
        second = np.concatenate([np.setdiff1d(first, leaving), np.arange(n, pool)])
        print(f"{args.platform}: audience of {n:,} members (emulator on {emulator.url})")
        print(f"{'sync':34s} {'seconds':>8s} {'rows/s':>9s} {'requests':>9s} {'peak MiB':>9s}")
        for label, members, run_id in (("first sync", first, "r1"),
                                       ("a day: 2 % leave, 2 % join", second, "r2"),
                                       ("re-run, nothing changed", second, "r3")):
            if run_id == "r2":
                make_warehouse(db, pool, members)
            started = time.perf_counter()
            with duckdb.connect(str(db)) as con:
                report = sync(con, audience, audience.targets[0], destination, run_id,
                              SyncOptions(max_removal_share=0.5), log=lambda m: None)
            seconds = time.perf_counter() - started
            rows = report.n_added + report.n_removed + report.n_updated
            print(f"{label:34s} {seconds:8.1f} {rows / seconds if rows else 0:9,.0f} "
                  f"{report.n_requests:9,} {peak_mib():9,.0f}")
            assert report.status == "succeeded", report.message
        emulator.stop()


if __name__ == "__main__":
    main()
