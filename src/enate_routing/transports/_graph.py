"""Microsoft Graph mail source and sender (service ``office365-graph``; docs/microsoft365.md, docs/semantics.md §8).

:class:`GraphSource` reads one folder of a mailbox (the connector's primary address or its additional,
shared mailbox: ``/users/{address}/mailFolders/...``):

- **incremental listing**: the folder's ``messages/delta`` query, paged with ``@odata.nextLink``; the
  ``@odata.deltaLink`` and the folder's known messages are kept per process (:data:`DELTA_STATES`), so the
  next pass over a 100,000-message folder asks only for what changed. A delta state the server forgot
  (410 Gone) starts a full listing again;
- **raw MIME**: ``/messages/{id}/$value`` — routing sees the bytes IMAP would give;
- **immutable ids** in :class:`~.base.MessageRef` (``graph_id``; ``mailbox`` is ``address/folder``; the
  ledger key ``graph:<address>/<folder>/<id>``), so a ref stays valid after a move;
- **processed** like IMAP: :class:`~.base.MoveAction` moves (the folder is created if missing),
  ``FlagAction("\\Seen")`` marks read, any other :class:`~.base.FlagAction` adds the flag as an Outlook
  category, :class:`~.base.DeleteAction` deletes. A message already gone is nothing left to mark. Graph
  replaces a message's whole category list, built from the categories the listing saw: a category another
  client adds in the seconds between listing and marking is overwritten (one request per message saved).

:class:`GraphSender` sends acknowledgements with ``sendMail`` and the MIME body (base64, ``text/plain``),
so ``Auto-Submitted`` and the other loop-protection headers arrive as built. Graph takes recipients from
the MIME headers: an envelope recipient the headers do not name is added as ``Bcc`` (never transmitted).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any
from urllib.parse import quote, urlencode

from enate_routing._closing import ClosedOnExit
from enate_routing._patterns import header_address
from enate_routing.errors import GraphError, MailboxMissingError, MessageGoneError, ProtocolError
from enate_routing.transports._base import (
    ConnectionTestResult,
    DeleteAction,
    FlagAction,
    MessageRef,
    MoveAction,
    ProcessedAction,
)
from enate_routing.transports._graph_client import GraphClient
from enate_routing.transports._session import run_connection_test

__all__ = ["DELTA_STATES", "DeltaState", "GraphSender", "GraphSource", "check_graph_connection"]

WELL_KNOWN_FOLDERS = frozenset({
    "archive", "clutter", "conversationhistory", "deleteditems", "drafts", "inbox", "junkemail",
    "msgfolderroot", "outbox", "recoverableitemsdeletions", "scheduled", "searchfolders", "sentitems",
    "syncissues",
})
_SELECT = "id,receivedDateTime,isRead,categories"
PAGE_SIZE = 200


@dataclass
class DeltaState:
    """Where a folder's delta listing stopped, and the messages it has seen there (id → received, read,
    categories)."""

    link: str | None = None
    known: dict[str, tuple[str, bool, tuple[str, ...]]] = field(default_factory=dict)


DELTA_STATES: dict[tuple[str, str, str], DeltaState] = {}
"""Per process, by (Graph host, mailbox address, folder id): one poll's pass continues where the last stopped."""
_STATES_LOCK = threading.Lock()


def _items(page: Mapping[str, Any], server: str) -> list[Any]:
    """The ``value`` list of a collection page; another shape is a ProtocolError (not a TypeError ending poll)."""
    items = page.get("value", [])
    if not isinstance(items, list):
        raise ProtocolError("Graph answered a page whose 'value' is not a list", server=server)
    return items


def _id(data: Mapping[str, Any], server: str) -> str:
    ident = data.get("id")
    if not isinstance(ident, str) or not ident:
        raise ProtocolError("Graph answered an object without an 'id'", server=server)
    return ident


