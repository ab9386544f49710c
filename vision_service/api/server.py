"""Serving the app with uvicorn, within the service's connection limits, and shutting down gracefully.

Limits on what a client can hold (settings in ``vision_service/core/config.py``):

* **request headers**: at most ``VISION_MAX_HEADER_BYTES`` (431 beyond, the connection closed)
  and ``VISION_HEADER_TIMEOUT_SECONDS`` from a connection's first byte to the end of its headers
  (408 and closed); uvicorn's httptools parser has neither, so a client could stream headers for
  ever, or send 128 MiB of them that the parser buffers whole while the event loop waits;
* **idle keep-alive connections**: closed after 5 s (uvicorn's ``timeout_keep_alive``);
* **bodies**: the routes' reader (``api/upload.py``: a pause limit and a total deadline);
* **connections and requests at once**: ``VISION_MAX_CONNECTIONS`` (uvicorn's
  ``limit_concurrency``: 503 beyond).

Shutdown (SIGTERM or Ctrl-C): ``/readyz`` answers 503 at once while the service keeps serving
for ``VISION_SHUTDOWN_DRAIN_SECONDS``, so a load balancer stops sending before the service stops
listening; then uvicorn stops accepting, waits at most ``VISION_SHUTDOWN_TIMEOUT_SECONDS`` for the
requests in flight and cancels the rest. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vision_service.core.config import Settings

log = logging.getLogger(__name__)

#: Seconds an idle keep-alive connection stays open (uvicorn's default, stated).
KEEP_ALIVE_SECONDS = 5


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size and a time limit on each request's headers.

    Bytes are counted while a request's headers are incomplete: a chunk is refused once the
    chunks before it already passed the limit, so no more than the limit plus one read is ever
    handed to the parser.
    """

    max_header_bytes = 64 * 1024
    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._in_headers = True
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            if self._header_bytes > self.max_header_bytes:
                self._refuse(431, "Request Header Fields Too Large", "the request's headers are too large")
                return
            self._arm_header_timer()
        super().data_received(data)
        if self._in_headers:
            self._header_bytes += len(data)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._disarm_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._in_headers = True  # the next request's headers, timed from its first byte

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            self._refuse(408, "Request Timeout", f"the request's headers took more than {self.header_timeout:g} s")

    def _refuse(self, status: int, phrase: str, detail: str) -> None:
        log.info("closing a connection from %s: %s", self.client, detail)
        body = f'{{"error": "request_headers", "detail": "{detail}"}}'.encode()
        head = f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        self.transport.write(head.encode() + b"connection: close\r\n\r\n" + body)
        self.transport.close()


def guarded_protocol(settings: Settings) -> type[GuardedHttpProtocol]:
    """The protocol class with the settings' header limits."""
    return type(
        "ConfiguredHttpProtocol",
        (GuardedHttpProtocol,),
        {"max_header_bytes": settings.max_header_bytes, "header_timeout": settings.header_timeout_seconds},
    )


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first shutdown signal drains (readiness down, still serving) before it stops."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.on_drain = on_drain
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)  # a second signal, or no drain: uvicorn's own shutdown
            return
        self._draining = True
        self.on_drain()
        log.info("shutting down: not ready, serving for %.1f s more before closing", self.drain_seconds)
        timer = threading.Timer(self.drain_seconds, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()


def serve(app: Any, settings: Settings, *, on_drain: Callable[[], None]) -> None:
    """Run ``app`` until a shutdown signal, with the settings' limits (blocks)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        http=guarded_protocol(settings),
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds)),
    )
    DrainingServer(config, drain_seconds=settings.shutdown_drain_seconds, on_drain=on_drain).run()
