"""Import the libraries the later steps of a run need while its first steps load the day.

A `segmenta run` is one process that runs its steps one after another, and the model and check
steps import Great Expectations, MLflow, skops and scikit-learn when they start: about 6 s of a
1M-customer daily refresh spent importing, one core busy and the other idle. The ingestion steps
before them wait on DuckDB most of the time (it releases the GIL), so `start` imports those
libraries in a background thread meanwhile, and then parses the dbt project for the dbt steps
(about 4 s of Python at 1M customers: `dagster_project.defs.transform.assets.preparse`).

Two threads importing overlapping packages at once can, rarely, meet in an import cycle that
Python breaks by raising in one of them. So nothing else imports them concurrently: every step
that may import them (dbt, the expectations, the models) calls `wait` first, and only ingestion
runs beside the thread. Where `start` was not called (the UI, the schedule, tests) `wait`
returns at once. An import that fails here is left to the step, which imports again and
reports the error itself.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable

MODULES = ("great_expectations", "mlflow", "mlflow.sklearn", "skops.io", "sklearn.cluster",
           "ml.registry", "ml.recommendation", "ml.ranker")

_thread: threading.Thread | None = None
_armed: tuple | None = None  # (modules, tasks) for `begin`
log = logging.getLogger(__name__)


def start(modules: tuple[str, ...] = MODULES, tasks: tuple[Callable[[], object], ...] = ()
          ) -> None:
    """Import `modules`, then run `tasks` (work a later step would do first, whose result it
    finds cached, such as dbt's parse of the project), in a daemon thread, once per process."""
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_run, args=(modules, tasks),
                                   name="segmenta-preload", daemon=True)
        _thread.start()


def arm(modules: tuple[str, ...] = MODULES, tasks: tuple[Callable[[], object], ...] = ()
        ) -> None:
    """Plan the background work for `begin`: `segmenta run` arms it, the first ingestion step
    begins it once its own work is under way in DuckDB (started before the run, the thread
    slowed the run's Python start-up by 2 s at 1M customers)."""
    global _armed
    _armed = (modules, tasks)


def begin() -> None:
    """Start the armed work (once; nothing when none was armed)."""
    if _armed is not None:
        start(*_armed)


def _run(modules: tuple[str, ...], tasks: tuple[Callable[[], object], ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the step that needs it imports it again
            log.debug("preloading %s failed (its step will say why): %s", name, exc)
    for task in tasks:
        try:
            task()
        except Exception as exc:  # noqa: BLE001 - the step does the work itself again
            log.debug("preloading with %s failed (its step will say why): %s", task, exc)


def wait() -> None:
    """Return once the background work (if any was started) is done; at once in the thread
    itself (a task may call what a step calls)."""
    if _thread is not None and _thread is not threading.current_thread():
        _thread.join()
