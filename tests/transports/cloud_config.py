"""Connectors pointed at the fake cloud servers (tests/mailrig/graph.py, tests/mailrig/oauth_server.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from enate_routing._model import Connector
from mailrig.dovecot import ALICE
from mailrig.graph import FakeGraph
from mailrig.oauth_server import IdentityProvider, MicrosoftApp, ServiceAccount
from mailrig.pki import Pki

DESK = "desk@contoso.test"
SHARED = "shared@contoso.test"
SECRET = "app-client-secret-Xy9~"
SECRET_ENV = "ENATE_TEST_GRAPH_SECRET"
ENV = {SECRET_ENV: SECRET}


def register_app(idp: IdentityProvider, client_id: str = "app-1", **fields: Any) -> MicrosoftApp:
    app = MicrosoftApp(client_id, **({"secret": SECRET} | fields))
    with idp.lock:
        idp.apps[client_id] = app
    return app


def graph_connector(graph: FakeGraph, idp: IdentityProvider, pki: Pki, *, use_for: str = "both",
                    oauth: dict[str, Any] | None = None, incoming: dict[str, Any] | None = None,
                    **fields: Any) -> Connector:
    """An ``office365-graph`` connector on the fakes: client-secret app ``app-1`` unless ``oauth`` says else."""
    server = {"host": "127.0.0.1", "port": graph.port, "ca_file": str(pki.ca_pem)}
    data: dict[str, Any] = {
        "name": "Graph desk", "service": "office365-graph", "primary_address": DESK, "use_for": use_for,
        "oauth": {"provider": "microsoft", "flow": "client-secret", "tenant": idp.tenant, "client_id": "app-1",
                  "client_secret_env": SECRET_ENV, "authority": idp.url, "ca_file": str(pki.ca_pem)} | (oauth or {}),
    }
    if use_for in ("incoming", "both"):
        data["incoming"] = {**server, "processed_folder": "Processed"} | (incoming or {})
    if use_for in ("outgoing", "both"):
        data["outgoing"] = dict(server)
    return Connector.model_validate(data | fields)


def service_account_file(tmp_path: Path, idp: IdentityProvider, delegated: set[str]) -> Path:
    """A Google service-account key file, registered with the fake provider, delegated for ``delegated``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = "router@project.iam.gserviceaccount.test"
    with idp.lock:
        idp.accounts[email] = ServiceAccount(email, key.public_key(), delegated)
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "client_email": email, "client_id": "1234", "private_key_id": "k1",
        "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(),
        "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return path


def gmail_imap_connector(name: str, port: int, pki: Pki, idp: IdentityProvider, key_file: Path) -> Connector:
    """A ``gmail-imap`` connector for ALICE on the loopback Dovecot, authenticated by a service account."""
    return Connector.model_validate({
        "name": name, "service": "gmail-imap", "username": ALICE.login, "primary_address": ALICE.login,
        "use_for": "incoming",
        "incoming": {"host": "127.0.0.1", "port": port, "ca_file": str(pki.ca_pem), "processed": "flag"},
        "oauth": {"provider": "google", "flow": "service-account", "service_account_file": str(key_file),
                  "token_url": idp.google_token_url, "ca_file": str(pki.ca_pem)},
    })
