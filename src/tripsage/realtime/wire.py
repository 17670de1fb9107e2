"""The socket writers' fast path: the frames already queued for one socket written to its transport at once.

Through ASGI every websocket message is one `send`, and uvicorn writes each to the transport on its own: one `send(2)`
per frame per socket, which was the largest part of the fan-out's time (docs/performance.md). When the socket is
served by uvicorn's websockets-sansio protocol (the runtime's, serving.py), a writer with several frames queued has
that protocol's websockets connection frame them all (its state machine stays the judge of what may be sent) and
writes the bytes in one call. Anything else (another server, a socket paused by flow control, closing or gone) goes
through the ordinary ASGI send, frame by frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.websockets import WebSocket
from websockets.protocol import State

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover - uvicorn without websockets: no fast path
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

SEARCH_DEPTH = 4  # ASGI send wrappers (Starlette's exception handling) between the endpoint and uvicorn


def _protocol_of(send: Any) -> Any:
    """The uvicorn websockets-sansio protocol whose `send` is at the bottom of `send`'s wrappers, or None."""
    if WebSocketsSansIOProtocol is None:
        return None
    for _ in range(SEARCH_DEPTH):
        owner = getattr(send, "__self__", None)
        if isinstance(owner, WebSocketsSansIOProtocol):
            return owner
        inner = [
            cell.cell_contents
            for cell in getattr(send, "__closure__", None) or ()
            if callable(getattr(cell, "cell_contents", None))
        ]
        if len(inner) != 1:
            return None
        send = inner[0]
    return None


class Wire:
    """Write a batch of frames to one socket: `write` returns False when the batch must go through ASGI instead."""

    def __init__(self, websocket: WebSocket) -> None:
        self._protocol = _protocol_of(getattr(websocket, "_send", None))

    @property
    def direct(self) -> bool:
        return self._protocol is not None

    def write(self, frames: Sequence[str | bytes]) -> bool:
        protocol = self._protocol
        if protocol is None:
            return False
        transport = protocol.transport
        if (
            protocol.disconnected
            or protocol.close_sent
            or not protocol.handshake_complete
            or protocol.initial_response is not None
            or not protocol.writable.is_set()
            or transport.is_closing()
            or protocol.conn.state is not State.OPEN
        ):
            return False
        conn = protocol.conn
        for frame in frames:
            if isinstance(frame, bytes):
                conn.send_binary(frame)
            else:
                conn.send_text(frame.encode())
        transport.write(b"".join(conn.data_to_send()))
        return True
