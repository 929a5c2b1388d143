"""aiosmtpd servers on 127.0.0.1 for SMTP client tests (mailservers.md §4).

:func:`start_smtp_servers` starts one ``Controller`` per mode and returns :class:`SmtpServers`; every
accepted message is appended to ``SmtpServers.messages`` as a :class:`Received` (which server, envelope,
raw bytes, authenticated login, client-certificate CN). The modes:

===============  ===============================================================================
``open``         plain SMTP, no TLS; AUTH (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER) *offered* but not required
                 — so a client that allows plaintext auth can be tested against it; the one mode without
                 SMTPUTF8 (RFC 6531), which aiosmtpd's ``Controller`` offers unless told not to
``submission``   STARTTLS required, then AUTH required (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER); AUTH is not
                 even advertised before TLS (aiosmtpd ``auth_require_tls``)
``smtps_auth``   implicit TLS (SMTPS), AUTH offered (aiosmtpd cannot *require* it on SMTPS without a
                 warning; check ``Received.login``)
``starttls_cert`` STARTTLS required with a client certificate from the test CA whose CN is
                 ``relay-client.test`` (the way an Office 365 inbound connector matches a certificate)
``smtps_cert``   implicit TLS with the same client-certificate requirement
===============  ===============================================================================

Users are those of :mod:`mailrig.dovecot` (alice, bob with the 50-character password); OAuth tokens are
those in :data:`OAUTH_TOKENS` (token -> login). Rejected TLS handshakes make aiosmtpd log a traceback on
logger ``mail.log``; :func:`start_smtp_servers` silences that logger (mailservers.md §4).
"""

from __future__ import annotations

import base64
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailrig.dovecot import ALICE, BOB, free_ports
from mailrig.pki import Pki

__all__ = ["MODES", "OAUTH_TOKENS", "Received", "SmtpServers", "start_smtp_servers"]

MODES = ("open", "submission", "smtps_auth", "starttls_cert", "smtps_cert")
PASSWORDS = {ALICE.login: ALICE.password, BOB.login: BOB.password}
OAUTH_TOKENS = {"ya29.alice-test-token": ALICE.login, "bob-bearer-token": BOB.login}


@dataclass(frozen=True)
class Received:
    """One message an aiosmtpd test server accepted."""

    server: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None
    peer_cn: str | None


def _peer_cn(server: SMTP) -> str | None:
    transport = server.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _parse_oauth(mechanism: str, blob: bytes) -> tuple[str | None, str | None]:
    """(user, token) from an XOAUTH2 or OAUTHBEARER (RFC 7628) initial client response."""
    text = blob.decode("utf-8", "replace")
    user = token = None
    if mechanism == "OAUTHBEARER":
        gs2, _, rest = text.partition("\x01")
        for part in gs2.split(","):
            if part.startswith("a="):
                user = part[2:].replace("=2C", ",").replace("=3D", "=")
        text = rest
    for part in text.split("\x01"):
        if part.startswith("user="):
            user = part[5:]
        elif part.startswith("auth=Bearer "):
            token = part[len("auth=Bearer "):]
    return user, token


