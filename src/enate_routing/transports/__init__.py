"""Mail transports: protocols a host may implement, and adapters over imaplib, poplib and smtplib.

See docs/transports.md. Every failure is a :class:`enate_routing.errors.TransportError` subclass; TLS
verification is always on; secrets never cross an unencrypted connection unless explicitly allowed.
"""

from enate_routing.transports.base import (
    CertificateAuth,
    ConnectionTestResult,
    Credentials,
    DeleteAction,
    Endpoint,
    FlagAction,
    MailboxCredentials,
    MailSender,
    MailSource,
    MessageGoneError,
    MessageRef,
    MoveAction,
    NoAuth,
    OAuth2Auth,
    PasswordAuth,
    ProcessedAction,
    Security,
    UidValidityChangedError,
    WaitsForMail,
)
from enate_routing.transports.imap import ImapSource, delegate_login, shared_folder, test_imap_connection
from enate_routing.transports.pop3 import Pop3Source, test_pop3_connection
from enate_routing.transports.smtp import SmtpSender, test_smtp_connection

__all__ = [
    "CertificateAuth",
    "ConnectionTestResult",
    "Credentials",
    "DeleteAction",
    "Endpoint",
    "FlagAction",
    "ImapSource",
    "MailSender",
    "MailSource",
    "MailboxCredentials",
    "MessageGoneError",
    "MessageRef",
    "MoveAction",
    "NoAuth",
    "OAuth2Auth",
    "PasswordAuth",
    "Pop3Source",
    "ProcessedAction",
    "Security",
    "SmtpSender",
    "UidValidityChangedError",
    "WaitsForMail",
    "delegate_login",
    "shared_folder",
    "test_imap_connection",
    "test_pop3_connection",
    "test_smtp_connection",
]
