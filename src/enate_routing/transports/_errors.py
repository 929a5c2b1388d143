"""The one place where foreign exceptions become ours.

``imaplib``, ``poplib``, ``smtplib``, ``ssl`` and ``socket`` each signal the same few situations in
their own way; :func:`mapped_errors` turns them into the :class:`~enate_routing.errors.TransportError`
subclasses, so the ingestion loop can tell what to retry::

    socket / DNS / refused / reset ........................ ConnectError (retryable)
    ssl.SSLCertVerificationError .......................... TLSVerificationError
    TLS alert about our certificate ....................... CertificateRejectedError
    the server hanging up right after the TLS handshake ... CertificateRejectedError (retryable: a restart
                                                            looks the same)
    timeout (also when smtplib / imaplib wrap it) ......... TransportTimeoutError (retryable)
    server says "plaintext authentication disallowed" ..... InsecureConnectionError
    a reply saying "not now" (IMAP [UNAVAILABLE] [INUSE]
      [SERVERBUG], POP3 [SYS/TEMP] [IN-USE] [LOGIN-DELAY], SMTP 4xx
      to AUTH) ............................................ ProtocolError (retryable), at any stage
    a NO / -ERR / 5xx while authenticating ................ AuthenticationError
    a SASL challenge that is not base64 ................... ProtocolError (retryable)
    a NO while selecting a folder ......................... MailboxMissingError
    any other NO / BAD / -ERR / reply code ................ ProtocolError (4xx retryable)

The adapters say which *stage* a block is in (``connect``, ``tls``, ``auth``, ``mailbox``,
``command``); the stage decides what an ambiguous error means. Why ``tls`` covers the first exchange
after the handshake: in TLS 1.3 the server checks the client certificate *after* the client considers
the handshake done, so a refused certificate shows as the connection closing on the next read
(mailservers.md §8.12).

Messages are built from the error type, the stage and the server's own reply text; every secret the
adapter registered is replaced by ``***`` anyway, and at the ``auth`` stage the original exception is not
chained (``UnicodeEncodeError.object`` would hold the password).
"""

from __future__ import annotations

import base64
import binascii
import imaplib
import poplib
import re
import smtplib
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, TypeAlias

from enate_routing.errors import (
    AuthenticationError,
    CertificateRejectedError,
    ConnectError,
    InsecureConnectionError,
    MailboxMissingError,
    ProtocolError,
    TLSVerificationError,
    TransportError,
    TransportTimeoutError,
)

__all__ = ["Stage", "mapped_errors", "scrub", "translate"]

Stage: TypeAlias = Literal["connect", "tls", "auth", "mailbox", "command"]

# OpenSSL reasons for TLS alerts a server sends when it does not like our certificate (RFC 8446 §6.2).
_CERT_ALERTS = frozenset({
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
})
# IMAP [PRIVACYREQUIRED] (RFC 5530), Dovecot's texts for LOGIN/USER and for SASL, SMTP 538 (RFC 4954 §6).
_PLAINTEXT_REFUSED = (
    "PRIVACYREQUIRED",
    "plaintext authentication disallowed",
    "plaintext authentication disabled",
    "encryption required",
)
# Response codes of a server that cannot do it *now* — its authentication back end is down, another session
# holds the maildrop, logins come too often, it hit an internal error — whatever the stage: a login refused this
# way is not a refusal of the credentials, nor a SELECT so refused a missing folder, and a poller that gave up
# on it would stop for good over a passing fault. IMAP: RFC 5530 §3 UNAVAILABLE, INUSE, SERVERBUG (Dovecot's
# "Internal error occurred", which an index it repairs on the next access gives too); POP3: RFC 3206 §4
# SYS/TEMP, RFC 2449 §8.1 IN-USE and LOGIN-DELAY (Dovecot answers a locked maildrop "-ERR [IN-USE] Mailbox is
# locked by another POP3 session.").
_NOT_NOW = re.compile(r"(?:(?:NO|-ERR)\s+)?\[(?:UNAVAILABLE|INUSE|SERVERBUG|SYS/TEMP|IN-USE|LOGIN-DELAY)\b",
                      re.IGNORECASE)
