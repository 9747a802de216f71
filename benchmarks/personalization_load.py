"""Load test of the personalization API: open-loop requests at a fixed rate over keep-alive.

    .venv/bin/python benchmarks/personalization_load.py \\
        --published /tmp/b1m9/published/marts.duckdb --rate 500 --duration 30

Builds the API's cache from a published copy (into a temporary folder; the copy is only read),
starts the real server (`python -m personalization serve`, API keys on, access log off) on a
free port of 127.0.0.1, and sends requests at a fixed rate whatever the answers' speed (open
loop: a request's latency counts from the moment it was due, so a slow answer that delays the
next ones shows in their latency too) over `--connections` keep-alive HTTP/1.1 connections.
The mix: personal recommendations 35 %, segments 15 %, a content slot 15 %, a customer's
content 10 %, "people also bought" 15 %, cart complements (POST) 10 %; 5 % of the customer ids
are unknown. The client is raw asyncio on uvloop (cheap: it shares the machine's cores with
the server). Prints p50/p95/p99/max latency per endpoint and overall, achieved throughput,
errors (non-200 answers, broken connections), the cache's build time and size, and the
server's memory (RSS, peak) and CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from personalization.cache import build_cache
from personalization.content import CONTENT_FILE

MIX = (("recommendations", 35), ("segments", 15), ("content_slot", 15),
       ("customer_content", 10), ("similar", 15), ("cart", 10))
UNKNOWN_SHARE = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> dict[str, float]:
    """The server's resident memory now and at its peak (MB) and CPU seconds so far."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    fields["cpu_s"] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return fields


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat), all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def requests_to_send(cache: Path, key: str, n: int, seed: int) -> list[tuple[str, bytes]]:
    """n (endpoint, raw HTTP request) pairs in the mix, ids drawn from the cache."""
    rng = random.Random(seed)
    with sqlite3.connect(f"file:{cache}?mode=ro", uri=True) as db:
        customers = [c for (c,) in db.execute(
            "select customer_id from customers order by random() limit 20000")]
        products = [p for (p,) in db.execute("select product_id from products where is_active")]
        slots = [s["key"] for s in json.loads(db.execute(
            "select value from meta where key = 'slots'").fetchone()[0])]
    head = f"Host: 127.0.0.1\r\nX-API-Key: {key}\r\n"

    def customer() -> str:
        return (f"U{rng.randrange(10**9):09d}" if rng.random() < UNKNOWN_SHARE
                else rng.choice(customers))

    def get(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\n{head}\r\n".encode()

    names = [name for name, _ in MIX]
    weights = [w for _, w in MIX]
    out = []
    for endpoint in rng.choices(names, weights, k=n):
        if endpoint == "recommendations":
            raw = get(f"/customers/{customer()}/recommendations?limit=10")
        elif endpoint == "segments":
            raw = get(f"/customers/{customer()}/segments")
        elif endpoint == "content_slot":
            raw = get(f"/content/{rng.choice(slots)}?customer_id={customer()}")
        elif endpoint == "customer_content":
            raw = get(f"/customers/{customer()}/content")
        elif endpoint == "similar":
            raw = get(f"/products/{rng.choice(products)}/similar?limit=10")
        else:
            body = json.dumps({"product_ids": rng.sample(products, rng.randint(1, 4)),
                               "limit": 5}).encode()
            raw = (f"POST /cart/complements HTTP/1.1\r\n{head}Content-Type: application/json"
                   f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        out.append((endpoint, raw))
    return out


async def one_connection(port: int, queue: asyncio.Queue, results: list, errors: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            due, endpoint, raw = item
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(f"{endpoint}: {exc!r}")
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            results.append((endpoint, status, time.perf_counter() - due))
    finally:
        writer.close()


async def drive(port: int, plan: list[tuple[str, bytes]], rate: float,
                connections: int) -> tuple[list, list, float]:
    """Send `plan` at `rate` per second; (endpoint, status, latency s) of each, errors, and
    the wall time from the first due moment to the last answer."""
    queue: asyncio.Queue = asyncio.Queue()
    results: list = []
    errors: list = []
    workers = [asyncio.create_task(one_connection(port, queue, results, errors))
               for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections open before the clock starts
    start = time.perf_counter()
    for i, (endpoint, raw) in enumerate(plan):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, endpoint, raw))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return results, errors, time.perf_counter() - start


def percentiles(latencies: list[float]) -> str:
    ms = np.array(latencies) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:6.2f}  p95 {p95:6.2f}  p99 {p99:6.2f}  max {ms.max():7.2f} ms"


def wait_until_up(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not answer /health in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--published", type=Path, required=True,
                        help="a published copy (SEGMENTA_HOME/published/marts.duckdb), only read")
    parser.add_argument("--content", type=Path, default=CONTENT_FILE,
                        help="the content rules (default: %(default)s)")
    parser.add_argument("--workdir", type=Path,
                        help="where the cache is built (default: a temporary folder, removed)")
    parser.add_argument("--rate", type=float, default=500, help="requests per second (500)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load (30)")
    parser.add_argument("--warmup", type=float, default=5,
                        help="seconds of load first, not measured (5)")
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections (32)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (1)")
    parser.add_argument("--reuse-cache", action="store_true",
                        help="serve the cache already in --workdir instead of building it")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.published.exists():
        parser.error(f"no published copy at {args.published}")

    with tempfile.TemporaryDirectory(prefix="personalization_load_") as tmp:
        workdir = args.workdir or Path(tmp)
        cache = workdir / "cache.sqlite"
        if args.reuse_cache:
            if not args.workdir or not cache.exists():
                parser.error("--reuse-cache needs --workdir holding a cache.sqlite")
            print(f"cache: {cache} as it is, {cache.stat().st_size / 1e6:,.0f} MB (not built)")
        else:
            print(f"building the cache from {args.published} ...", flush=True)
            built = build_cache(args.published, cache, args.content)
            print(f"cache: {built.customers:,} customers ({built.personalized_content:,} with "
                  f"rule content), {built.products:,} products, {built.bytes / 1e6:,.0f} MB, "
                  f"built in {built.seconds:.1f} s")

        key = secrets.token_urlsafe(32)
        port = free_port()
        env = {**os.environ, "SEGMENTA_API_KEYS": key}
        server = subprocess.Popen(
            [sys.executable, "-m", "personalization", "serve", "--cache", str(cache),
             "--content", str(args.content), "--port", str(port), "--workers",
             str(args.workers), "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env)
        try:
            wait_until_up(port, server)
            rss_idle = proc_status(server.pid)
            warm = requests_to_send(cache, key, int(args.rate * args.warmup), args.seed + 1)
            plan = requests_to_send(cache, key, int(args.rate * args.duration), args.seed)
            try:
                import uvloop
                uvloop.install()
            except ImportError:
                pass
            if warm:
                asyncio.run(drive(port, warm, args.rate, args.connections))
            before, machine_before, own_before = (proc_status(server.pid), machine_busy(),
                                                  sum(os.times()[:2]))
            results, errors, wall = asyncio.run(drive(port, plan, args.rate, args.connections))
            after, machine_after, own_after = (proc_status(server.pid), machine_busy(),
                                               sum(os.times()[:2]))
        finally:
            server.terminate()
            server.wait(timeout=30)

    by_endpoint: dict[str, list[float]] = defaultdict(list)
    bad = 0
    for endpoint, status, latency in results:
        by_endpoint[endpoint].append(latency)
        bad += status != 200
    print(f"\n{len(results):,} answers in {wall:.1f} s at a target of {args.rate:.0f}/s over "
          f"{args.connections} connections: {len(results) / wall:,.1f} requests/s achieved; "
          f"errors: {bad} non-200 answers, {len(errors)} broken requests")
    for endpoint, _ in MIX:
        if by_endpoint[endpoint]:
            print(f"  {endpoint:17s} {len(by_endpoint[endpoint]):7,d}  "
                  f"{percentiles(by_endpoint[endpoint])}")
    print(f"  {'all':17s} {len(results):7,d}  {percentiles([r[2] for r in results])}")
    cpu = after["cpu_s"] - before["cpu_s"]
    print(f"server: RSS {rss_idle['VmRSS']:,.0f} MB idle, {after['VmRSS']:,.0f} MB after the "
          f"load (peak {after['VmHWM']:,.0f} MB); CPU {cpu:.1f} s in {wall:.1f} s "
          f"({100 * cpu / wall:.0f} % of a core, {1e6 * cpu / max(len(results), 1):.0f} us "
          f"a request)" + (" [worker processes not counted]" if args.workers > 1 else ""))
    busy = machine_after[0] - machine_before[0]
    cores = (machine_after[1] - machine_before[1]) / wall
    client = own_after - own_before
    print(f"machine: {busy / wall:.2f} of {cores:.0f} cores busy during the load: server "
          f"{cpu / wall:.2f}, this load generator {client / wall:.2f}, other processes "
          f"{max(busy - cpu - client, 0) / wall:.2f}; load average "
          f"{Path('/proc/loadavg').read_text().split()[0]}")
    for error in errors[:5]:
        print("  error:", error)


if __name__ == "__main__":
    main()
