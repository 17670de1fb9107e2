"""Monitoring from outside: /metrics scraped over HTTP, and the dashboard in headless Chromium."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web
from testkit import servers
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings, service_role_key

from tests.integration.webhooks.conftest import Receiver, emit, point, serving, sql
from tripsage.db.connector import Database
from tripsage.db.vault import keyring

ARTIFACTS = servers.REPO / "test-artifacts"
USER = "00000000-0000-4000-8000-0000000000e1"


@pytest.fixture
async def runtime(embedded_database: str, tmp_path: Path) -> AsyncIterator[RunningRuntime]:
    settings = runtime_settings(tmp_path, webhook_allow_hosts="127.0.0.1")
    async with running_runtime(settings, embedded_database) as running:
        yield running


async def scrape(base_url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


def sample(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return None if match is None else float(match.group(1))


async def test_metrics_move_with_activity(runtime: RunningRuntime, embedded_database: str) -> None:
    before = await scrape(runtime.base_url)
    assert "tripsage_webhook_deliveries_total" in before or "# HELP tripsage_webhook_deliveries" in before
    labels = '{cache="flights",result="miss"}'
    assert sample(before, "tripsage_search_cache_lookups_today", labels) is None
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id) VALUES (%s)", [USER])
        for _ in range(3):
            conn.execute("SELECT search_cache_lookup('flights', 'nothing-cached', %s)", [USER])
    after = await scrape(runtime.base_url)
    assert sample(after, "tripsage_search_cache_lookups_today", labels) == 3.0
    # A job scheduled through pg_cron's API runs under the runtime's scheduler; its runs show up by status.
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        conn.execute("SELECT cron.schedule('metrics-tick', '1 seconds', 'SELECT 1')")
    runs = None
    for _ in range(100):
        runs = sample(await scrape(runtime.base_url), "tripsage_job_runs_24h", '{status="succeeded"}')
        if runs:
            break
        await asyncio.sleep(0.1)
    assert runs is not None and runs >= 1


# What each chart shows, read from plotly's own state in the page (the screenshot's page state).
CHART_STATE = """
const out = {};
for (const element of document.querySelectorAll(".chart")) {
  const full = element._fullLayout || {};
  const shown = axis => (axis && axis.visible !== false ? axis.range : null);
  out[element.id] = {
    empty: element.dataset.empty === "true",
    annotations: (full.annotations || []).map(a => a.text),
    x: shown(full.xaxis),
    y: shown(full.yaxis),
    values: (element.data || []).map(trace => Array.from(trace.y)),
  };
}
return out;
"""
DAY = dt.timedelta(hours=24)


def span(axis: list[str]) -> dt.timedelta:
    start, end = (dt.datetime.fromisoformat(str(moment)) for moment in axis)
    return end - start


def browser_or_skip() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium and chromedriver are not installed (scripts/browser.sh installs them as root)")
    return chromium, driver


def drive_dashboard(
    base_url: str, key: str, screenshot: Path, replay: Callable[[Any], None] | None = None
) -> dict[str, object]:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    chromium, driver_path = browser_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        browser.get(f"{base_url}/dashboard")
        browser.find_element(By.ID, "key").send_keys("not-a-key")
        browser.find_element(By.ID, "sign-in").click()
        # The refusal is a new page: wait for its message (an element of the old page may go stale meanwhile).
        refused = WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda b: b.find_element(By.CLASS_NAME, "error").text
        )
        browser.find_element(By.ID, "key").send_keys(key)
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 30).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body[data-charts-ready='true']"))
        )
        if replay is not None:
            replay(browser)
        charts = browser.find_elements(By.CSS_SELECTOR, ".chart .main-svg")
        traces = browser.find_elements(By.CSS_SELECTOR, "#chart-health .scatterlayer .trace")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(screenshot))
        return {
            "refused": refused,
            "charts": len(charts),
            "health_traces": len(traces),
            "sections": browser.find_element(By.ID, "jobs").text,
            "chart_state": browser.execute_script(CHART_STATE),
            "summary": browser.find_element(By.CSS_SELECTOR, "#webhooks p").text,
        }
    finally:
        browser.quit()


async def test_dashboard_signs_in_and_draws_charts(runtime: RunningRuntime, embedded_database: str) -> None:
    browser_or_skip()
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        # Real measurements of this database, as the health job records them, at three moments.
        for minutes in (10, 5, 0):
            conn.execute(
                "INSERT INTO system_metrics (metric_type, metric_name, value, created_at) "
                "SELECT 'database', 'connections_total', count(*), now() - make_interval(mins => %s) "
                "FROM pg_stat_activity",
                [minutes],
            )
    key = service_role_key(runtime.settings.jwt_secret)
    shot = ARTIFACTS / "dashboard.png"
    result = await asyncio.to_thread(drive_dashboard, runtime.base_url, key, shot)
    assert "not this project's service_role key" in str(result["refused"])
    assert int(str(result["charts"])) >= 4
    # The eight maintenance jobs, each with its next run from its cron schedule (the emulated scheduler's parser).
    jobs = str(result["sections"])
    nightly = dt.datetime.now(dt.UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    if nightly <= dt.datetime.now(dt.UTC):
        nightly += dt.timedelta(days=1)
    assert f"cleanup-expired-search-cache 0 2 * * * True {nightly:%Y-%m-%d %H:%M:%S}" in jobs
    assert "monitor-database-health" in jobs
    assert int(str(result["health_traces"])) >= 1
    assert shot.stat().st_size > 10_000
    # Charts without data say so (no bare axes); a chart with data spans the whole 24 h window.
    charts: dict[str, Any] = result["chart_state"]  # type: ignore[assignment]
    for empty in ("chart-webhook-success", "chart-webhook-latency", "chart-runtime-latency"):
        assert charts[empty]["empty"] and charts[empty]["annotations"] == ["no data yet"], charts[empty]
        assert charts[empty]["x"] is None and charts[empty]["y"] is None
    assert not charts["chart-health"]["empty"] and charts["chart-health"]["annotations"] == []
    assert span(charts["chart-health"]["x"]) == DAY
    assert result["summary"].startswith("0 attempts, success rate no deliveries")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as recv:
        yield recv


async def delivery_status(db: Database, delivery_id: int) -> str:
    [row] = await sql(db, "SELECT status FROM webhooks.deliveries WHERE id = %(id)s", {"id": delivery_id})
    return str(row["status"])


async def test_dashboard_replays_a_dead_letter(
    runtime: RunningRuntime, embedded_database: str, receiver: Receiver
) -> None:
    """A receiver refuses an event for good (Svix's abort-message), the delivery dies; replay from the dashboard
    delivers it once the receiver accepts."""
    browser_or_skip()
    receiver.answer = lambda r: web.Response(status=400, headers={"webhook-delivery": "abort-message"})
    async with Database(embedded_database, max_size=2) as db:
        await point(db, keyring(runtime.settings), receiver.url, name="dashboard-hook", events=["booking.*"])
        event_id = await emit(db, "booking.confirmed", {"booking_id": 7})
        [row] = await sql(db, "SELECT id FROM webhooks.deliveries WHERE event_id = %(e)s", {"e": event_id})
        delivery_id = int(row["id"])
        for _ in range(300):
            if await delivery_status(db, delivery_id) == "dead":
                break
            await asyncio.sleep(0.1)
        assert await delivery_status(db, delivery_id) == "dead"
        dead = await scrape(runtime.base_url)
        assert sample(dead, "tripsage_webhook_deliveries_total", '{outcome="dead"}') == 1.0
        assert sample(dead, "tripsage_webhook_dead_letters") == 1.0
        receiver.answer = lambda r: web.Response(text="ok")

        def press_replay(browser: Any) -> None:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support import expected_conditions
            from selenium.webdriver.support.wait import WebDriverWait

            button = browser.find_element(By.CSS_SELECTOR, f"button.replay[data-delivery='{delivery_id}']")
            button.click()
            WebDriverWait(browser, 30).until(expected_conditions.staleness_of(button))  # the page was replaced
            WebDriverWait(browser, 30).until(
                expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "body[data-charts-ready='true']"))
            )

        key = service_role_key(runtime.settings.jwt_secret)
        shot = ARTIFACTS / "dashboard-replay.png"
        result = await asyncio.to_thread(drive_dashboard, runtime.base_url, key, shot, press_replay)
        # One hour's point (one attempt, or two): the time axis still spans 24 h, the rate axis 0 to 100 %, and the
        # summary line says the rate the chart shows.
        success: dict[str, Any] = result["chart_state"]["chart-webhook-success"]  # type: ignore[index]
        assert not success["empty"] and span(success["x"]) == DAY and success["y"] == [0, 100]
        summary = re.search(r"(\d+) attempts, success rate ([\d.]+) %", str(result["summary"]))
        assert summary is not None, result["summary"]
        assert float(summary.group(2)) == round(success["values"][0][-1], 1)
        for _ in range(300):
            if await delivery_status(db, delivery_id) == "succeeded":
                break
            await asyncio.sleep(0.1)
        assert await delivery_status(db, delivery_id) == "succeeded"
    delivered = await scrape(runtime.base_url)
    assert sample(delivered, "tripsage_webhook_deliveries_total", '{outcome="succeeded"}') == 1.0
    assert sample(delivered, "tripsage_webhook_dead_letters") == 0.0
    ids = {r.headers.get("webhook-id") for r in receiver.received}
    assert len(receiver.received) == 2 and len(ids) == 1  # the refused attempt and the replay, one webhook-id
    assert shot.stat().st_size > 10_000
