"""What a transport needs and what it promises (docs/semantics.md §8), with no dependency on the configuration model.

- :class:`MailSource` and :class:`MailSender` are the ``typing.Protocol`` s a host may implement itself;
  the shipped adapters (:mod:`.imap`, :mod:`.pop3`, :mod:`.smtp`) implement them.
- :class:`Endpoint` and the credential variants (:class:`NoAuth`, :class:`PasswordAuth`,
  :class:`OAuth2Auth`, :class:`CertificateAuth`) are plain frozen dataclasses: the glue from a configured
  connector to a transport builds them, so transports never import the configuration model.
- :class:`MessageRef` is the stable id of one message (IMAP, POP3 or Graph); :class:`ConnectionTestResult` the
  typed outcome of a "test connection".
- :class:`MoveAction`, :class:`FlagAction`, :class:`DeleteAction` say what "processed" means for IMAP.

Secrets (passwords, tokens) are never part of a repr, an error message or a test result.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self, TypeAlias, runtime_checkable

from enate_routing._certificates import ClientCertificate

__all__ = [
    "CertificateAuth",
    "ConnectionTestResult",
    "Credentials",
    "DeleteAction",
    "Endpoint",
    "FlagAction",
    "MailSender",
    "MailSource",
    "MailboxCredentials",
    "MessageRef",
    "MoveAction",
    "NoAuth",
    "OAuth2Auth",
    "PasswordAuth",
    "ProcessedAction",
    "Security",
    "WaitsForMail",
]

Security: TypeAlias = Literal["ssl", "starttls", "none"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a server is and how to reach it safely.

    ``security``: ``ssl`` is implicit TLS (IMAPS 993, POP3S 995, SMTPS 465); ``starttls`` upgrades a plain
    connection before anything else (STARTTLS, or STLS for POP3); ``none`` stays plain. The server
    certificate is always verified — against ``ca_file`` (a PEM bundle) when given, else the system store.
    ``timeout`` bounds every socket operation, in seconds. ``allow_plaintext_auth`` must be True before a
    password or token may cross a ``none`` connection. ``source_address`` binds the local side (rarely
    needed: multi-homed hosts, and tests that must not look like loopback-to-itself).
    """

    host: str
    port: int
    security: Security = "ssl"
    ca_file: Path | None = None
    timeout: float = 30.0
    allow_plaintext_auth: bool = False
    source_address: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("Endpoint.host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"Endpoint.port out of range: {self.port}")
        if self.security not in ("ssl", "starttls", "none"):
            raise ValueError(f"Endpoint.security must be ssl, starttls or none, not {self.security!r}")
        if not self.timeout > 0:
            raise ValueError("Endpoint.timeout must be positive (a blocking socket could hang forever)")

    @property
    def label(self) -> str:
        """``host:port``, for messages and results."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class NoAuth:
    """No authentication (an open relay, or one that trusts the client's IP)."""


@dataclass(frozen=True, slots=True, repr=False)
class PasswordAuth:
    """A login and password (at most 50 characters per docs/semantics.md §2; not enforced here).

    ``method`` picks the wire form: ``auto`` (SASL PLAIN where offered, else the protocol's own
    LOGIN / USER+PASS), ``plain`` (SASL PLAIN: IMAP AUTHENTICATE, POP3 AUTH (RFC 5034), SMTP AUTH) or
    ``login`` (IMAP LOGIN, POP3 USER/PASS, SMTP AUTH LOGIN).
    """

    username: str
    password: str
    method: Literal["auto", "plain", "login"] = "auto"

    def __repr__(self) -> str:
        return f"PasswordAuth(username={self.username!r}, password='***', method={self.method!r})"


@dataclass(frozen=True, slots=True)
class OAuth2Auth:
    """OAuth 2.0 bearer-token SASL: ``XOAUTH2`` (Google, Microsoft) or ``OAUTHBEARER`` (RFC 7628).

    ``token_provider`` is called once per login and returns a current access token. ``token_refused``, when
    given, is told the token the server refused (a cache drops it: ``TokenSource.invalidate``); the login is
    then tried once more with a fresh token from ``token_provider``, and a second refusal is the
    :class:`~enate_routing.errors.AuthenticationError`. Without it a refusal is final (the host owns the flow).
    """

    username: str
    token_provider: Callable[[], str] = field(repr=False)
    mechanism: Literal["XOAUTH2", "OAUTHBEARER"] = "XOAUTH2"
    token_refused: Callable[[str], None] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class CertificateAuth:
    """A TLS client certificate (from a ``.pfx``, see :func:`enate_routing._certificates.load_pkcs12`)."""

    certificate: ClientCertificate


Credentials: TypeAlias = NoAuth | PasswordAuth | OAuth2Auth | CertificateAuth
"""What a sender may authenticate with (docs/semantics.md §2: none, username-password, certificate; plus OAuth)."""

MailboxCredentials: TypeAlias = PasswordAuth | OAuth2Auth
"""What a mailbox login (IMAP, POP3) may use."""


@dataclass(frozen=True, slots=True)
class MoveAction:
    """Processed mail is moved to ``folder`` (UID MOVE, RFC 6851; else COPY + \\Deleted + UID EXPUNGE)."""

    folder: str = "Archive"


@dataclass(frozen=True, slots=True)
class FlagAction:
    """Processed mail gets ``flag`` (a system flag like ``\\Seen`` or a keyword like ``$Processed``).

    Listing skips messages that carry it. ``expunge=True`` also runs ``UID EXPUNGE`` on the message
    (RFC 4315) — meaningful only with ``\\Deleted``; a plain EXPUNGE is never sent.
    """

    flag: str = "$Processed"
    expunge: bool = False


@dataclass(frozen=True, slots=True)
class DeleteAction:
    """Processed mail is flagged ``\\Deleted`` and removed with ``UID EXPUNGE`` (RFC 4315 UIDPLUS).

    Without UIDPLUS the message stays flagged ``\\Deleted`` (and is no longer listed): a plain EXPUNGE would
    also remove messages other clients flagged, so it is never sent.
    """


ProcessedAction: TypeAlias = MoveAction | FlagAction | DeleteAction


@dataclass(frozen=True, slots=True)
class MessageRef:
    """The stable id of one message: IMAP ``(mailbox, uidvalidity, uid)``, POP3 ``(mailbox, uidl)`` or
    Microsoft Graph ``(mailbox, graph_id)``.

    An IMAP UID is only meaningful together with the folder's UIDVALIDITY (RFC 3501 §2.3.1.1; RFC 9051
    §2.3.1.1): when UIDVALIDITY changes, every stored UID of that folder is void. A Graph id is an immutable
    id (it survives a move); ``mailbox`` is then ``address/folder``. :attr:`key` is a string a ledger can
    store.
    """

    mailbox: str
    uid: int | None = None
    uidvalidity: int | None = None
    uidl: str | None = None
    graph_id: str | None = None

    def __post_init__(self) -> None:
        if (self.uid is None) != (self.uidvalidity is None):
            raise ValueError("MessageRef needs uid and uidvalidity together (IMAP)")
        kinds = (self.uid is not None) + (self.uidl is not None) + (self.graph_id is not None)
        if kinds != 1:
            raise ValueError("MessageRef needs exactly one of uid and uidvalidity (IMAP), uidl (POP3) "
                             "or graph_id (Graph)")

    @property
    def protocol(self) -> Literal["imap", "pop3", "graph"]:
        if self.graph_id is not None:
            return "graph"
        return "pop3" if self.uidl is not None else "imap"

    @property
    def key(self) -> str:
        """``imap:<mailbox>:<uidvalidity>:<uid>``, ``pop3:<mailbox>:<uidl>`` or ``graph:<mailbox>/<graph_id>``.

        Graph refs made before the ``graph`` form was keyed ``pop3:<mailbox>:<graph_id>``: a ledger holding
        such keys still finds those messages by their content digest (its second key), so a re-run does not
        hand one off twice (docs/microsoft365.md).
        """
        if self.graph_id is not None:
            return f"graph:{self.mailbox}/{self.graph_id}"
        if self.uidl is not None:
            return f"pop3:{self.mailbox}:{self.uidl}"
        return f"imap:{self.mailbox}:{self.uidvalidity}:{self.uid}"


@dataclass(frozen=True, slots=True)
class ConnectionTestResult:
    """The outcome of a "test connection" (docs/semantics.md §8). Never holds a secret.

    ``detail`` says what was checked on success ("INBOX selected: 3 messages") and the safe error message
    on failure; ``error`` is then the error class name (``AuthenticationError``, ...) and ``retryable``
    whether trying again later may help.
    """

    ok: bool
    protocol: Literal["imap", "pop3", "smtp", "graph"]
    server: str
    detail: str
    elapsed: float
    error: str | None = None
    retryable: bool = False
    capabilities: tuple[str, ...] = ()


@runtime_checkable
class MailSource(Protocol):
    """A mailbox that ingestion reads: list, fetch raw bytes, mark processed (docs/semantics.md §8).

    ``marks_committed_on_close`` states a capability the ingestion loop relies on: True when marks take
    effect only when the session ends cleanly (POP3 deletions are committed by QUIT, RFC 1939 §6), so the
    loop marks in groups, each ended by :meth:`close`, before the ledger records them as marked.
    """

    marks_committed_on_close: bool

    def list_new(self) -> list[MessageRef]:
        """Messages not yet marked processed, oldest first."""
        ...

    def fetch(self, ref: MessageRef) -> bytes:
        """The raw RFC 5322 bytes of ``ref``, without changing its state on the server."""
        ...

    def mark_processed(self, ref: MessageRef) -> None:
        """Record on the server that ``ref`` is done, so :meth:`list_new` no longer returns it."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class WaitsForMail(Protocol):
    """A :class:`MailSource` that can be told about new mail instead of being polled (IMAP IDLE, RFC 2177)."""

    @property
    def can_wait(self) -> bool:
        """Whether the server offers it on this connection (else the caller polls)."""
        ...

    def wait_for_new(self, timeout: float, known: Collection[str] = (), stop: Callable[[], bool] = ...) -> bool:
        """Wait up to ``timeout`` s for a message whose ref key is not in ``known``; True when one is there."""
        ...


@runtime_checkable
class MailSender(Protocol):
    """Sends raw messages (acknowledgements, docs/semantics.md §3.5)."""

    def send(
        self, from_addr: str, to_addrs: Sequence[str], message_bytes: bytes
    ) -> Mapping[str, tuple[int, bytes]]:
        """Send ``message_bytes`` with envelope sender ``from_addr`` to every address of ``to_addrs``.

        Returns the recipients the server refused, with its reply (like ``smtplib.SMTP.sendmail``): a
        partly refused send is not retried, since that would duplicate it for the accepted ones.
        """
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
