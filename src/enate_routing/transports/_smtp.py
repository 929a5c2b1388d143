"""SMTP mail sender over ``smtplib`` (RFC 5321), for acknowledgements (docs/semantics.md §3.5, §8).

Authentication (docs/semantics.md §2 ``auth``): :class:`~.base.NoAuth`; :class:`~.base.PasswordAuth` with SASL PLAIN or
LOGIN (RFC 4954); :class:`~.base.CertificateAuth`, a TLS client certificate from the ``.pfx`` — what an
Office 365 inbound connector (``<tenant>.mail.protection.outlook.com:25``) matches by subject; and
:class:`~.base.OAuth2Auth` (XOAUTH2 / OAUTHBEARER). Transport security: implicit TLS (``ssl``, SMTPS,
RFC 8314) or ``starttls`` (RFC 3207), after which EHLO is sent again because the server's extensions
may differ (RFC 3207 §4.2).

A refused client certificate under TLS 1.3 does not fail the handshake: the server checks the
certificate afterwards and simply closes, so the first read after TLS fails. That read happens inside
the ``tls`` stage, which maps it to :class:`~enate_routing.errors.CertificateRejectedError`.

SASL runs through :meth:`smtplib.SMTP.docmd` instead of ``SMTP.login``/``SMTP.auth``: those encode
responses as ASCII (no UTF-8 passwords) and try CRAM-MD5 first; the exchange itself comes from
:mod:`._sasl`, shared with IMAP and POP3.
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
import ssl
from collections.abc import Sequence
from contextlib import suppress

from enate_routing._patterns import needs_smtputf8
from enate_routing.errors import InsecureConnectionError, ProtocolError, TransportError
from enate_routing.transports import _sasl
from enate_routing.transports._base import (
    CertificateAuth,
    ConnectionTestResult,
    Credentials,
    Endpoint,
    NoAuth,
    PasswordAuth,
)
from enate_routing.transports._session import Adapter, deadlined, open_socket, run_connection_test

__all__ = ["SmtpSender", "check_smtp_connection"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


class _SMTP(smtplib.SMTP):
    """smtplib with our socket: timeout, source address, implicit TLS through the verifying context."""

    def __init__(self, endpoint: Endpoint, implicit_tls: ssl.SSLContext | None, local_hostname: str | None) -> None:
        self._endpoint = endpoint
        self._implicit_tls = implicit_tls
        super().__init__(local_hostname=local_hostname, timeout=endpoint.timeout)
        # starttls() verifies against self._host, which smtplib sets only when __init__ connects.
        self._host = endpoint.host

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return open_socket(self._endpoint, self._implicit_tls)

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's reply reader, with the whole reply (not each line) bounded by the endpoint's timeout."""
        if self.file is None and self.sock is not None:
            self.file = self.sock.makefile("rb")
        if self.file is not None:
            self.file = deadlined(self.file)
            self.file.expect_reply(self._endpoint.timeout)
        return super().getreply()