def _categories(data: Mapping[str, Any], server: str) -> tuple[str, ...]:
    categories = data.get("categories") or ()
    if not isinstance(categories, list | tuple):
        raise ProtocolError("Graph answered 'categories' that are not a list", server=server)
    return tuple(str(c) for c in categories)


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class GraphSource(ClosedOnExit):
    """A :class:`~.base.MailSource` over Microsoft Graph for one folder of one mailbox."""

    protocol = "graph"
    marks_committed_on_close = False  # each move / PATCH / DELETE is done when Graph answers it

    def __init__(self, client: GraphClient, address: str, folder: str = "inbox", *,
                 processed: ProcessedAction | None = None, page_size: int = PAGE_SIZE,
                 delta_states: dict[tuple[str, str, str], DeltaState] | None = None) -> None:
        self.client = client
        self.address = address
        self.folder = folder
        self.processed: ProcessedAction = processed if processed is not None else MoveAction()
        self.page_size = page_size
        self.mailbox = f"{address}/{folder}"
        self._states = DELTA_STATES if delta_states is None else delta_states
        self._folder_ids: dict[str, str] = {}
        self.server = client.server

    # ------------------------------------------------------------------ folders
    def folder_id(self, path: str, *, create: bool = False) -> str:
        """The id of folder ``path`` (a well-known name, or display names separated by ``/``)."""
        key = path.casefold()
        if key in self._folder_ids:
            return self._folder_ids[key]
        base = f"{self.client.user_path(self.address)}/mailFolders"
        parent: str | None = None
        for depth, name in enumerate(part for part in path.split("/") if part):
            if depth == 0 and name.casefold() in WELL_KNOWN_FOLDERS:
                parent = _id(self.client.get_json(f"{base}/{name.casefold()}"), self.server)
                continue
            children = f"{base}/{quote(parent, safe='')}/childFolders" if parent else base
            parent = self._child(children, name) or (self._create(children, name) if create else None)
            if parent is None:
                raise MailboxMissingError(f"folder {path!r} does not exist in {self.address!r}", server=self.server)
        if parent is None:
            raise MailboxMissingError(f"empty folder name {path!r}", server=self.server)
        self._folder_ids[key] = parent
        return parent

    def _child(self, collection: str, name: str) -> str | None:
        query = urlencode({"$filter": f"displayName eq {_odata_string(name)}", "$select": "id,displayName"})
        for page in self.client.pages(f"{collection}?{query}"):
            for folder in _items(page, self.server):
                if isinstance(folder, dict) and str(folder.get("displayName", "")).casefold() == name.casefold():
                    return _id(folder, self.server)
        return None

    def _create(self, collection: str, name: str) -> str | None:
        try:
            return _id(self.client.json_of(self.client.call("POST", collection, json_body={"displayName": name})),
                       self.server)
        except GraphError as exc:
            if exc.status != 409:  # 409 ErrorFolderExists: another client created it just now
                raise
            return self._child(collection, name)

    # ------------------------------------------------------------------ MailSource
    def _state(self) -> tuple[str, DeltaState]:
        folder = self.folder_id(self.folder)
        with _STATES_LOCK:
            state = self._states.setdefault((self.server, self.address.casefold(), folder), DeltaState())
        return folder, state

    def list_new(self) -> list[MessageRef]:
        """Messages of the folder not yet processed, oldest first, from the folder's delta listing."""
        folder, state = self._state()
        try:
            self._sync(folder, state)
        except GraphError as exc:
            if exc.status != 410:  # 410: the server forgot the delta state; list everything again
                raise
            state.link, state.known = None, {}
            self._sync(folder, state)
        waiting = [(received, ident) for ident, (received, read, categories) in state.known.items()
                   if self._unprocessed(read, categories)]
        return [MessageRef(self.mailbox, graph_id=ident) for _, ident in sorted(waiting)]

    def _sync(self, folder: str, state: DeltaState) -> None:
        start = state.link or (f"{self.client.user_path(self.address)}/mailFolders/{quote(folder, safe='')}"
                               f"/messages/delta?{urlencode({'$select': _SELECT})}")
        known = dict(state.known)
        headers = {"Prefer": f'IdType="ImmutableId", odata.maxpagesize={self.page_size}'}
        link = None
        for page in self.client.pages(start, headers):
            for item in _items(page, self.server):
                if not isinstance(item, dict) or "id" not in item:
                    continue
                ident = str(item["id"])
                if "@removed" in item:
                    known.pop(ident, None)
                else:
                    known[ident] = (str(item.get("receivedDateTime", "")), bool(item.get("isRead", False)),
                                    _categories(item, self.server))
            delta = page.get("@odata.deltaLink")
            link = delta if isinstance(delta, str) else link
        state.known, state.link = known, link  # only a complete round replaces the state

    def _unprocessed(self, read: bool, categories: tuple[str, ...]) -> bool:
        action = self.processed
        if not isinstance(action, FlagAction):
            return True  # moved or deleted mail leaves the folder
        if action.flag.casefold() == "\\seen":
            return not read
        return action.flag.casefold() not in {c.casefold() for c in categories}

    def _message_path(self, ref: MessageRef) -> str:
        if ref.graph_id is None or ref.mailbox != self.mailbox:
            raise ValueError(f"{ref!r} is not a Graph message of {self.mailbox!r}")
        return f"{self.client.user_path(self.address)}/messages/{quote(ref.graph_id, safe='')}"

    def fetch(self, ref: MessageRef) -> bytes:
        """The raw MIME of the message (``$value``); reading it does not mark it read."""
        try:
            # Whole, however large, as IMAP and POP3 give it: the envelope's size limit quarantines it with its bytes.
            response = self.client.call("GET", f"{self._message_path(ref)}/$value",
                                        headers={"Accept": "message/rfc822, */*"}, max_body=None)
        except MailboxMissingError:
            raise MessageGoneError(f"message {ref.graph_id!r} is no longer in {self.mailbox!r}",
                                   server=self.server) from None
        if response.status != 200:  # a 204's empty body is not the message (which would then be marked processed)
            raise ProtocolError(f"Graph answered {response.status} without the message {ref.graph_id!r}",
                                server=self.server)
        return response.body

    def mark_processed(self, ref: MessageRef) -> None:
        """Move, mark read, add a category or delete; a message that is gone already is left alone."""
        path, action = self._message_path(ref), self.processed
        ident = ref.graph_id
        assert ident is not None  # checked by _message_path
        _, state = self._state()
        try:
            if isinstance(action, MoveAction):
                target = self.folder_id(action.folder, create=True)
                self.client.call("POST", f"{path}/move", json_body={"destinationId": target})
                state.known.pop(ident, None)
            elif isinstance(action, DeleteAction):
                self.client.call("DELETE", path)
                state.known.pop(ident, None)
            elif action.flag.casefold() == "\\seen":
                self.client.call("PATCH", path, json_body={"isRead": True})
                self._remember(state, ident, read=True)
            else:
                known = state.known.get(ident)  # the delta listing carried the categories
                categories = known[2] if known is not None else self._categories_at(path)
                if action.flag.casefold() not in {c.casefold() for c in categories}:
                    categories = (*categories, action.flag)
                    self.client.call("PATCH", path, json_body={"categories": list(categories)})
                self._remember(state, ident, categories=categories)
        except MailboxMissingError:
            state.known.pop(ident, None)  # already moved or deleted by someone else: nothing to mark

    def _categories_at(self, path: str) -> tuple[str, ...]:
        return _categories(self.client.get_json(f"{path}?{urlencode({'$select': 'categories'})}"), self.server)

    @staticmethod
    def _remember(state: DeltaState, ident: str, *, read: bool | None = None,
                  categories: tuple[str, ...] | None = None) -> None:
        known = state.known.get(ident)
        if known is not None:
            state.known[ident] = (known[0], known[1] if read is None else read,
                                  known[2] if categories is None else categories)

    def folder_counts(self) -> tuple[int, int]:
        """``(total, unread)`` messages of the folder, for a connection test."""
        data = self.client.get_json(f"{self.client.user_path(self.address)}/mailFolders/"
                                    f"{quote(self.folder_id(self.folder), safe='')}")
        return int(data.get("totalItemCount", 0)), int(data.get("unreadItemCount", 0))

    def close(self) -> None:
        self.client.close()