# SMTP 4xx while authenticating is temporary too (RFC 4954 §6: 454 4.7.0 "Temporary authentication failure"),
# except 432 "a password transition is needed", which waits for a person.
_SMTP_PASSWORD_TRANSITION = 432
_DISCONNECTS = (
    imaplib.IMAP4.abort,
    smtplib.SMTPServerDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    ssl.SSLZeroReturnError,
    ssl.SSLEOFError,
    EOFError,
)
_CERT_HINT = (
    "the server closed the connection right after the TLS handshake: it requires a client certificate "
    "from a CA it trusts, or refused ours (or it is restarting)"
)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``, in each form a server may echo it back in."""
    forms = {form for secret in secrets if secret for form in _echoed_forms(secret)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _echoed_forms(secret: str) -> tuple[str, str, str]:
    """``secret`` as written, as an IMAP quoted string (RFC 3501 §4.3: ``\\`` and ``"`` escaped, as imaplib
    sends a LOGIN password) and in base64 (SASL LOGIN; longer SASL messages register their own base64)."""
    quoted = secret.replace("\\", "\\\\").replace('"', '\\"')
    return secret, quoted, base64.b64encode(secret.encode("utf-8", "replace")).decode("ascii")


def _reply_text(exc: BaseException, secrets: Sequence[str]) -> str:
    """The server's reply carried by a library exception, decoded, scrubbed, then on one line and cut short
    (scrubbed first: joining white space or cutting could leave a secret the scrub no longer finds)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        raw: object = exc.smtp_error
        prefix = f"{exc.smtp_code} "
    else:
        raw = exc.args[0] if exc.args else ""
        prefix = ""
    text = scrub(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw), secrets)
    return (prefix + " ".join(text.split()))[:300]


def _timed_out(exc: BaseException) -> bool:
    # smtplib turns a read timeout into SMTPServerDisconnected and imaplib a send timeout into
    # IMAP4.abort("socket error: timed out"); look through the wrapping.
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, TimeoutError) or "timed out" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# OpenSSL's verify codes for a chain that ends at a CA the trust store does not hold (self-signed leaf or root,
# issuer unknown): what a server with a private CA gives on first use.
_UNKNOWN_ISSUER = frozenset({18, 19, 20, 21})
_PRIVATE_CA_HINT = " (a private CA is trusted with ca_file)"


