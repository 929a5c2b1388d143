"""Small helpers for tests that use the rig: test messages and a check that no secret leaked."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from http.server import HTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["KEEPALIVE_EXPECTED", "EndpointFactory", "assert_no_secret", "keepalive_options", "message"]

EndpointFactory = Callable[..., Any]
"""The type of the ``*_endpoint`` fixtures of tests/transports (they return an Endpoint)."""


def message(subject: str, body: str = "hello\r\n", sender: str = "customer@example.net") -> bytes:
    """A small RFC 5322 message with a unique Message-ID."""
    return (
        f"From: {sender}\r\nTo: support@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.net>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def assert_no_secret(secret: str, *texts: object) -> None:
    """No text (str() and repr() of each object, and of every chained exception) contains ``secret``."""
    for obj in texts:
        seen: BaseException | object | None = obj
        while seen is not None:
            texts_of_seen = [str(seen), repr(seen)]
            if isinstance(seen, BaseException):  # what a host walking the chain could read
                texts_of_seen += [repr(seen.args), repr(getattr(seen, "object", ""))]
            for text in texts_of_seen:
                assert secret not in text, f"secret leaked in {type(seen).__name__}: {text!r}"
            seen = (seen.__cause__ or seen.__context__) if isinstance(seen, BaseException) else None


class ServedInThread:
    """Start, stop and ``with`` for a test HTTP server run by ``self._thread`` (``self._httpd.serve_forever``)."""

    _httpd: HTTPServer
    _thread: threading.Thread

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# The keepalive options every long-lived connection should carry (enate_routing._tcp), as the kernel reports them.
KEEPALIVE_EXPECTED = {"keepalive": 1, "idle": 60, "interval": 10, "count": 6, "user_timeout": 120_000}


def keepalive_options(fd: int) -> dict[str, int]:
    """The keepalive and user-timeout options of the TCP socket ``fd``, read back from the kernel (Linux)."""
    with socket.socket(fileno=os.dup(fd)) as sock:
        return {
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }
