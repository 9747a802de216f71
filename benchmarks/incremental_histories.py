"""Random delivery histories against a full rebuild: how many end with different tables?

    .venv/bin/python benchmarks/incremental_histories.py --histories 300

The same histories as `tests/test_incremental_models.py` (days in and out of order, late files,
re-deliveries with lines and events removed, changed and added, devices identifying late,
erasure requests, refreshes that stop half-way), drawn here from a seeded random generator
instead of Hypothesis, so that a long run counts every failure instead of stopping at the first.
Prints one line per failing history (with what to replay) and the totals.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd

import generator
from tests.test_incremental_models import (
    DAYS,
    END,
    Change,
    play,
    rebuild,
    tables,
)

KINDS = ("drop_lines", "drop_events", "refund_line", "add_identify")


def draw_history(rng: random.Random) -> tuple[list, list]:
    first_days = rng.sample(DAYS[:10], 10)
    steps = []
    for _ in range(rng.randint(3, 9)):
        kind = rng.choice(("deliver", "deliver", "refresh", "stopped_refresh", "erase"))
        if kind == "deliver":
            changes = tuple(Change(rng.choice(KINDS), rng.randint(0, 10_000), rng.randint(1, 10))
                            for _ in range(rng.randint(0, 3)))
            steps.append(("deliver", rng.choice(DAYS), changes))
        elif kind == "erase":
            steps.append(("erase", rng.randint(0, 599)))
        elif kind == "stopped_refresh":
            steps.append((kind, rng.choice(("before_activity", "after_activity"))))
        else:
            steps.append((kind,))
    return first_days, steps


def _same(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(left, right, check_exact=True)
    except AssertionError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--histories", type=int, default=300,
                        help="how many random histories to play (default %(default)s)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default %(default)s)")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    failed, started = 0, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="segmenta-histories-") as tmp:
        root = Path(tmp)
        generator.generate(root / "store" / "landing", root / "store" / "generator",
                           customers=600, days=14, end_date=END, seed=11, progress=False)
        for number in range(args.histories):
            first_days, steps = draw_history(rng)
            home, rebuilt_home = root / f"h{number}", root / f"r{number}"
            try:
                play(root / "store" / "landing", home, first_days, steps)
                incremental, rebuilt = tables(home), rebuild(home / "landing", rebuilt_home)
                different = [t for t, frame in incremental.items()
                             if not _same(frame, rebuilt[t])]
            except Exception as exc:  # noqa: BLE001 (a failed run is a failed history too)
                different = [f"error: {type(exc).__name__}: {str(exc)[:200]}"]
            if different:
                failed += 1
                print(f"history {number} differs: {different}\n  first days "
                      f"{[str(d) for d in first_days]}\n  steps {steps}", flush=True)
            for folder in (home, rebuilt_home):
                for path in sorted(folder.rglob("*"), reverse=True):
                    path.unlink() if path.is_file() else path.rmdir()
                folder.rmdir()
            if (number + 1) % 25 == 0:
                print(f"{number + 1} histories, {failed} failed, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
    print(f"{args.histories} histories played, {failed} failed "
          f"({time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
