from __future__ import annotations

import os
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
