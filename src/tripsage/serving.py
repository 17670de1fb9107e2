"""How the runtime is served: uvicorn with our HTTP protocol (limits on the request head), TLS when configured, and
log redaction on every handler. `tripsage up`/`serve` and the tests build their server with `server_config`.

Why a protocol of our own: uvicorn's httptools protocol keeps appending to the request target and the headers with no
limit, and an oversized websocket upgrade is then handed to the websockets parser, which fails without answering (the
connection and its megabytes stay). Here a request target over MAX_TARGET_BYTES gets 414, a head over the header
limits gets 431, and the connection is closed (after a short linger, so the client can read the answer).
"""

from __future__ import annotations

import asyncio
import http
from typing import TYPE_CHECKING, Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tripsage import redact

if TYPE_CHECKING:
    from tripsage.config import Settings

# The websockets parser the upgrade goes to refuses lines over 8192 bytes and more than 128 headers: stay below both.
MAX_TARGET_BYTES = 8000  # the request target (path and query)
MAX_HEADER_BYTES = 8000  # one header's name and value
MAX_HEADER_COUNT = 100
MAX_HEAD_BYTES = 64 * 1024  # the whole request head
LINGER = 2.0  # seconds a refused connection keeps reading (and discarding) before it is closed
LINGER_BYTES = 1024 * 1024  # bytes discarded at most while lingering
WS_MAX_MESSAGE = 1024 * 1024 + 1024  # bytes: realtime's frame limit (Limits.frame_bytes) plus room for the envelope


class HeadTooLarge(Exception):
    def __init__(self, status: http.HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on the request head (414 and 431, then the connection closes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._refused = False
        self._discarded = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_TARGET_BYTES:
            raise HeadTooLarge(http.HTTPStatus.REQUEST_URI_TOO_LONG)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if len(name) + len(value) > MAX_HEADER_BYTES or self._header_count > MAX_HEADER_COUNT:
            raise HeadTooLarge(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        if self._in_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, HeadTooLarge):
                self._refuse(error.__context__.status)
            else:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            return
        # The parser keeps a partial header to itself: bound the head by the bytes received while in it.
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def _refuse(self, status: http.HTTPStatus) -> None:
        self.logger.warning("Refused a request: %s (%d)", status.phrase, status.value)
        body = status.phrase.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status.value, status.phrase.encode(), len(body), body)
        )
        self._refused = True
        self.parser = None  # type: ignore[assignment]  # what it holds of the head is released now
        self.url = b""
        self.headers = []
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER, self.transport.close)


def server_config(app: Any, settings: Settings, host: str, port: int, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of the runtime (limits, TLS from the settings), with redacted logs."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "lifespan": "on",
        "http": LimitedHttpToolsProtocol,
        "ws": "websockets-sansio",
        "ws_max_size": WS_MAX_MESSAGE,
        "ws_per_message_deflate": settings.realtime_compression,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
    }
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        options["ssl_certfile"] = str(settings.tls_cert_file)
        options["ssl_keyfile"] = str(settings.tls_key_file)
    options.update(overrides)
    config = uvicorn.Config(app, **options)
    redact.install()
    return config
