"""What the end-to-end tests share: `segmenta` run as a user runs it, and an erasure request
delivered as a store delivers one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROFILE_HEADER = ("customer_id,email,phone,first_name,last_name,birth_date,gender,city,region,"
                  "postal_code,country,signup_at,email_consent,ads_consent,updated_at,is_deleted")


def segmenta(home: Path, *args: str, env_vars: dict[str, str] | None = None,
             expect_failure: bool = False, timeout: int = 900) -> subprocess.CompletedProcess:
    """`segmenta <args>` on `home` in a process of its own (no DAGSTER_HOME of the caller's);
    fails the test unless it exits as expected, showing the end of its output."""
    env = {**os.environ, "SEGMENTA_HOME": str(home), **(env_vars or {})}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=env,
                          check=False, capture_output=True, text=True, timeout=timeout)
    assert (done.returncode != 0) == expect_failure, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def hold_back_a_day(home: Path, aside: Path) -> tuple[str, str]:
    """Move the newest day of orders and events out of `home`'s landing zone into `aside`;
    returns (that day's folder, an earlier day's folder) for `deliver_late_and_again`."""
    landing = home / "landing"
    days = sorted(path.name for path in (landing / "orders").iterdir())
    held_back, redelivered = days[-1], days[len(days) // 2]
    for feed in ("orders", "events"):
        (aside / feed).mkdir(parents=True, exist_ok=True)
        (landing / feed / held_back).rename(aside / feed / held_back)
    return held_back, redelivered


def deliver_late_and_again(home: Path, aside: Path, held_back: str, redelivered: str) -> None:
    """The held-back day arrives (an incremental day) and an earlier day of orders comes again
    (a re-delivery) with its last line gone and its first line's quantity one more."""
    import shutil

    landing = home / "landing"
    for feed in ("orders", "events"):
        shutil.copytree(aside / feed / held_back, landing / feed / held_back)
    orders = landing / "orders" / redelivered / "orders.csv"
    header, *rows = orders.read_text().splitlines()
    quantity = header.split(",").index("quantity")
    first = rows[0].split(",")
    first[quantity] = str(int(first[quantity]) + 1)
    orders.write_text("\n".join([header, ",".join(first), *rows[1:-1]]) + "\n")


def request_erasure(home: Path, customer_id: str, day: str = "2099-01-01") -> Path:
    """A profile snapshot asking to erase `customer_id`, in the customers feed of `day`."""
    folder = home / "landing" / "customers" / f"dt={day}"
    folder.mkdir(parents=True)
    path = folder / "erasure.csv"
    path.write_text(f"{PROFILE_HEADER}\n{customer_id},,,,,,,,,,,,false,false,{day}T00:00:00Z,"
                    "true\n")
    return path
