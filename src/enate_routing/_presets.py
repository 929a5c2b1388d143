"""Server presets of the named services (docs/semantics.md §2): plain data, no behaviour.

A connector of a named service may leave out any of these keys; the configuration model fills them in.
``office365-smtp-relay`` has no preset host because the relay host is per tenant
(``<tenant>.mail.protection.outlook.com``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["INCOMING_PRESETS", "OUTGOING_PRESETS", "SERVICE_AUTH", "SERVICE_USE"]

INCOMING_PRESETS: Final[dict[str, dict[str, object]]] = {
    "gmail-imap": {"protocol": "imap", "host": "imap.gmail.com", "port": 993, "security": "ssl", "auth": "oauth2"},
    "gmail-pop3": {"protocol": "pop3", "host": "pop.gmail.com", "port": 995, "security": "ssl", "auth": "oauth2"},
    "office365-imap": {
        "protocol": "imap", "host": "outlook.office365.com", "port": 993, "security": "ssl", "auth": "oauth2",
    },
    "office365-pop3": {
        "protocol": "pop3", "host": "outlook.office365.com", "port": 995, "security": "ssl", "auth": "oauth2",
    },
    # Microsoft Graph: the host is the Graph base (graph.microsoft.us, microsoftgraph.chinacloudapi.cn for the
    # sovereign clouds); the folder is a well-known name (inbox) or a display-name path.
    "office365-graph": {
        "protocol": "graph", "host": "graph.microsoft.com", "port": 443, "security": "ssl", "auth": "oauth2",
        "folder": "inbox",
    },
}

OUTGOING_PRESETS: Final[dict[str, dict[str, object]]] = {
    "gmail-smtp": {"host": "smtp.gmail.com", "port": 587, "security": "starttls", "auth": "oauth2"},
    # Office 365 direct-send relay: port 25 with STARTTLS; authenticated by certificate (or by IP: none).
    "office365-smtp-relay": {"port": 25, "security": "starttls"},
    # Gmail and Office 365 mailbox services also send through the provider's submission server.
    "gmail-imap": {"host": "smtp.gmail.com", "port": 587, "security": "starttls", "auth": "oauth2"},
    "gmail-pop3": {"host": "smtp.gmail.com", "port": 587, "security": "starttls", "auth": "oauth2"},
    "office365-imap": {"host": "smtp.office365.com", "port": 587, "security": "starttls", "auth": "oauth2"},
    "office365-pop3": {"host": "smtp.office365.com", "port": 587, "security": "starttls", "auth": "oauth2"},
    # sendMail through Graph (the MIME body keeps Auto-Submitted and the other loop-protection headers).
    "office365-graph": {"host": "graph.microsoft.com", "port": 443, "security": "ssl", "auth": "oauth2"},
}

# Which outgoing authentication methods each service allows (docs/semantics.md §2). OAuth 2.0 is offered wherever a
# username and password are, and is the default, as the providers recommend it (docs/microsoft365.md,
# docs/google.md); Office 365 connectors refuse username and password (basic authentication is retired).
SERVICE_AUTH: Final[dict[str, frozenset[str]]] = {
    "office365-smtp-relay": frozenset({"certificate", "none"}),
    "gmail-smtp": frozenset({"username-password", "oauth2"}),
    "gmail-imap": frozenset({"username-password", "oauth2"}),
    "gmail-pop3": frozenset({"username-password", "oauth2"}),
    "office365-imap": frozenset({"username-password", "oauth2"}),
    "office365-pop3": frozenset({"username-password", "oauth2"}),
    "office365-graph": frozenset({"oauth2"}),
    "other": frozenset({"none", "username-password", "certificate", "oauth2"}),
}

# The directions a service can serve: mailbox services may also send; SMTP services only send.
SERVICE_USE: Final[dict[str, frozenset[str]]] = {
    "gmail-imap": frozenset({"incoming", "outgoing", "both"}),
    "gmail-pop3": frozenset({"incoming", "outgoing", "both"}),
    "office365-imap": frozenset({"incoming", "outgoing", "both"}),
    "office365-pop3": frozenset({"incoming", "outgoing", "both"}),
    "office365-graph": frozenset({"incoming", "outgoing", "both"}),
    "gmail-smtp": frozenset({"outgoing"}),
    "office365-smtp-relay": frozenset({"outgoing"}),
    "other": frozenset({"incoming", "outgoing", "both"}),
}
