"""The exception tree of enate_routing.

Every error the library raises on purpose derives from :class:`EnateRoutingError`, and also from the
builtin that fits, so ``except ValueError`` still works for callers that do not know this module::

    EnateRoutingError
    ├── ConfigError (ValueError)               a configuration is invalid; names file, where, field, item
    │   ├── UnknownConnectorError (LookupError) routing for a connector the configuration lacks
    │   └── CertificateError                   a PKCS#12 file cannot be used
    │       ├── CertificatePasswordError       wrong password, or not a PKCS#12 file
    │       ├── CertificateKeyMissingError     the file holds no private key
    │       ├── CertificateExpiredError        the certificate's notAfter has passed
    │       └── CertificateNotYetValidError    the certificate's notBefore is in the future
    ├── AdminError                             an administration operation was refused
    │   ├── PermissionDeniedError (PermissionError)
    │   ├── ReorderRefusedError                wrong tier, fallback, or grid not sorted by priority
    │   ├── ConcurrentEditError                the configuration changed since it was read
    │   ├── NotFoundError (LookupError)        no such route, connector or outgoing route
    │   ├── ConnectorLiveError                 a live outgoing connector cannot switch to incoming
    │   └── NotTestedError                     enabling needs a passed connection test of these settings
    ├── TransportError (OSError)               talking to a mail server failed
    │   ├── ConnectError (ConnectionError)     could not connect, or the connection dropped
    │   ├── TLSVerificationError               the server's certificate was not trusted
    │   ├── InsecureConnectionError            a secret would cross an unencrypted connection
    │   ├── AuthenticationError                the server refused the credentials
    │   ├── CertificateRejectedError           the server refused our client certificate
    │   ├── MailboxMissingError (LookupError)  the folder / shared mailbox does not exist
    │   │   └── MessageGoneError               the message a ref names is no longer on the server
    │   ├── ProtocolError                      the server answered something we cannot use
    │   │   ├── UidValidityChangedError        the folder's UIDVALIDITY changed: every stored UID is void
    │   │   └── GraphError                     a Microsoft Graph error answer; ``status`` and ``code``
    │   └── TransportTimeoutError (TimeoutError)
    ├── MessageFileError (OSError)             a message file named by the user cannot be read
    ├── HandlerError                           the host's handler failed; says whether a retry may help
    └── StoreError                             the durable ledger cannot be used
        └── LeaseHeldError                     another poller holds the lease on this folder

Messages are built from structured fields only, never from a secret's value (docs/semantics.md §2). This module
imports nothing from the package so every other module can import it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AdminError",
    "AuthenticationError",
    "CertificateError",
    "CertificateExpiredError",
    "CertificateKeyMissingError",
    "CertificateNotYetValidError",
    "CertificatePasswordError",
    "CertificateRejectedError",
    "ConcurrentEditError",
    "ConfigError",
    "ConfigIssue",
    "ConnectError",
    "ConnectorLiveError",
    "EnateRoutingError",
    "GraphError",
    "HandlerError",
    "InsecureConnectionError",
    "LeaseHeldError",
    "MailboxMissingError",
    "MessageFileError",
    "MessageGoneError",
    "NotFoundError",
    "NotTestedError",
    "PermissionDeniedError",
    "ProtocolError",
    "ReorderRefusedError",
    "StoreError",
    "TLSVerificationError",
    "TransportError",
    "TransportTimeoutError",
    "UidValidityChangedError",
    "UnknownConnectorError",
]


class EnateRoutingError(Exception):
    """Root of every error enate_routing raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration, located as precisely as known.

    ``where`` is a human label of the object ("connector 'Support'", "route 'Urgent' of connector
    'Support'"); ``field`` a dotted path inside it ("rules.senders"); ``item`` the offending value when it
    is not a secret.
    """

    problem: str
    file: str | None = None
    where: str | None = None
    field: str | None = None
    item: str | None = None

    def __str__(self) -> str:
        parts = [_cut(p) for p in (self.file, self.where, self.field) if p]
        prefix = ": ".join(parts)
        text = _cut(self.problem if self.item is None else f"{self.problem}: {self.item!r}")
        return f"{prefix}: {text}" if prefix else text


# A message quotes what it locates — a route name, a bad value — and an admin screen or a file may hand in
# 100,000 characters: each part of a line is cut, so a line stays readable (the fields keep the whole text).
_PART_CHARS = 300


def _cut(text: str) -> str:
    return text if len(text) <= _PART_CHARS else f"{text[:_PART_CHARS - 60]}… ({len(text):,} characters)"


class ConfigError(EnateRoutingError, ValueError):
    """A configuration is invalid. Holds one or more :class:`ConfigIssue`, one line each."""

    def __init__(self, issues: ConfigIssue | list[ConfigIssue] | tuple[ConfigIssue, ...]) -> None:
        self.issues: tuple[ConfigIssue, ...] = (issues,) if isinstance(issues, ConfigIssue) else tuple(issues)
        if not self.issues:
            raise ValueError("ConfigError needs at least one issue")
        super().__init__("\n".join(str(issue) for issue in self.issues))

    @classmethod
    def single(
        cls,
        problem: str,
        *,
        file: str | None = None,
        where: str | None = None,
        field: str | None = None,
        item: str | None = None,
    ) -> ConfigError:
        return cls(ConfigIssue(problem, file=file, where=where, field=field, item=item))

    def with_file(self, file: str) -> ConfigError:
        """The same error, located in ``file`` (issues that already name a file keep theirs)."""
        issues = [
            ConfigIssue(i.problem, file=i.file or file, where=i.where, field=i.field, item=i.item)
            for i in self.issues
        ]
        new = type(self).__new__(type(self))
        ConfigError.__init__(new, issues)
        return new

    @property
    def file(self) -> str | None:
        return self.issues[0].file

    @property
    def where(self) -> str | None:
        return self.issues[0].where

    @property
    def field(self) -> str | None:
        return self.issues[0].field

    @property
    def item(self) -> str | None:
        return self.issues[0].item


class UnknownConnectorError(ConfigError, LookupError):
    """Routing named a connector the configuration has no incoming connector for, or named none when the
    configuration has several."""


class CertificateError(ConfigError):
    """A PKCS#12 certificate cannot be used."""


class CertificatePasswordError(CertificateError):
    """The certificate password is wrong (or the file is not PKCS#12)."""


class CertificateKeyMissingError(CertificateError):
    """The PKCS#12 file holds no private key."""


class CertificateExpiredError(CertificateError):
    """The certificate is past its notAfter date."""


class CertificateNotYetValidError(CertificateError):
    """The certificate's notBefore date is in the future."""


class AdminError(EnateRoutingError):
    """An administration operation was refused; the message says why."""


class PermissionDeniedError(AdminError, PermissionError):
    """The host did not grant the permission the operation needs."""


class ReorderRefusedError(AdminError, ValueError):
    """A move would leave the route's tier, move the fallback, or the grid is not sorted by priority."""


class ConcurrentEditError(AdminError):
    """The configuration was changed by someone else since this edit read it."""


class NotFoundError(AdminError, LookupError):
    """No route, connector or outgoing route has that name."""


class ConnectorLiveError(AdminError, ValueError):
    """A connector that is live for outgoing mail cannot be switched to incoming (docs/semantics.md §3.2)."""


class NotTestedError(AdminError, ValueError):
    """Enabling needs a successful connection test of the current settings (docs/semantics.md §2, §3.2)."""


class TransportError(EnateRoutingError, OSError):
    """Talking to a mail server failed. ``retryable`` tells the ingestion loop whether to try again."""

    retryable: bool = False
    retry_after: float | None = None
    """Seconds the server asked to wait before the next try (Graph's ``Retry-After``), when it said."""

    def __init__(self, message: str, *, server: str | None = None) -> None:
        self.server = server
        super().__init__(f"{server}: {message}" if server else message)


class ConnectError(TransportError, ConnectionError):
    """The server could not be reached, or the connection dropped."""

    retryable = True


class TLSVerificationError(TransportError):
    """The server's certificate failed verification."""


class InsecureConnectionError(TransportError):
    """A password or token would be sent over an unencrypted connection, which the connector forbids."""


class AuthenticationError(TransportError):
    """The server refused the credentials."""


class CertificateRejectedError(TransportError):
    """The server refused (or did not receive) our client certificate."""


class MailboxMissingError(TransportError, LookupError):
    """The mailbox or folder does not exist, or this login may not open it."""


class ProtocolError(TransportError):
    """The server answered something the client cannot use."""

    retryable = True


class MessageGoneError(MailboxMissingError):
    """The message a ``MessageRef`` names is no longer on the server (another client removed it)."""


class UidValidityChangedError(ProtocolError):
    """The folder's UIDVALIDITY is not the one a ``MessageRef`` was listed under.

    Every stored UID of the folder is void (RFC 3501 §2.3.1.1): list again and de-duplicate by content
    (message id / digest), as the ingestion ledger does. Not retryable with the same ref.
    """

    retryable = False

    def __init__(self, mailbox: str, expected: int, actual: int, *, server: str | None = None) -> None:
        self.mailbox = mailbox
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"UIDVALIDITY of {mailbox!r} changed from {expected} to {actual}; list the folder again",
            server=server,
        )


class GraphError(ProtocolError):
    """A Microsoft Graph error answer no more specific error fits; ``status`` and ``code`` say which.

    Retryable for throttling (429) and server errors (5xx), not for the other 4xx answers.
    """

    def __init__(self, message: str, *, status: int, code: str, server: str | None = None,
                 retry_after: float | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message, server=server)
        self.retry_after = retry_after
        self.retryable = status >= 500 or status == 429


class TransportTimeoutError(TransportError, TimeoutError):
    """A command did not complete within its timeout."""

    retryable = True


class MessageFileError(EnateRoutingError, OSError):
    """A message file or folder named on the command line cannot be read."""


class StoreError(EnateRoutingError):
    """The durable ledger or history store cannot be used."""


class LeaseHeldError(StoreError):
    """Another live poller holds the lease on this connector's folder."""

    def __init__(self, connector: str, mailbox: str, owner: str) -> None:
        self.connector = connector
        self.mailbox = mailbox
        self.owner = owner
        super().__init__(f"connector {connector!r}, folder {mailbox!r} is being polled by {owner}")


class HandlerError(EnateRoutingError):
    """A host's handler may raise this to say whether trying again later may help (``retryable``)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
