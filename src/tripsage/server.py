"""The runtime: one ASGI app (health, and the routes of each component) plus the background workers.

Components are the capabilities (scheduler, webhook dispatcher, net worker, realtime, functions, monitoring). Each
one contributes routes and/or background work and reports its health; `build_runtime` wires them. Any number of
replicas may run against one database: components coordinate in PostgreSQL, never in this process's memory.
"""

from __future__ import annotations

import asyncio
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
from tripsage.db import topology
from tripsage.db.connector import Database
from tripsage.exceptions import DatabaseError
from tripsage.monitoring.metrics import Metrics

log = logging.getLogger(__name__)
Q = queries_for("tripsage.db")
READ_ONLY_RECHECK = 5.0  # seconds between checks of a read-only server for writability


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
    pool_url: str | None = None  # the pool's URL when it differs from database_url (TRIPSAGE_DB_DIRECT_URL is set)
    pool_prepared_statements: bool = True  # off when the pool goes through a transaction-mode pooler
    read_only: bool = False  # the server refuses writes: the components wait (a standby, until it is promoted)
    _started: list[Component] = field(default_factory=list)
    _waiting: asyncio.Task[None] | None = None

    @property
    def database(self) -> Database:
        assert self.db is not None, "the runtime is not started"
        return self.db

    async def start(self) -> None:
        self.db = Database(
            self.pool_url or self.database_url,
            max_size=self.settings.pool_max_size,
            role=self.settings.db_role,
            application_name="tripsage-runtime",
            prepared_statements=self.pool_prepared_statements,
        )
        await self.db.open()
        if await self._server_read_only():
            # Not an error loop: one warning, /health says what to do, and the components start once it is writable.
            self.read_only = True
            log.warning("%s; the components start when it accepts writes", topology.READ_ONLY_ADVICE)
            self._waiting = asyncio.create_task(self._start_when_writable(), name="runtime-wait-writable")
            return
        await self._start_components()

    async def _server_read_only(self) -> bool:
        row = await self.database.fetch_one(Q["server_role_state"])
        return bool(row and (row["in_recovery"] or row["default_read_only"]))

    async def _start_when_writable(self) -> None:
        while True:
            await asyncio.sleep(READ_ONLY_RECHECK)
            try:
                if await self._server_read_only():
                    continue
            except DatabaseError as error:
                log.warning("runtime: cannot check the server (%s)", error)
                continue
            log.info("runtime: the server accepts writes now; starting the components")
            self.read_only = False
            try:
                await self._start_components()
            except Exception:
                log.exception("runtime: the components failed to start")
            return

    async def _start_components(self) -> None:
        for component in self.components:
            await component.start(self)
            self._started.append(component)
            log.info("component %s started", component.name)

    async def stop(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._waiting
            self._waiting = None
        for component in reversed(self._started):
            try:
                await component.stop()
            except Exception:  # one component failing to stop must not keep the others running
                log.exception("component %s failed to stop", component.name)
        self._started = []
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
        if self.read_only and database["status"] == "ok":
            database = {**database, "status": "error", "read_only": True, "error": topology.READ_ONLY_ADVICE}
        components = {component.name: component.health() for component in self._started}
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


def build_runtime(
    settings: Settings, database_url: str, *, pool_url: str | None = None, pool_prepared_statements: bool = True
) -> Runtime:
    """The runtime: `database_url` for its session-bound parts (LISTEN, leader lock, job sessions), `pool_url` (by
    default the same) for its pool."""
    return Runtime(
        settings=settings,
        database_url=database_url,
        pool_url=pool_url,
        pool_prepared_statements=pool_prepared_statements,
        components=default_components(settings),
    )
