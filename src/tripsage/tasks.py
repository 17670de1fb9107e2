"""Background tasks of the runtime's components: the wake-or-poll work loop, and stopping tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task, then wait for each to finish; what a task raises while stopping is not the caller's."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def work_loop(
    work_once: Callable[[], Awaitable[bool]],
    wake: asyncio.Event,
    *,
    poll_interval: float,
    error_backoff: float,
    on_error: Callable[[Exception], None],
    errors: tuple[type[Exception], ...],
    running: Callable[[], bool] = lambda: True,
) -> None:
    """Run rounds of work while `running()`: the next one at once after a full round (`work_once` returned True),
    else on a wake-up (NOTIFY is only a hint) or after `poll_interval` seconds. A round that raises one of `errors`
    is reported to `on_error`, and the next waits `error_backoff` seconds."""
    while running():
        wake.clear()
        try:
            full = await work_once()
        except errors as error:
            on_error(error)
            await asyncio.sleep(error_backoff)
            continue
        if full:
            await asyncio.sleep(0)  # a yield point: a long backlog must not starve the other tasks
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_interval)
