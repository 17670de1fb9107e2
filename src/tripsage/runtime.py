"""The runtime: the `Component` protocol and the `Runtime` that starts, stops and reports on the components.

Components are the capabilities (scheduler, webhook dispatcher, net worker, realtime, functions, monitoring); each one
contributes routes and/or background work and reports its health. Capabilities import this module, never
`tripsage.server`, which composes the app and knows every component. Any number of replicas may run against one
database: components coordinate in PostgreSQL, never in this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.routing import BaseRoute

from tripsage import __version__, queries_for, redact
from tripsage.clock import Clock, SystemClock
from tripsage.config import Settings
from tripsage.db import topology
from tripsage.db.connector import Database
from tripsage.exceptions import DatabaseError
from tripsage.metrics import Metrics

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
    clock: Clock = field(default_factory=SystemClock)  # the wall clock the components read (tests move it)
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
            database = {"status": "error", "error": redact.redact(str(error))}
        if self.read_only and database["status"] == "ok":
            database = {**database, "status": "error", "read_only": True, "error": topology.READ_ONLY_ADVICE}
        components = {component.name: _redacted(component.health()) for component in self._started}
        statuses = [database["status"], *(c.get("status", "ok") for c in components.values())]
        pending = self._not_started()
        if not self.read_only and pending:
            # Some components are not running (still starting once a standby was promoted, or one failed to start):
            # never "ok" until every component has started.
            statuses.append("starting")
        overall = "ok" if all(s == "ok" for s in statuses) else ("error" if database["status"] != "ok" else "degraded")
        return {
            "status": overall,
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "database": database,
            "components": components,
            **({"components_not_started": pending} if pending else {}),
        }

    def _not_started(self) -> list[str]:
        started = {id(component) for component in self._started}
        return [component.name for component in self.components if id(component) not in started]


def _redacted(report: dict[str, Any]) -> dict[str, Any]:
    """A component's health report with its errors (`error`, `last_error`, ...) redacted, whichever component wrote
    them: /health shows them to the service_role key, and a URL's credentials must not go with them."""
    return {
        key: redact.redact(value) if key.endswith("error") and isinstance(value, str) else value
        for key, value in report.items()
    }
