"""Processes: what a killed run left.

A run killed with SIGKILL (OOM killer, reboot, a stopped container) cannot clean up after itself.
`home_processes` lists the processes that work on one SEGMENTA_HOME (from /proc), so that the
recovery (dagster_project/recovery.py) can tell a live run from a dead one and find leftovers.
(dbt runs inside the step's process, `dagster_project/defs/transform/inprocess.py`, so a killed
step leaves no dbt behind holding the warehouse's write lock.)
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a pid reused by another process
    from the original), or None when no such process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    return int(stat[stat.rindex(")") + 2:].split()[19])


def is_alive(pid: int, started: int | None = None) -> bool:
    """Whether process `pid` runs (and, with `started`, is the same process as when recorded)."""
    now = start_time(pid)
    if now is None:
        return False
    state = Path(f"/proc/{pid}/stat").read_text()
    if state[state.rindex(")") + 2] == "Z":  # a zombie has exited; only its entry is left
        return False
    return started is None or now == started


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    cmdline: str


def home_processes(home: Path) -> list[Process]:
    """Every live process (of this user) whose environment names SEGMENTA_HOME=`home`."""
    wanted = f"SEGMENTA_HOME={home}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue
        found.append(Process(pid, int(fields[1]), cmdline))
    return found


def kill(pid: int) -> None:
    """SIGKILL, ignoring a process that has already gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
