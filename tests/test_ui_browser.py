"""The Dagster UI in a real browser: `dg dev` (as `make ui` starts it) on a small built store,
driven by Selenium in headless Chromium (Debian's `chromium` and `chromium-driver`, which
`.ci/run` installs). It checks the lineage graph from the orders feed to the segment summary,
a dbt asset's row count and columns, the segment report, and launches a materialization from
the UI and waits for it to succeed. Screenshots go to <SEGMENTA_HOME>/screenshots/ (the test's
home, printed); a failed step leaves `<name>-failed.png` and `.html` there. Skipped, with the
reason, where Chromium, its driver or Selenium is absent."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pytest
import requests

from core.settings import PROJECT_ROOT
from tests.support import segmenta

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# the path through the graph the lineage screenshot shows: landing feed to the segment report
LINEAGE = 'key:"raw/orders"+ and +key:"marts/segment_summary"'
PAGE_TIMEOUT = 60  # seconds for a page or an element to appear (2 busy cores, a cold server)
RUN_TIMEOUT = 300  # seconds for the launched run to finish


def _browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        return (f"{' and '.join(missing)} not found: install Debian's chromium and "
                "chromium-driver (.ci/run does, as root)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (a dev dependency: make install)"
    return None


@dataclass
class Store:
    home: Path
    customer_360_rows: int
    customer_360_columns: list[str]
    segments: dict[str, int]  # segment_summary: segment name -> customers
    built_at: float  # time.time() before the store's build

    @property
    def screenshots(self) -> Path:
        return self.home / "screenshots"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The smallest sample store that has every kind of segment, built by `segmenta run`."""
    if reason := _browser_missing():
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("ui_browser_home")
    built_at = time.time()
    segmenta(home, "generate", "--customers", "300", "--days", "21", "--seed", "21")
    segmenta(home, "run")
    # read before the UI starts: a reader holding the warehouse would block the launched run
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select count(*) from marts.customer_360").fetchone()[0]
        columns = [name for (name,) in con.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' "
            "and table_name = 'customer_360' order by ordinal_position").fetchall()]
        segments = dict(con.execute(
            "select segment_name, n_customers from marts.segment_summary").fetchall())
    assert rows > 0 and columns and segments
    (home / "screenshots").mkdir()
    print(f"\nscreenshots: {home / 'screenshots'}")
    return Store(home, rows, columns, segments, built_at)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    answer = requests.post(f"{base}/graphql", json={"query": query, "variables": variables or {}},
                           timeout=30)
    answer.raise_for_status()
    body = answer.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries {
    loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } }
  instance { info } }"""


@pytest.fixture(scope="module")
def ui(store: Store) -> Iterator[str]:
    """`dg dev` on a free port of 127.0.0.1 over the store, stopped by its process group."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "SEGMENTA_HOME": str(store.home),
           "DAGSTER_HOME": str(store.home / "dagster"), "VIRTUAL_ENV": str(venv_bin.parent),
           "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = store.home / "logs" / "dg-dev-ui-test.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        server = subprocess.Popen([str(venv_bin / "dg"), "dev", "--host", "127.0.0.1", "--port",
                                   str(port)], cwd=PROJECT_ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, f"dg dev exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"dg dev not ready: {log.read_text()[-3000:]}"
            with contextlib.suppress(requests.RequestException, AssertionError, ValueError):
                data = _graphql(base, WORKSPACE)
                # our server (not another one on the port) with the code location loaded
                assert str(store.home / "dagster") in data["instance"]["info"]
                [entry] = data["workspaceOrError"]["locationEntries"]
                if entry["loadStatus"] == "LOADED":
                    location = entry["locationOrLoadError"]
                    assert location["__typename"] == "RepositoryLocation", location
                    break
            time.sleep(1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(ui: str) -> Iterator[Any]:
    """Headless Chromium through the system chromedriver (Selenium Manager downloads nothing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1600,1000", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                                  options=options)
    try:
        driver.get(f"{ui}/server_info")  # the UI's origin, for its local storage
        # Dagster's "join the community" dialog (shown on localhost) would cover the pages
        driver.execute_script("window.localStorage.setItem('communityNux', 'true')")
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Callable[[Any], Any], what: str,
          timeout: float = PAGE_TIMEOUT) -> Any:
    """The first truthy value of `condition(driver)` within `timeout` seconds; a page
    re-rendering under it (a stale or missing element) counts as not yet."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException,
            ElementClickInterceptedException)).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                             f"on {driver.current_url}") from None


def _xpath(driver: Any, xpath: str) -> Any:
    return driver.find_element("xpath", xpath)


def _click(xpath: str) -> Callable[[Any], bool]:
    """A wait condition that clicks the element at `xpath` once it is there and enabled."""
    def condition(driver: Any) -> bool:
        element = _xpath(driver, xpath)
        if not element.is_enabled():
            return False
        element.click()
        return True
    return condition