class SmtpSender(Adapter):
    """A :class:`~.base.MailSender` over SMTP. The connection opens on first use and is reused.

    ``local_hostname`` is the EHLO name (default: what smtplib derives from the host's FQDN).
    """

    protocol = "smtp"

    def __init__(
        self, endpoint: Endpoint, credentials: Credentials | None = None, *, local_hostname: str | None = None
    ) -> None:
        super().__init__(endpoint, credentials if credentials is not None else NoAuth())
        self.local_hostname = local_hostname
        self._conn: _SMTP | None = None

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The server's ESMTP extensions (after TLS), upper-case."""
        conn = self._connection()
        return tuple(sorted(k.upper() for k in conn.esmtp_features))

    def _connection(self) -> _SMTP:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> _SMTP:
        context = self._tls_context()
        implicit = context if self.endpoint.security == "ssl" else None
        conn = _SMTP(self.endpoint, implicit, self.local_hostname)
        try:
            # For SMTPS the greeting is the first read after the handshake: stage "tls".
            with self._guard("tls" if implicit is not None else "connect"):
                code, message = conn.connect(self.endpoint.host, self.endpoint.port)
                if code != 220:
                    raise smtplib.SMTPConnectError(code, message)
                conn.ehlo()
            if self.endpoint.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise self._no_starttls(self.server, "STARTTLS")
                with self._guard("tls"):
                    conn.starttls(context=context)
                    conn.ehlo()  # RFC 3207 §4.2: forget what was learnt before TLS
            self._login(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _login(self, conn: _SMTP) -> None:
        credentials = self.credentials
        if isinstance(credentials, NoAuth | CertificateAuth):
            return
        if not conn.has_extn("auth"):
            if self.endpoint.security == "none" and conn.has_extn("starttls"):
                # aiosmtpd and most submission servers advertise AUTH only after STARTTLS.
                raise InsecureConnectionError(
                    "the server offers AUTH only after STARTTLS: use security 'starttls'", server=self.server
                )
            raise ProtocolError("the server does not offer SMTP AUTH (RFC 4954)", server=self.server)
        offered = {m.upper() for m in conn.esmtp_features.get("auth", "").split()}
        client = self._sasl_for(offered)
        if client is None and isinstance(credentials, PasswordAuth):
            if credentials.method == "login" or "LOGIN" in offered:
                client = _sasl.login(credentials)
            else:
                raise ProtocolError(
                    f"the server offers no usable AUTH mechanism ({' '.join(sorted(offered)) or 'none'})",
                    server=self.server,
                )
        assert client is not None
        self._authenticate(client, offered, lambda sasl: self._sasl(conn, sasl))

    @staticmethod
    def _sasl(conn: _SMTP, client: _sasl.SaslClient) -> None:
        initial = client.take_initial()
        if initial is not None:
            # RFC 4954 §4: an empty initial response is sent as "=".
            code, reply = conn.docmd("AUTH", f"{client.mechanism} {base64.b64encode(initial).decode() or '='}")
        else:
            code, reply = conn.docmd("AUTH", client.mechanism)
        for _ in range(10):
            if code != 334:
                break
            answer = client.respond(base64.b64decode(reply or b""))
            code, reply = conn.docmd(base64.b64encode(answer).decode())
        if code not in (235, 503):  # 503: already authenticated
            raise smtplib.SMTPAuthenticationError(code, reply)

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _alive(self) -> _SMTP:
        """The connection, re-opened when an idle one was dropped by the server (checked with NOOP).

        Checking *before* a send, never retrying *after* DATA, is what keeps a send from being doubled.
        """
        if self._conn is not None:
            try:
                code, _ = self._conn.noop()
            except (smtplib.SMTPException, OSError):
                code = 0
            if code != 250:
                self._discard()
        return self._connection()

    # ------------------------------------------------------------------ MailSender
    def send(
        self, from_addr: str, to_addrs: Sequence[str], message_bytes: bytes
    ) -> dict[str, tuple[int, bytes]]:
        """Send one message; return the recipients the server refused (empty when all were accepted).

        Raises ProtocolError when every recipient or the message itself is refused (retryable for 4xx). Lines
        go out ending in CRLF whatever ``message_bytes`` uses (RFC 5321 §2.3.8: smtplib sends bytes as given,
        and servers hardened against SMTP smuggling refuse a bare LF). A UTF-8 address goes out with
        SMTPUTF8 (RFC 6531); a server that does not offer it cannot take one (ProtocolError, not retryable).
        """
        options = ["SMTPUTF8", "BODY=8BITMIME"] if needs_smtputf8(from_addr, to_addrs) else []
        data = _LINE_END.sub(b"\r\n", message_bytes)
        conn = self._alive()
        try:
            with self._step("command"):
                return conn.sendmail(from_addr, list(to_addrs), data, mail_options=options)
        except TransportError:
            self._discard()  # a failure between MAIL and DATA may leave the transaction open: never reuse it
            raise

    def noop(self) -> None:
        conn = self._connection()
        with self._step("command"):
            code, reply = conn.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)

    def close(self) -> None:
        """QUIT and close the socket (errors while saying goodbye are ignored)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with suppress(smtplib.SMTPException, OSError):
            conn.quit()
        conn.close()


def check_smtp_connection(
    endpoint: Endpoint, credentials: Credentials | None = None, *, local_hostname: str | None = None
) -> ConnectionTestResult:
    """EHLO, TLS, authentication and NOOP; never raises for server problems."""

    def body() -> tuple[str, tuple[str, ...]]:
        with SmtpSender(endpoint, credentials, local_hostname=local_hostname) as sender:
            sender.noop()
            auth = type(sender.credentials).__name__
            tls = "TLS" if endpoint.security != "none" else "no TLS"
            return f"EHLO, {tls}, {auth} and NOOP accepted", sender.capabilities

    return run_connection_test("smtp", endpoint, body)
