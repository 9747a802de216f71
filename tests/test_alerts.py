"""The run-failure alert: a run made to fail on a real Dagster instance, the sensor evaluated
against it, and a real HTTP receiver on 127.0.0.1 that records what the webhook gets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import dagster as dg
import pytest

from dagster_project.defs.alerts import sensors, webhook

PLANTED_EMAIL = "jane.doe@example.com"
PLANTED_ID = "C0004711"


class Receiver:
    """A local webhook: answers with the scripted statuses (then 200) and keeps every body."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@dg.op
def loads_fine() -> int:
    return 1


@dg.op
def breaks(value: int) -> int:
    raise ValueError(f"row {value}: order of {PLANTED_ID} has bad contact {PLANTED_EMAIL} "
                     f"in landing/orders/dt=2026-10-31\nsecond line with {PLANTED_EMAIL}")


@dg.job
def nightly_refresh() -> None:
    breaks(loads_fine())


@pytest.fixture(scope="module")
def failed_run() -> Iterator[tuple[dg.DagsterInstance, dg.ExecuteInProcessResult]]:
    with dg.DagsterInstance.ephemeral() as instance:
        result = nightly_refresh.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        yield instance, result


def _context(failed_run) -> dg.RunFailureSensorContext:
    instance, result = failed_run
    return dg.build_run_status_sensor_context(
        sensor_name=sensors.run_failure_alert.name, dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
    ).for_run_failure()


def test_a_failed_run_posts_one_message_with_run_step_and_no_pii(failed_run, monkeypatch):
    monkeypatch.setenv("SEGMENTA_UI_URL", "http://dagster.internal:3000/")
    with Receiver() as receiver:
        monkeypatch.setenv(webhook.WEBHOOK_ENV, receiver.url)
        sensors.run_failure_alert(_context(failed_run))
    run_id = failed_run[1].run_id
    assert len(receiver.bodies) == 1
    message = receiver.bodies[0]
    text = json.dumps(message)
    assert run_id in message["text"] and "nightly_refresh" in message["text"]
    assert "breaks" in message["text"]
    steps = message["blocks"][2]["text"]["text"]
    assert "`breaks`: ValueError: row 1: order of [id] has bad contact [email]" in steps
    assert "loads_fine" not in steps  # only the step that failed
    assert f"http://dagster.internal:3000/runs/{run_id}" in text
    assert PLANTED_EMAIL not in text and PLANTED_ID not in text
    assert "second line" not in text  # only the message's head
    assert "dt=2026-10-31" in text  # dates stay: they say when, not who


def test_a_500_is_retried_once_then_delivered(failed_run, monkeypatch):
    with Receiver(statuses=[500]) as receiver:
        monkeypatch.setenv(webhook.WEBHOOK_ENV, receiver.url)
        sensors.send_failure_alert(_context(failed_run), backoff=0.01)
    assert len(receiver.bodies) == 2
    assert receiver.bodies[0] == receiver.bodies[1]


def test_no_url_posts_nothing(failed_run, monkeypatch):
    monkeypatch.delenv(webhook.WEBHOOK_ENV, raising=False)
    with Receiver() as receiver:
        skip = sensors.send_failure_alert(_context(failed_run))
    assert receiver.bodies == []
    assert isinstance(skip, dg.SkipReason) and webhook.WEBHOOK_ENV in skip.skip_message


def test_a_refused_webhook_is_logged_never_raised(failed_run, monkeypatch):
    with Receiver(statuses=[503, 503, 503]) as receiver:
        monkeypatch.setenv(webhook.WEBHOOK_ENV, receiver.url)
        assert sensors.send_failure_alert(_context(failed_run), attempts=3, backoff=0.01) is None
    assert len(receiver.bodies) == 3  # every attempt made, none raised
    with Receiver() as closed:
        url = closed.url
    monkeypatch.setenv(webhook.WEBHOOK_ENV, url)  # nobody listens there any more
    assert sensors.send_failure_alert(_context(failed_run), attempts=2, backoff=0.01) is None


def test_a_client_error_is_not_retried():
    with Receiver(statuses=[404]) as receiver:
        delivery = webhook.post(receiver.url, {"text": "x"}, backoff=0.01)
    assert (delivery.ok, delivery.status, delivery.attempts, len(receiver.bodies)) == (
        False, 404, 1, 1)


def test_scrub_keeps_what_and_where_drops_who():
    assert webhook.scrub("Binder Error: customer_id = 'X-99' not in marts.customer_360") == (
        "Binder Error: customer_id = [value] not in marts.customer_360")
    assert webhook.scrub("12345 rows from +44 20 7946 0958 at 10.0.0.1:5432") == (
        "[number] rows from [phone] at 10.0.0.1:5432")
    assert len(webhook.scrub("x" * 1000)) == webhook.MESSAGE_CHARS
