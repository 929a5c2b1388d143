"""IMAP mail source over ``imaplib`` (RFC 3501 / RFC 9051), UID-based and UIDVALIDITY-aware (docs/semantics.md §8).

What this adapter guarantees, and why:

- **UIDs only.** Sequence numbers shift whenever any client expunges; every command is a ``UID``
  command (RFC 3501 §6.4.8). A :class:`~.base.MessageRef` carries the folder's UIDVALIDITY with the UID:
  if the server reports another UIDVALIDITY, :meth:`ImapSource.fetch` / :meth:`ImapSource.mark_processed`
  raise :class:`~enate_routing.errors.UidValidityChangedError` instead of touching a different message (§2.3.1.1).
  :attr:`ImapSource.uidvalidity` lets a caller compare with what its ledger stored.
- **Fetching changes nothing.** ``BODY.PEEK[]`` does not set ``\\Seen`` (RFC 3501 §6.4.5).
- **No plain EXPUNGE, no CLOSE.** Both remove *every* ``\\Deleted`` message, including those another
  client flagged; only ``UID EXPUNGE <uid>`` (RFC 4315 UIDPLUS) is sent, and the session ends with LOGOUT.
- **Capabilities are re-read after login**, since servers add ``MOVE``, ``UIDPLUS``... only then
  (mailservers.md §8.10). Without ``MOVE`` (RFC 6851) a move is ``UID COPY`` + ``\\Deleted`` +
  ``UID EXPUNGE``.
- **Mailbox names are modified UTF-7 and quoted** (RFC 3501 §5.1.3, §4.3) — imaplib does neither.

The additional (shared / delegated) mailbox of docs/semantics.md §2 is reached with the same login in one of two ways:

- a **shared-namespace folder**: pass ``mailbox="shared/owner@example.com/INBOX"`` (Dovecot's default
  prefix; :func:`shared_folder` builds it; the owner grants rights with IMAP ACL, RFC 4314);
- a **master / delegate login**: :func:`delegate_login` formats the user name — Dovecot master users are
  ``target*master``; Office 365 used ``delegate@dom\\shared@dom`` (basic auth is off there now: use
  :class:`~.base.OAuth2Auth` with the *shared* mailbox as user name and the delegate's token). Gmail has
  no shared mailboxes: delegated access needs a per-user OAuth grant.
"""

from __future__ import annotations

import imaplib
import logging
import re
import select
import socket
import ssl
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import suppress
from typing import Literal

from enate_routing._certificates import ClientCertificate
from enate_routing.errors import (
    AuthenticationError,
    ConnectError,
    InsecureConnectionError,
    MailboxMissingError,
    MessageGoneError,
    ProtocolError,
    TransportTimeoutError,
    UidValidityChangedError,
)
from enate_routing.transports._base import (
    ConnectionTestResult,
    DeleteAction,
    Endpoint,
    FlagAction,
    MailboxCredentials,
    MessageRef,
    MoveAction,
    PasswordAuth,
    ProcessedAction,
)
from enate_routing.transports._session import Adapter, open_socket, run_connection_test
from enate_routing.transports._utf7 import quote_mailbox

_log = logging.getLogger("enate_routing.transports")
_IDLE_RENEW = 29 * 60.0  # RFC 2177 §3: servers may log out a client idle for 30 minutes

__all__ = ["ImapSource", "check_imap_connection", "delegate_login", "shared_folder"]

# RFC 3501 §9: flag-keyword = atom; atom-specials are ( ) { SP CTL % * " \ ]
_KEYWORD = re.compile(r"^\\?[^(){ \x00-\x1f\x7f%*\"\\\]]+$")
_SYSTEM_FLAG_NEGATIONS = {
    "\\SEEN": "UNSEEN",
    "\\ANSWERED": "UNANSWERED",
    "\\FLAGGED": "UNFLAGGED",
    "\\DELETED": "UNDELETED",
    "\\DRAFT": "UNDRAFT",
}
_FETCH_UID = re.compile(rb"\bUID (\d+)")
_LITERAL_CHUNK = 1 << 20
_MAX_LINE = 64 << 20  # a UID SEARCH answer of about 7 million UIDs
_MAX_UNTAGGED = 100_000  # per command; a SEARCH or FETCH of one message gets a handful


