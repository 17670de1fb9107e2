"""The one way tests wait for something to happen: poll a condition until it holds, with a generous bound.

The bound is never a timing assertion: it only keeps a broken test from hanging (a loaded CI machine is slow).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

WAIT = 30.0  # seconds: the bound for anything to happen
POLL = 0.02  # seconds between checks


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], message: str = "", *, timeout: float = WAIT, interval: float = POLL
) -> None:
    """Return once `check()` (plain or async) is true; AssertionError(`message`) after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if loop.time() > deadline:
            raise AssertionError(message or "condition not met in time")
        await asyncio.sleep(interval)