class _Handler:
    def __init__(self, name: str, sink: list[Received], allowed_cns: frozenset[str] | None) -> None:
        self.name = name
        self.sink = sink
        self.allowed_cns = allowed_cns

    # aiosmtpd calls handle_STARTTLS synchronously: an ``async def`` would return a truthy coroutine and
    # accept every certificate (mailservers.md §8.13).
    def handle_STARTTLS(self, server: SMTP, session: Session, envelope: Envelope) -> bool:
        return self.allowed_cns is None or _peer_cn(server) in self.allowed_cns

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        # For SMTPS there is no STARTTLS hook: check the certificate subject here too.
        if self.allowed_cns is not None and _peer_cn(server) not in self.allowed_cns:
            return "550 5.7.1 Client certificate not accepted"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        auth = session.auth_data
        login = auth if isinstance(auth, str) else None
        self.sink.append(
            Received(
                self.name, envelope.mail_from or "", tuple(envelope.rcpt_tos), data, login, _peer_cn(server)
            )
        )
        return "250 2.0.0 Message accepted"

    async def _oauth(self, server: SMTP, args: list[str], mechanism: str) -> AuthResult:
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=False)
            blob = answer
        user, token = _parse_oauth(mechanism, blob)
        if token is not None and OAUTH_TOKENS.get(token) == user:
            return AuthResult(success=True, auth_data=user)
        # XOAUTH2 and RFC 7628 §3.2.2: a failure is a 334 challenge with a JSON status; the client
        # answers (empty line / ^A) and only then gets the final 535.
        await server.challenge_auth(b'{"status":"invalid_token","schemes":"Bearer","scope":"mail"}')
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._oauth(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._oauth(server, args, "OAUTHBEARER")


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    login = auth_data.login.decode("utf-8", "replace")
    ok = PASSWORDS.get(login) == auth_data.password.decode("utf-8", "replace")
    return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class _CertRequiredController(Controller):
    """The stock readiness probe connects without a client certificate; probe with plain TCP instead."""

    def _trigger_server(self) -> None:
        # Accepting the TCP connection is enough for asyncio to call the protocol factory.
        with socket.create_connection((self.hostname, self.port), timeout=2.0):
            pass


@dataclass
class SmtpServers:
    """The running controllers, their ports by mode, and the shared list of received messages."""

    ports: dict[str, int]
    messages: list[Received] = field(default_factory=list)
    controllers: list[Controller] = field(default_factory=list)
    host: str = "127.0.0.1"

    def received(self, server: str) -> list[Received]:
        return [m for m in self.messages if m.server == server]

    def clear(self) -> None:
        self.messages.clear()

    def stop(self) -> None:
        for controller in self.controllers:
            controller.stop()
        self.controllers.clear()

    def __iter__(self) -> Iterator[str]:
        return iter(self.ports)


def _server_context(pki: Pki, *, require_client_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki.server_chain), str(pki.server_key))
    if require_client_cert:
        ctx.load_verify_locations(cafile=str(pki.ca_pem))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def start_smtp_servers(pki: Pki) -> SmtpServers:
    """Start every mode of the table above on free ports of 127.0.0.1."""
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    plain_ctx = _server_context(pki, require_client_cert=False)
    cert_ctx = _server_context(pki, require_client_cert=True)
    ports = dict(zip(MODES, free_ports(len(MODES)), strict=True))
    servers = SmtpServers(ports)
    cns = frozenset({pki.client_cn})
    auth = {"authenticator": _authenticator, "auth_required": True, "auth_require_tls": True}
    specs: dict[str, tuple[type[Controller], dict[str, Any], frozenset[str] | None]] = {
        "open": (Controller, {"authenticator": _authenticator, "auth_require_tls": False, "enable_SMTPUTF8": False},
                 None),
        "submission": (Controller, {"tls_context": plain_ctx, "require_starttls": True, **auth}, None),
        # aiosmtpd counts only STARTTLS as TLS for auth_require_tls, and warns (an error under pytest) when
        # AUTH is required without it; so on SMTPS, AUTH is offered but not required. Tests check the
        # recorded login to prove the client authenticated.
        "smtps_auth": (Controller, {"ssl_context": plain_ctx, "authenticator": _authenticator,
                                    "auth_require_tls": False}, None),
        "starttls_cert": (Controller, {"tls_context": cert_ctx, "require_starttls": True}, cns),
        "smtps_cert": (_CertRequiredController, {"ssl_context": cert_ctx}, cns),
    }
    try:
        for mode, (cls, kwargs, allowed) in specs.items():
            controller = cls(
                _Handler(mode, servers.messages, allowed), hostname=servers.host, port=ports[mode], **kwargs
            )
            controller.start()
            servers.controllers.append(controller)
    except BaseException:
        servers.stop()
        raise
    return servers
