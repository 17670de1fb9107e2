"""The runtime's own health report while its components start (real PostgreSQL, two plain components)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute
from testkit.runtime import runtime_settings

from tripsage.runtime import Runtime


class Part:
    def __init__(self, name: str, gate: asyncio.Event | None = None, last_error: str | None = None) -> None:
        self.name = name
        self.gate = gate
        self.last_error = last_error

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self, runtime: Runtime) -> None:
        if self.gate is not None:
            await self.gate.wait()

    async def stop(self) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "last_error": self.last_error}


async def test_health_is_not_ok_until_every_component_has_started(database: str, tmp_path: Path) -> None:
    # A promoted standby starts the components while /health is being asked: "ok" with half of them missing sent a
    # client on to a runtime without its scheduler.
    gate = asyncio.Event()
    runtime = Runtime(
        settings=runtime_settings(tmp_path), database_url=database, components=[Part("fast"), Part("slow", gate)]
    )
    starting = asyncio.create_task(runtime.start())
    try:
        while runtime.db is None or not runtime._started:
            await asyncio.sleep(0.01)
        report = await runtime.health()
        assert report["status"] == "degraded"
        assert report["database"]["status"] == "ok"
        assert list(report["components"]) == ["fast"]
        assert report["components_not_started"] == ["slow"]
        gate.set()
        await starting
        report = await runtime.health()
        assert report["status"] == "ok" and list(report["components"]) == ["fast", "slow"]
        assert "components_not_started" not in report
    finally:
        gate.set()
        await starting
        await runtime.stop()


async def test_every_components_errors_are_redacted_in_the_report(database: str, tmp_path: Path) -> None:
    # Whichever component stored it (the scheduler, the net worker, ...), an error carrying a URL's credentials or a
    # key is shown by /health without them.
    error = "cannot reach https://user:hunter2@hooks.example/h?apikey=sk_live_1 (Bearer abc.def)"
    runtime = Runtime(
        settings=runtime_settings(tmp_path), database_url=database, components=[Part("worker", last_error=error)]
    )
    await runtime.start()
    try:
        shown = (await runtime.health())["components"]["worker"]["last_error"]
        assert "hunter2" not in shown and "sk_live_1" not in shown and "abc.def" not in shown
        assert shown.startswith("cannot reach https://user:***@hooks.example/h?apikey=***")
    finally:
        await runtime.stop()
