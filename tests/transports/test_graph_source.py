"""GraphSource against the fake Graph API on loopback: delta listing, raw MIME, processed actions, faults."""

from __future__ import annotations

import time

import pytest

from enate_routing.errors import AuthenticationError, MailboxMissingError, MessageGoneError, ProtocolError
from enate_routing.transports._factory import ConnectorAccess, open_source
from enate_routing.transports._graph import DELTA_STATES, GraphSource
from mailrig.graph import FakeGraph
from mailrig.oauth_server import IdentityProvider
from mailrig.pki import Pki
from mailrig.util import message
from transports.cloud_config import DESK, ENV, SHARED, graph_connector, register_app

pytestmark = pytest.mark.servers


def source(graph: FakeGraph, idp: IdentityProvider, pki: Pki, **fields: object) -> GraphSource:
    opened = open_source(graph_connector(graph, idp, pki, **fields), ConnectorAccess(environ=ENV, timeout=5))
    assert isinstance(opened, GraphSource)
    return opened


def test_lists_fetches_raw_mime_and_moves_to_a_created_folder(graph: FakeGraph, idp: IdentityProvider,
                                                                pki: Pki) -> None:
    """Every delivered message is listed oldest first, fetched byte for byte, and moved to a new folder."""
    register_app(idp)
    raws = [message(f"m{i}") for i in range(3)]
    ids = [graph.deliver(DESK, raw) for raw in raws]
    with source(graph, idp, pki) as src:
        refs = src.list_new()
        assert [r.graph_id for r in refs] == ids
        assert [(r.protocol, r.key) for r in refs] == [("graph", f"graph:{DESK}/inbox/{i}") for i in ids]
        assert [src.fetch(r) for r in refs] == raws
        for ref in refs:
            src.mark_processed(ref)
        assert src.list_new() == []
    assert graph.messages_in(DESK) == []
    assert [m.id for m in graph.messages_in(DESK, "Processed")] == ids  # immutable ids survive the move


def test_delta_pages_and_asks_only_for_changes_on_the_next_pass(graph: FakeGraph, idp: IdentityProvider,
                                                               pki: Pki) -> None:
    """A 25-message folder comes in pages; the next pass follows the delta link and sees only the new one."""
    register_app(idp)
    for i in range(25):
        graph.deliver(DESK, message(f"bulk {i}"))
    with source(graph, idp, pki) as src:
        src.page_size = 10
        assert len(src.list_new()) == 25
        paged = [entry for entry in graph.log if entry[1].endswith("/messages/delta")]
        assert len(paged) == 3
        graph.log.clear()
        late = graph.deliver(DESK, message("late"))
        refs = src.list_new()
    assert refs[-1].graph_id == late and len(refs) == 26
    assert [e for e in graph.log if e[1].endswith("/messages/delta")] == [("GET", e[1], 200) for e in graph.log
                                                                          if e[1].endswith("/messages/delta")]
    assert len([e for e in graph.log if e[1].endswith("/messages/delta")]) == 1


def test_forgotten_delta_state_lists_everything_again(graph: FakeGraph, idp: IdentityProvider, pki: Pki) -> None:
    """A 410 SyncStateNotFound starts a full listing instead of failing the pass."""
    register_app(idp)
    first = graph.deliver(DESK, message("one"))
    with source(graph, idp, pki) as src:
        assert [r.graph_id for r in src.list_new()] == [first]
        with graph.lock:
            graph._delta.clear()
        second = graph.deliver(DESK, message("two"))
        assert [r.graph_id for r in src.list_new()] == [first, second]


@pytest.mark.parametrize(("processed", "check"), [
    ("mark-read", lambda m: m.is_read),
    ("flag", lambda m: m.categories == ["Processed"]),
])
def test_mark_read_and_category_leave_the_message_but_stop_listing_it(
        graph: FakeGraph, idp: IdentityProvider, pki: Pki, processed: str, check: object) -> None:
    """mark-read sets isRead, flag adds the Processed category; either way the next listing skips it."""
    register_app(idp)
    graph.deliver(DESK, message("keep me"))
    with source(graph, idp, pki, incoming={"processed": processed}) as src:
        (ref,) = src.list_new()
        src.mark_processed(ref)
        assert src.list_new() == []
    DELTA_STATES.clear()  # a new process: the listing comes from the server alone
    with source(graph, idp, pki, incoming={"processed": processed}) as src:
        assert src.list_new() == []
    (kept,) = graph.messages_in(DESK)
    assert callable(check) and check(kept)


