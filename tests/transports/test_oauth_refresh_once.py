"""A refused OAuth token is forgotten once: IMAP and POP3 against the real OAuth Dovecot, SMTP against aiosmtpd.

The token cache is the library's own (:class:`~enate_routing.transports._tokens.CachedToken`); what issues
tokens is the test's identity provider. A token the provider revokes before it expires is still in the cache:
the server refuses it, the adapter drops it, the cache acquires a fresh one and the login succeeds on the
same connection. A second refusal is the AuthenticationError, after exactly one refresh.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from enate_routing.errors import AuthenticationError
from enate_routing.transports import Endpoint, ImapSource, OAuth2Auth, Pop3Source, SmtpSender
from enate_routing.transports._factory import ConnectorAccess, check_connection
from enate_routing.transports._tokens import CachedToken, forget_cached_tokens
from mailrig.dovecot import ALICE
from mailrig.oauth_server import Grant, IdentityProvider
from mailrig.pki import Pki
from mailrig.smtp import SmtpServers
from mailrig.util import EndpointFactory, assert_no_secret, message
from transports.cloud_config import gmail_imap_connector, service_account_file
from transports.test_oauth_dovecot import MECHANISMS, OAuthRig, oauth_rig

pytestmark = pytest.mark.servers
__all__ = ["oauth_rig"]  # the module-scoped OAuth Dovecot of test_oauth_dovecot.py, reused


class Issuer:
    """Issues numbered tokens for alice; ``grant`` decides whether the introspection endpoint knows them."""

    def __init__(self, rig: OAuthRig | None, *, grant: bool = True) -> None:
        self.rig, self.grant = rig, grant
        self.issued: list[str] = []
        self._numbers = itertools.count(1)

    def __call__(self) -> tuple[str, float]:
        token = f"ya29.refresh-once-{next(self._numbers)}-Canary"
        if self.rig is not None and self.grant:
            self.rig.idp.grant(token, ALICE.login)
        self.issued.append(token)
        return token, 3600.0


def cached_auth(issuer: Callable[[], tuple[str, float]], mechanism: str = "XOAUTH2"
                ) -> tuple[OAuth2Auth, CachedToken]:
    """Credentials over the library's token cache, which reports a refused token back to that cache."""
    cache = CachedToken(issuer, label="test cache")
    return OAuth2Auth(ALICE.login, cache.token, mechanism, token_refused=cache.invalidate), cache  # type: ignore[arg-type]


@pytest.fixture
def rig(oauth_rig: OAuthRig) -> OAuthRig:
    oauth_rig.dovecot.reset(ALICE)
    with oauth_rig.idp.lock:
        oauth_rig.idp.tokens.clear()
        oauth_rig.idp.revoked.clear()
        oauth_rig.idp.requests.clear()
    return oauth_rig


def list_inbox(protocol: str, rig: OAuthRig, auth: OAuth2Auth) -> int:
    if protocol == "imap":
        with ImapSource(rig.imap(), auth) as imap:
            return len(imap.list_new())
    with Pop3Source(rig.pop3(), auth) as pop3:
        return len(pop3.list_new())


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_token_revoked_early_is_replaced_once(rig: OAuthRig, protocol: str, mechanism: str) -> None:
    """The cached token works, the provider revokes it early, the next login refreshes once and succeeds."""
    rig.dovecot.deliver(ALICE, message("refresh once"))
    issuer = Issuer(rig)
    auth, cache = cached_auth(issuer, mechanism)
    assert list_inbox(protocol, rig, auth) == 1
    (first,) = issuer.issued
    rig.idp.revoke(first)  # still cached for an hour, but no longer active

    assert list_inbox(protocol, rig, auth) == 1
    assert cache.acquisitions == 2 and issuer.issued[0] == first
    assert first in rig.idp.requests and issuer.issued[1] in rig.idp.requests  # Dovecot saw both tokens


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_second_refusal_is_the_authentication_error(rig: OAuthRig, protocol: str) -> None:
    """A provider whose fresh token is refused too: AuthenticationError after one refresh, no token shown."""
    issuer = Issuer(rig, grant=False)
    auth, cache = cached_auth(issuer)
    with pytest.raises(AuthenticationError) as caught:
        list_inbox(protocol, rig, auth)
    assert cache.acquisitions == 2 and len(issuer.issued) == 2
    assert not isinstance(caught.value.__context__, AuthenticationError)  # the first refusal is not chained
    for token in issuer.issued:
        assert_no_secret(token, caught.value)


