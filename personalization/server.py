"""The storefront's personalization API (FastAPI), answering from the cache file.

Endpoints (JSON; every one but `/health`, `/docs` and `/openapi.json` needs an API key, as
`X-API-Key: <key>` or `Authorization: Bearer <key>`):

- `GET /customers/{id}/recommendations?limit=10`: personal top-N (popular for unknown ids)
- `GET /customers/{id}?limit=10`: recommendations, segments and content in one answer
- `GET /customers/{id}/segments`: the segments the customer is in
- `GET /customers/{id}/content`: every slot's content; `GET /content/{slot}?customer_id=`: one
- `GET /products/{id}/similar?limit=10`: "people also bought"
- `POST /cart/complements` `{"product_ids": [...], "limit": 5}`: what goes with a cart

Keys come from `SEGMENTA_API_KEYS` (comma-separated, each at least 16 characters); the server
refuses to start without one unless told `no_auth` (local development, loopback only).

The cache is swapped without a failed request: a background task looks at the file's identity
(inode, mtime, size) every `reload_seconds`; a new file is opened in a worker thread and then
becomes the one new requests read. A request reads one `Cache` object from start to end (its
lookups do not await), and the old one is closed by the garbage collector once no request
holds it. The access log names the route template (`/customers/{customer_id}/segments`),
never the customer or product id of a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, Field

from personalization.answers import MAX_LIMIT, Cache, UnknownSlot, file_identity
from personalization.cache import CacheError

log = logging.getLogger("segmenta.personalization")
access_log = logging.getLogger("segmenta.personalization.access")

KEYS_VARIABLE = "SEGMENTA_API_KEYS"
MIN_KEY_LENGTH = 16
ID_MAX_LENGTH = 200


class JSONBytes(Response):
    """A response whose body is JSON already serialized (no validation, no re-encoding)."""

    media_type = "application/json"


# -- the shapes of the answers, for the OpenAPI document only (answers are not validated) ------
class Item(BaseModel):
    rank: int
    product_id: str
    product_name: str | None
    category: str | None
    subcategory: str | None
    brand: str | None
    price: float | None
    currency: str | None
    score: float | None = Field(description="The model's score, the similarity, or the cart "
                                            "score; null for popular products")
    reason: str = Field(description="buy_again, also_bought, popular_in_segment, "
                                    "popular_in_country, popular, goes_with_cart, ...")


class Recommendations(BaseModel):
    personalized: bool = Field(description="false: the customer is unknown or erased, or has "
                                           "no list; the items are the popular products")
    source: str = Field(description="recommendations | popular")
    as_of_date: str | None = Field(description="The store's as-of date of the published data")
    items: list[Item]


class Segment(BaseModel):
    segment_key: str
    segment_name: str
    segment_type: str = Field(description="rfm | rule | ml | predictive")


class Segments(BaseModel):
    personalized: bool
    as_of_date: str | None
    segments: list[Segment]


class Content(BaseModel):
    slot: str
    variant: str = Field(description="The key of the rule that chose it, or `default`")
    personalized: bool
    content: dict[str, Any]


class AllContent(BaseModel):
    personalized: bool
    slots: dict[str, Content]


class Customer(BaseModel):
    personalized: bool = Field(description="false: the cache does not know the customer")
    as_of_date: str | None
    recommendations: Recommendations
    segments: Segments
    content: AllContent


class Similar(BaseModel):
    product_id: str
    personalized: bool
    source: str = Field(description="similar | popular (the product has no similar products)")
    items: list[Item]


class Complements(BaseModel):
    personalized: bool
    source: str = Field(description="cart | popular (no similar products for the cart)")
    unknown_product_ids: list[str]
    items: list[Item]


class Cart(BaseModel):
    """A cart: the product ids in it."""

    product_ids: list[Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH)]] = Field(
        min_length=1, max_length=200, examples=[["P00307", "P00344"]])
    limit: int = Field(5, ge=1, le=MAX_LIMIT)


class Health(BaseModel):
    status: str
    cache: dict[str, Any]


# -- the cache, swapped when a new file appears -------------------------------------------------
class CacheHolder:
    """The cache new requests read, replaced by the watcher when the file changes."""

    def __init__(self, path: Path, reload_seconds: float = 1.0) -> None:
        self.path = path
        self.reload_seconds = reload_seconds
        self.current = Cache(path)
        self._refused: tuple | None = None  # a file that failed to open, not tried again

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_seconds)
            try:
                await self.check()
            except Exception:  # the watcher must outlive any one bad file
                log.exception("checking the cache file failed; still serving the cache built "
                              "at %s", self.current.meta["built_at"])

    async def check(self) -> bool:
        """Open the cache file if it is not the one being served; True when swapped."""
        try:
            identity = file_identity(self.path)
        except FileNotFoundError:
            return False  # between a removal and a rename: keep serving the current one
        if identity in (self.current.identity, self._refused):
            return False
        try:
            fresh = await asyncio.to_thread(Cache, self.path)
        except CacheError as exc:
            self._refused = identity
            log.error("not serving the new cache file: %s", exc)
            return False
        self.current = fresh  # the old one closes when the last request using it ends
        log.info("serving the cache built at %s (as of %s, %s customers)",
                 fresh.meta["built_at"], fresh.as_of_date, fresh.meta["customers"])
        return True


# -- API keys -------------------------------------------------------------------------------------
def api_keys_from_env() -> list[str]:
    """The keys of SEGMENTA_API_KEYS (comma-separated); raises ValueError for a short one."""
    keys = [k.strip() for k in os.environ.get(KEYS_VARIABLE, "").split(",") if k.strip()]
    short = [k for k in keys if len(k) < MIN_KEY_LENGTH]
    if short:
        raise ValueError(f"{KEYS_VARIABLE}: {len(short)} key(s) shorter than {MIN_KEY_LENGTH} "
                         f"characters; use long random keys (python -c 'import secrets; "
                         f"print(secrets.token_urlsafe(32))')")
    return keys


SECURITY_SCHEMES = {
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": f"A key of {KEYS_VARIABLE}"},
    "HTTPBearer": {"type": "http", "scheme": "bearer",
                   "description": f"A key of {KEYS_VARIABLE}, as `Authorization: Bearer <key>`"},
}
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
_UNAUTHORIZED = orjson.dumps({"detail": "a valid API key is required (header X-API-Key or "
                                        "Authorization: Bearer)"})


class RequireKey:
    """ASGI middleware: a request without one of the keys gets 401, except on `PUBLIC_PATHS`.
    (As a FastAPI dependency, the check cost more than the answer: 80 of 140 us a request.)"""

    def __init__(self, app, keys: Sequence[str]) -> None:
        self.app = app
        self.digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    def _valid(self, headers: list[tuple[bytes, bytes]]) -> bool:
        given = None
        for name, value in headers:
            if name == b"x-api-key":
                given = value.strip()
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if not given:
            return False
        digest = hashlib.sha256(given).digest()
        matched = False
        for known in self.digests:  # every key compared: the time does not tell which matched
            matched |= hmac.compare_digest(digest, known)
        return matched

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["path"] in PUBLIC_PATHS
                or self._valid(scope["headers"])):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
            (b"content-length", str(len(_UNAUTHORIZED)).encode())]})
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})


# -- the access log -------------------------------------------------------------------------------
class AccessLog:
    """ASGI middleware: method, route template, status and milliseconds of every request;
    never the path itself (it holds customer and product ids)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            access_log.info("%s %s %d %.2f ms", scope["method"],
                            getattr(route, "path", "(no route)"), status[0],
                            (time.perf_counter() - started) * 1000)


