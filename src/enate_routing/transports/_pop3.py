"""POP3 mail source over ``poplib`` (RFC 1939), UIDL-based (docs/semantics.md §8).

- **Stable ids are UIDLs** (RFC 1939 §7): message numbers are per session. A server without UIDL cannot
  be used (ProtocolError) — there would be no way to avoid duplicates. Messages sharing one UIDL (a
  broken server) are not listed, so none is taken for another.
- **DELE only for messages marked processed**, and a DELE takes effect only when the session ends with
  QUIT (RFC 1939 §6, UPDATE state). If the connection drops first, the server forgets the deletions and
  the messages come back: the ingestion ledger recognises them by UIDL. :meth:`Pop3Source.close` sends
  QUIT; ``delete_processed=False`` leaves mail on the server and relies on the ledger alone.
- **STLS** (RFC 2595 §4) for ``starttls``; implicit TLS (POP3S) for ``ssl``.
- **SASL** through ``AUTH`` (RFC 5034): PLAIN, and XOAUTH2 / OAUTHBEARER for Gmail and Office 365.
  RFC 5034 §4 limits the AUTH line to 255 octets, so a long initial response (every real OAuth token)
  is sent after the server's empty ``+`` challenge instead.
"""

from __future__ import annotations

import base64
import logging
import poplib
import socket
import ssl
from contextlib import suppress

from enate_routing._certificates import ClientCertificate
from enate_routing.errors import (
    AuthenticationError,
    ConnectError,
    InsecureConnectionError,
    MessageGoneError,
    ProtocolError,
)
from enate_routing.transports._base import (
    ConnectionTestResult,
    Endpoint,
    MailboxCredentials,
    MessageRef,
    PasswordAuth,
)
from enate_routing.transports._sasl import SaslClient
from enate_routing.transports._session import Adapter, deadlined, open_socket, run_connection_test

__all__ = ["Pop3Source", "check_pop3_connection"]

_log = logging.getLogger("enate_routing.transports")

_MAX_LINE = 1 << 20  # poplib allows 2048 octets; real (broken) mail has longer lines (docs/semantics.md §3.1.1)
_AUTH_LINE_LIMIT = 255  # RFC 5034 §4
POP3_MAILBOX = "INBOX"  # POP3 has one maildrop per login; refs name it INBOX