def test_a_host_token_without_a_refusal_callback_is_not_retried(rig: OAuthRig) -> None:
    """A host's own OAuth2Auth (no token_refused): one login, one provider call, then the refusal."""
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return "ya29.host-owned-never-granted"

    with pytest.raises(AuthenticationError):
        list_inbox("imap", rig, OAuth2Auth(ALICE.login, provider))
    assert calls == [1]


@pytest.fixture
def introspected(rig: OAuthRig, idp: IdentityProvider) -> Iterator[list[str]]:
    """Dovecot's introspection knows every user token the fake identity provider issues; yields them."""
    issued: list[str] = []

    def tell(token: str, grant: Grant) -> None:
        if grant.user:
            rig.idp.grant(token, grant.user)
            issued.append(token)

    idp.book.listeners.append(tell)
    forget_cached_tokens()
    try:
        yield issued
    finally:
        idp.book.listeners.remove(tell)
        forget_cached_tokens()


def test_a_configured_connector_recovers_from_an_early_revocation(rig: OAuthRig, introspected: list[str],
                                                                   idp: IdentityProvider, pki: Pki,
                                                                   tmp_path: Path) -> None:
    """gmail-imap from the file alone: the token the identity provider issued is revoked, the next connection
    test asks the provider once more and passes."""
    key_file = service_account_file(tmp_path, idp, {ALICE.login})
    connector = gmail_imap_connector("Refresh once", rig.dovecot.ports.imaps, pki, idp, key_file)
    access = ConnectorAccess(timeout=5)
    (result,) = check_connection(connector, access)
    assert result.ok, result.detail
    assert len(introspected) == 1
    rig.idp.revoke(introspected[0])

    (result,) = check_connection(connector, access)
    assert result.ok, result.detail
    assert len(introspected) == 2 and introspected[0] != introspected[1]


# ---------------------------------------------------------------------------------------------- SMTP
SMTP_GOOD = "ya29.alice-test-token"  # the token mailrig.smtp accepts for alice


def sequence(*tokens: str) -> Callable[[], tuple[str, float]]:
    queue = list(tokens)
    return lambda: (queue.pop(0), 3600.0)


def smtp_send(endpoint: Endpoint, auth: OAuth2Auth) -> None:
    with SmtpSender(endpoint, auth, local_hostname="client.example.test") as sender:
        assert sender.send("support@example.test", ["customer@example.net"], message("ack")) == {}


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_smtp_replaces_a_refused_token_once(smtp_inbox: SmtpServers, smtp_endpoint: EndpointFactory,
                                            mechanism: str) -> None:
    """SMTP AUTH with a stale cached token: 535, one fresh token, the message is sent."""
    auth, cache = cached_auth(sequence("ya29.revoked-early-Canary", SMTP_GOOD), mechanism)
    smtp_send(smtp_endpoint("submission", "starttls"), auth)
    assert cache.acquisitions == 2
    assert smtp_inbox.received("submission")[0].login == ALICE.login


def test_smtp_second_refusal_is_the_authentication_error(smtp_inbox: SmtpServers,
                                                         smtp_endpoint: EndpointFactory) -> None:
    """Two refused tokens: AuthenticationError after exactly one refresh; nothing sent."""
    auth, cache = cached_auth(sequence("ya29.stale-1-Canary", "ya29.stale-2-Canary", SMTP_GOOD))
    with pytest.raises(AuthenticationError) as caught:
        smtp_send(smtp_endpoint("submission", "starttls"), auth)
    assert cache.acquisitions == 2
    assert smtp_inbox.received("submission") == []
    assert_no_secret("ya29.stale-1-Canary", caught.value)
    assert_no_secret("ya29.stale-2-Canary", caught.value)
