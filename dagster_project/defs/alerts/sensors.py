"""`run_failure_alert`: every failed run of this code location posted to a webhook.

The webhook is `SEGMENTA_ALERT_WEBHOOK_URL` (Slack's incoming webhooks take the message as is;
any endpoint accepting JSON gets `text`); without it the sensor posts nothing and logs that it
is not configured. Links point at `SEGMENTA_UI_URL` (default http://127.0.0.1:3000). What a
message holds is documented in webhook.py: ids, job, failed steps, scrubbed error heads, no PII.
"""

from __future__ import annotations

import os

import dagster as dg

from dagster_project.defs.alerts.webhook import (
    WEBHOOK_ENV,
    FailedStep,
    failure_message,
    post,
    scrub,
)


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> list[FailedStep]:
    """The run's failed steps in order, each with its error class and scrubbed message head."""
    steps = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = event.step_failure_data.error if event.step_failure_data else None
        # a user error arrives wrapped: the cause is the exception the step raised
        while error is not None and error.cause is not None and error.cls_name.startswith(
                "Dagster") and "ExecutionError" in error.cls_name:
            error = error.cause
        cls_name = error.cls_name if error else "unknown"
        message = error.message if error else event.message
        # the error's message repeats its class ("ValueError: ..."): shown once
        message = (message or "").removeprefix(f"{cls_name}: ")
        steps.append(FailedStep(step_key=event.step_key or "?", error_class=cls_name,
                                message=scrub(message)))
    return steps


def send_failure_alert(context: dg.RunFailureSensorContext, *, attempts: int = 4,
                       backoff: float = 1.0, timeout: float = 10.0) -> dg.SkipReason | None:
    """Post the failed run's alert; a skip reason when no webhook is configured. Never raises
    on a failing webhook: the failed delivery is logged (the sensor tick stays green)."""
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        context.log.info(f"{WEBHOOK_ENV} is not set: no alert posted")
        return dg.SkipReason(f"{WEBHOOK_ENV} is not set: no alert posted")
    run = context.dagster_run
    payload = failure_message(run.run_id, run.job_name, failed_steps(context.instance, run.run_id),
                              run_error=context.failure_event.message)
    delivery = post(url, payload, attempts=attempts, backoff=backoff, timeout=timeout)
    if delivery.ok:
        context.log.info(f"failure alert for run {run.run_id} posted "
                         f"(HTTP {delivery.status}, {delivery.attempts} attempt(s))")
    else:
        context.log.error(f"failure alert for run {run.run_id} not delivered after "
                          f"{delivery.attempts} attempt(s): {delivery.error}")
    return None


@dg.run_failure_sensor(
    name="run_failure_alert",
    description=(f"Posts every failed run of this code location (run id, job, failed steps with "
                 f"their scrubbed error heads, a link to the run; no PII) as Slack-compatible "
                 f"JSON to {WEBHOOK_ENV}. Without that variable it posts nothing and logs so. "
                 f"Retries 429/5xx with backoff; a refused webhook is logged, never raised."),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
    """Alert on a failed run (see `send_failure_alert`)."""
    return send_failure_alert(context)
