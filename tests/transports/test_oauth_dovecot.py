"""XOAUTH2 / OAUTHBEARER for IMAP and POP3 against a real Dovecot 2.3 (``oauth2`` passdb + introspection).

A separate Dovecot instance (module-scoped, so the shared ``dovecot`` fixture is untouched) adds an
``oauth2`` passdb after the rig's passwd-file passdbs (``mechanisms = xoauth2 oauthbearer``;
``introspection_mode = post`` against :class:`mailrig.oauth.IntrospectionServer` on 127.0.0.1). The
passwd-file passdb first sees the token as a password and fails over (``result_failure = continue``) to
the oauth2 passdb; the passwd-file userdb supplies the mail home.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from enate_routing.errors import AuthenticationError, InsecureConnectionError
from enate_routing.transports import (
    Endpoint,
    ImapSource,
    MoveAction,
    OAuth2Auth,
    Pop3Source,
    Security,
    check_imap_connection,
    check_pop3_connection,
)
from mailrig.dovecot import ALICE, BOB, Dovecot, RigUnavailable
from mailrig.fixtures import server_unavailable
from mailrig.oauth import IntrospectionServer
from mailrig.pki import Pki
from mailrig.util import assert_no_secret, message

pytestmark = pytest.mark.servers

MECHANISMS = ["XOAUTH2", "OAUTHBEARER"]
TOKEN = "ya29.A0-good-access-token_1234567890"
# Real access tokens (JWTs, Google/Microsoft opaque tokens) run to 1-2 KB: past POP3's 255-octet AUTH line
# (RFC 5034 §4), so the initial response goes after the server's "+" challenge.
LONG_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "x" * 1400 + ".sig-Abc_123"
PROBE_TOKEN = "rig-readiness-probe-token"


@dataclass
class OAuthRig:
    dovecot: Dovecot
    idp: IntrospectionServer

    def imap(self, security: Security = "ssl", **overrides: Any) -> Endpoint:
        port = self.dovecot.ports.imaps if security == "ssl" else self.dovecot.ports.imap
        return self._endpoint(port, security, overrides)

    def pop3(self, security: Security = "ssl", **overrides: Any) -> Endpoint:
        port = self.dovecot.ports.pop3s if security == "ssl" else self.dovecot.ports.pop3
        return self._endpoint(port, security, overrides)

    def _endpoint(self, port: int, security: Security, overrides: dict[str, Any]) -> Endpoint:
        fields: dict[str, Any] = {"ca_file": self.dovecot.pki.ca_pem, "timeout": 5.0, **overrides}
        return Endpoint("127.0.0.1", int(fields.pop("port", port)), security, **fields)


class CountingProvider:
    """A token provider that counts its calls (the adapters must call it once per login)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.token


def _probe(rig: OAuthRig) -> None:
    """A raw imaplib XOAUTH2 login (not the adapter): proves the oauth2 passdb answers at all."""
    import imaplib
    import ssl

    rig.idp.grant(PROBE_TOKEN, ALICE.login)
    ctx = ssl.create_default_context(cafile=str(rig.dovecot.pki.ca_pem))
    blob = f"user={ALICE.login}\x01auth=Bearer {PROBE_TOKEN}\x01\x01".encode()
    try:
        with imaplib.IMAP4_SSL("127.0.0.1", rig.dovecot.ports.imaps, ssl_context=ctx, timeout=10) as conn:
            conn.authenticate("XOAUTH2", lambda _: blob)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise RigUnavailable(
            f"Dovecot's oauth2 passdb refused a valid token ({exc}); introspection requests seen: "
            f"{len(rig.idp.requests)}\n{rig.dovecot.log_tail()}"
        ) from None
    finally:
        rig.idp.revoke(PROBE_TOKEN)


