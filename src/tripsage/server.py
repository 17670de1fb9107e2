"""The runtime: one ASGI app (health, and the routes of each component) plus the background workers.

Components are the capabilities (scheduler, webhook dispatcher, net worker, realtime, functions, monitoring). Each
one contributes routes and/or background work and reports its health; `build_runtime` wires them. Any number of
replicas may run against one database: components coordinate in PostgreSQL, never in this process's memory.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tripsage import __version__, jwt, queries_for, redact
from tripsage.config import Settings
from tripsage.db.connector import Database
from tripsage.exceptions import DatabaseError
from tripsage.monitoring.metrics import Metrics

log = logging.getLogger(__name__)
Q = queries_for("tripsage.db")


class Component(Protocol):
    """A capability hosted by the runtime."""

    name: str

    def routes(self) -> Sequence[BaseRoute]: ...

    async def start(self, runtime: Runtime) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    components: list[Component] = field(default_factory=list)
    db: Database | None = None
    started_at: float = field(default_factory=time.time)
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def database(self) -> Database:
        assert self.db is not None, "the runtime is not started"
        return self.db

    async def start(self) -> None:
        self.db = Database(
            self.database_url,
            max_size=self.settings.pool_max_size,
            role=self.settings.db_role,
            application_name="tripsage-runtime",
        )
        await self.db.open()
        for component in self.components:
            await component.start(self)
            log.info("component %s started", component.name)

    async def stop(self) -> None:
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:  # one component failing to stop must not keep the others running
                log.exception("component %s failed to stop", component.name)
        if self.db is not None:
            await self.db.close()
            self.db = None

    async def health(self) -> dict[str, Any]:
        database: dict[str, Any]
        began = time.perf_counter()
        try:
            row = await self.database.fetch_one(Q["server_version"])
            database = {
                "status": "ok",
                "latency_ms": round((time.perf_counter() - began) * 1000, 2),
                **(row or {}),
            }
        except DatabaseError as error:
            database = {"status": "error", "error": str(error)}
        components = {component.name: component.health() for component in self.components}
        statuses = [database["status"], *(c.get("status", "ok") for c in components.values())]
        overall = "ok" if all(s == "ok" for s in statuses) else ("error" if database["status"] != "ok" else "degraded")
        return {
            "status": overall,
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "database": database,
            "components": components,
        }


def default_components(settings: Settings) -> list[Component]:
    """The components `tripsage up` and `tripsage serve` run. Each capability registers here."""
    from tripsage.monitoring.component import MonitoringComponent

    components: list[Component] = [MonitoringComponent()]
    from tripsage.webhooks.component import WebhooksComponent

    components.append(WebhooksComponent())
    from tripsage.net.component import NetComponent

    components.append(NetComponent())
    from tripsage.scheduler.component import SchedulerComponent

    components.append(SchedulerComponent())
    from tripsage.realtime.component import RealtimeComponent

    components.append(RealtimeComponent())
    from tripsage.functions.component import FunctionsComponent

    components.append(FunctionsComponent())
    return components


def is_service_role(request: Request, secret: str) -> bool:
    """Whether the request carries the project's service_role key (`Authorization: Bearer` or `apikey`)."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    token = bearer.strip() if scheme.lower() == "bearer" else request.headers.get("apikey", "").strip()
    if not token:
        return False
    try:
        return jwt.verify(secret, token).get("role") == "service_role"
    except jwt.InvalidToken:
        return False


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact.redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def public_health(report: dict[str, Any]) -> dict[str, Any]:
    """What anyone may see: the overall status and each component's, nothing else (no errors, roles, hosts)."""
    return {
        "status": report["status"],
        "database": {"status": report["database"]["status"]},
        "components": {name: {"status": c.get("status", "ok")} for name, c in report["components"].items()},
    }


def build_app(runtime: Runtime) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        report = await runtime.health()
        status = 200 if report["status"] != "error" else 503
        if not is_service_role(request, runtime.settings.jwt_secret):
            return JSONResponse(public_health(report), status_code=status)
        return JSONResponse(_redacted(report), status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    routes: list[BaseRoute] = [Route("/health", health, methods=["GET"])]
    for component in runtime.components:
        routes.extend(component.routes())
    return Starlette(routes=routes, lifespan=lifespan)


def build_runtime(settings: Settings, database_url: str) -> Runtime:
    return Runtime(settings=settings, database_url=database_url, components=default_components(settings))
