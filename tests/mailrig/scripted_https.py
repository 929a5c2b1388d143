"""A loopback HTTPS server whose every answer is written by the test: a hostile or broken cloud API.

``ScriptedHttps(pki, answer)`` calls ``answer(path)`` for each request and sends back the
``(status, headers, body)`` it returns (``body`` may be an iterable of chunks, streamed with a
``Content-Length`` of their total, so a test can send more bytes than it ever holds). ``paths`` records
every request path in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from mailrig.https import HttpsServer, JsonHandler
from mailrig.pki import Pki

__all__ = ["Answer", "ScriptedHttps"]

Answer = tuple[int, dict[str, str], bytes | tuple[int, Iterable[bytes]]]
"""Status, headers, and the body: bytes, or ``(length, chunks)`` to stream."""


class _Handler(JsonHandler):
    server: Any

    def _serve(self) -> None:
        owner: ScriptedHttps = self.server.owner
        self.body()
        with owner.lock:
            owner.paths.append(self.path)
        status, headers, body = owner.answer(self.path)
        length, chunks = (len(body), (body,)) if isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
        except OSError:  # the client hung up, as it should on an oversized answer
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


class ScriptedHttps(HttpsServer):
    def __init__(self, pki: Pki, answer: Callable[[str], Answer]) -> None:
        super().__init__(pki, _Handler)
        self.answer = answer
        self.paths: list[str] = []
        self.lock = threading.RLock()
