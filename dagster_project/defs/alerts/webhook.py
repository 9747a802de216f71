"""The failure alert: a Slack-compatible message about a failed run, scrubbed of PII, and its
delivery to a webhook with retries.

What a message holds (and nothing else): the run id, the job name, a link to the run in the
Dagster UI, and for each failed step its key, its error class and the first line of its error
message, truncated to `MESSAGE_CHARS` and scrubbed: email addresses, phone-like digit runs,
customer ids (`C` and 4+ digits, or the value after `customer_id`/`email`/`phone`) and any
other run of 5+ digits are replaced. No stack trace, no run config, no data values beyond the
scrubbed message head.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from activation.audit import scrub as scrub_contacts

WEBHOOK_ENV = "SEGMENTA_ALERT_WEBHOOK_URL"
UI_URL_ENV = "SEGMENTA_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
MESSAGE_CHARS = 200
MAX_STEPS = 10

_CUSTOMER_ID = re.compile(r"\bC\d{4,}\b")
_KEYED_VALUE = re.compile(r"(?i)\b(customer_id|customer|email|phone|user_id)(\s*[=:]\s*|\s+)"
                          r"(['\"]?)[^\s'\",;)]+\3")
_LONG_NUMBER = re.compile(r"(?<![\d-])\d{5,}(?![\d-])")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedStep:
    """A failed step as the alert shows it: its key, error class and scrubbed message head."""

    step_key: str
    error_class: str
    message: str


@dataclass(frozen=True)
class Delivery:
    """How a post went: `ok` (a 2xx answer), the last HTTP status (None: no answer), the number
    of attempts and the last error."""

    ok: bool
    status: int | None
    attempts: int
    error: str | None = None


def scrub(message: str | None, limit: int = MESSAGE_CHARS) -> str:
    """The head of an error message safe to post: its first non-empty line, contacts, customer
    ids and long numbers replaced, cut to `limit` characters."""
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    head = lines[0] if lines else ""
    head = _KEYED_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}[value]", head)
    head = scrub_contacts(head) or ""
    head = _LONG_NUMBER.sub("[number]", _CUSTOMER_ID.sub("[id]", head))
    return head if len(head) <= limit else head[: limit - 1] + "…"


def ui_base_url() -> str:
    """The Dagster UI's address for links (`SEGMENTA_UI_URL`, default 127.0.0.1:3000)."""
    return (os.environ.get(UI_URL_ENV) or DEFAULT_UI_URL).rstrip("/")


def failure_message(run_id: str, job_name: str, steps: list[FailedStep],
                    run_error: str | None = None, ui_url: str | None = None) -> dict:
    """The Slack-compatible payload (`text` for any webhook, `blocks` for Slack) of a failure."""
    link = f"{(ui_url or ui_base_url()).rstrip('/')}/runs/{run_id}"
    shown = steps[:MAX_STEPS]
    lines = [f"• `{s.step_key}`: {s.error_class}: {s.message}" for s in shown]
    if len(steps) > MAX_STEPS:
        lines.append(f"• … and {len(steps) - MAX_STEPS} more")
    if not steps:
        lines = [f"• (no step failed) {scrub(run_error) or 'the run failed before its steps'}"]
    step_names = ", ".join(s.step_key for s in shown) or "none"
    text = (f"Segmenta run failed: job {job_name}, run {run_id}, failed step(s): {step_names}. "
            f"{link}")
    return {
        "text": text,
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": f"Segmenta run failed: {job_name}"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": f"*Run*\n<{link}|{run_id}>"},
                {"type": "mrkdwn", "text": f"*Job*\n{job_name}"},
            ]},
            {"type": "section",
             "text": {"type": "mrkdwn", "text": "*Failed steps*\n" + "\n".join(lines)}},
            {"type": "context",
             "elements": [{"type": "mrkdwn", "text": f"<{link}|Open the run in Dagster>"}]},
        ],
    }


def post(url: str, payload: dict, *, attempts: int = 4, backoff: float = 1.0,
         timeout: float = 10.0, sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST `payload` as JSON; retry on 429, 5xx and network errors with exponential backoff
    (`backoff`, 2x, 4x ...; a 429's Retry-After when shorter than 60 s). Never raises: a
    refused or failing webhook is returned (and logged) as a failed `Delivery`."""
    body = json.dumps(payload).encode()
    status, error = None, None
    for attempt in range(1, attempts + 1):
        wait = backoff * 2 ** (attempt - 1)
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Delivery(True, response.status, attempt)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                break
            retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
            if exc.code == 429 and retry_after.isdigit() and int(retry_after) < 60:
                wait = float(retry_after)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, error = None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < attempts:
            log.warning("alert webhook attempt %d failed (%s); retrying in %.1f s",
                        attempt, error, wait)
            sleep(wait)
    return Delivery(False, status, attempt, error)