def translate(exc: BaseException, stage: Stage, server: str, secrets: Sequence[str] = ()) -> TransportError | None:
    """Our error for ``exc`` raised during ``stage``, or None when ``exc`` is not a transport problem."""

    def make(cls: type[TransportError], message: str) -> TransportError:
        return cls(scrub(message, secrets), server=server)

    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = _PRIVATE_CA_HINT if exc.verify_code in _UNKNOWN_ISSUER else ""
        return make(TLSVerificationError, f"server certificate not trusted: {exc.verify_message}{hint}")
    if isinstance(exc, ssl.SSLError) and exc.reason in _CERT_ALERTS:
        return make(CertificateRejectedError, f"the server rejected our client certificate ({exc.reason})")
    if _timed_out(exc):
        return make(TransportTimeoutError, f"no answer in time during {stage}")
    if isinstance(exc, _DISCONNECTS) or (isinstance(exc, poplib.error_proto) and "EOF" in _reply_text(exc, secrets)):
        if stage == "tls":
            # A restarting server's login process closes what it just accepted in the very same way, so this
            # is retried (an unattended poller must outlive a restart); a real refusal keeps failing, with the hint.
            rejected = make(CertificateRejectedError, _CERT_HINT)
            rejected.retryable = True
            return rejected
        return make(ConnectError, f"connection closed by the server during {stage}")
    if isinstance(exc, ssl.SSLError):
        return make(ConnectError, f"TLS failed during {stage}: {exc.reason or exc.__class__.__name__}")
    if isinstance(exc, socket.gaierror):
        return make(ConnectError, "cannot resolve the host name")
    if isinstance(exc, ConnectionRefusedError):
        return make(ConnectError, "connection refused")
    if isinstance(exc, UnicodeError):
        if stage == "auth":
            return make(AuthenticationError, "the credentials contain characters this protocol cannot send")
        unencodable = make(ProtocolError, f"a command argument cannot be encoded during {stage}")
        # Our own argument fails the same way every time; an answer we could not decode may not come again.
        unencodable.retryable = not isinstance(exc, UnicodeEncodeError)
        return unencodable
    if isinstance(exc, binascii.Error):  # a SASL challenge that is not base64 (RFC 4954 §4, RFC 5034 §4)
        return make(ProtocolError, f"the server sent malformed base64 during {stage}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        err = make(ProtocolError, f"all recipients refused (reply codes {', '.join(map(str, codes))})")
        err.retryable = bool(codes) and all(400 <= c < 500 for c in codes)
        return err
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # an extension the message needs (SMTPUTF8)
        missing = make(ProtocolError, f"the server cannot take this message: {exc}")
        missing.retryable = False
        return missing
    if isinstance(exc, imaplib.IMAP4.error | poplib.error_proto | smtplib.SMTPException):
        reply = _reply_text(exc, secrets)
        lowered = reply.lower()
        if any(marker.lower() in lowered for marker in _PLAINTEXT_REFUSED):
            return make(InsecureConnectionError, f"the server refuses authentication without TLS: {reply}")
        if _not_now(exc, reply):
            return make(ProtocolError, f"the server cannot do it now (a temporary failure during {stage}): {reply}")
        if isinstance(exc, smtplib.SMTPAuthenticationError) or stage == "auth":
            return make(AuthenticationError, f"the server refused the credentials: {reply}")
        if stage == "mailbox":
            return make(MailboxMissingError, f"mailbox not available: {reply}")
        err = make(ProtocolError, f"unexpected reply during {stage}: {reply}")
        if isinstance(exc, smtplib.SMTPResponseException):
            err.retryable = 400 <= exc.smtp_code < 500
        return err
    if isinstance(exc, OSError):
        return make(ConnectError, f"network error during {stage}: {exc.strerror or exc.__class__.__name__}")
    return None


def _not_now(exc: BaseException, reply: str) -> bool:
    """Whether a server's refusal says "try again later" (see ``_NOT_NOW``)."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):  # (other 4xx replies are retryable below already)
        return 400 <= exc.smtp_code < 500 and exc.smtp_code != _SMTP_PASSWORD_TRANSITION
    return not isinstance(exc, smtplib.SMTPException) and _NOT_NOW.match(reply) is not None


@contextmanager
def mapped_errors(server: str, stage: Stage, secrets: Sequence[str] = ()) -> Iterator[None]:
    """Run a block, re-raising library / socket / TLS errors as :class:`TransportError` subclasses."""
    try:
        yield
    except TransportError:
        raise  # already ours, built without secrets
    except Exception as exc:
        mapped = translate(exc, stage, server, secrets)
        if mapped is None:
            raise
        if stage == "auth":
            # Python links the original as __context__ whatever we do inside a context manager, and the
            # original may quote the credentials (a UnicodeEncodeError holds the whole password in
            # `.object`): empty it, and hide it from tracebacks, so no secret survives on the error chain.
            _scrub(exc)
            raise mapped from None
        raise mapped from exc


def _scrub(exc: BaseException) -> None:
    """Remove everything an exception raised while authenticating could carry of a secret."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = (type(current).__name__,)
        if isinstance(current, UnicodeEncodeError | UnicodeTranslateError):
            current.object = ""
        elif isinstance(current, UnicodeDecodeError):
            current.object = b""
        current.__traceback__ = None  # its frames' locals hold the password
        current = current.__cause__ or current.__context__