class _POP3(poplib.POP3):
    """poplib with our socket (timeout, source address, implicit TLS) and SASL AUTH."""

    def __init__(self, endpoint: Endpoint, implicit_tls: ssl.SSLContext | None) -> None:
        self._endpoint = endpoint
        self._implicit_tls = implicit_tls
        try:
            super().__init__(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        except BaseException:
            # poplib leaves the socket open when the greeting fails.
            if getattr(self, "sock", None) is not None:
                self.close()
            raise

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return open_socket(self._endpoint, self._implicit_tls)

    def _shortcmd(self, line: str) -> bytes:
        self._expect_reply()
        return super()._shortcmd(line)  # type: ignore[misc,no-any-return]  # typeshed omits the private API

    def _longcmd(self, line: str) -> tuple[bytes, list[bytes], int]:
        # A listing (UIDL, CAPA) must end within the timeout as a whole; a message (RETR) takes what its size does.
        self._expect_reply(whole=line.upper().startswith("RETR "))
        return super()._longcmd(line)  # type: ignore[misc,no-any-return]  # typeshed omits the private API

    def _expect_reply(self, *, whole: bool = False) -> None:
        file = deadlined(self.file)  # (poplib opens a new file after STLS)
        file.expect_reply(None if whole else self._endpoint.timeout)
        self.file = file  # type: ignore[assignment]  # poplib only calls readline, which it has

    def _getline(self) -> tuple[bytes, int]:
        # (The greeting, one line, is read before any command: the socket timeout bounds it.)
        line = self.file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise poplib.error_proto("-ERR line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        return line.rstrip(b"\r\n"), octets

    def _send_line(self, text: str) -> None:
        self.sock.sendall(text.encode("ascii") + b"\r\n")
        self._expect_reply()

    def sasl(self, client: SaslClient) -> bytes:
        """Run ``AUTH`` (RFC 5034) with ``client``; return the final +OK line."""
        command = f"AUTH {client.mechanism}"
        if client.initial is not None and len(command) + 1 + 4 * ((len(client.initial) + 2) // 3) <= 253:
            initial = client.take_initial() or b""
            # An empty initial response is sent as "=" (RFC 5034 §4).
            command += " " + (base64.b64encode(initial).decode() or "=")
        self._send_line(command)
        for _ in range(10):
            line, _ = self._getline()
            if line.startswith(b"+OK"):
                return line
            if line.startswith(b"-ERR"):
                raise poplib.error_proto(line)
            if line.startswith(b"+"):
                answer = client.respond(base64.b64decode(line[1:].strip() or b""))
                self._send_line(base64.b64encode(answer).decode())
                continue
            raise poplib.error_proto(b"-ERR unexpected AUTH reply")
        raise poplib.error_proto(b"-ERR too many AUTH challenges")


def _closed(exc: poplib.error_proto) -> bool:
    """poplib reports a connection closed mid-reply as the error reply ``-ERR EOF`` (its ``_getline``)."""
    reply = exc.args[0] if exc.args else b""
    return reply in (b"-ERR EOF", "-ERR EOF")


class Pop3Source(Adapter):
    """A :class:`~.base.MailSource` over POP3.

    The connection opens on first use. Deletions of processed messages are committed by :meth:`close`
    (QUIT); call it — or use ``with`` — at the end of every poll.
    """

    protocol = "pop3"
    marks_committed_on_close = True  # DELE takes effect at QUIT (RFC 1939 §6)

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: MailboxCredentials,
        *,
        delete_processed: bool = True,
        client_certificate: ClientCertificate | None = None,
    ) -> None:
        super().__init__(endpoint, credentials, client_certificate=client_certificate)
        self.delete_processed = delete_processed
        self._conn: _POP3 | None = None
        self._numbers: dict[str, int] = {}
        self._deleted: set[str] = set()
        self.capabilities: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ connection
    def _connection(self) -> _POP3:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> _POP3:
        context = self._tls_context()
        implicit = context if self.endpoint.security == "ssl" else None
        conn: _POP3 | None = None
        try:
            with self._guard("tls" if implicit is not None else "connect"):
                conn = _POP3(self.endpoint, implicit)
                capabilities = self._capa(conn)
            if self.endpoint.security == "starttls":
                if "STLS" not in capabilities:
                    raise self._no_starttls(self.server, "STLS")
                with self._guard("tls"):
                    conn.stls(context=context)
                    capabilities = self._capa(conn)  # RFC 2595 §4: capabilities may change after STLS
            self._login(conn, capabilities)
            with self._guard("command"):
                self.capabilities = self._capa(conn)
            self._numbers.clear()
            self._deleted.clear()
            return conn
        except BaseException:
            if conn is not None:
                with suppress(OSError):
                    conn.close()
            raise

    @staticmethod
    def _capa(conn: _POP3) -> frozenset[str]:
        try:
            caps = conn.capa()
        except poplib.error_proto:
            return frozenset()  # CAPA is optional (RFC 2449); assume the RFC 1939 basics
        words = set(caps)
        words.update(f"SASL {m}" for m in caps.get("SASL", []))
        return frozenset(w.upper() for w in words)

    def _login(self, conn: _POP3, capabilities: frozenset[str]) -> None:
        offered = {c.split(" ", 1)[1] for c in capabilities if c.startswith("SASL ")}
        sasl = self._sasl_for(offered)
        if sasl is not None:
            if (
                self.endpoint.security == "none"
                and capabilities
                and "USER" not in capabilities
                and sasl.mechanism not in offered
            ):
                # Like IMAP's LOGINDISABLED: a CAPA without USER and without this mechanism is how
                # Dovecot says it would refuse a plaintext login here. Stop before sending the secret.
                raise InsecureConnectionError(
                    f"the server refuses authentication on this unencrypted connection (no USER capability, "
                    f"SASL {sasl.mechanism} not offered)",
                    server=self.server,
                )
            self._authenticate(sasl, offered, conn.sasl)
            return
        credentials = self.credentials
        if not isinstance(credentials, PasswordAuth):  # pragma: no cover - OAuth always goes through SASL
            raise AuthenticationError("no password to log in with", server=self.server)
        if capabilities and "USER" not in capabilities and not offered:
            # RFC 2449 §6.3: a server that lists CAPA without USER will not take USER/PASS here (Dovecot
            # on an unencrypted connection). Refuse before sending the password.
            raise InsecureConnectionError(
                "the server offers no password login on this connection (no USER capability, no SASL)",
                server=self.server,
            )
        with self._guard("auth"):
            conn.user(credentials.username)
            conn.pass_(credentials.password)

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(OSError):
                conn.close()  # no QUIT: pending deletions are rolled back by the server

    # ------------------------------------------------------------------ MailSource
    def _refresh(self) -> None:
        conn = self._connection()
        with self._step("command"):
            try:
                _, lines, _ = conn.uidl()
            except poplib.error_proto as exc:
                if _closed(exc):
                    raise ConnectError("the server closed the connection during UIDL", server=self.server) from None
                raise ProtocolError(
                    "the server does not support UIDL (RFC 1939 §7); stable message ids are impossible",
                    server=self.server,
                ) from exc
        numbers: dict[str, int] = {}
        shared: set[str] = set()
        for line in lines:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            uidl = uidl.strip()
            if number.isdigit() and uidl:
                if uidl in numbers:
                    shared.add(uidl)
                numbers[uidl] = int(number)
        if shared:
            # RFC 1939 §7: a unique-id names one message. One id for two messages would make the ledger take
            # the second for the first, processed, and delete it unread: leave them all on the server.
            _log.warning("the server gives one UIDL to several messages; they are left on the server",
                         extra={"server": self.server, "uidls": sorted(shared)[:10], "count": len(shared)})
            for uidl in shared:
                del numbers[uidl]
        self._numbers = numbers

    def list_new(self) -> list[MessageRef]:
        """Every message of the maildrop not yet deleted in this session, in server order."""
        self._refresh()
        ordered = sorted(self._numbers.items(), key=lambda item: item[1])
        return [MessageRef(POP3_MAILBOX, uidl=uidl) for uidl, _ in ordered if uidl not in self._deleted]

    def _number(self, ref: MessageRef) -> int:
        if ref.uidl is None:
            raise ValueError(f"{ref!r} is not a POP3 message")
        if ref.uidl not in self._numbers or self._conn is None:
            self._refresh()
        number = self._numbers.get(ref.uidl)
        if number is None or ref.uidl in self._deleted:
            raise MessageGoneError(f"message {ref.uidl!r} is no longer in the maildrop", server=self.server)
        return number

    def fetch(self, ref: MessageRef) -> bytes:
        """RETR the message (POP3 has no flags; nothing changes on the server)."""
        number = self._number(ref)
        conn = self._connection()
        with self._step("command"):
            _, lines, _ = conn.retr(number)
        # poplib has already undone the dot-stuffing (RFC 1939 §3); restore CRLF line ends.
        return b"\r\n".join(lines) + b"\r\n"

    def mark_processed(self, ref: MessageRef) -> None:
        """DELE the message (committed by QUIT in :meth:`close`), unless ``delete_processed`` is False."""
        if not self.delete_processed:
            return
        if ref.uidl in self._deleted:
            return
        try:
            number = self._number(ref)
        except MessageGoneError:
            return  # already gone: marking is idempotent
        conn = self._connection()
        with self._step("command"):
            conn.dele(number)
        self._deleted.add(ref.uidl or "")

    def stat(self) -> tuple[int, int]:
        """(message count, total octets) of the maildrop."""
        conn = self._connection()
        with self._step("command"):
            count, size = conn.stat()
        return count, size

    def close(self) -> None:
        """QUIT, which commits the DELEs of this session (RFC 1939 §6)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with self._step("command"):
            try:
                conn.quit()
            finally:
                with suppress(OSError):
                    conn.close()
        self._deleted.clear()


def check_pop3_connection(
    endpoint: Endpoint,
    credentials: MailboxCredentials,
    *,
    client_certificate: ClientCertificate | None = None,
) -> ConnectionTestResult:
    """Log in and STAT; never raises for server problems."""

    def body() -> tuple[str, tuple[str, ...]]:
        with Pop3Source(endpoint, credentials, client_certificate=client_certificate) as source:
            count, size = source.stat()
            return f"maildrop has {count} messages ({size} octets)", tuple(sorted(source.capabilities))

    return run_connection_test("pop3", endpoint, body)
