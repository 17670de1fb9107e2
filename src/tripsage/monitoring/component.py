"""The monitoring component: /metrics (Prometheus text format) and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tripsage.monitoring.dashboard import Dashboard


class MonitoringComponent:
    name = "monitoring"

    def __init__(self) -> None:
        self.runtime: Any = None
        # Routes are built before start(); the dashboard gets the runtime when the component starts.
        self.dashboard = Dashboard(None)

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/metrics", self.scrape, methods=["GET"]), *self.dashboard.routes()]

    async def start(self, runtime: Any) -> None:
        self.runtime = runtime
        self.dashboard.runtime = runtime

    async def stop(self) -> None:
        self.runtime = None

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    async def scrape(self, request: Request) -> Response:
        metrics = self.runtime.metrics
        await metrics.refresh(self.runtime.database)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
