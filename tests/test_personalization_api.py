"""The personalization API over real HTTP: a sample store built by `segmenta run` (whose
`published/personalization_cache` asset builds the cache), the real server (uvicorn on a free
port of 127.0.0.1) over it, and answers checked against the published copy; the cache swapped
under load without a failed request, content that follows the weather, API keys, and an
erasure that a refresh carries into the running API."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from core.settings import PROJECT_ROOT
from personalization.cache import CacheError, build_cache
from personalization.content import ContentError
from tests.support import request_erasure, segmenta

pytestmark = pytest.mark.e2e
KEY = "test-key-0123456789abcdefghij"
OTHER_KEY = "second-key-0123456789abcdefgh"


def _segmenta(home: Path, *args: str) -> str:
    return segmenta(home, *args).stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("personalization_home")
    _segmenta(home, "generate", "--customers", "1000", "--days", "35", "--seed", "21")
    _segmenta(home, "run")
    return home


def _published(home: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _cache(home: Path) -> Path:
    return home / "personalization" / "cache.sqlite"


def _cache_id(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return json.loads(db.execute("select value from meta where key = 'cache_id'"
                                     ).fetchone()[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen

    def client(self, key: str | None = KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10,
                            headers={"X-API-Key": key} if key else {})

    def wait_for(self, cache_id: str, timeout: float = 20) -> None:
        """Until the server answers from the cache with this id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/health").json()["cache"]["cache_id"] == cache_id:
                return
            time.sleep(0.05)
        raise AssertionError(f"the server did not open cache {cache_id} in {timeout} s")