@pytest.fixture(scope="module")
def oauth_rig(pki: Pki) -> Iterator[OAuthRig]:
    """A private Dovecot whose passdbs include ``oauth2`` against a local introspection endpoint."""
    idp = IntrospectionServer().start()
    conf_dir = Path(tempfile.mkdtemp(prefix="enate-oauth2-"))  # outside pytest's 0700 tmp (auth runs as dovecot)
    server: Dovecot | None = None

    def stop() -> None:
        if server is not None:
            server.stop()
        idp.stop()
        shutil.rmtree(conf_dir, ignore_errors=True)

    atexit.register(stop)  # belt and braces if the session dies before teardown
    try:
        conf_dir.chmod(0o755)
        conf_ext = conf_dir / "dovecot-oauth2.conf.ext"
        extra, text = idp.dovecot_config(str(conf_ext))
        conf_ext.write_text(text)
        conf_ext.chmod(0o644)
        try:
            server = Dovecot.start(pki, extra_config=extra)
            rig = OAuthRig(server, idp)
            _probe(rig)
        except RigUnavailable as exc:
            server_unavailable(str(exc))
        yield rig
    finally:
        stop()
        atexit.unregister(stop)


@pytest.fixture
def rig(oauth_rig: OAuthRig) -> OAuthRig:
    """The OAuth Dovecot with alice's and bob's mailboxes emptied and the granted tokens reset."""
    oauth_rig.dovecot.reset(ALICE)
    oauth_rig.dovecot.reset(BOB)
    with oauth_rig.idp.lock:
        oauth_rig.idp.tokens.clear()
        oauth_rig.idp.revoked.clear()
        oauth_rig.idp.requests.clear()
    oauth_rig.idp.grant(TOKEN, ALICE.login)
    oauth_rig.idp.grant(LONG_TOKEN, ALICE.login)
    return oauth_rig


def oauth(mechanism: str, token: str = TOKEN, user: str = ALICE.login) -> OAuth2Auth:
    return OAuth2Auth(user, lambda: token, mechanism)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- IMAP
