"""The Graph client against a hostile or broken HTTPS server on loopback: it ends every pass, never crashes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from enate_routing.errors import GraphError, ProtocolError, TransportError
from enate_routing.transports import Endpoint
from enate_routing.transports._base import MessageRef
from enate_routing.transports._graph import GraphSource
from enate_routing.transports._graph_client import MAX_JSON_BYTES, GraphClient
from mailrig.pki import Pki
from mailrig.scripted_https import Answer, ScriptedHttps
from mailrig.util import assert_no_secret

pytestmark = pytest.mark.servers

TOKEN = "hostile-test-token-7f3a"


class _Token:
    def token(self) -> str:
        return TOKEN

    def invalidate(self, token: str) -> None:
        pass


def _json(data: object, status: int = 200, **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


@pytest.fixture
def scripted(pki: Pki) -> Iterator[Callable[[Callable[[str], Answer]], tuple[ScriptedHttps, GraphClient]]]:
    servers: list[ScriptedHttps] = []
    clients: list[GraphClient] = []

    def start(answer: Callable[[str], Answer]) -> tuple[ScriptedHttps, GraphClient]:
        server = ScriptedHttps(pki, answer).start()
        servers.append(server)
        endpoint = Endpoint("127.0.0.1", server.port, "ssl", ca_file=pki.ca_pem, timeout=5)
        client = GraphClient(endpoint, _Token(), sleep=lambda _: None)
        clients.append(client)
        return server, client

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def _folder_then(delta: Callable[[str], Answer]) -> Callable[[str], Answer]:
    def answer(path: str) -> Answer:
        if "/messages/delta" not in path:
            return _json({"id": "inbox-id"})
        return delta(path)

    return answer


class _Pages:
    """Delta pages that each link to another: page ``page_of(n)`` for the n-th request. After 50 requests (what
    the client would do for ever) it answers an error, so a broken client fails instead of hanging the test."""

    def __init__(self, page_of: Callable[[int], int]) -> None:
        self.page_of = page_of
        self.served = 0
        self.port = 0  # the server's, known once it runs

    def __call__(self, path: str) -> Answer:
        self.served += 1
        if self.served > 50:
            return _json({"error": {"code": "stop", "message": "looped"}}, status=400)
        page = self.page_of(self.served)
        return _json({"value": [{"id": f"m{page}"}],
                      "@odata.nextLink": f"https://127.0.0.1:{self.port}/v1.0/users/a/messages/delta?p={page}"})


@pytest.mark.parametrize("cycle", [1, 2])
def test_a_paging_link_that_comes_back_ends_the_listing(scripted: Callable[..., tuple[ScriptedHttps, GraphClient]],
                                                        cycle: int) -> None:
    """A nextLink leading back to a page already read is a ProtocolError, not an endless paging loop."""
    pages = _Pages(lambda served: served % cycle)
    server, client = scripted(_folder_then(pages))
    pages.port = server.port
    with pytest.raises(ProtocolError, match="points back to a page already read"):
        GraphSource(client, "a@example.test").list_new()
    assert pages.served <= cycle + 1


def test_paging_links_without_end_end_the_listing(scripted: Callable[..., tuple[ScriptedHttps, GraphClient]]
                                                  ) -> None:
    """New nextLinks for ever (each page links to the next) stop at ``max_pages`` with a ProtocolError."""
    pages = _Pages(lambda served: served)
    server, client = scripted(_folder_then(pages))
    pages.port = server.port
    client.max_pages = 10
    with pytest.raises(ProtocolError, match="did not end after 10 pages"):
        GraphSource(client, "a@example.test").list_new()
    assert pages.served == 10


@pytest.mark.parametrize("value", ["\xb2", "\xb9\xb3", "1e9", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "nan"])
def test_a_strange_retry_after_is_a_short_backoff(scripted: Callable[..., tuple[ScriptedHttps, GraphClient]],
                                                  value: str) -> None:
    """Retry-After that is not plain ASCII digits (a Latin-1 superscript digit, an exponent, a sign, a date)
    falls back to the short backoff instead of raising or waiting for ever."""
    answers = iter([_json({}, status=429, **{"Retry-After": value}), _json({"ok": True})])
    _, client = scripted(lambda path: next(answers))
    waits: list[float] = []
    client._sleep = waits.append
    assert client.get_json("/v1.0/users/a") == {"ok": True}
    assert len(waits) == 1 and 0 <= waits[0] <= 1.0


def test_a_gigantic_json_answer_is_refused_unread(scripted: Callable[..., tuple[ScriptedHttps, GraphClient]]) -> None:
    """A 200 whose JSON body is larger than MAX_JSON_BYTES is a ProtocolError after reading just past the
    limit, not a body held whole in memory; the next call works on a fresh connection."""
    pad = MAX_JSON_BYTES + (1 << 20)
    head, tail = b'{"value": [], "pad": "', b'"}'
    answers = iter([(200, {"Content-Type": "application/json"},
                     (len(head) + pad + len(tail), [head, *[b"x" * (1 << 20)] * (pad >> 20), tail])),
                    _json({"ok": True})])
    _, client = scripted(lambda path: next(answers))
    with pytest.raises(ProtocolError, match=f"larger than {MAX_JSON_BYTES} bytes"):
        client.get_json("/v1.0/users/a/mailFolders")
    assert client.get_json("/v1.0/users/a") == {"ok": True}


def test_a_message_larger_than_the_json_limit_is_fetched_whole(
        scripted: Callable[..., tuple[ScriptedHttps, GraphClient]]) -> None:
    """A message's MIME has no transport limit (the envelope's size limit quarantines it, bytes kept)."""
    raw = b"Subject: big\r\n\r\n" + b"y" * (MAX_JSON_BYTES + 10)
    _, client = scripted(lambda path: (200, {"Content-Type": "message/rfc822"}, raw) if path.endswith("/$value")
                         else _json({"id": "inbox-id"}))
    source = GraphSource(client, "a@example.test")
    assert source.fetch(MessageRef(source.mailbox, graph_id="m1")) == raw


@pytest.mark.parametrize(("folder", "page", "match"), [
    ({}, {"value": []}, "without an 'id'"),
    ({"id": "inbox-id"}, {"value": 5}, "'value' is not a list"),
    ({"id": "inbox-id"}, {"value": [{"id": "m1", "categories": 5}]}, "'categories' that are not a list"),
], ids=["folder-without-id", "value-not-a-list", "categories-not-a-list"])
def test_json_of_the_wrong_shape_is_a_protocol_error(scripted: Callable[..., tuple[ScriptedHttps, GraphClient]],
                                                    folder: object, page: object, match: str) -> None:
    """Valid JSON of the wrong shape ends the pass with a retryable ProtocolError, not a KeyError / TypeError
    that would end ``poll``."""
    _, client = scripted(lambda path: _json(page) if "/messages/delta" in path else _json(folder))
    with pytest.raises(ProtocolError, match=match) as caught:
        GraphSource(client, "a@example.test").list_new()
    assert caught.value.retryable


@pytest.mark.parametrize("status", [400, 403, 404, 500, 401])
def test_an_error_answer_quoting_the_token_does_not_leak_it(
        scripted: Callable[..., tuple[ScriptedHttps, GraphClient]], status: int) -> None:
    """A careless server quoting the request's Authorization header in its error message: the error (what
    the worker logs) carries ``***`` instead of the token."""
    answer = _json({"error": {"code": "BadRequest", "message": f"rejected header 'Bearer {TOKEN}'"}}, status=status)
    _, client = scripted(lambda path: answer)
    with pytest.raises(TransportError) as caught:
        client.get_json("/v1.0/users/a")
    assert "***" in str(caught.value)
    assert_no_secret(TOKEN, caught.value)


@pytest.mark.parametrize("token", ["sekrit\r\nX-Injected: 1", "sekrit value", "sekrït"],
                         ids=["crlf", "space", "non-ascii"])
def test_a_token_no_header_can_carry_is_refused_before_sending(pki: Pki, token: str) -> None:
    """A token from a broken identity provider that an HTTP header cannot carry is a ProtocolError that holds it
    nowhere, not even on the exception chain (http.client's ValueError quotes the header), and nothing is sent."""

    class Odd(_Token):
        def token(self) -> str:
            return token

    with ScriptedHttps(pki, lambda path: _json({})) as server:
        endpoint = Endpoint("127.0.0.1", server.port, "ssl", ca_file=pki.ca_pem, timeout=5)
        client = GraphClient(endpoint, Odd())
        with pytest.raises(ProtocolError, match="token") as caught:
            client.get_json("/v1.0/users/a")
        client.close()
    assert_no_secret("sekr", caught.value)
    assert server.paths == []


def test_retry_after_zero_for_ever_is_not_a_busy_loop(scripted: Callable[..., tuple[ScriptedHttps, GraphClient]]
                                                      ) -> None:
    """429 with ``Retry-After: 0`` on every answer spends no wait budget, yet the call gives up after a few tries
    with the retryable throttling error instead of hammering the server."""
    served = 0

    def answer(path: str) -> Answer:
        nonlocal served
        served += 1
        return _json({}, status=429, **{"Retry-After": "0"}) if served <= 200 else _json({"ok": True})

    _, client = scripted(answer)
    with pytest.raises(GraphError, match="throttling") as caught:
        client.get_json("/v1.0/users/a")
    assert caught.value.retryable and served <= 11


def test_an_answer_without_content_is_not_taken_for_the_message(
        scripted: Callable[..., tuple[ScriptedHttps, GraphClient]]) -> None:
    """``204 No Content`` answering ``$value`` is a ProtocolError, not an empty message handed on in its place."""
    _, client = scripted(lambda path: (204, {}, b""))
    source = GraphSource(client, "a@example.test")
    with pytest.raises(ProtocolError, match="204 without the message"):
        source.fetch(MessageRef(source.mailbox, graph_id="m1"))


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_is_not_taken_for_the_message(scripted: Callable[..., tuple[ScriptedHttps, GraphClient]],
                                                 status: int) -> None:
    """A redirect answering ``$value`` (a misconfigured gateway) is an error: its HTML body was handed on as the
    message, and the real message then marked processed, never routed."""
    _, client = scripted(lambda path: (status, {"Location": "https://elsewhere.test/", "Content-Type": "text/html"},
                                       b"<html>moved</html>"))
    source = GraphSource(client, "a@example.test")
    with pytest.raises(GraphError, match=str(status)):
        source.fetch(MessageRef(source.mailbox, graph_id="m1"))
