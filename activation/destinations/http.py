"""One HTTP call with the error mapping every destination shares.

Connection errors, timeouts and 5xx are retryable; 429 is retryable after `Retry-After`; 401 and
403 are fatal (credentials); any other status is returned for the destination to interpret (a 400
may be a throttle code in the body on Meta, or a refused row). Response bodies may echo what was
sent, so errors carry only the status, the platform's error code and its message, never the body.
"""

from __future__ import annotations

import email.utils
import time
import urllib.parse
from collections.abc import Callable

import requests

from activation.destinations.base import FatalError, RetryableError

DEFAULT_TIMEOUT = 30.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def checked_url(name: str, url: str) -> str:
    """A destination URL: `https://`, or `http://` only to this machine (emulators, tunnels).
    Anything else would send tokens and customer data in the clear."""
    parsed = urllib.parse.urlsplit(url or "")
    local = parsed.scheme == "http" and parsed.hostname in LOCAL_HOSTS
    if not parsed.hostname or not (parsed.scheme == "https" or local):
        raise ValueError(f"{name}={url!r} is refused: a destination URL must start with "
                         "https:// (plain http:// only to 127.0.0.1 or localhost)")
    return url.rstrip("/") if parsed.path in ("", "/") else url


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _retry_delay_in_body(response: requests.Response) -> float | None:
    """Google's `RetryInfo` detail: {"error": {"details": [{"retryDelay": "12s"}]}}."""
    try:
        details = response.json().get("error", {}).get("details", [])
    except ValueError:
        return None
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def call(session: requests.Session, method: str, url: str, *, headers: dict | None = None,
         json: object = None, params: dict | None = None, data: bytes | None = None,
         timeout: float = DEFAULT_TIMEOUT,
         classify: Callable[[requests.Response], None] | None = None) -> requests.Response:
    """`classify`, when given, sees every response first and may raise the platform's own
    error from its body (HubSpot's 429 policy, Meta's throttle codes sent as 400/403)."""
    try:
        response = session.request(method, url, headers=headers, json=json, params=params,
                                   data=data, timeout=timeout)
    except requests.Timeout as exc:
        raise RetryableError(f"{method} {url}: no answer within {timeout:g} s", "timeout") from exc
    except requests.ConnectionError as exc:
        raise RetryableError(f"{method} {url}: connection failed", "connection_error") from exc
    if classify is not None:
        classify(response)
    request_id = request_id_of(response)
    if response.status_code == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise RetryableError(f"{method} {url}: rate limited (429)", "rate_limited", request_id,
                             retry_after if retry_after is not None
                             else _retry_delay_in_body(response))
    if response.status_code >= 500:
        raise RetryableError(f"{method} {url}: server error {response.status_code}",
                             f"http_{response.status_code}", request_id,
                             retry_after_seconds(response.headers.get("Retry-After")))
    if response.status_code in (401, 403):
        raise FatalError(f"{method} {url}: {response.status_code} - the credentials were refused "
                         "or have expired; set a valid token in the environment variable",
                         f"http_{response.status_code}", request_id)
    return response


def request_id_of(response: requests.Response) -> str | None:
    return (response.headers.get("X-Request-Id") or response.headers.get("x-fb-trace-id")
            or response.headers.get("X-Klaviyo-Req-Id"))
