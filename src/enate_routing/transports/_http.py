"""A small keep-alive HTTPS client over ``http.client`` for the cloud mail APIs (docs/microsoft365.md).

Same rules as the mail transports: the one verifying TLS context of :mod:`._tls` (no switch to turn
verification off; ``ca_file`` trusts a private CA), the endpoint's timeout on every socket operation, its
source address, and :func:`._session.refuse_plaintext` before a bearer token would cross plain HTTP.
Failures become :class:`~enate_routing.errors.TransportError` subclasses through :func:`._errors.translate`;
an HTTP status is not a failure here (the API client decides what each status means).

Servers close idle connections. A kept-alive connection the server has closed while it sat idle is replaced
before a request is sent on it (``_tcp.peer_has_spoken``); a request that still finds it closed before any
answer is sent once more on a fresh connection when it is idempotent (GET, PUT, PATCH, DELETE) — a POST
(``sendMail``, ``move``) may have been carried out, and is not.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

from enate_routing._tcp import peer_has_spoken
from enate_routing.errors import ConnectError, ProtocolError, TransportError
from enate_routing.transports._base import Endpoint
from enate_routing.transports._errors import Stage, translate
from enate_routing.transports._session import open_socket
from enate_routing.transports._tls import client_context

__all__ = ["HttpsClient", "Response"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response; header names are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class _Connection(http.client.HTTPConnection):
    """``http.client`` with our socket: timeout, source address, TLS through the verifying context."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        self._endpoint = endpoint
        self._context = client_context(endpoint.ca_file) if endpoint.security == "ssl" else None

    def connect(self) -> None:
        self.sock = open_socket(self._endpoint, self._context)


class HttpsClient:
    """One kept-alive connection to ``endpoint``; :meth:`request` returns the whole response."""

    def __init__(self, endpoint: Endpoint) -> None:
        if endpoint.security == "starttls":
            raise ValueError("HTTP has no STARTTLS: use security 'ssl' (HTTPS) for a cloud API")
        self.endpoint = endpoint
        self.server = endpoint.label
        self._conn: _Connection | None = None
        self.requests = 0  # how many requests were sent (benchmarks, tests)

    def request(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None,
                secrets: tuple[str, ...] = (), max_body: int | None = None) -> Response:
        """Send ``method target`` and read the response; network and TLS failures raise our errors.

        A response body longer than ``max_body`` bytes is a ProtocolError, read no further than that."""
        if self._conn is not None and self._conn.sock is not None and peer_has_spoken(self._conn.sock.fileno()):
            self._discard()  # ended by the server while idle: a POST sent on it would fail, and is not retried
        reused = self._conn is not None
        try:
            return self._exchange(method, target, headers, body, secrets, max_body)
        except ConnectError:
            if not (reused and method in _IDEMPOTENT):
                raise
        return self._exchange(method, target, headers, body, secrets, max_body)

    def _exchange(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None,
                  secrets: tuple[str, ...], max_body: int | None) -> Response:
        # "connect" covers the TLS handshake too: we present no client certificate, so a reset there is not
        # the "client certificate refused" that the mail transports' "tls" stage reports.
        stage: Stage = "connect"
        try:
            if self._conn is None:
                conn = _Connection(self.endpoint)
                conn.connect()
                self._conn = conn
            stage = "command"
            self._conn.request(method, target, body=body, headers=dict(headers))
            self.requests += 1
            answer = self._conn.getresponse()
            data = answer.read() if max_body is None else answer.read(max_body + 1)
            if max_body is not None and len(data) > max_body:
                self._discard()  # the rest is still coming: this connection cannot carry another request
                raise ProtocolError(f"the server's answer is larger than {max_body} bytes", server=self.server)
            response = Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
            if answer.will_close:
                self._discard()
            return response
        except TransportError:
            self._discard()
            raise
        except http.client.IncompleteRead:
            self._discard()
            raise ConnectError("connection closed by the server in the middle of a response",
                               server=self.server) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._discard()
            mapped = translate(exc, stage, self.server, secrets)
            if mapped is None:  # a malformed status line or header block
                raise ProtocolError(f"the server's HTTP answer is malformed ({type(exc).__name__})",
                                    server=self.server) from None
            raise mapped from None

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(OSError):
                conn.close()

    def close(self) -> None:
        self._discard()
