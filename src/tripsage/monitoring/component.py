"""The monitoring component: /metrics (Prometheus text format), the dashboard, and the per-process figures each
replica writes to system_metrics every interval (what only a process can measure: realtime latency, function calls)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tripsage import queries_for
from tripsage.exceptions import DatabaseError
from tripsage.monitoring import metrics as database_figures
from tripsage.monitoring.dashboard import Dashboard
from tripsage.tasks import cancel_all

if TYPE_CHECKING:
    from tripsage.runtime import Runtime

log = logging.getLogger(__name__)
Q = queries_for("tripsage.monitoring")


class MonitoringComponent:
    name = "monitoring"

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        # Routes are built before start(); the dashboard gets the runtime when the component starts.
        self.dashboard = Dashboard(None)
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self._task: asyncio.Task[None] | None = None

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/metrics", self.scrape, methods=["GET"]), *self.dashboard.routes()]

    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.dashboard.runtime = runtime
        self._task = asyncio.create_task(self._figures_loop(runtime), name="monitoring-figures")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_all([self._task])
            self._task = None
        self.runtime = None

    async def write_figures(self, runtime: Runtime) -> dict[str, float]:
        """Write this process's figures for the interval just ended; returns them."""
        figures: dict[str, float] = runtime.metrics.interval_figures()
        await runtime.database.execute(
            Q["insert_runtime_figures"],
            {
                "replica": self.replica,
                "interval_s": runtime.settings.runtime_figures_interval_s,
                "names": list(figures),
                "values": list(figures.values()),
            },
        )
        return figures

    async def _figures_loop(self, runtime: Runtime) -> None:
        while True:
            await asyncio.sleep(runtime.settings.runtime_figures_interval_s)
            try:
                await self.write_figures(runtime)
            except DatabaseError as error:  # the database is down: the next interval tries again
                log.warning("could not write runtime figures: %s", error)

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    async def scrape(self, request: Request) -> Response:
        runtime = self.runtime
        assert runtime is not None, "the monitoring component is not started"
        await database_figures.refresh(runtime.metrics, runtime.database)
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