def shared_folder(owner: str, folder: str = "INBOX", *, prefix: str = "shared/", separator: str = "/") -> str:
    """The path of ``owner``'s ``folder`` in a shared namespace (RFC 2342), Dovecot style by default."""
    return f"{prefix}{owner}{separator}{folder}"


def delegate_login(target: str, login: str, *, style: Literal["dovecot", "office365"] = "dovecot") -> str:
    """The user name that opens ``target``'s mailbox with ``login``'s password.

    Dovecot master users: ``target*master`` (``auth_master_user_separator = *``); Office 365 (legacy
    basic auth): ``login\\target`` — delegate first.
    """
    return f"{target}*{login}" if style == "dovecot" else f"{login}\\{target}"


def _text(data: Iterable[object]) -> str:
    parts = []
    for item in data:
        if isinstance(item, bytes):
            parts.append(item.decode("utf-8", "replace"))
        elif item is not None:
            parts.append(str(item))
    return " ".join(parts)


def _numbers(data: Iterable[object]) -> list[int]:
    """The items of ``data`` that are ASCII digit strings, as numbers (``bytes.isdigit`` is ASCII only;
    ``str.isdigit`` would take ``²``, which ``int`` refuses)."""
    return [int(item) for item in data if isinstance(item, bytes) and item.isdigit()]


def _check(result: tuple[str, Sequence[object]]) -> Sequence[object]:
    """The data of an OK reply; raise imaplib's error (mapped by the stage guard) for NO / BAD."""
    typ, data = result
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{typ} {_text(data)}")
    return data


class _IMAP4(imaplib.IMAP4):
    """imaplib with our socket: timeout, source address, implicit TLS through the verifying context."""

    def __init__(self, endpoint: Endpoint, implicit_tls: ssl.SSLContext | None) -> None:
        self._endpoint = endpoint
        self._implicit_tls = implicit_tls
        self._untagged = 0  # untagged responses since the last command was sent
        super().__init__(endpoint.host, endpoint.port, timeout=endpoint.timeout)

    def _command(self, name: str, *args: str | bytes) -> bytes:
        self._untagged = 0
        return super()._command(name, *args)  # type: ignore[misc,no-any-return]  # typeshed omits the private API

    def _append_untagged(self, typ: str, dat: bytes | None) -> None:
        # imaplib reads untagged responses until the tagged one and keeps them all: a server that never sends
        # the tagged answer would hold the worker and fill its memory for ever.
        self._untagged += 1
        if self._untagged > _MAX_UNTAGGED:
            raise ConnectError(f"the server sent more than {_MAX_UNTAGGED} untagged responses to one command; "
                               "connection dropped", server=f"imap://{self._endpoint.label}")
        super()._append_untagged(typ, dat)  # type: ignore[misc]  # typeshed omits the private API

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return open_socket(self._endpoint, self._implicit_tls)

    def readline(self) -> bytes:
        """One line of at most _MAX_LINE octets (imaplib allows 1,000,000: the UID SEARCH answer of a folder with
        more than about 140,000 waiting messages, which then could never be listed)."""
        line = self.file.readline(_MAX_LINE + 1)
        if not isinstance(line, bytes):  # pragma: no cover - the file is opened in binary mode
            raise self.error("the connection is not in binary mode")
        if len(line) > _MAX_LINE:  # the rest of the line is still coming: this connection is useless
            raise ConnectError(f"the server sent a line longer than {_MAX_LINE} octets; connection dropped",
                               server=f"imap://{self._endpoint.label}")
        return line

    def read(self, size: int) -> bytes:
        """A literal of ``size`` octets, read a chunk at a time: imaplib would ask for all of it at once, and
        a buffered read allocates what the server *announced* (``{10**12}``: MemoryError) before any arrives."""
        chunks: list[bytes] = []
        while size > 0:
            chunk = self.file.read(min(size, _LITERAL_CHUNK))
            if not chunk or not isinstance(chunk, bytes):
                break  # EOF: imaplib's next readline reports the closed connection
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)


