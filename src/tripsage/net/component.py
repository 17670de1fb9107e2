"""The pg_net emulation's worker in the runtime: woken by NOTIFY at commit (polling as the fallback)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from tripsage.db.connector import listen
from tripsage.exceptions import TripSageError
from tripsage.net.worker import BATCH_SIZE, NetWorker
from tripsage.tasks import cancel_all

if TYPE_CHECKING:
    from tripsage.server import Runtime

log = logging.getLogger(__name__)

CHANNEL = "tripsage_net"
POLL_INTERVAL = 1.0  # seconds between polls without a NOTIFY (and for TTL cleanup)
ERROR_BACKOFF = 1.0  # seconds after a database error


class NetComponent:
    name = "net"

    def __init__(self) -> None:
        self.worker: NetWorker | None = None
        self.active = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.last_error: str | None = None

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self, runtime: Runtime) -> None:
        self.worker = NetWorker(runtime.database)
        self.active = await self.worker.emulated()
        if not self.active:  # the real pg_net (or none): nothing for us to execute
            return
        await self.worker.open()
        self._tasks = [
            asyncio.create_task(self._listen(runtime.database_url), name="net-listen"),
            asyncio.create_task(self._work(), name="net-worker"),
        ]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []
        if self.worker is not None:
            await self.worker.close()

    def health(self) -> dict[str, Any]:
        if not self.active:
            return {"status": "ok", "emulated": False}
        alive = all(not t.done() for t in self._tasks)
        sent = self.worker.sent if self.worker else 0
        return {"status": "ok" if alive else "degraded", "emulated": True, "sent": sent, "last_error": self.last_error}

    async def _listen(self, url: str) -> None:
        async for _channel in listen(url, [CHANNEL]):
            self._wake.set()

    async def _work(self) -> None:
        assert self.worker is not None
        while True:
            self._wake.clear()
            try:
                sent = await self.worker.run_once()
            except TripSageError as error:
                self.last_error = str(error)
                log.warning("net worker round failed: %s", error)
                await asyncio.sleep(ERROR_BACKOFF)
                continue
            if sent < BATCH_SIZE:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL)