def _serve(cache: Path, log: Path, *args: str, keys: str | None = f"{KEY},{OTHER_KEY}",
           port: int | None = None) -> subprocess.Popen:
    env = {**os.environ}
    env.pop("SEGMENTA_API_KEYS", None)
    if keys is not None:
        env["SEGMENTA_API_KEYS"] = keys
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "personalization", "serve", "--cache", str(cache),
             "--port", str(port or _free_port()), "--reload-seconds", "0.2", *args],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def server(home: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    port = _free_port()
    process = _serve(_cache(home), log, port=port)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/health").raise_for_status()
            break
        except httpx.TransportError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    yield Server(url, log, process)
    process.terminate()
    process.wait(timeout=30)


def _customers(home: Path) -> list[str]:
    return [c for (c,) in _published(home, "select customer_id from customer_360 "
                                           "order by customer_id")]


def test_the_refresh_built_the_cache_of_every_customer(home):
    with sqlite3.connect(_cache(home)) as db:
        cached = [c for (c,) in db.execute("select customer_id from customers order by 1")]
    assert cached == _customers(home) and len(cached) > 900


def test_recommendations_are_the_published_rows(home, server):
    published = _published(home, """
        select customer_id, rank, product_id, product_name, price::double, score, reason
        from customer_product_recommendations order by customer_id, rank""")
    expected: dict[str, list] = {}
    for customer, rank, product, name, price, score, reason in published:
        expected.setdefault(customer, []).append(
            {"rank": rank, "product_id": product, "product_name": name, "price": price,
             "score": pytest.approx(score, abs=1e-6), "reason": reason})
    reasons = {}
    for customer, items in expected.items():  # one customer per kind of first item, and more
        reasons.setdefault(items[0]["reason"], customer)
    chosen = sorted(set(reasons.values()) | set(sorted(expected)[::25]))
    assert len(reasons) >= 2
    with server.client() as client:
        for customer in chosen:
            answer = client.get(f"/customers/{customer}/recommendations",
                                params={"limit": 50}).json()
            assert answer["personalized"] and answer["source"] == "recommendations"
            got = [{k: item[k] for k in ("rank", "product_id", "product_name", "price",
                                         "score", "reason")} for item in answer["items"]]
            assert got == expected[customer], customer
        top3 = client.get(f"/customers/{chosen[0]}/recommendations?limit=3").json()["items"]
        assert [i["product_id"] for i in top3] == [
            i["product_id"] for i in expected[chosen[0]][:3]]
        assert client.get(f"/customers/{chosen[0]}/recommendations?limit=0").status_code == 422


def test_segments_are_the_published_memberships(home, server):
    rows = _published(home, "select customer_id, segment_key, segment_name, segment_type "
                            "from segment_memberships order by customer_id, segment_key")
    expected: dict[str, list] = {}
    for customer, key, name, kind in rows:
        expected.setdefault(customer, []).append(
            {"segment_key": key, "segment_name": name, "segment_type": kind})
    with server.client() as client:
        for customer in sorted(expected)[::20]:
            answer = client.get(f"/customers/{customer}/segments").json()
            assert answer["personalized"] and answer["segments"] == expected[customer]


def test_one_answer_holds_recommendations_segments_and_content(home, server):
    with server.client() as client:
        for customer in [*_customers(home)[::100], "NOT-A-CUSTOMER"]:
            whole = client.get(f"/customers/{customer}?limit=4").json()
            assert whole["personalized"] is (customer != "NOT-A-CUSTOMER")
            assert whole["recommendations"] == client.get(
                f"/customers/{customer}/recommendations?limit=4").json()
            assert whole["segments"] == client.get(f"/customers/{customer}/segments").json()
            assert whole["content"] == client.get(f"/customers/{customer}/content").json()


def test_unknown_customers_get_the_popular_products_and_defaults(home, server):
    with server.client() as client:
        answer = client.get("/customers/NOT-A-CUSTOMER/recommendations?limit=5").json()
        segments = client.get("/customers/NOT-A-CUSTOMER/segments").json()
        content = client.get("/customers/NOT-A-CUSTOMER/content").json()
        slot = client.get("/content/home_banner").json()
    assert answer["personalized"] is False and answer["source"] == "popular"
    assert len(answer["items"]) == 5 and {i["reason"] for i in answer["items"]} == {"popular"}
    # the most bought active products of the store's last 30 days
    recent = _published(home, """
        select items.product_id, count(distinct items.customer_id) as buyers
        from fct_order_items as items join dim_products as products using (product_id)
        where products.is_active and items.is_completed and not items.is_return
          and items.order_date > (select max(order_date) - 30 from fct_order_items)
        group by 1 order by 2 desc, 1""")
    counts = dict(recent)
    got = [counts[i["product_id"]] for i in answer["items"]]
    assert got == sorted(got, reverse=True) and got[0] == recent[0][1]
    assert segments == {"personalized": False, "as_of_date": segments["as_of_date"],
                        "segments": []}
    assert content["personalized"] is False
    assert {s["variant"] for s in content["slots"].values()} == {"default"}
    assert slot["variant"] == "default" and slot["content"]["url"] == "/new"


def _expected_variant(row: dict) -> dict[str, str]:
    """segments/content.yml's first matching rule per slot, evaluated here in Python (SQL's
    NULL is no match)."""
    banner = ("rain_in_spain" if row["country"] == "ES" and row["is_rainy_today"]
              else "rain_tomorrow" if row["is_rainy_tomorrow"] and row["is_rainy_today"] is False
              else "heat_today" if row["is_hot_today"] else "default")
    strip = ("champions_thanks" if row["rfm_segment"] == "Champions"
             else "win_back" if row["rfm_segment"] in ("At Risk", "Can't Lose Them",
                                                       "Hibernating")
             else "newsletter_signup" if row["has_email_consent"] is False else "default")
    return {"home_banner": banner, "loyalty_strip": strip}


def test_content_follows_the_rules_over_the_published_weather(home, server):
    columns = ["customer_id", "country", "is_rainy_today", "is_rainy_tomorrow", "is_hot_today",
               "rfm_segment", "has_email_consent"]
    rows = [dict(zip(columns, r, strict=True)) for r in _published(
        home, f"select {', '.join(columns)} from customer_360 order by customer_id")]
    seen: dict[str, set] = {"home_banner": set(), "loyalty_strip": set()}
    with server.client() as client:
        for row in rows[::3]:
            answer = client.get(f"/customers/{row['customer_id']}/content").json()
            got = {slot: body["variant"] for slot, body in answer["slots"].items()}
            assert got == _expected_variant(row), row
            for slot, variant in got.items():
                seen[slot].add(variant)
            one = client.get("/content/home_banner",
                             params={"customer_id": row["customer_id"]}).json()
            assert one == answer["slots"]["home_banner"]
        assert client.get("/content/no_such_slot").status_code == 404
    # some customers got a rule's content in each slot, others the default
    assert all(len(variants) >= 2 and "default" in variants for variants in seen.values()), seen


def _with_weather(home: Path, folder: Path, rainy_countries: tuple[str, ...]) -> Path:
    """A copy of the published store where it rains today exactly in these countries."""
    copy = folder / f"rain_{'_'.join(rainy_countries) or 'none'}.duckdb"
    if not copy.exists():
        shutil.copyfile(home / "published" / "marts.duckdb", copy)
        countries = ", ".join(f"'{c}'" for c in rainy_countries) or "''"
        with duckdb.connect(str(copy)) as con:
            con.execute(f"update customer_360 set is_rainy_today = country in ({countries}), "
                        f"is_rainy_tomorrow = false, is_hot_today = false")
    return copy


def _spanish_customer(home: Path) -> str:
    return _published(home, "select min(customer_id) from customer_360 where country = 'ES'"
                      )[0][0]


def test_the_raincoat_banner_follows_todays_rain(home, server, tmp_path):
    spanish = _spanish_customer(home)
    variants = []
    for rainy in (("ES",), (), ("ES", "FR")):
        build_cache(_with_weather(home, tmp_path, rainy), _cache(home))
        server.wait_for(_cache_id(_cache(home)))
        with server.client() as client:
            banner = client.get("/content/home_banner", params={"customer_id": spanish}).json()
        variants.append((banner["variant"], banner["personalized"]))
    assert variants == [("rain_in_spain", True), ("default", False), ("rain_in_spain", True)]
    assert "Rain in Spain" in banner["content"]["title"]


def test_people_also_bought_is_the_published_similarities(home, server):
    rows = _published(home, """
        select s.product_id, s.similar_product_id, s.similarity
        from item_similarities as s join dim_products as p on s.similar_product_id = p.product_id
        where p.is_active and s.similar_product_id <> s.product_id
        order by s.product_id, s.rank""")
    similar: dict[str, list] = {}
    for product, other, similarity in rows:
        similar.setdefault(product, []).append((other, pytest.approx(similarity, abs=1e-6)))
    with server.client() as client:
        for product in sorted(similar)[:10]:
            answer = client.get(f"/products/{product}/similar?limit=50").json()
            assert answer["source"] == "similar"
            assert [(i["product_id"], i["score"]) for i in answer["items"]] == similar[product]
        unknown = client.get("/products/NO-SUCH-PRODUCT/similar?limit=3").json()
    assert unknown["source"] == "popular" and len(unknown["items"]) == 3


def test_cart_complements_sum_the_similarities_of_the_cart(home, server):
    rows = _published(home, """
        select s.product_id, s.similar_product_id, s.similarity::double
        from item_similarities as s join dim_products as p on s.similar_product_id = p.product_id
        where p.is_active""")
    products = sorted({r[0] for r in rows})
    cart = products[:3]
    scores: dict[str, float] = {}
    for product, other, similarity in rows:
        if product in cart and other not in cart:
            scores[other] = scores.get(other, 0.0) + similarity
    expected = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    with server.client() as client:
        answer = client.post("/cart/complements",
                             json={"product_ids": [*cart, "NO-SUCH-PRODUCT"], "limit": 5})
        assert answer.status_code == 200
        body = answer.json()
        assert body["source"] == "cart" and body["unknown_product_ids"] == ["NO-SUCH-PRODUCT"]
        assert [(i["product_id"], i["score"]) for i in body["items"]] == [
            (p, pytest.approx(s, abs=1e-5)) for p, s in expected]
        nothing_known = client.post("/cart/complements", json={"product_ids": ["X1"]}).json()
        assert nothing_known["source"] == "popular" and len(nothing_known["items"]) == 5
        assert client.post("/cart/complements", json={"product_ids": []}).status_code == 422
        assert client.post("/cart/complements", content=b"not json",
                           headers={"content-type": "application/json"}).status_code == 422


def test_every_endpoint_needs_a_key_but_health_and_the_docs(server, home):
    customer = _customers(home)[0]
    paths = [f"/customers/{customer}", f"/customers/{customer}/recommendations",
             f"/customers/{customer}/segments",
             f"/customers/{customer}/content", "/content/home_banner", "/products/P00001/similar"]
    with server.client(key=None) as anonymous, server.client("wrong-key-0123456789abc") as wrong:
        for path in paths:
            assert anonymous.get(path).status_code == 401, path
            assert wrong.get(path).status_code == 401, path
        assert anonymous.post("/cart/complements", json={"product_ids": ["P1"]}
                              ).status_code == 401
        assert anonymous.get("/health").status_code == 200
        openapi = anonymous.get("/openapi.json").json()
        assert "Swagger UI" in anonymous.get("/docs").text
    for path in ("/customers/{customer_id}", "/customers/{customer_id}/recommendations",
                 "/customers/{customer_id}/segments",
                 "/customers/{customer_id}/content", "/content/{slot}",
                 "/products/{product_id}/similar", "/cart/complements"):
        assert path in openapi["paths"], path
    assert {"APIKeyHeader", "HTTPBearer"} <= set(openapi["components"]["securitySchemes"])
    with server.client(OTHER_KEY) as second, httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as bearer:
        assert second.get(paths[0]).status_code == 200
        assert bearer.get(paths[0]).status_code == 200


def test_the_server_refuses_to_start_without_a_key(home, tmp_path):
    def serve(*args: str, keys: str | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "SEGMENTA_API_KEYS"}
        if keys is not None:
            env["SEGMENTA_API_KEYS"] = keys
        return subprocess.run([sys.executable, "-m", "personalization", "serve", "--cache",
                               str(_cache(home)), "--port", str(_free_port()), *args],
                              cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    no_key = serve()
    assert no_key.returncode != 0 and "SEGMENTA_API_KEYS" in no_key.stderr
    short = serve(keys="short")
    assert short.returncode != 0 and "shorter than 16" in short.stderr
    exposed = serve("--no-auth", "--host", "0.0.0.0")
    assert exposed.returncode != 0 and "only on this machine" in exposed.stderr
    missing = serve("--cache", str(tmp_path / "none.sqlite"), keys=KEY)
    assert missing.returncode != 0 and "personalization build" in missing.stderr
    # --no-auth on the loopback address: no key asked for
    port = _free_port()
    local = _serve(_cache(home), tmp_path / "no_auth.log", "--no-auth", keys=None, port=port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/customers/x/segments")
                break
            except httpx.TransportError:
                assert local.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.status_code == 200 and answer.json()["personalized"] is False
    finally:
        local.terminate()
        local.wait(timeout=30)


def _banner_rules(path: Path, rules: dict[str, str]) -> Path:
    """A content file with one slot, `banner`, and these rules (key: condition) in order."""
    path.write_text(json.dumps({"slots": {"banner": {
        "rules": [{"key": key, "condition": condition, "content": {"title": key}}
                  for key, condition in rules.items()],
        "default": {}}}}))  # JSON is YAML
    return path


def test_a_bad_content_rule_fails_the_build_and_keeps_the_cache(home, tmp_path):
    before = _cache_id(_cache(home))
    published = home / "published" / "marts.duckdb"
    unknown = _banner_rules(tmp_path / "unknown.yml", {"wet": "is_wet_today"})
    with pytest.raises(CacheError, match=r"slot 'banner', rule 'wet': unknown column is_wet"):
        build_cache(published, _cache(home), unknown)
    query = _banner_rules(tmp_path / "query.yml",
                          {"sneaky": "country in (select country from dim_customers)"})
    with pytest.raises(ContentError, match=r"rule 'sneaky'.*`in` takes a list of values"):
        build_cache(published, _cache(home), query)
    mistyped = _banner_rules(tmp_path / "mistyped.yml",
                             {"fine": "country = 'ES'", "mistyped": "signup_at > 5"})
    with pytest.raises(CacheError, match=r"rule 'mistyped': `signup_at > 5` cannot be evaluated"):
        build_cache(published, _cache(home), mistyped)
    assert _cache_id(_cache(home)) == before
    assert not list(_cache(home).parent.glob(".*.tmp"))


def test_the_cache_is_swapped_under_load_without_a_failed_request(home, server, tmp_path):
    """Four clients on keep-alive connections ask without a pause while the cache is rebuilt
    and replaced six times; every answer is a 200 with JSON, and the rain answer switches."""
    customers = _customers(home)
    spanish = _spanish_customer(home)
    stop = threading.Event()
    failures: list[str] = []
    answers: list[int] = []
    banners: list[tuple[float, str]] = []  # (when answered, the Spanish customer's banner)

    def hammer(seed: int) -> None:
        paths = [f"/customers/{customers[(seed * 97 + i) % len(customers)]}/recommendations"
                 for i in range(50)] + [f"/content/home_banner?customer_id={spanish}",
                                        f"/customers/{spanish}/segments", "/products/P00300/similar"]
        with server.client() as client:
            i = 0
            while not stop.is_set():
                path = paths[i % len(paths)]
                i += 1
                try:
                    response = client.get(path)
                    body = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    failures.append(f"{path}: {exc!r}")
                    continue
                if response.status_code != 200:
                    failures.append(f"{path}: {response.status_code} {body}")
                elif "variant" in body:
                    banners.append((time.monotonic(), body["variant"]))
                answers.append(response.status_code)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    missed = []
    try:
        for rainy in (("ES",), (), ("ES",), (), ("ES",), ()):
            time.sleep(0.2)
            build_cache(_with_weather(home, tmp_path, rainy), _cache(home))
            server.wait_for(_cache_id(_cache(home)))
            swapped, expected = time.monotonic(), "rain_in_spain" if rainy else "default"
            deadline = swapped + 10  # the clients see the new cache's answer
            while not any(t > swapped and v == expected for t, v in banners[-20:]):
                if time.monotonic() > deadline:
                    missed.append(rainy)
                    break
                time.sleep(0.02)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == [] and missed == []
    assert len(answers) > 200


@pytest.fixture(scope="module")
def erased(home: Path, server: Server) -> dict:
    """A buyer with a list of their own and segments erased on request, then a refresh (its
    asset rebuilds the cache); returns the id, its pseudonymous key and its answers before.
    (The list may be the recommender's or, when no recommender is champion on this small
    store, the popular products of the customer's segment: personal either way.)"""
    from core.privacy import customer_key

    customer = _published(home, """
        select customer_id from customer_product_recommendations
        where customer_id in (select customer_id from segment_memberships)
          and customer_id in (select customer_id from fct_orders)
        order by customer_id limit 1""")[0][0]
    with server.client() as client:
        before = client.get(f"/customers/{customer}/recommendations").json()
    request_erasure(home, customer)
    _segmenta(home, "run")
    server.wait_for(_cache_id(_cache(home)))
    return {"id": customer, "key": customer_key(customer), "before": before}


def test_an_erased_customer_gets_non_personal_answers_after_the_refresh(home, server, erased):
    assert erased["before"]["personalized"] is True
    assert _published(home, "select count(*) from fct_orders where customer_id = ?",
                      [erased["key"]])[0][0] > 0  # the orders stay, under the key
    with server.client() as client:
        for who in (erased["id"], erased["key"]):
            recommendations = client.get(f"/customers/{who}/recommendations").json()
            assert recommendations["personalized"] is False
            assert recommendations["source"] == "popular"
            assert client.get(f"/customers/{who}/segments").json()["segments"] == []
            assert client.get(f"/customers/{who}/content").json()["personalized"] is False
    assert erased["id"].encode() not in _cache(home).read_bytes()


def test_the_server_log_names_no_customer(server, erased, home):
    log = server.log.read_text()
    assert "GET /customers/{customer_id}/recommendations 200" in log
    assert "serving the cache built at" in log
    ids = set(re.findall(r"C\d{7}", log))
    assert ids == set() and erased["key"] not in log
    with open(home / "generator" / "personas.csv") as personas:
        assert not any(row["customer_id"] in log for row in csv.DictReader(personas))

