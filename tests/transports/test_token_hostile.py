"""Token requests against an identity provider whose answer is malformed: a typed, retryable error (MSAL and
google-auth flows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from enate_routing.errors import ProtocolError
from enate_routing.transports._factory import ConnectorAccess, open_source
from enate_routing.transports._token_sources import token_source
from mailrig.dovecot import ALICE
from mailrig.graph import FakeGraph
from mailrig.oauth_server import IdentityProvider
from mailrig.pki import Pki
from transports.cloud_config import (
    DESK,
    ENV,
    gmail_imap_connector,
    graph_connector,
    register_app,
    service_account_file,
)

pytestmark = pytest.mark.servers


MALFORMED = pytest.mark.parametrize("announced", ["abc", "", float("nan"), float("inf"), [3600]],
                                    ids=["word", "empty", "nan", "infinity", "list"])


@MALFORMED
def test_a_malformed_expires_in_is_a_protocol_error(graph: FakeGraph, idp: IdentityProvider, pki: Pki,
                                                     announced: object) -> None:
    """``expires_in`` that is no number (MSAL int()s it) ends the pass with a retryable ProtocolError, not a
    ValueError / OverflowError / TypeError that would end ``poll``."""
    register_app(idp)
    graph.mailbox(DESK)
    idp.announced_lifetime = announced
    connector = graph_connector(graph, idp, pki, name="Malformed expiry")
    with open_source(connector, ConnectorAccess(environ=ENV, timeout=5)) as src, pytest.raises(
            ProtocolError, match="token answer is malformed") as caught:
        src.list_new()
    assert caught.value.retryable


@pytest.mark.parametrize("announced", [0, -5])
def test_a_token_said_to_be_expired_is_used_once_and_not_cached(graph: FakeGraph, idp: IdentityProvider, pki: Pki,
                                                                announced: int) -> None:
    """``expires_in`` of 0 or below: the token is used for the request it was fetched for, then fetched again."""
    register_app(idp)
    graph.mailbox(DESK)
    idp.announced_lifetime = announced
    connector = graph_connector(graph, idp, pki, name="Expired at once")
    with open_source(connector, ConnectorAccess(environ=ENV, timeout=5)) as src:
        assert src.list_new() == []
        before = idp.requests.count("client_credentials")
        src.list_new()
    assert idp.requests.count("client_credentials") > before


@MALFORMED
def test_a_malformed_google_expires_in_is_a_protocol_error(idp: IdentityProvider, pki: Pki, tmp_path: Path,
                                                           announced: object) -> None:
    """The same for google-auth (service account flow), which int()s expires_in too."""
    key_file = service_account_file(tmp_path, idp, {ALICE.login})
    idp.announced_lifetime = announced
    source = token_source(gmail_imap_connector("Gmail malformed", 993, pki, idp, key_file), "imap", ALICE.login,
                          host_provider=None, timeout=5)
    with pytest.raises(ProtocolError, match="token answer is malformed") as caught:
        source.token()
    assert caught.value.retryable
