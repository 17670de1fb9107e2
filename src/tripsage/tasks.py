"""Background tasks of the runtime's components: the wake-or-poll work loop, the wait under it, and stopping tasks.

`work_loop` serves the webhooks dispatcher, the email sender, the realtime reader and the pg_net worker (which does
not poll: `poll_interval=None`). The scheduler's leader waits with `wait_for_wake` too, but its loop is its own: it
waits until the next tick (a different time each round), and an error ends its leadership rather than one round
(see `tripsage.scheduler.component`)."""

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


async def wait_for_wake(wake: asyncio.Event, timeout: float | None) -> bool:
    """Wait until `wake` is set or `timeout` seconds have passed (None: no time limit); whether it was set."""
    if timeout is None:
        await wake.wait()
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout)
    return wake.is_set()


async def work_loop(
    work_once: Callable[[], Awaitable[bool]],
    wake: asyncio.Event,
    *,
    poll_interval: float | None,
    error_backoff: float,
    on_error: Callable[[Exception], None],
    errors: tuple[type[Exception], ...],
    running: Callable[[], bool] = lambda: True,
) -> None:
    """Run rounds of work while `running()`: the next one at once after a full round (`work_once` returned True),
    else on a wake-up (NOTIFY is only a hint) or after `poll_interval` seconds (None: only on a wake-up). A round that
    raises one of `errors` is reported to `on_error`, and the next waits `error_backoff` seconds."""
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
        await wait_for_wake(wake, poll_interval)
