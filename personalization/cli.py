"""`python -m personalization build | serve`: the storefront API's cache and server."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
from pathlib import Path

from core.settings import HOME
from personalization.cache import CacheError, build_cache, cache_path
from personalization.content import CONTENT_FILE, ContentError
from personalization.server import (
    ACCESS_LOG_VARIABLE,
    CACHE_VARIABLE,
    KEYS_VARIABLE,
    NO_AUTH_VARIABLE,
    RELOAD_VARIABLE,
    api_keys_from_env,
)

PORT_VARIABLE = "SEGMENTA_API_PORT"
DEFAULT_PORT = 8000


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--published", type=Path, default=HOME.published,
                        help="the published copy to build from (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=cache_path(HOME),
                        help="the cache file (default: %(default)s)")
    parser.add_argument("--content", type=Path, default=CONTENT_FILE,
                        help="the content rules (default: %(default)s; env SEGMENTA_CONTENT)")


def _build(args: argparse.Namespace) -> int:
    result = build_cache(args.published, args.cache, args.content)
    print(f"built {result.path}: {result.customers:,} customers ({result.personalized_content:,} "
          f"with rule content), {result.products:,} products, "
          f"{result.bytes / 1e6:,.1f} MB in {result.seconds:.1f} s")
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def _serve(args: argparse.Namespace) -> int:
    if args.no_auth:
        if not _is_loopback(args.host):
            raise SystemExit(f"error: --no-auth serves only on this machine (127.0.0.1), not "
                             f"on {args.host}; set {KEYS_VARIABLE} instead")
    else:
        try:
            keys = api_keys_from_env()
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        if not keys:
            raise SystemExit(f"error: no API key: set {KEYS_VARIABLE} (comma-separated keys of "
                             f"16+ characters), or pass --no-auth to serve without keys on "
                             f"this machine only")
    if not args.cache.exists():
        if not args.build_if_missing:
            raise SystemExit(f"error: no cache at {args.cache}: build it with `python -m "
                             f"personalization build` (or pass --build-if-missing)")
        _build(args)
    import uvicorn

    os.environ[CACHE_VARIABLE] = str(args.cache.resolve())
    os.environ[NO_AUTH_VARIABLE] = "1" if args.no_auth else "0"
    os.environ[RELOAD_VARIABLE] = str(args.reload_seconds)
    os.environ[ACCESS_LOG_VARIABLE] = "0" if args.no_access_log else "1"
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    print(f"personalization API on http://{args.host}:{args.port} (docs: /docs), cache "
          f"{args.cache}", flush=True)
    uvicorn.run("personalization.server:app_from_env", factory=True, host=args.host,
                port=args.port, workers=args.workers, loop="uvloop", http="httptools",
                access_log=False, log_level=args.log_level, server_header=False,
                timeout_keep_alive=30)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m personalization",
        description="The storefront's personalization API: a cache built from the published "
                    "copy (SEGMENTA_HOME/published/marts.duckdb) and an HTTP server over it.")
    commands = main.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", help="build the cache from the published copy (replaced atomically)",
        description="Build SEGMENTA_HOME/personalization/cache.sqlite from the published copy; "
                    "a running server opens the new file within a second.")
    _add_paths(build)
    build.set_defaults(run=_build)
    serve = commands.add_parser(
        "serve", help="serve the API on 127.0.0.1",
        description=f"Serve the API (OpenAPI docs at /docs). API keys: {KEYS_VARIABLE}, "
                    f"comma-separated, sent as X-API-Key or Authorization: Bearer.")
    _add_paths(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on "
                                                           "(default: %(default)s)")
    serve.add_argument("--port", type=int,
                       default=int(os.environ.get(PORT_VARIABLE) or DEFAULT_PORT),
                       help=f"port (default: %(default)s; env {PORT_VARIABLE})")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes (default: %(default)s)")
    serve.add_argument("--build-if-missing", action="store_true",
                       help="build the cache first when there is none")
    serve.add_argument("--no-auth", action="store_true",
                       help="no API key needed: for local development, on a loopback address "
                            "only")
    serve.add_argument("--reload-seconds", type=float, default=1.0,
                       help="how often to look for a new cache file (default: %(default)s)")
    serve.add_argument("--no-access-log", action="store_true",
                       help="do not log each request (method, route, status, time)")
    serve.add_argument("--log-level", default="info",
                       choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(run=_serve)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (CacheError, ContentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
