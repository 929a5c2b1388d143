"""A fake Microsoft Graph mail API on 127.0.0.1 (HTTPS, the rig's CA), enforcing what the real one documents.

Under ``/v1.0/users/{address}``: ``mailFolders`` (well-known names, ``$filter=displayName eq '...'``, paging
with ``@odata.nextLink``, create: 201 / 409), ``childFolders``, ``mailFolders/{id}/messages/delta`` (pages of
``odata.maxpagesize``, ``@odata.deltaLink``; a delta token it does not know: 410 ``SyncStateNotFound``),
``messages/{id}`` (GET, PATCH ``isRead`` / ``categories``, DELETE), ``messages/{id}/$value`` (the raw MIME),
``messages/{id}/move`` and ``sendMail`` (a base64 MIME body with ``Content-Type: text/plain``; stored in
``sent``). Ids are immutable: a move keeps them.

Every request needs a bearer token from the :class:`~mailrig.oauth_server.TokenBook` whose audience is this
server; an app token needs the role, a delegated token the scope (``Mail.ReadWrite`` to read and change,
``Mail.Send`` to send) and a user who owns the mailbox or was granted it (:meth:`FakeGraph.grant`). No token,
an unknown or expired one: 401; missing permission: 403 ``ErrorAccessDenied``.

Faults: :meth:`FakeGraph.throttle` answers the next requests 429 (or 503) with ``Retry-After``;
:meth:`FakeGraph.fail` answers them with another status; :meth:`FakeGraph.drop` closes the connection
without an answer; :meth:`FakeGraph.disrupt_every` breaks every K-th request (before, after, mid-download).
``log`` records (method, path, status) of every request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from mailrig.https import HttpsServer, JsonHandler
from mailrig.oauth_server import Grant, TokenBook
from mailrig.pki import Pki

__all__ = ["FakeGraph", "GraphMessage", "SentMail"]

WELL_KNOWN = ("inbox", "archive", "deleteditems", "sentitems", "drafts", "junkemail")
FAULT_MODES = ("drop-before", "drop-after", "cut-download")


@dataclass
class GraphMessage:
    id: str
    raw: bytes
    folder: str
    received: str
    is_read: bool = False
    categories: list[str] = field(default_factory=list)
    version: int = 0


@dataclass
class _Folder:
    id: str
    name: str
    parent: str | None


@dataclass
class SentMail:
    mailbox: str
    mime: bytes
    grant: Grant


@dataclass
class _Mailbox:
    folders: dict[str, _Folder] = field(default_factory=dict)
    messages: dict[str, GraphMessage] = field(default_factory=dict)


class _Handler(JsonHandler):
    server: Any

    def _serve(self) -> None:
        graph: FakeGraph = self.server.owner
        body = self.body()
        with graph.lock:
            fault = graph.next_fault()
            if fault == "drop-before":
                status, data, raw, headers = 0, None, None, {}
            else:
                status, data, raw, headers = graph.answer(self.command, self.path, dict(self.headers.items()), body)
        if status == 0 or fault == "drop-after" or (fault == "cut-download" and raw is None):
            self.close_connection = True  # hang up without an answer (after doing the work, for drop-after)
            self.connection.close()
            return
        graph.log.append((self.command, urlsplit(self.path).path, status))
        if fault == "cut-download" and raw is not None:  # half the MIME, then the connection is gone
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw[: len(raw) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.close()
            return
        if raw is not None:
            self.reply(status, raw=raw, content_type="text/plain", headers=headers)
        else:
            self.reply(status, data, headers=headers)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


def _err(status: int, code: str, message: str) -> tuple[int, Any, None, dict[str, str]]:
    return status, {"error": {"code": code, "message": message}}, None, {}


class FakeGraph(HttpsServer):
    """The fake Graph API; add mailboxes and messages, then point a GraphSource at ``url``."""

    def __init__(self, pki: Pki, book: TokenBook) -> None:
        super().__init__(pki, _Handler)
        self.book = book
        self.mailboxes: dict[str, _Mailbox] = {}
        self.delegations: dict[str, set[str]] = {}  # mailbox -> users granted full access
        self.sent: list[SentMail] = []
        self.log: list[tuple[str, str, int]] = []
        self.faults: list[tuple[int, dict[str, str]]] = []
        self._delta: dict[str, dict[str, int]] = {}
        self._pages: dict[str, tuple[list[dict[str, Any]], str]] = {}
        self._clock = itertools.count()
        self.every, self.requests = 0, 0
        self.disrupted = dict.fromkeys(FAULT_MODES, 0)

    def reset(self) -> None:
        with self.lock:
            self.mailboxes.clear()
            self.delegations.clear()
            self.sent.clear()
            self.log.clear()
            self.faults.clear()
            self._delta.clear()
            self._pages.clear()
            self.every, self.requests = 0, 0
            self.idle_timeout = JsonHandler.timeout

    # ------------------------------------------------------------------ test set-up
    def mailbox(self, address: str) -> _Mailbox:
        with self.lock:
            box = self.mailboxes.get(address.casefold())
            if box is None:
                box = self.mailboxes[address.casefold()] = _Mailbox()
                box.folders["msgfolderroot"] = _Folder("msgfolderroot", "Top of Information Store", None)
                for name in WELL_KNOWN:
                    ident = "AAMk" + secrets.token_urlsafe(12)
                    box.folders[ident] = _Folder(ident, {"inbox": "Inbox", "archive": "Archive"}.get(name, name),
                                                 "msgfolderroot")
                    box.folders[name] = box.folders[ident]
            return box

    def deliver(self, address: str, raw: bytes, folder: str = "inbox") -> str:
        """Put ``raw`` into ``folder`` of ``address``'s mailbox; returns the (immutable) message id."""
        with self.lock:
            box = self.mailbox(address)
            ident = "AAkALg" + secrets.token_urlsafe(30) + "="
            received = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=next(self._clock))).isoformat()
            box.messages[ident] = GraphMessage(ident, raw, box.folders[folder].id, received.replace("+00:00", "Z"))
            return ident

    def grant(self, mailbox: str, user: str) -> None:
        with self.lock:
            self.delegations.setdefault(mailbox.casefold(), set()).add(user.casefold())

    def folder_named(self, address: str, name: str) -> str | None:
        box = self.mailbox(address)
        return next((f.id for k, f in box.folders.items() if k == f.id and f.name.casefold() == name.casefold()), None)

    def messages_in(self, address: str, folder: str = "inbox") -> list[GraphMessage]:
        with self.lock:
            box = self.mailbox(address)
            target = box.folders[folder].id if folder in box.folders else self.folder_named(address, folder)
            return [m for m in box.messages.values() if m.folder == target]

    def throttle(self, count: int, *, status: int = 429, retry_after: int = 0) -> None:
        with self.lock:
            self.faults += [(status, {"Retry-After": str(retry_after)})] * count

    def fail(self, count: int, status: int = 500) -> None:
        with self.lock:
            self.faults += [(status, {})] * count

    def drop(self, count: int = 1) -> None:
        with self.lock:
            self.faults += [(0, {})] * count

    def disrupt_every(self, every: int) -> None:
        """Disrupt every ``every``-th request from now on (0: never), in turn: ``drop-before`` (hang up before
        doing anything), ``drop-after`` (do it, then hang up without an answer: the ambiguous case) and
        ``cut-download`` (half of a ``$value`` body, then hang up; otherwise as drop-after)."""
        with self.lock:
            self.every, self.requests = every, 0
            self.disrupted = dict.fromkeys(FAULT_MODES, 0)

    def next_fault(self) -> str | None:
        self.requests += 1
        if not self.every or self.requests % self.every:
            return None
        mode = FAULT_MODES[(self.requests // self.every - 1) % len(FAULT_MODES)]
        self.disrupted[mode] += 1
        return mode

    # ------------------------------------------------------------------ the API
    def _grant(self, headers: dict[str, str]) -> Grant | None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        grant = self.book.check(auth[7:]) if auth.lower().startswith("bearer ") else None
        return grant if grant is not None and grant.audience == self.url else None

    def _allowed(self, grant: Grant, address: str, permission: str) -> bool:
        if permission not in grant.permissions:
            return False
        if grant.app_only:
            return True
        user = (grant.user or "").casefold()
        return user == address.casefold() or user in self.delegations.get(address.casefold(), set())

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, Any, bytes | None, dict[str, str]]:
        if self.faults:
            status, extra = self.faults.pop(0)
            if status == 0:
                return 0, None, None, {}
            return status, {"error": {"code": "TooManyRequests" if status == 429 else "ServiceUnavailable",
                                      "message": "Please retry after the given time"}}, None, extra
        grant = self._grant(headers)
        if grant is None:
            return _err(401, "InvalidAuthenticationToken", "Access token is empty, invalid or has expired.")
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if parts[:2] != ["v1.0", "users"] or len(parts) < 4:
            return _err(400, "BadRequest", "Unsupported request")
        address, rest = parts[2], parts[3:]
        if address.casefold() not in self.mailboxes:
            return _err(404, "ErrorInvalidUser", f"The requested user '{address}' is invalid.")
        box = self.mailboxes[address.casefold()]
        permission = "Mail.Send" if rest == ["sendMail"] else "Mail.ReadWrite"
        if not self._allowed(grant, address, permission):
            return _err(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        query = {k: v for k, _, v in (p.partition("=") for p in url.query.split("&") if p)}
        query = {unquote(k): unquote(v.replace("+", " ")) for k, v in query.items()}
        prefer = next((v for k, v in headers.items() if k.lower() == "prefer"), "")
        if rest == ["sendMail"] and method == "POST":
            return self._send(address, headers, body, grant)
        if rest[0] == "mailFolders":
            return self._folders(box, address, method, rest[1:], query, prefer, body)
        if rest[0] == "messages" and len(rest) >= 2:
            return self._message(box, method, rest[1], rest[2:], body)
        return _err(400, "BadRequest", "Unsupported request")

    def _send(self, address: str, headers: dict[str, str], body: bytes, grant: Grant
              ) -> tuple[int, Any, bytes | None, dict[str, str]]:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if not content_type.startswith("text/plain"):
            return _err(400, "ErrorInvalidRequest", "MIME content must be sent as text/plain (base64)")
        try:
            mime = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _err(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
        self.sent.append(SentMail(address, mime, grant))
        return 202, None, b"", {}

    def _folder_json(self, box: _Mailbox, folder: _Folder) -> dict[str, Any]:
        inside = [m for m in box.messages.values() if m.folder == folder.id]
        return {"id": folder.id, "displayName": folder.name, "parentFolderId": folder.parent,
                "totalItemCount": len(inside), "unreadItemCount": sum(not m.is_read for m in inside)}

    def _folders(self, box: _Mailbox, address: str, method: str, rest: list[str], query: dict[str, str],
                 prefer: str, body: bytes) -> tuple[int, Any, bytes | None, dict[str, str]]:
        if not rest or rest[-1] == "childFolders":
            parent = "msgfolderroot" if not rest else rest[0]
            if parent not in box.folders:
                return _err(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            parent_id = box.folders[parent].id
            if method == "POST":
                name = json.loads(body or b"{}").get("displayName", "")
                if any(f.parent == parent_id and f.name.casefold() == name.casefold() for f in box.folders.values()):
                    return _err(409, "ErrorFolderExists", "A folder with the specified name already exists.")
                folder = _Folder("AAMk" + secrets.token_urlsafe(12), name, parent_id)
                box.folders[folder.id] = folder
                return 201, self._folder_json(box, folder), None, {}
            children = sorted({f.id: f for f in box.folders.values() if f.parent == parent_id}.values(),
                              key=lambda f: f.name)
            wanted = query.get("$filter", "")
            if wanted.startswith("displayName eq '"):
                name = wanted[len("displayName eq '"):-1].replace("''", "'")
                children = [f for f in children if f.name.casefold() == name.casefold()]
            return self._page(box, [self._folder_json(box, f) for f in children], query, address, rest)
        folder = box.folders.get(rest[0])
        if folder is None:
            return _err(404, "ErrorItemNotFound", "The specified folder was not found in the store.")
        if len(rest) == 1:
            return 200, self._folder_json(box, folder), None, {}
        if rest[1:] == ["messages", "delta"]:
            return self._delta_page(box, folder, query, prefer, address)
        return _err(400, "BadRequest", "Unsupported request")

    def _page(self, box: _Mailbox, items: list[dict[str, Any]], query: dict[str, str], address: str,
              rest: list[str]) -> tuple[int, Any, bytes | None, dict[str, str]]:
        skip, top = int(query.get("$skip", 0)), int(query.get("$top", 10))
        page: dict[str, Any] = {"value": items[skip:skip + top]}
        if skip + top < len(items):
            path = "/".join(["v1.0", "users", quote(address, safe="@"), "mailFolders", *rest])
            page["@odata.nextLink"] = f"{self.url}/{path}?$skip={skip + top}&$top={top}" + (
                f"&$filter={quote(query['$filter'])}" if "$filter" in query else "")
        return 200, page, None, {}

    def _delta_page(self, box: _Mailbox, folder: _Folder, query: dict[str, str], prefer: str, address: str
                    ) -> tuple[int, Any, bytes | None, dict[str, str]]:
        base = f"{self.url}/v1.0/users/{quote(address, safe='@')}/mailFolders/{folder.id}/messages/delta"
        if "$skiptoken" in query:
            pending = self._pages.pop(query["$skiptoken"], None)
            if pending is None:
                return _err(410, "SyncStateNotFound", "The sync state was not found.")
            changes, snapshot_token = pending
        else:
            token = query.get("$deltatoken")
            if token is not None and token not in self._delta:
                return _err(410, "SyncStateNotFound", "The sync state generation was not found.")
            before = self._delta.get(token, {}) if token else {}
            now = {m.id: m.version for m in box.messages.values() if m.folder == folder.id}
            changes = [{"id": m.id, "receivedDateTime": m.received, "isRead": m.is_read, "categories": m.categories}
                       for m in sorted(box.messages.values(), key=lambda m: m.received)
                       if m.id in now and before.get(m.id) != m.version]
            changes += [{"id": ident, "@removed": {"reason": "deleted"}} for ident in before if ident not in now]
            snapshot_token = secrets.token_urlsafe(12)
            self._delta[snapshot_token] = now
        size = 10
        if "odata.maxpagesize=" in prefer:
            size = int(prefer.split("odata.maxpagesize=")[1].split(",")[0].strip())
        page: dict[str, Any] = {"value": changes[:size]}
        if len(changes) > size:
            skip = secrets.token_urlsafe(12)
            self._pages[skip] = (changes[size:], snapshot_token)
            page["@odata.nextLink"] = f"{base}?$skiptoken={skip}"
        else:
            page["@odata.deltaLink"] = f"{base}?$deltatoken={snapshot_token}"
        return 200, page, None, {}

    def _message(self, box: _Mailbox, method: str, ident: str, rest: list[str], body: bytes
                 ) -> tuple[int, Any, bytes | None, dict[str, str]]:
        message = box.messages.get(ident)
        if message is None:
            return _err(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        as_json = {"id": message.id, "isRead": message.is_read, "categories": message.categories,
                   "parentFolderId": message.folder, "receivedDateTime": message.received}
        if rest == ["$value"] and method == "GET":
            return 200, None, message.raw, {}
        if rest == ["move"] and method == "POST":
            destination = json.loads(body or b"{}").get("destinationId", "")
            folder = box.folders.get(destination)
            if folder is None:
                return _err(404, "ErrorItemNotFound", "The destination folder was not found.")
            message.folder, message.version = folder.id, message.version + 1
            return 201, {**as_json, "parentFolderId": folder.id}, None, {}
        if not rest and method == "GET":
            return 200, as_json, None, {}
        if not rest and method == "PATCH":
            change = json.loads(body or b"{}")
            if "isRead" in change:
                message.is_read = bool(change["isRead"])
            if "categories" in change:
                message.categories = list(change["categories"])
            message.version += 1
            return 200, {**as_json, "isRead": message.is_read, "categories": message.categories}, None, {}
        if not rest and method == "DELETE":
            del box.messages[ident]
            return 204, None, b"", {}
        return _err(400, "BadRequest", "Unsupported request")