class ImapSource(Adapter):
    """A :class:`~.base.MailSource` over IMAP for one folder.

    ``mailbox`` is the folder to read (Unicode; ``/``-separated paths as the server uses them).
    ``processed`` says what :meth:`mark_processed` does (default: move to ``Archive``). The connection
    opens on first use and re-opens after a dropped connection; :meth:`close` logs out.
    """

    protocol = "imap"
    marks_committed_on_close = False  # a MOVE / STORE is done when the server answers OK

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: MailboxCredentials,
        mailbox: str = "INBOX",
        *,
        processed: ProcessedAction | None = None,
        client_certificate: ClientCertificate | None = None,
    ) -> None:
        super().__init__(endpoint, credentials, client_certificate=client_certificate)
        self.mailbox = mailbox
        self.processed: ProcessedAction = processed if processed is not None else MoveAction()
        if isinstance(self.processed, FlagAction) and not _KEYWORD.match(self.processed.flag):
            raise ValueError(f"not an IMAP flag or keyword: {self.processed.flag!r}")
        self._conn: _IMAP4 | None = None
        self._capabilities: frozenset[str] = frozenset()
        self._uidvalidity: int | None = None
        self._quoted = quote_mailbox(mailbox)
        self.exists = 0  # EXISTS of the last SELECT

    # ------------------------------------------------------------------ connection
    @property
    def capabilities(self) -> frozenset[str]:
        """The server's capabilities as read after login (upper-case)."""
        self._connection()
        return self._capabilities

    def _has(self, capability: str) -> bool:
        return capability in self.capabilities

    def _connection(self) -> _IMAP4:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> _IMAP4:
        context = self._tls_context()
        implicit = context if self.endpoint.security == "ssl" else None
        conn: _IMAP4 | None = None
        try:
            with self._guard("tls" if implicit is not None else "connect"):
                conn = _IMAP4(self.endpoint, implicit)
            if self.endpoint.security == "starttls":
                if "STARTTLS" not in conn.capabilities:
                    raise self._no_starttls(self.server, "STARTTLS")
                with self._guard("tls"):
                    conn.starttls(ssl_context=context)
                    conn.capability()  # the first exchange after the handshake (late cert rejection)
            self._login(conn)
            with self._guard("command"):
                self._capabilities = self._capability_set(conn)
            self._uidvalidity = None
            return conn
        except BaseException:
            if conn is not None:
                with suppress(OSError):
                    conn.shutdown()
            raise

    @staticmethod
    def _capability_set(conn: _IMAP4) -> frozenset[str]:
        data = _check(conn.capability())
        return frozenset(_text(data).upper().split())

    def _login(self, conn: _IMAP4) -> None:
        before = frozenset(c.upper() for c in conn.capabilities)
        offered = {c.split("=", 1)[1] for c in before if c.startswith("AUTH=")}
        sasl = self._sasl_for(offered)
        if "LOGINDISABLED" in before and (sasl is None or sasl.mechanism not in offered):
            # RFC 3501 §6.2.3: the server would refuse; do not even send the secret.
            raise InsecureConnectionError(
                "the server refuses authentication on this unencrypted connection (LOGINDISABLED)",
                server=self.server,
            )
        if sasl is not None:
            self._authenticate(sasl, offered, lambda client: conn.authenticate(client.mechanism, client))
            return
        credentials = self.credentials
        if not isinstance(credentials, PasswordAuth):  # pragma: no cover - OAuth always goes through SASL
            raise AuthenticationError("no password to log in with", server=self.server)
        with self._guard("auth"):
            # imaplib quotes the password but not the user name (an O365 "a\\b" name needs it).
            user = '"' + credentials.username.replace("\\", "\\\\").replace('"', '\\"') + '"'
            conn.login(user, credentials.password)

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        self._uidvalidity = None
        if conn is not None:
            with suppress(OSError):
                conn.shutdown()

    # ------------------------------------------------------------------ mailbox state
    def _select(self) -> int:
        """(Re-)SELECT the folder read-write; remember and return its UIDVALIDITY."""
        conn = self._connection()
        with self._step("mailbox"):
            counts = _numbers(_check(conn.select(self._quoted)))
        # Mail arriving while SELECT runs adds an EXISTS line (RFC 3501 §7.3.1): the last count is current.
        self.exists = counts[-1] if counts else 0
        with self._step("command"):
            _, data = conn.response("UIDVALIDITY")
            values = _numbers(data)
        if not values:
            raise ProtocolError(f"SELECT {self.mailbox!r} reported no UIDVALIDITY", server=self.server)
        self._uidvalidity = values[-1]
        return self._uidvalidity

    @property
    def uidvalidity(self) -> int:
        """The folder's UIDVALIDITY in this session (selecting the folder first if needed).

        Compare it with the value stored beside earlier refs: a change voids them (RFC 3501 §2.3.1.1).
        """
        return self._uidvalidity if self._uidvalidity is not None else self._select()

    def _check_ref(self, ref: MessageRef) -> int:
        if ref.uid is None or ref.uidvalidity is None or ref.mailbox != self.mailbox:
            raise ValueError(f"{ref!r} is not an IMAP message of {self.mailbox!r}")
        current = self.uidvalidity
        if ref.uidvalidity != current:
            raise UidValidityChangedError(self.mailbox, ref.uidvalidity, current, server=self.server)
        return ref.uid

    def _search_criteria(self) -> list[str]:
        criteria = ["UNDELETED"]
        action = self.processed
        if isinstance(action, FlagAction):
            negation = _SYSTEM_FLAG_NEGATIONS.get(action.flag.upper())
            if negation is not None:
                criteria.append(negation)
            else:
                criteria += ["UNKEYWORD", action.flag]
        return criteria

    # ------------------------------------------------------------------ MailSource
    def list_new(self) -> list[MessageRef]:
        """Messages of the folder not yet processed (not \\Deleted, not carrying the processed flag)."""
        uidvalidity = self._select()  # re-select: fresh UIDVALIDITY and message list every poll
        conn = self._connection()
        with self._step("command"):
            data = _check(conn.uid("SEARCH", *self._search_criteria()))
        uids = sorted(set(_numbers(word for item in data if isinstance(item, bytes) for word in item.split())))
        return [MessageRef(self.mailbox, uid=uid, uidvalidity=uidvalidity) for uid in uids]

    def fetch(self, ref: MessageRef) -> bytes:
        """The raw message, fetched with BODY.PEEK[] so its \\Seen flag does not change."""
        uid = self._check_ref(ref)
        conn = self._connection()
        with self._step("command"):
            data = _check(conn.uid("FETCH", str(uid), "(UID BODY.PEEK[])"))
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                head, body = item
                match = _FETCH_UID.search(head) if isinstance(head, bytes) else None
                if match and int(match.group(1)) == uid and b"BODY[]" in head and isinstance(body, bytes):
                    return body
        raise MessageGoneError(f"message UID {uid} is no longer in {self.mailbox!r}", server=self.server)

    def mark_processed(self, ref: MessageRef) -> None:
        """Apply the processed action; marking a message that is already gone is not an error."""
        uid = str(self._check_ref(ref))
        conn = self._connection()
        action = self.processed
        with self._step("command"):
            if isinstance(action, MoveAction):
                command = "MOVE" if self._has("MOVE") else "COPY"
                self._move_or_copy(conn, command, uid, action.folder)
                if command == "COPY":
                    self._delete(conn, uid)
            elif isinstance(action, DeleteAction):
                self._delete(conn, uid)
            else:
                _check(conn.uid("STORE", uid, "+FLAGS.SILENT", f"({action.flag})"))
                if action.expunge and self._has("UIDPLUS"):
                    _check(conn.uid("EXPUNGE", uid))

    def _move_or_copy(self, conn: _IMAP4, command: str, uid: str, folder: str) -> None:
        """UID MOVE / COPY to ``folder``; on ``[TRYCREATE]`` CREATE the folder and try once more
        (RFC 3501 §6.4.7), so the default marking works on a fresh mailbox without a "Processed" folder."""
        target = quote_mailbox(folder)
        result = conn.uid(command, uid, target)
        if _wants_create(result):
            created = conn.create(target)
            if created[0] != "OK" and not _already_exists(created):
                raise MailboxMissingError(
                    f"folder {folder!r} does not exist and cannot be created ({_text(created[1])})",
                    server=self.server,
                )
            _log.info("folder created", extra={"folder": folder, "server": self.server})
            result = conn.uid(command, uid, target)
        if _wants_create(result):
            raise MailboxMissingError(f"folder {folder!r} does not exist ({_text(result[1])})", server=self.server)
        _check(result)

    def _delete(self, conn: _IMAP4, uid: str) -> None:
        _check(conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)"))
        if self._has("UIDPLUS"):
            # RFC 4315 §2.1: removes only this UID. Without UIDPLUS the message stays \Deleted (and is no
            # longer listed) rather than risk a plain EXPUNGE of other clients' \Deleted messages.
            _check(conn.uid("EXPUNGE", uid))

    # ------------------------------------------------------------------ waiting (RFC 2177)
    @property
    def can_wait(self) -> bool:
        """Whether the server offers IDLE, so :meth:`wait_for_new` is told about new mail at once."""
        return "IDLE" in self.capabilities

    def wait_for_new(
        self, timeout: float, known: Collection[str] = (), stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Wait up to ``timeout`` seconds for mail not among ``known`` ref keys, with IMAP IDLE (RFC 2177).

        True as soon as the folder lists such a message or the server announces one (``EXISTS``); False when
        the time is up or ``stop()`` turns true (checked every second). IDLE is re-issued at least every 29
        minutes (RFC 2177 §3). Without IDLE, only the initial listing is checked.
        """
        if any(ref.key not in known for ref in self.list_new()):
            return True  # arrived between the last pass and now
        if not self.can_wait:
            return False
        conn = self._connection()
        deadline = time.monotonic() + min(timeout, _IDLE_RENEW)
        with self._step("command"):
            tag = conn._new_tag()
            conn.send(tag + b" IDLE\r\n")
            if not conn.readline().startswith(b"+"):
                raise ProtocolError("the server did not accept IDLE", server=self.server)
            woke = self._idle_until(conn, deadline, stop)
            conn.send(b"DONE\r\n")
            done_by = time.monotonic() + self.endpoint.timeout
            while True:  # the tagged completion of IDLE; untagged updates before it are dropped
                if time.monotonic() > done_by:  # a server chattering for ever would hold the worker
                    raise TransportTimeoutError("the server did not end IDLE in time", server=self.server)
                line = conn.readline()
                if not line:
                    raise ConnectError("the server closed the connection during IDLE", server=self.server)
                if line.startswith(tag + b" "):
                    if not line[len(tag) + 1:].upper().startswith(b"OK"):
                        raise ProtocolError(f"IDLE ended with {_text([line])}", server=self.server)
                    return woke

    def _idle_until(self, conn: _IMAP4, deadline: float, stop: Callable[[], bool]) -> bool:
        sock = conn.sock
        while not stop():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Bytes the TLS layer already decrypted are not seen by select().
            if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                readable, _, _ = select.select([sock], [], [], min(1.0, remaining))
                if not readable:
                    continue
            line = conn.readline()
            if not line or line.upper().startswith(b"* BYE"):
                raise ConnectError("the server closed the connection during IDLE", server=self.server)
            words = line.upper().split()
            if len(words) >= 3 and words[0] == b"*" and words[2] in (b"EXISTS", b"RECENT"):
                return True
        return False

    def close(self) -> None:
        """LOGOUT (never CLOSE, which would expunge every \\Deleted message, RFC 3501 §6.4.2)."""
        conn, self._conn = self._conn, None
        self._uidvalidity = None
        if conn is None:
            return
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            with suppress(OSError):
                conn.shutdown()


def _wants_create(result: tuple[str, Sequence[object]]) -> bool:
    return result[0] != "OK" and "TRYCREATE" in _text(result[1]).upper()


def _already_exists(result: tuple[str, Sequence[object]]) -> bool:
    # Another client created it between our two commands (RFC 5530 ALREADYEXISTS).
    return "ALREADYEXISTS" in _text(result[1]).upper()


def check_imap_connection(
    endpoint: Endpoint,
    credentials: MailboxCredentials,
    mailbox: str = "INBOX",
    *,
    processed: ProcessedAction | None = None,
    client_certificate: ClientCertificate | None = None,
) -> ConnectionTestResult:
    """Log in and SELECT ``mailbox`` (and check a move target exists); never raises for server problems."""

    def body() -> tuple[str, tuple[str, ...]]:
        with ImapSource(
            endpoint, credentials, mailbox, processed=processed, client_certificate=client_certificate
        ) as source:
            uidvalidity = source.uidvalidity
            conn = source._connection()
            action = source.processed
            if isinstance(action, MoveAction):
                with source._step("command"):
                    result = conn.status(quote_mailbox(action.folder), "(MESSAGES)")
                # A missing folder is created on first use (RFC 3501 §6.4.7 TRYCREATE): say so, do not fail.
                missing = result[0] != "OK"
            caps = tuple(sorted(source.capabilities))
            detail = f"{mailbox!r} selected: {source.exists} messages, UIDVALIDITY {uidvalidity}"
            if isinstance(action, MoveAction) and missing:
                detail += f"; processed-mail folder {action.folder!r} will be created when the first message is moved"
            return detail, caps

    return run_connection_test("imap", endpoint, body)
