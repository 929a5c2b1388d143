"""A tiny OAuth 2.0 token introspection endpoint (RFC 7662) on 127.0.0.1, for Dovecot's ``oauth2`` passdb.

:class:`IntrospectionServer` is stdlib ``http.server`` in a daemon thread. Dovecot 2.3 with
``introspection_mode = post`` sends ``POST /introspect`` with the form body ``token=<access token>``
(``get`` appends the token to the URL, ``auth`` sends ``Authorization: Bearer <token>``; all three are
understood here). A token registered with :meth:`IntrospectionServer.grant` is answered with
``{"active": true, "username": <user>}``; any other token with ``401`` and ``{"active": false}``.
:meth:`IntrospectionServer.revoke` turns a token inactive again (an expired or revoked token: ``200``
with ``{"active": false}``, which Dovecot refuses through ``active_attribute``/``active_value``).

``requests`` records what each request asked about (the looked-up token or ``None``), so a test can
check that the server really asked. :meth:`dovecot_config` returns the passdb block and the
``dovecot-oauth2.conf.ext`` text for :meth:`mailrig.dovecot.Dovecot.start`'s ``extra_config``.

It is a context manager; leaving it shuts the server down and joins the thread.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from mailrig.util import ServedInThread

__all__ = ["IntrospectionServer"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # the stdlib signature (shadows format)
        pass  # no access log on stderr

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        query = parse_qs(urlsplit(self.path).query)
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            query.update(parse_qs(body))
        for key in ("token", "access_token"):
            if query.get(key):
                return query[key][0]
        return None

    def _answer(self) -> None:
        owner = self.server.owner
        token = self._token()
        with owner.lock:
            owner.requests.append(token)
            user = owner.tokens.get(token) if token is not None else None
            known = token in owner.revoked
        if user is not None:
            status, body = 200, {"active": True, "username": user, "scope": "mail", "token_type": "Bearer"}
        elif known:
            status, body = 200, {"active": False}
        else:
            status, body = 401, {"active": False, "error": "invalid_token"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: IntrospectionServer


class IntrospectionServer(ServedInThread):
    """A token introspection endpoint at ``http://127.0.0.1:<port>/introspect``."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.revoked: set[str] = set()
        self.requests: list[str | None] = []
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/introspect"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def grant(self, token: str, username: str) -> None:
        """Make ``token`` an active access token of ``username``."""
        with self.lock:
            self.tokens[token] = username
            self.revoked.discard(token)

    def revoke(self, token: str) -> None:
        """Make ``token`` inactive (expired / revoked): answered ``{"active": false}``."""
        with self.lock:
            self.tokens.pop(token, None)
            self.revoked.add(token)

    def dovecot_config(self, conf_ext: str) -> tuple[str, str]:
        """``(extra dovecot.conf text, dovecot-oauth2.conf.ext text)``; the latter must be written to
        ``conf_ext`` (readable by the auth process, user ``dovecot``)."""
        extra = (
            "auth_mechanisms = plain login xoauth2 oauthbearer\n"
            "passdb {\n"
            "  driver = oauth2\n"
            "  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {conf_ext}\n"
            "}\n"
        )
        ext = (
            "introspection_mode = post\n"
            f"introspection_url = {self.url}\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
            "timeout_msecs = 5000\n"
        )
        return extra, ext

