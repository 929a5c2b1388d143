"""OAuth 2.0 IMAP connectors from the configuration alone: a Google service-account token logs in to Dovecot
(XOAUTH2, checked by the oauth2 passdb's introspection), and the Office 365 additional mailbox uses the shared
address as login with the delegate's token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from enate_routing._model import Connector
from enate_routing._token_files import write_token_file
from enate_routing.transports import ImapSource, OAuth2Auth
from enate_routing.transports._factory import ConnectorAccess, check_connection, open_source
from mailrig.dovecot import ALICE
from mailrig.oauth_server import Grant, IdentityProvider
from mailrig.pki import Pki
from mailrig.util import message
from transports.cloud_config import gmail_imap_connector, register_app, service_account_file
from transports.test_oauth_dovecot import OAuthRig, oauth_rig

pytestmark = pytest.mark.servers
__all__ = ["oauth_rig"]  # the module-scoped OAuth Dovecot of test_oauth_dovecot.py, reused


@pytest.fixture
def introspected(oauth_rig: OAuthRig, idp: IdentityProvider) -> Iterator[OAuthRig]:
    """The OAuth Dovecot's introspection endpoint knows every token the fake identity provider issues."""

    def tell(token: str, grant: Grant) -> None:
        if grant.user:
            oauth_rig.idp.grant(token, grant.user)

    idp.book.listeners.append(tell)
    oauth_rig.dovecot.reset(ALICE)
    try:
        yield oauth_rig
    finally:
        idp.book.listeners.remove(tell)


def test_gmail_service_account_reads_imap_from_the_file_alone(introspected: OAuthRig, idp: IdentityProvider,
                                                              pki: Pki, tmp_path: Path) -> None:
    """gmail-imap with a service account: check_connection passes and the source lists and fetches the mail."""
    key_file = service_account_file(tmp_path, idp, {ALICE.login})
    introspected.dovecot.deliver(ALICE, message("via xoauth2"))
    connector = gmail_imap_connector("Gmail desk", introspected.dovecot.ports.imaps, pki, idp, key_file)
    access = ConnectorAccess(timeout=5)
    (result,) = check_connection(connector, access)
    assert result.ok, result.detail
    with open_source(connector, access) as source:
        (ref,) = source.list_new()
        assert b"via xoauth2" in source.fetch(ref)


def test_office365_additional_mailbox_logs_in_as_the_shared_address(idp: IdentityProvider, pki: Pki,
                                                                    tmp_path: Path) -> None:
    """office365-imap + OAuth + additional_mailbox: user name = the shared address, token = the delegate's."""
    register_app(idp)
    token_file = tmp_path / "delegate.json"
    write_token_file(token_file, idp.new_refresh_token("app-1", "delegate@contoso.test",
                                                          {"IMAP.AccessAsUser.All"}))
    connector = Connector.model_validate({
        "name": "O365 desk", "service": "office365-imap", "username": "delegate@contoso.test",
        "primary_address": "delegate@contoso.test", "additional_mailbox": "shared@contoso.test",
        "use_for": "incoming",
        "oauth": {"provider": "microsoft", "flow": "refresh-token", "tenant": idp.tenant, "client_id": "app-1",
                  "token_file": str(token_file), "authority": idp.url, "ca_file": str(pki.ca_pem)},
    })
    source = open_source(connector, ConnectorAccess(timeout=5), mailbox="additional")
    assert isinstance(source, ImapSource) and isinstance(source.credentials, OAuth2Auth)
    assert source.credentials.username == "shared@contoso.test" and source.mailbox == "INBOX"
    grant = idp.book.check(source.credentials.token_provider())
    assert grant is not None and grant.user == "delegate@contoso.test"
    assert grant.audience == "https://outlook.office.com" and "IMAP.AccessAsUser.All" in grant.permissions