def test_delete_removes_and_a_gone_message_is_nothing_to_mark(graph: FakeGraph, idp: IdentityProvider,
                                                             pki: Pki) -> None:
    """delete removes the message; fetching a vanished one is MessageGoneError, marking it is a no-op."""
    register_app(idp)
    graph.deliver(DESK, message("a"))
    graph.deliver(DESK, message("b"))
    with source(graph, idp, pki, incoming={"processed": "delete"}) as src:
        first, second = src.list_new()
        src.mark_processed(first)
        with graph.lock:
            graph.mailboxes[DESK].messages.pop(second.graph_id or "")
        with pytest.raises(MessageGoneError):
            src.fetch(second)
        src.mark_processed(second)
    assert graph.messages_in(DESK) == []


def test_subfolder_path_and_additional_mailbox(graph: FakeGraph, idp: IdentityProvider, pki: Pki) -> None:
    """A display-name path is resolved level by level; the additional mailbox is read at its own address."""
    register_app(idp)
    graph.mailbox(DESK)
    with source(graph, idp, pki, incoming={"folder": "Inbox/Support/Urgent"}) as src:
        with pytest.raises(MailboxMissingError, match="Inbox/Support/Urgent"):
            src.list_new()
        folder = src.folder_id("Inbox/Support/Urgent", create=True)
        urgent = graph.deliver(DESK, message("urgent"), folder=folder)
        assert [r.graph_id for r in src.list_new()] == [urgent]
    graph.deliver(SHARED, message("shared"))
    connector = graph_connector(graph, idp, pki, additional_mailbox=SHARED)
    with open_source(connector, ConnectorAccess(environ=ENV, timeout=5), mailbox="additional") as shared:
        (ref,) = shared.list_new()
        assert ref.mailbox == f"{SHARED}/inbox"
        assert b"shared" in shared.fetch(ref)


def test_folder_names_are_quoted_and_never_created_twice(graph: FakeGraph, idp: IdentityProvider,
                                                          pki: Pki) -> None:
    """A name with an apostrophe is found again (OData quoting); a create racing another client (409) returns
    the folder that client made."""
    register_app(idp)
    graph.mailbox(DESK)
    with source(graph, idp, pki) as src:
        made = src.folder_id("Customer's mail", create=True)
        src._folder_ids.clear()
        graph.log.clear()
        assert src.folder_id("Customer's mail", create=True) == made
        assert [method for method, _, _ in graph.log] == ["GET"]
        base = f"{src.client.user_path(DESK)}/mailFolders"
        assert src._create(base, "Customer's mail") == made  # 409 ErrorFolderExists, then looked up
    assert ("POST", f"/v1.0/users/{DESK}/mailFolders", 409) in graph.log


def test_throttling_waits_retry_after_then_gives_up_retryably(graph: FakeGraph, idp: IdentityProvider,
                                                               pki: Pki) -> None:
    """429 and 503 with Retry-After are waited out; past the wait budget the error is retryable."""
    register_app(idp)
    graph.deliver(DESK, message("x"))
    waits: list[float] = []
    with source(graph, idp, pki) as src:
        src.client._sleep = waits.append
        graph.throttle(2, retry_after=3)
        graph.throttle(1, status=503, retry_after=1)
        assert len(src.list_new()) == 1
        assert waits == [3.0, 3.0, 1.0]
        src.client.max_wait = 5
        graph.throttle(3, retry_after=4)
        with pytest.raises(ProtocolError, match="throttling") as caught:
            src.list_new()
    assert caught.value.retryable
    assert "waited 4 s in total" in str(caught.value)  # what was waited (4 + 4 would pass the budget of 5)


