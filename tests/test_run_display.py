"""`segmenta run`'s log files (dagster_project/run_display.py): one per run, the newest kept."""

from core.settings import Home
from dagster_project import run_display


def test_a_home_keeps_the_newest_run_logs(tmp_path):
    home = Home(tmp_path).ensure()
    logs = home.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    old = [logs / f"run-20260101-0000{i:02d}-1.log" for i in range(run_display.KEPT_LOGS + 5)]
    for path in old:
        path.write_text("a run\n")
    (logs / "notes.txt").write_text("not a run log\n")
    display = run_display.RunDisplay(home)
    display.say("hello")
    display.finish()
    kept = sorted(logs.glob("run-*.log"))
    assert len(kept) == run_display.KEPT_LOGS
    assert kept[-1] == display.path and "hello" in display.path.read_text()
    assert kept[0] == old[-(run_display.KEPT_LOGS - 1)]  # the oldest went
    assert (logs / "notes.txt").exists()
