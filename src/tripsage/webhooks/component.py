"""The webhooks component of the runtime: dispatcher loops woken by NOTIFY (polling as the fallback), secret
generation for endpoints that have none, and under `tripsage up` the seed endpoints pointed at this runtime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.routing import BaseRoute

from tripsage import queries_for, redact, ssrf
from tripsage.db import vault
from tripsage.db.connector import listen
from tripsage.db.vault import keyring
from tripsage.exceptions import TripSageError
from tripsage.tasks import cancel_all, work_loop
from tripsage.webhooks.dispatcher import BATCH_SIZE, Dispatcher

if TYPE_CHECKING:
    from tripsage.runtime import Runtime

log = logging.getLogger(__name__)
Q = queries_for("tripsage.webhooks")

CHANNEL = "tripsage_webhooks"
POLL_INTERVAL = 1.0  # seconds between polls when no NOTIFY arrives (retries come due without one)
SECRET_CHECK_INTERVAL = 5.0  # seconds between looks for endpoints without a secret
ERROR_BACKOFF = 1.0  # seconds to wait after a database error
WORKERS = 4  # concurrent claim-send-record loops per runtime
CLEANUP_INTERVAL = 3600.0  # seconds between retention passes
RETENTION = 30 * 24 * 3600.0  # seconds succeeded deliveries, their logs and delivered events are kept
CLEANUP_BATCH = 10000  # rows of each kind deleted per statement
SEED_ROUTES = {"trip_events": "/functions/v1/trip-events", "ai_processing": "/functions/v1/ai-processing"}


def self_url(runtime: Runtime) -> str:
    """Where this runtime is reachable (TRIPSAGE_PUBLIC_URL, else its host and port)."""
    settings = runtime.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    scheme = "https" if settings.serves_tls else "http"
    return f"{scheme}://{host}:{settings.port}"


class WebhooksComponent:
    name = "webhooks"

    def __init__(self, *, workers: int = WORKERS, batch_size: int = BATCH_SIZE) -> None:
        self.workers = workers
        self.batch_size = batch_size
        self.dispatcher: Dispatcher | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self, runtime: Runtime) -> None:
        settings = runtime.settings
        allow = ssrf.AllowList.parse(settings.webhook_allow_hosts)
        base = self_url(runtime)
        if settings.webhook_point_seed:
            # `tripsage up`: the seed endpoints are this runtime's own functions, so its address is allowed.
            allow = allow.with_entries(urlsplit(base).hostname or "127.0.0.1")
            for name, path in SEED_ROUTES.items():
                await runtime.database.execute(Q["point_config"], {"name": name, "url": base + path})
        keys = keyring(settings)
        await vault.ensure_webhook_secrets(runtime.database, keys)
        self.dispatcher = Dispatcher(
            runtime.database, keys, allow, batch_size=self.batch_size, metrics=runtime.metrics, clock=runtime.clock
        )
        await self.dispatcher.open()
        self._stopping = False
        self._tasks = [asyncio.create_task(self._listen(runtime.database_url), name="webhooks-listen")]
        self._tasks.append(asyncio.create_task(self._secrets_loop(runtime), name="webhooks-secrets"))
        self._tasks.append(asyncio.create_task(self._retention_loop(runtime), name="webhooks-retention"))
        self._tasks.extend(
            asyncio.create_task(self._work(), name=f"webhooks-dispatch-{n}") for n in range(self.workers)
        )

    async def stop(self) -> None:
        self._stopping = True
        await cancel_all(self._tasks)
        self._tasks = []
        if self.dispatcher is not None:
            await self.dispatcher.close()

    def health(self) -> dict[str, Any]:
        d = self.dispatcher
        if d is None:
            return {"status": "error", "error": "not started"}
        alive = all(not t.done() for t in self._tasks)
        return {
            "status": "ok" if alive else "degraded",
            "worker_id": d.worker_id,
            "delivered": d.delivered,
            "failed_attempts": d.failed,
            "last_error": d.last_error,
        }

    async def _listen(self, url: str) -> None:
        async for _notification in listen(url, [CHANNEL]):
            self._wake.set()

    async def _secrets_loop(self, runtime: Runtime) -> None:
        assert self.dispatcher is not None
        while True:
            await asyncio.sleep(SECRET_CHECK_INTERVAL)
            try:
                named = await vault.ensure_webhook_secrets(runtime.database, self.dispatcher.keys)
                if named:
                    log.info("generated webhook secrets for %s", ", ".join(named))
            except TripSageError as error:
                log.warning("webhook secret check failed: %s", error)

    async def _retention_loop(self, runtime: Runtime) -> None:
        while True:
            await asyncio.sleep(CLEANUP_INTERVAL)
            try:
                params = {"older_than_s": RETENTION, "limit": CLEANUP_BATCH}
                while await runtime.database.fetch_value(Q["cleanup_outbox"], params) >= CLEANUP_BATCH:
                    pass
            except TripSageError as error:
                log.warning("webhook outbox cleanup failed: %s", error)

    async def _work(self) -> None:
        dispatcher = self.dispatcher
        assert dispatcher is not None

        async def dispatch() -> bool:
            return await dispatcher.dispatch_once() >= self.batch_size

        def failed(error: Exception) -> None:
            dispatcher.last_error = redact.redact(str(error))
            log.warning("webhook dispatch failed: %s", error)

        await work_loop(
            dispatch,
            self._wake,
            poll_interval=POLL_INTERVAL,
            error_backoff=ERROR_BACKOFF,
            on_error=failed,
            errors=(TripSageError,),
            running=lambda: not self._stopping,
        )
