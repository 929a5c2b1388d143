"""Helpers for the transport tests: endpoints onto the rig's servers, test messages, secret checks."""

from __future__ import annotations

import pytest

from enate_routing._certificates import ClientCertificate, load_pkcs12
from enate_routing.transports import Endpoint, Security
from mailrig.dovecot import Dovecot
from mailrig.pki import Pki
from mailrig.smtp import SmtpServers
from mailrig.util import EndpointFactory

TIMEOUT = 5.0


def rig_endpoint(pki: Pki, port: int, security: Security, overrides: dict[str, object]) -> Endpoint:
    """An endpoint on 127.0.0.1 trusting the rig's CA; ``overrides`` may replace any field, the port too."""
    fields: dict[str, object] = {"ca_file": pki.ca_pem, "timeout": TIMEOUT}
    fields.update(overrides)
    return Endpoint("127.0.0.1", int(fields.pop("port", port)), security, **fields)  # type: ignore[call-overload,arg-type]


@pytest.fixture
def imap_endpoint(dovecot: Dovecot, pki: Pki) -> EndpointFactory:
    """Build an IMAP endpoint on the rig: ``imap_endpoint("ssl"|"starttls"|"none", **overrides)``."""

    def make(security: Security = "ssl", **overrides: object) -> Endpoint:
        return rig_endpoint(pki, dovecot.ports.imaps if security == "ssl" else dovecot.ports.imap, security, overrides)

    return make


@pytest.fixture
def pop3_endpoint(dovecot: Dovecot, pki: Pki) -> EndpointFactory:
    """Build a POP3 endpoint on the rig: ``pop3_endpoint("ssl"|"starttls"|"none", **overrides)``."""

    def make(security: Security = "ssl", **overrides: object) -> Endpoint:
        return rig_endpoint(pki, dovecot.ports.pop3s if security == "ssl" else dovecot.ports.pop3, security, overrides)

    return make


@pytest.fixture
def smtp_endpoint(smtp_servers: SmtpServers, pki: Pki) -> EndpointFactory:
    """Build an SMTP endpoint on one rig mode: ``smtp_endpoint("submission", "starttls", **overrides)``."""

    def make(mode: str, security: Security, **overrides: object) -> Endpoint:
        return rig_endpoint(pki, smtp_servers.ports[mode], security, overrides)

    return make


@pytest.fixture(scope="session")
def client_cert(pki: Pki) -> ClientCertificate:
    """The trusted client certificate (CN relay-client.test) loaded from client.pfx."""
    return load_pkcs12(pki.client_pfx, pki.pfx_password)


@pytest.fixture(scope="session")
def rogue_cert(pki: Pki) -> ClientCertificate:
    """A client certificate with the right CN from a CA the servers do not trust."""
    return load_pkcs12(pki.rogue_client_pfx, pki.pfx_password)