@contextlib.contextmanager
def _evidence(driver: Any, store: Store, name: str) -> Iterator[None]:
    """Saves <name>.png when the block passes, <name>-failed.png and .html when it fails."""
    try:
        yield
    except BaseException:
        failed = store.screenshots / f"{name}-failed"
        driver.save_screenshot(f"{failed}.png")
        Path(f"{failed}.html").write_text(driver.page_source)
        print(f"failure evidence: {failed}.png, {failed}.html")
        raise
    shot = store.screenshots / f"{name}.png"
    driver.save_screenshot(str(shot))
    print(f"screenshot: {shot}")


def _asset_nodes(driver: Any) -> dict[str, str]:
    """The lineage graph's asset nodes: name -> their box's style (its colour is the status)."""
    return {element.text: element.find_element("xpath", "..").get_attribute("style") or ""
            for element in driver.find_elements("css selector", "[class*=AssetNode_assetName]")}


def test_the_lineage_graph_shows_the_orders_feed_reaching_the_segment_summary(store, ui, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    with _evidence(browser, store, "lineage"):
        browser.get(f"{ui}/asset-groups~{quote(LINEAGE, safe='')}/")
        _wait(browser, _click("//button[normalize-space()='Hide navigation']"),
              "the Hide navigation button")  # room for the graph
        # the global lineage opens with its groups collapsed: ⌥E expands them all
        _wait(browser, lambda d: d.find_elements(
            "css selector", "[class*=CollapsedGroupNode_collapsedGroupNodeBox]"),
            "the collapsed groups of the lineage graph")
        ActionChains(browser).key_down(Keys.ALT).send_keys("e").key_up(Keys.ALT).perform()
        expected = {"orders", "fct_orders", "customer_rfm", "customer_360", "segment_summary"}
        nodes = _wait(browser, lambda d: (nodes := _asset_nodes(d)).keys() >= expected and nodes,
                      f"the asset nodes {sorted(expected)}")
        assert "expanded=" in browser.current_url
        # the path's nodes only, not the rest of the graph (events, activation, published/marts)
        assert not nodes.keys() & {"events", "customers", "products", "marts"}, nodes.keys()
        assert len(browser.find_elements("css selector", "svg path")) >= len(nodes) - 1
        # the dbt models on the path show as materialized (green) once their status has loaded
        _wait(browser, lambda d: all("background-green" in _asset_nodes(d).get(name, "") for name
                                     in ("fct_orders", "customer_360", "segment_summary")),
              "the models' materialized status")
        time.sleep(1)  # the graph animates its zoom to fit after the expansion


def test_a_dbt_asset_shows_its_row_count_and_columns(store, ui, browser):
    with _evidence(browser, store, "dbt_asset_customer_360"):
        browser.get(f"{ui}/assets/marts/customer_360")
        row_count = _wait(browser, lambda d: _xpath(
            d, "//span[normalize-space()='Row count']/following-sibling::*[1]").text,
            "the row count")
        assert int(row_count.replace(",", "")) == store.customer_360_rows, row_count
        cells = _wait(browser, lambda d: d.find_elements(
            "xpath", "//table[thead//td[normalize-space()='Column name']]/tbody/tr/td[1]/span"),
            "the columns table")
        assert [cell.text for cell in cells] == store.customer_360_columns
        # fold the long description (with the model's SQL) so the shot shows the columns
        _wait(browser, _click("//button[@aria-expanded='true'][.//span[normalize-space()="
                              "'Description']]"), "the description's fold button")
        _wait(browser, lambda d: _xpath(d, "//table[thead//td[normalize-space()='Column name']]"
                                           ).is_displayed(), "the columns table in view")


MARKDOWN_DIALOG = "//div[@role='dialog'][.//div[normalize-space()='{label}']]"


def _open_markdown(driver: Any, label: str) -> Any:
    """Opens the Markdown metadata entry `label` of the asset page's latest materialization."""
    _wait(driver, _click(f"//tr[td[1][normalize-space()='{label}']]"
                         "//a[normalize-space()='[Show Markdown]']"),
          f"the metadata entry {label!r}")
    dialog = _wait(driver, lambda d: _xpath(d, MARKDOWN_DIALOG.format(label=label)),
                   f"the {label!r} dialog")
    # Blueprint fades dialogs in and out (its `-enter-active` and `-exit-active` classes)
    _wait(driver, lambda d: not d.find_elements(
        "css selector", "[class*='-enter-active'], [class*='-exit-active']"),
        f"the {label!r} dialog's transition")
    return dialog


LATEST_METADATA = """query ($path: [String!]!) { assetOrError(assetKey: {path: $path}) {
  ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries { label } } } } }"""


def test_the_segment_report_renders_every_segment(store, ui, browser, record_property):
    with _evidence(browser, store, "segment_report"):
        browser.get(f"{ui}/assets/marts/segment_summary")
        dialog = _open_markdown(browser, "preview")
        rows = _wait(browser, lambda d: [
            [cell.text for cell in row.find_elements("xpath", "td")]
            for row in _xpath(d, MARKDOWN_DIALOG.format(label="preview")).find_elements(
                "xpath", ".//table/tbody/tr")], "the preview table's rows")
        headers = [cell.text for cell in dialog.find_elements("xpath", ".//table/thead//th")]
        assert headers[:3] == ["segment", "type", "customers"], headers
        shown = {row[0]: int(row[2].replace(",", "")) for row in rows}
        assert shown == store.segments
        assert {row[1] for row in rows} == {"rfm", "rule", "ml"}

    # the segment mix plot (Markdown with an inline PNG, behind its [Show Markdown] link)
    [latest] = _graphql(ui, LATEST_METADATA, {"path": ["marts", "segment_summary"]})[
        "assetOrError"]["assetMaterializations"]
    assert "segment_mix_plot" in {entry["label"] for entry in latest["metadataEntries"]}
    with _evidence(browser, store, "segment_mix_plot"):
        _wait(browser, _click("//div[@role='dialog']//button[normalize-space()='Close']"),
              "the preview dialog's Close button")
        dialog = _open_markdown(browser, "segment_mix_plot")
        width = _wait(browser, lambda d: d.execute_script(
            "const img = arguments[0].querySelector('img');"
            "return img && img.complete ? img.naturalWidth : 0;", dialog),
            "the segment mix plot's image to load")
        assert width > 0
        record_property("segment_mix_plot", f"rendered, {width} px wide")


RUN = """query ($runId: ID!) { runOrError(runId: $runId) {
  ... on Run { status assetSelection { path } } } }"""


def test_a_materialization_launched_from_the_ui_succeeds(store, ui, browser):
    """marts/segment_summary: a dbt model (and its tests) that takes a few seconds."""
    with _evidence(browser, store, "run_success"):
        browser.get(f"{ui}/assets/marts/segment_summary")
        _wait(browser, lambda d: _xpath(d, "//span[normalize-space()='Row count']"),
              "the asset page")
        _wait(browser, _click("//button[normalize-space()='Materialize']"),
              "the Materialize button")
        link = _wait(browser, lambda d: _xpath(
            d, "//li[@data-sonner-toast][contains(normalize-space(), 'Launched run')]//a"),
            "the 'Launched run' notice")
        run_url = link.get_attribute("href")
        run_id = run_url.rstrip("/").rsplit("/", 1)[-1]
        run = _graphql(ui, RUN, {"runId": run_id})["runOrError"]
        assert run["assetSelection"] == [{"path": ["marts", "segment_summary"]}], run
        browser.get(run_url)
        # the run page's title ends in the run's status: [SUCCESS], [FAILURE] or [CANCELED]
        final = _wait(browser, lambda d: any(f"[{status}]" in d.title for status in
                                             ("SUCCESS", "FAILURE", "CANCELED")) and d.title,
                      "the run to finish", timeout=RUN_TIMEOUT)
        assert "[SUCCESS]" in final, final
        assert _graphql(ui, RUN, {"runId": run_id})["runOrError"]["status"] == "SUCCESS"
        # the page again, finished: its event log whole (streamed while running, it can lag)
        browser.refresh()
        _wait(browser, lambda d: _xpath(d, "//*[normalize-space()='RUN_SUCCESS']"),
              "the RUN_SUCCESS event in the run's log")
        _wait(browser, lambda d: _xpath(d, "//*[@aria-label='run_success']/following-sibling::"
                                           "*[normalize-space()='Success']").is_displayed(),
              "the run's Success tag")
        _wait(browser, lambda d: _xpath(d, "//*[normalize-space()='Succeeded (1)']"),
              "the succeeded step")
        [latest] = _graphql(ui, LATEST_METADATA, {"path": ["marts", "segment_summary"]})[
            "assetOrError"]["assetMaterializations"]
        assert latest["runId"] == run_id


JOB_RUNS = """query { pipelineOrError(params: {repositoryLocationName: "segmenta",
  repositoryName: "__repository__", pipelineName: "refresh_all"}) {
  ... on Pipeline { runs { runId tags { key value } } } } }"""


def test_the_command_lines_run_is_on_the_timeline_of_its_code_location(store, ui, browser):
    """`segmenta run` executes in its own process, yet its run belongs to the code location the
    UI serves (dagster_project/origin.py): listed under the job, on the Overview timeline."""
    runs = _graphql(ui, JOB_RUNS)["pipelineOrError"]["runs"]
    by_cli = [run for run in runs if {"key": "segmenta/trigger", "value": "make run"}
              in run["tags"]]
    assert by_cli, runs
    with _evidence(browser, store, "timeline"):
        browser.get(f"{ui}/overview/activity/timeline")
        # the row links to the job in its code location
        _wait(browser, lambda d: _xpath(d, "//a[@href='/locations/segmenta/jobs/refresh_all']"
                                           "[.//span[normalize-space()='refresh_all']]"),
              "refresh_all's row on the timeline")
    # and nothing of a UI run lands in the folder dg dev runs in (MLflow's default ./mlflow.db)
    assert not {"mlflow.db", "mlruns", "mlartifacts"} & {p.name for p in PROJECT_ROOT.iterdir()
                                                         if p.stat().st_mtime > store.built_at}
