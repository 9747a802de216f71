from __future__ import annotations

import os

# each xdist worker has a core: the recommender scores on one thread there (and in the runs the
# end-to-end tests start), and OpenBLAS and OpenMP (scikit-learn's gradient boosting) run one
# thread, not two per worker that spin waiting for a core the other worker holds. Set before
# numpy loads (core.settings imports it), and inherited by the processes the tests start.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name, value in (("SEGMENTA_SCORING_THREADS", "1"), ("OMP_NUM_THREADS", "1"),
                        ("OPENBLAS_NUM_THREADS", "1")):
        os.environ.setdefault(name, value)

from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

SHARED_DATA = Path(os.environ.get("SEGMENTA_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real public data sets); tests that need it skip where it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (set SEGMENTA_SHARED_DATA)")
    return SHARED_DATA


# The slowest files first: `make test` runs two xdist workers, one file at a time each, and the
# suite ends when the last long file does (longest-processing-time-first scheduling). The
# Makefile passes --no-loadscope-reorder: by default xdist sends the files with the most tests
# first, which started the one-test crash test last (CI: 19:47 instead of about 17 minutes).
# The files add up to about 1,650 s of work on CI (two CPU-bound workers on two cores) and the
# longest takes about 360 s, so the sum bounds the suite, not one file: a file split in two
# would repeat its set-up (the crash test's final run, say) and end the suite later.
SLOW_FILES = ("test_crash_recovery.py", "test_incremental_models.py", "test_end_to_end.py",
              "test_segment_history.py", "test_online_retail_pipeline.py",
              "test_uplift_recovery.py", "test_recommendation.py", "test_incremental_cases.py",
              "test_bad_files.py", "test_personalization_api.py", "test_ui_browser.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FILES.index(name) if name in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # stable: the order within a file is kept
