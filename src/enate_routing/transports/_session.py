"""What every adapter does the same way: the plaintext rule, sockets, credentials, lifecycle, tests.

- :func:`refuse_plaintext` enforces docs/semantics.md §8 ("no password sent over an unencrypted connection unless
  explicitly allowed") *before a connection is opened*, so nothing at all is sent.
- :func:`open_socket` is the one socket factory: bounded by the endpoint's timeout (every later
  command inherits it), with TCP keepalives (``_tcp``), optionally bound to a source address, wrapped in TLS
  for implicit TLS.
- :class:`ReplyDeadline` bounds a whole reply (POP3, SMTP), not only each read of it.
- :func:`choose_sasl` picks the SASL exchange for a login from what the server offers.
- :class:`Adapter` holds the endpoint, credentials, the secrets to scrub and the error guard, runs a SASL
  login (an OAuth token the server refuses is forgotten and the login retried once with a fresh one), and
  gives ``close()`` / ``with`` to the three adapters.
- :func:`run_connection_test` times a test and turns any :class:`TransportError` into a failed
  :class:`ConnectionTestResult` (docs/semantics.md §8: "returns a typed result").
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import BinaryIO, Literal

from enate_routing._certificates import ClientCertificate
from enate_routing._closing import ClosedOnExit
from enate_routing._tcp import keep_alive
from enate_routing.errors import (
    AuthenticationError,
    CertificateRejectedError,
    ConnectError,
    InsecureConnectionError,
    TransportError,
    TransportTimeoutError,
)
from enate_routing.transports import _sasl
from enate_routing.transports._base import (
    CertificateAuth,
    ConnectionTestResult,
    Credentials,
    Endpoint,
    NoAuth,
    OAuth2Auth,
    PasswordAuth,
)
from enate_routing.transports._errors import Stage, mapped_errors
from enate_routing.transports._tls import client_context

__all__ = ["Adapter", "choose_sasl", "open_socket", "refuse_plaintext", "run_connection_test"]

_log = logging.getLogger("enate_routing.transports")

Protocol = Literal["imap", "pop3", "smtp", "graph"]


class ReplyDeadline:
    """A binary socket file whose ``readline`` raises TimeoutError once the reply's deadline has passed.

    The socket timeout bounds each read; a multiline reply whose lines drip in, each in time, would still hold
    the worker for ever. POP3 and SMTP read their replies through this file (:func:`deadlined`), and set the
    deadline when they send a command.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.deadline = float("inf")

    def expect_reply(self, within: float | None) -> None:
        """The next reply must end within ``within`` seconds (None: no bound, for a message of any size)."""
        self.deadline = float("inf") if within is None else time.monotonic() + within

    def readline(self, limit: int = -1) -> bytes:
        if time.monotonic() > self.deadline:
            raise TimeoutError("timed out: the reply did not end within the timeout")
        return self._file.readline(limit)

    def close(self) -> None:
        self._file.close()


def deadlined(file: BinaryIO | ReplyDeadline) -> ReplyDeadline:
    """``file`` as a :class:`ReplyDeadline` (the library opens a new file after STARTTLS / STLS)."""
    return file if isinstance(file, ReplyDeadline) else ReplyDeadline(file)


def refuse_plaintext(endpoint: Endpoint, credentials: Credentials, server: str) -> None:
    """Raise InsecureConnectionError when ``credentials`` would cross a ``none`` connection unsafely."""
    if endpoint.security != "none":
        return
    if isinstance(credentials, CertificateAuth):
        raise InsecureConnectionError(
            "a client certificate is presented only over TLS: use security 'ssl' or 'starttls'", server=server
        )
    if isinstance(credentials, PasswordAuth | OAuth2Auth) and not endpoint.allow_plaintext_auth:
        what = "password" if isinstance(credentials, PasswordAuth) else "OAuth token"
        raise InsecureConnectionError(
            f"refusing to send the {what} over an unencrypted connection (security 'none'); use 'ssl' or "
            "'starttls', or set allow_plaintext_auth",
            server=server,
        )


def open_socket(endpoint: Endpoint, implicit_tls: ssl.SSLContext | None) -> socket.socket:
    """A connected socket with the endpoint's timeout, TLS-wrapped (and verified) when given a context."""
    source = (endpoint.source_address, 0) if endpoint.source_address else None
    sock = socket.create_connection((endpoint.host, endpoint.port), endpoint.timeout, source_address=source)
    # imaplib and poplib send a command and its continuation as separate small writes; with Nagle's
    # algorithm each waits for the server's delayed ACK (~40 ms per SASL login, measured on loopback).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    keep_alive(sock)  # an IDLE wait must not die unnoticed behind a NAT gateway (_tcp.py)
    if implicit_tls is None:
        return sock
    try:
        return implicit_tls.wrap_socket(sock, server_hostname=endpoint.host)
    except BaseException:
        sock.close()
        raise


