"""The runs `segmenta run` executes in its own process belong to the code location the UI serves
(dagster_project/origin.py), and their re-executions from the UI are judged by the UI's rules,
not by the command line's pid they inherit (dagster_project/recovery.py)."""

import subprocess
import sys
import time

import dagster as dg

from dagster_project import origin, recovery


@dg.op
def one() -> int:
    return 1


@dg.job
def refresh_all() -> None:
    one()


def test_command_line_runs_record_the_code_location_dg_dev_serves(tmp_path):
    from dagster_dg_core.context import DgContext

    dg_location = DgContext.for_project_environment(origin.REPO_ROOT, {}).code_location_name
    assert origin.location_name() == dg_location == "segmenta"

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        origin.attach_runs_to_code_location(instance, "refresh_all")
        result = refresh_all.execute_in_process(instance=instance)
        run = instance.get_run_by_id(result.run_id)
    job_origin = run.remote_job_origin
    assert job_origin is not None and job_origin.job_name == "refresh_all"
    assert job_origin.location_name == "segmenta"
    assert job_origin.repository_origin.repository_name == "__repository__"
    # the label the UI filters a location's runs by (the Overview timeline, the job's page)
    assert run.tags_for_storage()[".dagster/repository"] == "__repository__@segmenta"


def test_a_reexecution_is_not_judged_by_the_pid_it_inherits():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    inherited = {recovery.PID_TAG: str(gone.pid), recovery.PID_STARTED_TAG: "1"}
    ours = dg.DagsterRun(job_name="refresh_all", run_id="a" * 36, tags=inherited,
                         status=dg.DagsterRunStatus.STARTED)
    assert not recovery._run_is_alive(ours, [], time.time())  # the command line's run died

    reexecution = dg.DagsterRun(
        job_name="refresh_all", run_id="b" * 36, status=dg.DagsterRunStatus.STARTED,
        tags={**inherited, recovery.PARENT_RUN_TAG: "a" * 36})
    launcher = recovery.processes.Process(pid=1, ppid=0,
                                          cmdline=f"dagster api execute_run {'b' * 36}")
    assert recovery._run_is_alive(reexecution, [launcher], time.time())
    assert not recovery._run_is_alive(reexecution, [], time.time() - 3600)
