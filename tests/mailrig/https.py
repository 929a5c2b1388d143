"""A threaded HTTPS server on 127.0.0.1 with the rig's server certificate, for the fake cloud APIs.

:class:`HttpsServer` runs ``http.server`` (HTTP/1.1, keep-alive) in a daemon thread; each connection's TLS
handshake happens in its own handler thread, so a stuck client cannot stall the others. Subclasses of
:class:`JsonHandler` answer with :meth:`JsonHandler.reply`. ``url`` is ``https://127.0.0.1:<port>``.
``idle_timeout`` is how long an idle keep-alive connection stays open (15 s; front ends close theirs too),
``connections`` how many the server accepted.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mailrig.pki import Pki
from mailrig.util import ServedInThread

__all__ = ["HttpsServer", "JsonHandler"]


class JsonHandler(BaseHTTPRequestHandler):
    """Helpers for handlers: the body, the form, the query, and a JSON (or raw) answer."""

    server: Any

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between them
    timeout = 15  # a client that goes silent does not hold a thread forever

    def setup(self) -> None:
        # The server's keep-alive timeout: an idle connection is closed after it (front ends do it in seconds).
        self.timeout = self.server.owner.idle_timeout
        super().setup()

    def log_message(self, format: str, *args: object) -> None:  # the stdlib signature (shadows format)
        pass

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body().decode("utf-8", "replace")).items()}

    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def reply(self, status: int, data: Any = None, *, raw: bytes | None = None, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        payload = raw if raw is not None else (json.dumps(data).encode() if data is not None else b"")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    context: ssl.SSLContext
    owner: Any

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        self.owner.connections += 1
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-request (fault tests) is not worth a traceback


class HttpsServer(ServedInThread):
    """Serve ``handler`` over HTTPS on 127.0.0.1; ``self`` is reachable from the handler as ``server.owner``."""

    def __init__(self, pki: Pki, handler: type[JsonHandler]) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pki.server_chain), str(pki.server_key))
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd.context = context
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.lock = threading.RLock()
        self.connections = 0  # accepted so far
        self.idle_timeout: float = JsonHandler.timeout  # seconds an idle keep-alive connection is kept open
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

