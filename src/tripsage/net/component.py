"""The pg_net emulation's worker in the runtime: it sleeps until woken, as pg_net's background worker does.

`net.wake()` (called by every request function) notifies channel tripsage_net at commit; the worker then runs
rounds until one finds nothing to send and nothing to expire. While its LISTEN connection is healthy the idle
worker sends no query; after (re)connecting it makes one catch-up round, since a NOTIFY may have been missed.
`net.worker_restart()` notifies tripsage_net_restart: the worker reconnects (and so catches up). The LISTEN
connection's application_name (`WORKER_APPLICATION_NAME`) is how `net._worker_is_up()` sees the worker.

The rounds run in `tasks.work_loop`, the dispatcher's loop, with two settings of its own: no polling
(`poll_interval=None`: only a NOTIFY starts a round, as only a request wakes pg_net's worker), and the first round
waits for the LISTEN connection's catch-up wake instead of running at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from tripsage import ssrf
from tripsage.db.connector import listen
from tripsage.exceptions import TripSageError
from tripsage.net import WORKER_APPLICATION_NAME
from tripsage.net.worker import NetWorker
from tripsage.tasks import cancel_all, work_loop

if TYPE_CHECKING:
    from tripsage.runtime import Runtime

log = logging.getLogger(__name__)

CHANNEL = "tripsage_net"
RESTART_CHANNEL = "tripsage_net_restart"
ERROR_BACKOFF = 1.0  # seconds after a database error before the round is tried again


class NetComponent:
    name = "net"

    def __init__(self) -> None:
        self.worker: NetWorker | None = None
        self.active = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.last_error: str | None = None
        self.rounds = 0  # rounds run (each reads the queue once)

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self, runtime: Runtime) -> None:
        allow = ssrf.AllowList.parse(runtime.settings.net_allow_hosts)
        self.worker = NetWorker(runtime.database, allow=allow)
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
        while True:  # one pass per connection: net.worker_restart() ends a pass
            notifications = listen(url, [CHANNEL, RESTART_CHANNEL], application_name=WORKER_APPLICATION_NAME)
            async with contextlib.aclosing(notifications):
                async for notification in notifications:
                    if notification.channel == RESTART_CHANNEL:
                        log.info("net.worker_restart(): reconnecting")
                        break
                    self._wake.set()  # "" after (re)connecting: the catch-up round

    async def _work(self) -> None:
        await self._wake.wait()  # the first round is the catch-up after the LISTEN connection is up
        await work_loop(
            self._round,
            self._wake,
            poll_interval=None,  # the idle worker sends no query
            error_backoff=ERROR_BACKOFF,
            on_error=self._round_failed,
            errors=(TripSageError,),
        )

    async def _round(self) -> bool:
        """One round; whether it found anything (then the next runs at once: pg_net's worker drains before sleeping
        again)."""
        assert self.worker is not None
        self.rounds += 1
        sent = await self.worker.run_once()
        return sent > 0 or self.worker.expired > 0

    def _round_failed(self, error: Exception) -> None:
        self.last_error = str(error)
        log.warning("net worker round failed: %s", error)
