"""Mail transports: protocols a host may implement, adapters over imaplib, poplib and smtplib, and Microsoft Graph.

See docs/transports.md. Every failure is a :class:`enate_routing.errors.TransportError` subclass; TLS
verification is always on; secrets never cross an unencrypted connection unless explicitly allowed.
"""

from enate_routing.transports._base import (
    CertificateAuth,
    ConnectionTestResult,
    Credentials,
    DeleteAction,
    Endpoint,
    FlagAction,
    MailboxCredentials,
    MailSender,
    MailSource,
    MessageRef,
    MoveAction,
    NoAuth,
    OAuth2Auth,
    PasswordAuth,
    ProcessedAction,
    Security,
    WaitsForMail,
)
from enate_routing.transports._factory import ConnectorAccess, check_connection, open_sender, open_source
from enate_routing.transports._graph import GraphSender, GraphSource, check_graph_connection
from enate_routing.transports._imap import ImapSource, check_imap_connection, delegate_login, shared_folder
from enate_routing.transports._pop3 import Pop3Source, check_pop3_connection
from enate_routing.transports._smtp import SmtpSender, check_smtp_connection

__all__ = [
    "CertificateAuth",
    "ConnectionTestResult",
    "ConnectorAccess",
    "Credentials",
    "DeleteAction",
    "Endpoint",
    "FlagAction",
    "GraphSender",
    "GraphSource",
    "ImapSource",
    "MailSender",
    "MailSource",
    "MailboxCredentials",
    "MessageRef",
    "MoveAction",
    "NoAuth",
    "OAuth2Auth",
    "PasswordAuth",
    "Pop3Source",
    "ProcessedAction",
    "Security",
    "SmtpSender",
    "WaitsForMail",
    "check_connection",
    "check_graph_connection",
    "check_imap_connection",
    "check_pop3_connection",
    "check_smtp_connection",
    "delegate_login",
    "open_sender",
    "open_source",
    "shared_folder",
]