def test_expired_token_is_refreshed_once(graph: FakeGraph, idp: IdentityProvider, pki: Pki) -> None:
    """A 401 drops the cached token and gets one fresh token; a second 401 is AuthenticationError."""
    register_app(idp)
    graph.deliver(DESK, message("x"))
    with source(graph, idp, pki) as src:
        src.list_new()
        issued = graph.book.issued
        graph.book.expire_all()
        (ref,) = src.list_new()
        assert graph.book.issued == issued + 1
        with idp.lock:
            idp.apps["app-1"].roles = frozenset({"Mail.ReadWrite"})
        graph.book.expire_all()
        idp.token_lifetime = 0  # every new token is dead on arrival
        with pytest.raises(AuthenticationError, match="after one refresh"):
            src.fetch(ref)


def test_missing_role_is_an_authentication_error_naming_the_permission(graph: FakeGraph, idp: IdentityProvider,
                                                                       pki: Pki) -> None:
    """403 ErrorAccessDenied: not retryable, and the message says which permissions the app needs."""
    register_app(idp, roles=frozenset({"Mail.Send"}))
    graph.mailbox(DESK)
    with source(graph, idp, pki) as src, pytest.raises(AuthenticationError, match=r"Mail\.ReadWrite") as caught:
        src.list_new()
    assert not caught.value.retryable


def test_untrusted_graph_certificate_and_dead_port_are_typed_errors(graph: FakeGraph, idp: IdentityProvider,
                                                                    pki: Pki) -> None:
    """A server certificate from another CA is TLSVerificationError; nothing listening is a retryable ConnectError."""
    from enate_routing.errors import ConnectError, TLSVerificationError

    register_app(idp)
    graph.mailbox(DESK)
    with source(graph, idp, pki, incoming={"ca_file": str(pki.rogue_ca_pem)}) as src, \
            pytest.raises(TLSVerificationError):
        src.list_new()
    with source(graph, idp, pki, incoming={"port": 1}) as src, pytest.raises(ConnectError) as caught:
        src.list_new()
    assert caught.value.retryable


def test_a_connection_the_server_closed_while_idle_is_replaced_before_a_post(
        graph: FakeGraph, idp: IdentityProvider, pki: Pki) -> None:
    """Front ends close idle keep-alive connections. A POST (a move, ``sendMail``) is never sent twice, so
    one sent on such a connection failed; the client now sees the close first and opens a new connection.
    A connection still open is kept: one connection for the requests in a row, a second after the close."""
    register_app(idp)
    raw = message("after a pause")
    graph.deliver(DESK, raw)
    graph.idle_timeout = 0.3
    opened = graph.connections
    with source(graph, idp, pki) as src:
        (ref,) = src.list_new()
        assert src.fetch(ref) == raw
        src.folder_id("Processed", create=True)
        assert graph.connections == opened + 1  # one kept-alive connection for all of them
        time.sleep(0.8)  # the server closes the idle connection
        src.mark_processed(ref)  # POST .../move
    assert graph.connections == opened + 2
    assert graph.messages_in(DESK) == [] and [m.raw for m in graph.messages_in(DESK, "Processed")] == [raw]


def test_a_dropped_kept_alive_connection_is_retried_only_for_idempotent_requests(
        graph: FakeGraph, idp: IdentityProvider, pki: Pki) -> None:
    """A GET on a kept-alive connection the server closed is sent once more; a POST (a move) is not."""
    from enate_routing.errors import ConnectError

    register_app(idp)
    raw = message("once")
    graph.deliver(DESK, raw)
    with source(graph, idp, pki) as src:
        (ref,) = src.list_new()
        graph.drop(1)
        assert src.fetch(ref) == raw
        src.folder_id("Processed", create=True)
        graph.drop(1)
        with pytest.raises(ConnectError) as caught:
            src.mark_processed(ref)
    assert caught.value.retryable
    assert len(graph.messages_in(DESK)) == 1  # dropped before the server acted: still in the inbox
