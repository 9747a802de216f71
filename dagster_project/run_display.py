"""The terminal display of `segmenta run`: one progress line per finished step, full logs in a file.

While a run executes, everything the process writes to its stdout and stderr (dbt's model
lines, Dagster's event lines, library warnings) goes to `SEGMENTA_HOME/logs/run-<timestamp>.log`:
the file descriptors themselves are redirected, so output written by C code or captured streams
lands there too. The terminal gets `say` lines (also copied to the log) and the progress: on a
terminal one updating line (steps done/total, current step, elapsed), otherwise one plain line
per `BATCH` finished steps (naming them). tqdm bars are turned off for the run (TQDM_DISABLE) when stdout is no terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from core.settings import Home

BATCH = 5  # finished steps per progress line when stdout is no terminal
KEPT_LOGS = 30  # run logs kept in SEGMENTA_HOME/logs: a daily run's month (about 1 MB each)


def prune_logs(logs: Path, keep: int = KEPT_LOGS) -> list[Path]:
    """Remove all but the newest `keep` run logs (by name: their names start with the time);
    the removed paths."""
    old = sorted(logs.glob("run-*.log"))[:-keep] if keep > 0 else sorted(logs.glob("run-*.log"))
    for path in old:
        path.unlink(missing_ok=True)
    return old


class RunDisplay:
    """The terminal (the process's original stdout and stderr) and the run's log file."""

    def __init__(self, home: Home) -> None:
        logs = home.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        self.path: Path = logs / f"run-{stamp}-{os.getpid()}.log"
        prune_logs(logs, KEPT_LOGS - 1)  # with this run's, KEPT_LOGS
        self.log: IO[str] = self.path.open("a", buffering=1)
        self.tty = sys.stdout.isatty()
        self._out: IO[str] = sys.stdout
        self._err: IO[str] = sys.stderr
        self._lock = threading.Lock()
        self._line_open = False  # an updating progress line is on the terminal
        self.started = time.monotonic()
        self.total = 0
        self.done = 0
        self.current = ""
        self._finished: list[str] = []  # steps finished since the last progress line

    def say(self, text: str, error: bool = False) -> None:
        """`text` on the terminal (stderr when `error`) and in the log."""
        with self._lock:
            self._end_line()
            stream = self._err if error else self._out
            stream.write(text + "\n")
            stream.flush()
            self.log.write(text + "\n")
            self.log.flush()

    def _end_line(self) -> None:
        if self._line_open:
            self._out.write("\n")
            self._line_open = False

    def start_run(self, total: int) -> None:
        """A run of `total` steps begins."""
        self.total, self.done, self.current, self._finished = total, 0, "", []

    def on_event(self, event: Any) -> None:
        """An event-log entry of the run (DagsterInstance.add_event_listener)."""
        dagster_event = getattr(event, "dagster_event", None)
        if dagster_event is None:
            return
        step = dagster_event.step_key or ""
        if dagster_event.is_step_start:
            self.current = step
            if self.tty:
                self._progress()
        elif dagster_event.is_step_success or dagster_event.is_step_skipped:
            self.done += 1
            self._finished.append(step)
            if self.tty:
                self._progress()
            elif len(self._finished) >= BATCH or self.done >= self.total:
                self._flush_finished()

    def _flush_finished(self) -> None:
        """One line naming the steps finished since the last one (stdout no terminal)."""
        with self._lock:
            if self._finished:
                self._out.write(f"  {self.done}/{self.total} steps done, "
                                f"{time.monotonic() - self.started:.0f} s: "
                                f"{', '.join(self._finished)}\n")
                self._out.flush()
                self._finished = []

    def _progress(self) -> None:
        with self._lock:
            line = (f"  {self.done}/{self.total} steps, {time.monotonic() - self.started:.0f} s"
                    f"{': ' + self.current if self.current else ''}")
            self._out.write("\r\x1b[K" + line[:100])
            self._out.flush()
            self._line_open = True

    def finish(self) -> None:
        """End the progress line; close the log."""
        with self._lock:
            self._end_line()
            self._out.flush()
        self.log.close()

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Within: file descriptors 1 and 2 (and sys.stdout/sys.stderr) write to the log; `say`
        and the progress still reach the terminal through duplicates of the originals."""
        sys.stdout.flush()
        sys.stderr.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        self._out = os.fdopen(os.dup(saved[1]), "w", buffering=1)
        self._err = os.fdopen(os.dup(saved[2]), "w", buffering=1)
        tqdm_env = os.environ.get("TQDM_DISABLE")
        if not self.tty and tqdm_env is None:
            os.environ["TQDM_DISABLE"] = "1"
        self.log.flush()
        for fd in (1, 2):
            os.dup2(self.log.fileno(), fd)
        try:
            yield
        finally:
            if not self.tty:
                self._flush_finished()  # a failed run ends before its last steps
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            with self._lock:
                self._end_line()
            self._out.close()
            self._err.close()
            self._out, self._err = sys.stdout, sys.stderr
            if tqdm_env is None:
                os.environ.pop("TQDM_DISABLE", None)
