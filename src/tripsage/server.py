"""The server: composes the ASGI app (health, and the routes of each component) and the runtime of the components.

This is the one module that knows every capability (`default_components`); the capabilities themselves import
`tripsage.runtime`, never this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tripsage import jwt, redact
from tripsage.clock import Clock, SystemClock
from tripsage.config import Settings
from tripsage.runtime import Component, Runtime


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
    settings: Settings,
    database_url: str,
    *,
    pool_url: str | None = None,
    pool_prepared_statements: bool = True,
    clock: Clock | None = None,
) -> Runtime:
    """The runtime: `database_url` for its session-bound parts (LISTEN, leader lock, job sessions), `pool_url` (by
    default the same) for its pool."""
    return Runtime(
        settings=settings,
        database_url=database_url,
        pool_url=pool_url,
        pool_prepared_statements=pool_prepared_statements,
        components=default_components(settings),
        clock=clock or SystemClock(),
    )