@pytest.mark.parametrize("security", ["ssl", "starttls"])
@pytest.mark.parametrize("token", [TOKEN, LONG_TOKEN], ids=["short", "long"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_imap_login_lists_fetches_and_moves(rig: OAuthRig, mechanism: str, token: str, security: Security) -> None:
    """A valid token logs in over IMAP AUTHENTICATE; SELECT, UID SEARCH, FETCH and MOVE then work."""
    rig.dovecot.deliver(ALICE, message("oauth imap"))
    with ImapSource(rig.imap(security), oauth(mechanism, token), processed=MoveAction("Archive")) as source:
        [ref] = source.list_new()
        assert b"Subject: oauth imap" in source.fetch(ref)
        source.mark_processed(ref)
        assert source.list_new() == []
    assert [m["subject"] for m in rig.dovecot.messages(ALICE, "Archive")] == ["oauth imap"]
    assert token in rig.idp.requests  # Dovecot really asked the introspection endpoint


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_imap_connection_test_reports_ok(rig: OAuthRig, mechanism: str) -> None:
    """check_imap_connection with a valid token is ok, SELECTs INBOX and reports the post-login capabilities."""
    result = check_imap_connection(rig.imap(), oauth(mechanism), "INBOX", processed=MoveAction("Archive"))
    assert result.ok, result.detail
    assert "MOVE" in result.capabilities


# ---------------------------------------------------------------------------------------------- POP3
@pytest.mark.parametrize("security", ["ssl", "starttls"])
@pytest.mark.parametrize("token", [TOKEN, LONG_TOKEN], ids=["short", "long"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_pop3_login_lists_fetches_and_deletes(rig: OAuthRig, mechanism: str, token: str, security: Security) -> None:
    """Dovecot's POP3 AUTH accepts the token, inline (short) or after the "+" challenge (long); UIDL/RETR/DELE work."""
    rig.dovecot.deliver(ALICE, message("oauth pop3"))
    with Pop3Source(rig.pop3(security), oauth(mechanism, token)) as source:
        [ref] = source.list_new()
        assert b"Subject: oauth pop3" in source.fetch(ref)
        source.mark_processed(ref)
    assert rig.dovecot.messages(ALICE) == []
    assert token in rig.idp.requests


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_pop3_connection_test_reports_ok(rig: OAuthRig, mechanism: str) -> None:
    """check_pop3_connection with a valid token is ok and runs STAT."""
    rig.dovecot.deliver(ALICE, message("one"))
    result = check_pop3_connection(rig.pop3(), oauth(mechanism))
    assert result.ok, result.detail
    assert result.detail.startswith("maildrop has 1 messages")


# ---------------------------------------------------------------------------------------------- refusals
BAD_TOKENS = {
    "unknown": "ya29.never-issued-token-XYZ",
    "expired": "ya29.expired-token-ABC",
    "other-user": "ya29.bobs-token-DEF",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_refused_token_is_authentication_error(rig: OAuthRig, mechanism: str, protocol: str, kind: str) -> None:
    """An unknown, expired (inactive) or another user's token is an AuthenticationError without the token."""
    token = BAD_TOKENS[kind]
    if kind == "expired":
        rig.idp.revoke(token)
    if kind == "other-user":
        rig.idp.grant(token, BOB.login)  # valid, but Dovecot must refuse the user-name mismatch
    auth = oauth(mechanism, token)
    adapter: ImapSource | Pop3Source = (
        ImapSource(rig.imap(), auth) if protocol == "imap" else Pop3Source(rig.pop3(), auth)
    )
    with pytest.raises(AuthenticationError) as caught:
        adapter.list_new()
    assert_no_secret(token, caught.value, adapter)
    assert token in rig.idp.requests  # refused by the introspection answer, not before it
    if kind != "unknown":
        return  # each refusal costs Dovecot's ~0.5 s failure delay; the connection test once is enough
    tester = check_imap_connection if protocol == "imap" else check_pop3_connection
    result = tester(rig.imap() if protocol == "imap" else rig.pop3(), auth)
    assert (result.ok, result.error, result.retryable) == (False, "AuthenticationError", False)
    assert_no_secret(token, result)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_the_same_login_works_after_a_refusal(rig: OAuthRig, protocol: str) -> None:
    """A refused token does not poison the next login: a fresh token from the provider gets in."""
    tokens = iter(["ya29.stale", TOKEN])
    auth = OAuth2Auth(ALICE.login, lambda: next(tokens))
    tester = check_imap_connection if protocol == "imap" else check_pop3_connection
    endpoint = rig.imap() if protocol == "imap" else rig.pop3()
    assert tester(endpoint, auth).error == "AuthenticationError"
    assert tester(endpoint, auth).ok


# ---------------------------------------------------------------------------------------------- provider
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_provider_called_once_per_imap_login(rig: OAuthRig, mechanism: str) -> None:
    """The IMAP adapter calls the token provider exactly once per login, however many commands follow."""
    provider = CountingProvider(TOKEN)
    rig.dovecot.deliver(ALICE, message("count"))
    auth = OAuth2Auth(ALICE.login, provider, mechanism)  # type: ignore[arg-type]
    with ImapSource(rig.imap(), auth) as source:
        [ref] = source.list_new()
        source.fetch(ref)
        source.list_new()
        assert provider.calls == 1
    with ImapSource(rig.imap(), auth) as source:
        source.list_new()
    assert provider.calls == 2
    assert rig.idp.requests.count(TOKEN) == 2
    provider.token = "ya29.refused"
    with pytest.raises(AuthenticationError):
        ImapSource(rig.imap(), auth).list_new()
    assert provider.calls == 3  # a refused login is not retried with the same provider


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_provider_called_once_per_pop3_login(rig: OAuthRig, mechanism: str) -> None:
    """The POP3 adapter calls the token provider exactly once per login (long token: two-step AUTH)."""
    provider = CountingProvider(LONG_TOKEN)
    rig.dovecot.deliver(ALICE, message("count"))
    auth = OAuth2Auth(ALICE.login, provider, mechanism)  # type: ignore[arg-type]
    with Pop3Source(rig.pop3(), auth, delete_processed=False) as source:
        [ref] = source.list_new()
        source.fetch(ref)
        source.list_new()
        assert provider.calls == 1
    with Pop3Source(rig.pop3(), auth, delete_processed=False) as source:
        source.list_new()
    assert provider.calls == 2
    assert rig.idp.requests.count(LONG_TOKEN) == 2


def test_provider_failure_is_authentication_error(rig: OAuthRig) -> None:
    """A failing provider is an AuthenticationError naming only the exception type; nothing reaches Dovecot."""

    def broken() -> str:
        raise RuntimeError("refresh token revoked: rt-SECRET-123")

    for make in (lambda a: ImapSource(rig.imap(), a), lambda a: Pop3Source(rig.pop3(), a)):
        with pytest.raises(AuthenticationError, match="RuntimeError") as caught:
            make(OAuth2Auth(ALICE.login, broken)).list_new()
        assert_no_secret("rt-SECRET-123", caught.value)
    assert rig.idp.requests == []


# ---------------------------------------------------------------------------------------------- plaintext
def _no_connection_made(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        client, _ = listener.accept()
    except BlockingIOError:
        return True
    client.close()
    return False


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_token_never_sent_unencrypted_unless_allowed(rig: OAuthRig, protocol: str, mechanism: str) -> None:
    """security='none' without allow_plaintext_auth: InsecureConnectionError, no provider call, no connection."""
    provider = CountingProvider(TOKEN)
    auth = OAuth2Auth(ALICE.login, provider, mechanism)  # type: ignore[arg-type]
    source_type: Callable[[Endpoint, OAuth2Auth], ImapSource | Pop3Source] = (
        ImapSource if protocol == "imap" else Pop3Source
    )
    with socket.create_server(("127.0.0.1", 0)) as listener:
        endpoint = rig.imap("none", port=listener.getsockname()[1])
        with pytest.raises(InsecureConnectionError, match="OAuth token"):
            source_type(endpoint, auth).list_new()
        assert _no_connection_made(listener)
    # And against the real server's plaintext port: still refused before anything is sent.
    plain = rig.imap("none") if protocol == "imap" else rig.pop3("none")
    with pytest.raises(InsecureConnectionError):
        source_type(plain, auth).list_new()
    assert provider.calls == 0
    assert rig.idp.requests == []


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_plaintext_allowed_when_explicit(rig: OAuthRig, protocol: str) -> None:
    """With allow_plaintext_auth, a token may cross 'none' (Dovecot counts 127.0.0.1 -> 127.0.0.1 as secure)."""
    endpoint = (rig.imap if protocol == "imap" else rig.pop3)("none", allow_plaintext_auth=True)
    tester = check_imap_connection if protocol == "imap" else check_pop3_connection
    result = tester(endpoint, oauth("XOAUTH2"))
    assert result.ok, result.detail


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_server_refusing_plaintext_gets_no_token(rig: OAuthRig, protocol: str, mechanism: str) -> None:
    """Allowed plaintext from 127.0.0.2, where Dovecot refuses plaintext auth: InsecureConnectionError, token unsent."""
    endpoint = (rig.imap if protocol == "imap" else rig.pop3)(
        "none", allow_plaintext_auth=True, source_address="127.0.0.2"
    )
    adapter: ImapSource | Pop3Source = (
        ImapSource(endpoint, oauth(mechanism)) if protocol == "imap" else Pop3Source(endpoint, oauth(mechanism))
    )
    before = len(_login_log(rig, "127.0.0.2"))
    with pytest.raises(InsecureConnectionError, match="refuses authentication on this unencrypted") as caught:
        adapter.list_new()
    assert_no_secret(TOKEN, caught.value)
    assert rig.idp.requests == []  # Dovecot never saw the token
    # Dovecot's own account of the session: it ended without any AUTH / AUTHENTICATE from us.
    deadline = time.monotonic() + 5
    while len(lines := _login_log(rig, "127.0.0.2")) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = lines[before:]
    assert "no auth attempts" in line, line


def _login_log(rig: OAuthRig, remote: str) -> list[str]:
    """Dovecot's pre-login session summaries ("Disconnected: ...") for connections from ``remote``."""
    text = (rig.dovecot.root / "log" / "dovecot.log").read_text(errors="replace")
    return [line for line in text.splitlines() if "-login: " in line and f"rip={remote}," in line]
