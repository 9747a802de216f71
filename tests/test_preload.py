"""core/preload.py: the background imports of a run."""

import sys

from core import preload


def test_the_background_imports_finish_before_wait_returns_and_a_failing_one_is_left(monkeypatch):
    for name in ("tabnanny", "segmenta_no_such_module"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(preload, "_thread", None)
    preload.start(("segmenta_no_such_module", "tabnanny"))
    preload.wait()
    assert "tabnanny" in sys.modules  # imported by the thread, after the failing one
    assert "segmenta_no_such_module" not in sys.modules
    assert not preload._thread.is_alive()


def test_wait_without_start_returns_at_once(monkeypatch):
    monkeypatch.setattr(preload, "_thread", None)
    preload.wait()


def test_armed_work_waits_for_begin(monkeypatch):
    monkeypatch.delitem(sys.modules, "tabnanny", raising=False)
    monkeypatch.setattr(preload, "_thread", None)
    monkeypatch.setattr(preload, "_armed", None)
    done = []
    preload.arm(("tabnanny",), tasks=(lambda: done.append(preload.wait()),))
    preload.wait()  # armed, not begun: nothing to wait for, nothing done
    assert "tabnanny" not in sys.modules and done == []
    preload.begin()
    preload.begin()  # once
    preload.wait()
    assert "tabnanny" in sys.modules
    assert done == [None]  # a task that waits, in the thread, does not wait for itself
