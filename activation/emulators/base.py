"""A small threaded HTTP server that platform emulators build on.

Each emulator subclass registers routes (`route(method, pattern)` on methods) and keeps its own
membership state. The base class gives every emulator the same test controls:

- `inject(kind, times=1, ...)`: the next `times` matching requests fail with `rate_limit`
  (429 with Retry-After, rendered by the subclass in its platform's shape), `server_error` (500),
  `timeout` (the server holds the request longer than the client waits), `expired_token` (401 in
  the platform's shape);
- `reject(value)`: any row carrying `value` (an email, a hash, a customer id) is refused by the
  platform's per-row validation, every time, until `accept(value)`;
- `hang_after(n)`: the n-th mutating request is applied and then not answered until `release()`,
  so a test can kill the client at the worst moment (the platform changed, the client never
  heard);
- `requests`: every request received (method, path, headers, JSON body), for assertions;
- replay by idempotency key: a mutating request whose `idempotency_key()` was seen before gets
  the first response again without being applied twice.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlparse


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: object
    raw: bytes = b""


@dataclass
class Response:
    status: int
    body: object = None
    headers: dict = field(default_factory=dict)


@dataclass
class _Fault:
    kind: str
    times: int
    retry_after: float | None = None
    path: str | None = None          # regex; None matches every mutating request


def route(method: str, pattern: str):
    """Mark an emulator method as the handler of `method` requests whose path matches `pattern`
    (a regex with named groups passed as keyword arguments)."""
    def mark(fn):
        fn._route = (method, re.compile(f"^{pattern}$"))
        return fn
    return mark


class Emulator:
    platform = "emulator"
    token = "test-token"              # the bearer token the emulator accepts
    timeout_hold_seconds = 5.0        # how long a `timeout` fault holds a request

    def __init__(self):
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._rejected_values: set[str] = set()
        self._replies: dict[str, Response] = {}
        self._mutations = 0
        self._hang_at: int | None = None
        self.hung = threading.Event()
        self._release = threading.Event()
        self._routes = []
        for name in dir(type(self)):
            fn = getattr(type(self), name)
            if callable(fn) and hasattr(fn, "_route"):
                method, pattern = fn._route
                self._routes.append((method, pattern, getattr(self, name)))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):      # keep test output clean
                pass

            def _handle(self):
                emulator._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # accepted connections inherit TCP_NODELAY: without it every response (headers and body
        # written separately) waits ~40 ms for a delayed ACK
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ---- test controls ------------------------------------------------------------------------
    def inject(self, kind: str, times: int = 1, retry_after: float | None = None,
               path: str | None = None) -> None:
        if kind not in {"rate_limit", "server_error", "timeout", "expired_token"}:
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self._faults.append(_Fault(kind, times, retry_after, path))

    def reject(self, value: str) -> None:
        with self.lock:
            self._rejected_values.add(value)

    def accept(self, value: str) -> None:
        with self.lock:
            self._rejected_values.discard(value)

    def is_rejected(self, *values: object) -> bool:
        with self.lock:
            return any(str(v) in self._rejected_values for v in values if v is not None)

    def hang_after(self, n: int) -> None:
        """Apply the n-th mutating request from now, then hold its answer until `release()`."""
        with self.lock:
            self._hang_at = self._mutations + n
            self.hung.clear()
            self._release.clear()

    def release(self) -> None:
        self._release.set()

    def mutating_requests(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    # ---- platform hooks (subclasses override) -------------------------------------------------
    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def render_rate_limit(self, retry_after: float | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response(429, {"message": "Too many requests"}, headers)

    def render_unauthorized(self) -> Response:
        return Response(401, {"message": "Authentication credentials are invalid or expired"})

    def render_server_error(self) -> Response:
        return Response(500, {"message": "Internal error"})

    def idempotency_key(self, request: Request) -> str | None:
        return request.headers.get("idempotency-key")

    # ---- dispatch -----------------------------------------------------------------------------
    def _next_fault(self, request: Request) -> _Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.path is None and request.method == "GET":
                    continue
                if fault.path is not None and not re.search(fault.path, request.path):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _respond(self, handler: BaseHTTPRequestHandler, response: Response) -> None:
        body = b"" if response.body is None else json.dumps(response.body).encode()
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.send_header("X-Request-Id", response.headers.pop("X-Request-Id", None)
                                or uuid.uuid4().hex)
            for name, value in response.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass                      # the client gave up (timeout test, killed client)

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = Request(handler.command, parsed.path,
                          {k: v[-1] for k, v in parse_qs(parsed.query).items()},
                          {k.lower(): v for k, v in handler.headers.items()}, body, raw)
        with self.lock:
            self.requests.append(request)
        if raw and body is None:
            return self._respond(handler, Response(400, {"message": "body is not valid JSON"}))
        fault = self._next_fault(request)
        if fault is not None:
            if fault.kind == "timeout":
                self._release.wait(self.timeout_hold_seconds)
                return self._respond(handler, self.render_server_error())
            if fault.kind == "rate_limit":
                return self._respond(handler, self.render_rate_limit(fault.retry_after))
            if fault.kind == "server_error":
                return self._respond(handler, self.render_server_error())
            if fault.kind == "expired_token":
                return self._respond(handler, self.render_unauthorized())
        if not self.authorized(request):
            return self._respond(handler, self.render_unauthorized())
        for method, pattern, fn in self._routes:
            match = pattern.match(request.path)
            if method == request.method and match:
                break
        else:
            return self._respond(handler, Response(404, {"message": f"no route {request.path}"}))
        mutating = request.method != "GET"
        key = self.idempotency_key(request) if mutating else None
        with self.lock:
            if key is not None and key in self._replies:
                return self._respond(handler, self._replies[key])
            response = fn(request, **match.groupdict())
            if mutating and response.status < 300:
                if key is not None:
                    self._replies[key] = response
                self._mutations += 1
                hang = self._hang_at is not None and self._mutations >= self._hang_at
                if hang:
                    self._hang_at = None
        if mutating and response.status < 300 and hang:
            self.hung.set()
            self._release.wait(60)
        self._respond(handler, Response(response.status, response.body, dict(response.headers)))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False
