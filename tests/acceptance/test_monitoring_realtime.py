"""Realtime figures reach monitoring: /metrics counts connections and messages, each replica writes its latency p95
to system_metrics, and the success metric `realtime_latency_p95` is computed from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from testkit.runtime import TEST_JWT_SECRET, RunningRuntime, running_runtime, runtime_settings, service_role_key
from testkit.workload import RealtimeFleet, create_users, insert_trips, wait_received

from tests.acceptance.test_monitoring_dashboard import ARTIFACTS, browser_or_skip, drive_dashboard, sample, scrape


@pytest.fixture
async def runtime(embedded_database: str, tmp_path: Path) -> AsyncIterator[RunningRuntime]:
    settings = runtime_settings(tmp_path, runtime_figures_interval_s=0.5)
    async with running_runtime(settings, embedded_database) as running:
        yield running


async def test_realtime_latency_reaches_metrics_and_success_metrics(
    runtime: RunningRuntime, embedded_database: str
) -> None:
    users = await asyncio.to_thread(create_users, embedded_database, 2)
    fleet = RealtimeFleet([runtime.base_url], users, 4, TEST_JWT_SECRET)
    await fleet.start(timeout=30)
    try:
        scraped = await scrape(runtime.base_url)
        assert sample(scraped, "tripsage_realtime_connections") == 4.0
        ids = await asyncio.to_thread(insert_trips, embedded_database, users, "monitored")
        assert await wait_received(fleet, {u: [t] for u, t in zip(users, ids, strict=True)}, 20.0) == 0
        scraped = await scrape(runtime.base_url)
        assert (sample(scraped, "tripsage_realtime_messages_total", '{kind="postgres_changes"}') or 0) >= 4.0
        assert (sample(scraped, "tripsage_realtime_latency_seconds_count") or 0) >= 1.0
    finally:
        await fleet.close()
    row = None
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        for _ in range(100):
            row = conn.execute(
                "SELECT value, metadata FROM system_metrics WHERE metric_type = 'runtime'"
                " AND metric_name = 'realtime_latency_p95_ms' ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                break
            await asyncio.sleep(0.1)
        assert row is not None, "no realtime latency figure was written"
        assert 0 < float(row[0]) < 10_000 and row[1]["replica"]
        metric = conn.execute(
            "SELECT value, ok FROM monitoring.success_metrics('1 hour') WHERE metric = 'realtime_latency_p95'"
        ).fetchone()
    assert metric is not None and metric[0] is not None and float(metric[0]) >= float(row[0])

    browser_or_skip()
    seen: dict[str, int] = {}

    def count_traces(browser: Any) -> None:
        from selenium.webdriver.common.by import By

        seen["traces"] = len(browser.find_elements(By.CSS_SELECTOR, "#chart-runtime-latency .scatterlayer .trace"))

    key = service_role_key(runtime.settings.jwt_secret)
    shot = ARTIFACTS / "dashboard-realtime.png"
    await asyncio.to_thread(drive_dashboard, runtime.base_url, key, shot, count_traces)
    assert seen["traces"] >= 1
