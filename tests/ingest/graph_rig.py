"""Graph variants of the ingestion rigs: a configuration on the fake Graph API and an app token for it.

A test (or a crash-matrix child process) gets its token from the parent through the host's token provider
(``ConnectorAccess.token_provider``), so the children need no identity provider of their own; the token is
a real entry of the fake's :class:`~mailrig.oauth_server.TokenBook` with the app roles Graph checks.
"""

from __future__ import annotations

import time
from typing import Any

from enate_routing._model import Connector
from enate_routing.transports._factory import ConnectorAccess
from mailrig.graph import FakeGraph
from mailrig.oauth_server import Grant

TARGET = {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}


def app_token(graph: FakeGraph) -> str:
    """An app-only token for ``graph`` with Mail.ReadWrite and Mail.Send, valid for an hour."""
    with graph.lock:
        return graph.book.issue(Grant("crash-app", graph.url, frozenset({"Mail.ReadWrite", "Mail.Send"}),
                                      time.time() + 3600, app_only=True))


def graph_config(port: int, ca_file: str, address: str, name: str, *, max_message_bytes: int = 4000,
                 send_automated_emails: bool = True) -> dict[str, Any]:
    """A configuration with one both-ways ``office365-graph`` connector (processed mail moved to Archive)."""
    server = {"host": "127.0.0.1", "port": port, "ca_file": ca_file}
    return {
        "connectors": [{"name": name, "service": "office365-graph", "primary_address": address, "use_for": "both",
                        "incoming": {**server, "processed_folder": "Archive"}, "outgoing": server}],
        "fallbacks": [{"connector": name, "address": address, "send_automated_emails": send_automated_emails,
                       "target": TARGET}],
        "limits": {"max_message_bytes": max_message_bytes},
    }


def host_access(token: str, timeout: float = 5.0) -> ConnectorAccess:
    """Access with the host supplying ``token`` (no ``[connectors.oauth]`` needed)."""

    def provider(connector: Connector) -> str:
        return token

    return ConnectorAccess(token_provider=provider, timeout=timeout)