def _with_envelope(message: bytes, recipients: Sequence[str]) -> bytes:
    """``message`` with a ``Bcc`` header naming the envelope recipients its headers do not name."""
    headers = BytesHeaderParser().parsebytes(message)
    named = {address.casefold() for _, address in getaddresses(
        [str(v) for key in ("to", "cc", "bcc") for v in headers.get_all(key, [])])}
    missing = [r for r in dict.fromkeys(recipients) if r.casefold() not in named]
    if not missing:
        return message
    return f"Bcc: {', '.join(map(header_address, missing))}\r\n".encode() + message


class GraphSender(ClosedOnExit):
    """A :class:`~.base.MailSender` through ``/users/{mailbox}/sendMail`` with a MIME body.

    ``mailbox`` is the mailbox that sends (and keeps a copy in Sent Items when ``save_to_sent``); a
    ``from_addr`` other than it needs the Send As or Send on Behalf permission in Exchange.
    """

    protocol = "graph"

    def __init__(self, client: GraphClient, mailbox: str, *, save_to_sent: bool = True) -> None:
        self.client = client
        self.mailbox = mailbox
        self.save_to_sent = save_to_sent
        self.server = client.server

    def send(self, from_addr: str, to_addrs: Sequence[str], message_bytes: bytes
             ) -> Mapping[str, tuple[int, bytes]]:
        """Send the MIME message; Graph accepts or refuses it whole, so no recipient is reported refused."""
        if not to_addrs:
            raise ValueError("no recipients")
        body = base64.b64encode(_with_envelope(message_bytes, to_addrs))
        path = f"{self.client.user_path(self.mailbox)}/sendMail"
        if not self.save_to_sent:
            path += "?" + urlencode({"saveToSentItems": "false"})
        self.client.call("POST", path, body=body, content_type="text/plain")
        return {}

    def close(self) -> None:
        self.client.close()



def check_graph_connection(source: GraphSource | None = None, sender: GraphSender | None = None
                           ) -> ConnectionTestResult:
    """Get a token, open the folder (and check the processed-mail folder) or the sending mailbox."""
    adapter: Any = source if source is not None else sender
    if adapter is None:
        raise ValueError("give a source or a sender")

    def body() -> tuple[str, tuple[str, ...]]:
        with adapter:
            if sender is not None and source is None:
                data = sender.client.get_json(f"{sender.client.user_path(sender.mailbox)}/mailFolders/sentitems")
                return f"mailbox {sender.mailbox!r} reachable (Sent Items: {data.get('totalItemCount', 0)})", ()
            assert source is not None
            total, unread = source.folder_counts()
            detail = f"{source.mailbox!r} opened: {total} messages, {unread} unread"
            action = source.processed
            if isinstance(action, MoveAction):
                try:
                    source.folder_id(action.folder)
                except MailboxMissingError:
                    detail += f"; processed-mail folder {action.folder!r} will be created on first use"
            return detail, ("delta", "immutable-id")

    return run_connection_test("graph", adapter.client.endpoint, body)