def choose_sasl(
    credentials: PasswordAuth | OAuth2Auth, offered: Collection[str], endpoint: Endpoint
) -> _sasl.SaslClient | None:
    """The SASL exchange to run, or None for the protocol's own password command (IMAP LOGIN, USER/PASS).

    ``offered`` is the server's mechanism list, upper-case. An explicitly chosen mechanism is tried even
    when not advertised (the server's refusal is then the clearest error).
    """
    if isinstance(credentials, OAuth2Auth):
        return _sasl.oauth(credentials, endpoint.host, endpoint.port)
    if credentials.method == "plain" or (credentials.method == "auto" and "PLAIN" in offered):
        return _sasl.plain(credentials)
    return None


class Adapter(ClosedOnExit):
    """Shared state and lifecycle of the shipped adapters (not a public base class)."""

    protocol: Protocol

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Credentials,
        *,
        client_certificate: ClientCertificate | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.server = f"{self.protocol}://{endpoint.label}"
        if isinstance(credentials, CertificateAuth):
            client_certificate = credentials.certificate
        self._client_certificate = client_certificate
        self._secrets: list[str] = []
        if isinstance(credentials, PasswordAuth):
            self._secrets.append(credentials.password)

    # -- shared steps
    def _guard(self, stage: Stage) -> AbstractContextManager[None]:
        return mapped_errors(self.server, stage, self._secrets)

    def _tls_context(self) -> ssl.SSLContext | None:
        """The verifying context for ``ssl`` / ``starttls``; None for ``none`` (after the plaintext rule)."""
        refuse_plaintext(self.endpoint, self.credentials, self.server)
        if self.endpoint.security == "none":
            return None
        with self._guard("tls"):
            return client_context(self.endpoint.ca_file, self._client_certificate)

    def _authenticate(self, client: _sasl.SaslClient, offered: Collection[str],
                      exchange: Callable[[_sasl.SaslClient], object]) -> None:
        """Run the SASL ``exchange`` (the protocol's AUTH command) at the ``auth`` stage.

        An OAuth token the server refuses may just be revoked or expired early while still cached: it is
        reported to ``OAuth2Auth.token_refused`` (the cache drops it) and the login is tried once more, on the
        same connection, with a fresh token. A second refusal is the AuthenticationError.
        """
        try:
            with self._guard("auth"):
                exchange(client)
            return
        except AuthenticationError:
            credentials = self.credentials
            if not isinstance(credentials, OAuth2Auth) or credentials.token_refused is None or client.bearer is None:
                raise
            credentials.token_refused(client.bearer)
        # Retried outside the ``except`` block, so a second refusal does not carry the first as its context.
        _log.info("OAuth token refused; logging in once more with a fresh token",
                  extra={"server": self.server, "mechanism": client.mechanism})
        fresh = self._sasl_for(offered)
        if fresh is None:  # pragma: no cover - OAuth credentials always give a SASL client
            raise AuthenticationError("no OAuth token to log in with", server=self.server)
        with self._guard("auth"):
            exchange(fresh)

    def _sasl_for(self, offered: Collection[str]) -> _sasl.SaslClient | None:
        credentials = self.credentials
        if isinstance(credentials, NoAuth | CertificateAuth):
            return None
        if isinstance(credentials, PasswordAuth):
            for name, value in (("username", credentials.username), ("password", credentials.password)):
                if "\r" in value or "\n" in value or "\0" in value:  # would end the command early (injection)
                    raise AuthenticationError(f"the {name} contains a line break or NUL, which cannot be sent",
                                              server=self.server)
        try:
            client = choose_sasl(credentials, offered, self.endpoint)
        except AuthenticationError as exc:
            raise AuthenticationError(str(exc), server=self.server) from None
        if client is not None:
            self._secrets.extend(s for s in client.secrets if s not in self._secrets)
        return client

    @staticmethod
    def _no_starttls(server: str, command: str) -> InsecureConnectionError:
        return InsecureConnectionError(
            f"security is 'starttls' but the server does not offer {command}", server=server
        )

    @contextmanager
    def _step(self, stage: Stage) -> Iterator[None]:
        """The guard, plus: after a dropped connection or a timeout, forget the connection so that the
        next call opens a fresh one (the old one is in an unknown state)."""
        try:
            with self._guard(stage):
                yield
        except (ConnectError, TransportTimeoutError, CertificateRejectedError):
            self._discard()
            raise

    def _discard(self) -> None:  # pragma: no cover - every adapter overrides it
        raise NotImplementedError

    # -- lifecycle
    def close(self) -> None:  # pragma: no cover - every adapter overrides it
        raise NotImplementedError



def run_connection_test(
    protocol: Protocol, endpoint: Endpoint, body: Callable[[], tuple[str, tuple[str, ...]]]
) -> ConnectionTestResult:
    """Run ``body`` (returns a detail line and the capabilities) and type its outcome."""
    start = time.monotonic()
    server = f"{protocol}://{endpoint.label}"
    try:
        detail, capabilities = body()
    except TransportError as exc:
        return ConnectionTestResult(
            ok=False,
            protocol=protocol,
            server=server,
            detail=str(exc),
            elapsed=time.monotonic() - start,
            error=type(exc).__name__,
            retryable=exc.retryable,
        )
    return ConnectionTestResult(
        ok=True,
        protocol=protocol,
        server=server,
        detail=detail,
        elapsed=time.monotonic() - start,
        capabilities=capabilities,
    )
