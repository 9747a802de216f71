"""Import the libraries the later steps of a run need while its first steps load the day.

A `segmenta run` is one process that runs its steps one after another, and the model and check
steps import Great Expectations, MLflow, skops and scikit-learn when they start: about 6 s of a
1M-customer daily refresh spent importing, one core busy and the other idle. The ingestion steps
before them wait on DuckDB most of the time (it releases the GIL), so `start` imports those
libraries in a background thread meanwhile.

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

MODULES = ("great_expectations", "mlflow", "mlflow.sklearn", "skops.io", "sklearn.cluster",
           "ml.registry", "ml.recommendation", "ml.ranker")

_thread: threading.Thread | None = None
log = logging.getLogger(__name__)


def start(modules: tuple[str, ...] = MODULES) -> None:
    """Import `modules` in a daemon thread (once per process)."""
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_import_all, args=(modules,),
                                   name="segmenta-preload", daemon=True)
        _thread.start()


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the step that needs it imports it again
            log.debug("preloading %s failed (its step will say why): %s", name, exc)


def wait() -> None:
    """Return once the background imports (if any were started) are done."""
    if _thread is not None:
        _thread.join()