# -- the application ------------------------------------------------------------------------------
CustomerId = Annotated[str, PathParam(min_length=1, max_length=ID_MAX_LENGTH,
                                      description="The store's customer id")]
ProductId = Annotated[str, PathParam(min_length=1, max_length=ID_MAX_LENGTH)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items at most")]


def create_app(cache_file: Path, api_keys: Sequence[str] | None,
               reload_seconds: float = 1.0, log_access: bool = True) -> FastAPI:
    """The API over `cache_file`. `api_keys=None` turns the key check off (local use only);
    an empty list refuses to build an app that nobody could call."""
    if api_keys is not None and not api_keys:
        raise ValueError(f"no API key: set {KEYS_VARIABLE} (or run without authentication "
                         f"on this machine only: --no-auth)")
    holder = CacheHolder(cache_file, reload_seconds)  # raises CacheError when it cannot open

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(holder.watch())
        log.info("serving the cache built at %s (as of %s, %s customers)",
                 holder.current.meta["built_at"], holder.current.as_of_date,
                 holder.current.meta["customers"])
        yield
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    app = FastAPI(title="Segmenta personalization API", version="1",
                  description=__doc__.split("\n\n")[0] + " Answers come from a cache built "
                  "from the published copy after each refresh; unknown or erased customers "
                  "get non-personal answers.", lifespan=lifespan)
    app.state.cache = holder
    secured = {"security": [{name: []} for name in SECURITY_SCHEMES]}

    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> dict:
        """The service is up; when and from what its cache was built (no key needed)."""
        return {"status": "ok", "cache": holder.current.info()}

    @app.get("/customers/{customer_id}", openapi_extra=secured, response_class=JSONBytes,
             responses={200: {"model": Customer}}, tags=["customers"])
    async def customer(customer_id: CustomerId, limit: Limit = 10) -> Response:
        """Recommendations, segments and every slot's content in one answer (a page that
        shows all three asks once)."""
        return JSONBytes(holder.current.customer(customer_id, limit))

    @app.get("/customers/{customer_id}/recommendations", openapi_extra=secured,
             response_class=JSONBytes, responses={200: {"model": Recommendations}},
             tags=["customers"])
    async def recommendations(customer_id: CustomerId, limit: Limit = 10) -> Response:
        """The customer's recommended products, best first (the home page's top-N)."""
        return JSONBytes(holder.current.recommendations(customer_id, limit))

    @app.get("/customers/{customer_id}/segments", openapi_extra=secured,
             response_class=JSONBytes, responses={200: {"model": Segments}}, tags=["customers"])
    async def segments(customer_id: CustomerId) -> Response:
        """The segments the customer is in (RFM, rules, ML clusters, predictive)."""
        return JSONBytes(holder.current.segments(customer_id))

    @app.get("/customers/{customer_id}/content", openapi_extra=secured,
             response_class=JSONBytes, responses={200: {"model": AllContent}},
             tags=["customers"])
    async def customer_content(customer_id: CustomerId) -> Response:
        """Every content slot's content for the customer."""
        return JSONBytes(holder.current.all_content(customer_id))

    @app.get("/content/{slot}", openapi_extra=secured, response_class=JSONBytes,
             responses={200: {"model": Content}, 404: {"description": "Unknown slot"}},
             tags=["content"])
    async def content(slot: str, customer_id: Annotated[
            str | None, Query(max_length=ID_MAX_LENGTH,
                              description="The visitor's customer id; none: the default")] = None
                      ) -> Response:
        """A slot's content: the first of its rules (segments/content.yml) that holds for the
        customer, else its default."""
        cache = holder.current
        try:
            return JSONBytes(cache.content(slot, customer_id))
        except UnknownSlot:
            raise HTTPException(404, f"unknown slot; the slots are "
                                     f"{', '.join(cache.slots)}") from None

    @app.get("/products/{product_id}/similar", openapi_extra=secured, response_class=JSONBytes,
             responses={200: {"model": Similar}}, tags=["products"])
    async def similar(product_id: ProductId, limit: Limit = 10) -> Response:
        """"People also bought": the products bought by the same customers."""
        return JSONBytes(holder.current.similar_products(product_id, limit))

    @app.post("/cart/complements", openapi_extra=secured, response_class=JSONBytes,
              responses={200: {"model": Complements}}, tags=["products"])
    async def cart_complements(cart: Cart) -> Response:
        """The products that go best with a cart (the phone case for the phone)."""
        return JSONBytes(holder.current.cart_complements(cart.product_ids, cart.limit))

    @app.exception_handler(CacheError)
    async def cache_error(_: Request, exc: CacheError) -> Response:
        log.error("%s", exc)
        return JSONBytes(b'{"detail":"the cache cannot be read"}', status_code=503)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    if api_keys is not None:
        app.add_middleware(RequireKey, keys=api_keys)
    if log_access:
        app.add_middleware(AccessLog)  # the outermost: it logs the 401s too
    return app


# environment of `app_from_env` (set by `python -m personalization serve` for uvicorn's workers)
CACHE_VARIABLE = "SEGMENTA_API_CACHE"
NO_AUTH_VARIABLE = "SEGMENTA_API_NO_AUTH"
RELOAD_VARIABLE = "SEGMENTA_API_RELOAD_SECONDS"
ACCESS_LOG_VARIABLE = "SEGMENTA_API_ACCESS_LOG"


def app_from_env() -> FastAPI:
    """The app as `python -m personalization serve` configured it (uvicorn's factory)."""
    no_auth = os.environ.get(NO_AUTH_VARIABLE) == "1"
    return create_app(Path(os.environ[CACHE_VARIABLE]),
                      None if no_auth else api_keys_from_env(),
                      reload_seconds=float(os.environ.get(RELOAD_VARIABLE, "1")),
                      log_access=os.environ.get(ACCESS_LOG_VARIABLE, "1") == "1")
