"""Microsoft Graph requests: bearer token, throttling, paging, and Graph's errors as ours (docs/microsoft365.md).

Every call goes through :meth:`GraphClient.call`, which

- sends ``Authorization: Bearer`` with the current token and ``Prefer: IdType="ImmutableId"`` (ids that
  survive a move, so a stored id stays valid);
- on **401** drops the token (:meth:`~._tokens.TokenSource.invalidate`), asks for a fresh one and tries
  once more; a second 401 is an :class:`~enate_routing.errors.AuthenticationError`;
- on **429 / 503 / 504** waits ``Retry-After`` seconds (or a short backoff) and tries again, within a total
  wait budget and at most 10 times; past that, a retryable :class:`~enate_routing.errors.ProtocolError` lets
  the ingestion loop back off;
- maps the remaining statuses: 3xx → GraphError (a redirect is never followed nor its body taken for data),
  403 → AuthenticationError (permission or application access policy),
  404 → MailboxMissingError, other 4xx → ProtocolError, 5xx → retryable ProtocolError;
- follows ``@odata.nextLink`` / ``@odata.deltaLink`` only to the configured Graph host, so a token is
  never sent anywhere else.

The token never enters a message, a log line or a repr; log lines carry method, status and path.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from enate_routing.errors import AuthenticationError, GraphError, MailboxMissingError, ProtocolError, TransportError
from enate_routing.transports._base import Endpoint, OAuth2Auth
from enate_routing.transports._errors import scrub
from enate_routing.transports._http import HttpsClient, Response
from enate_routing.transports._session import refuse_plaintext
from enate_routing.transports._tokens import TokenSource

__all__ = ["MAX_JSON_BYTES", "MAX_PAGES", "GraphClient"]

logger = logging.getLogger("enate_routing.transports._graph")

_THROTTLED = frozenset({429, 503, 504})
_MAX_THROTTLED_RETRIES = 10  # per call; "Retry-After: 0" for ever would otherwise be a busy loop
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # a bearer token is printable ASCII (RFC 6750 §2.1 b64token)
MAX_PAGES = 100_000
"""The most pages one listing follows (``GraphClient.max_pages``)."""
MAX_JSON_BYTES = 16 * 1024 * 1024
"""The largest answer read from Graph, except a message's MIME (``max_body=None``): a page of 200 listed messages
is tens of kilobytes, and a broken or hostile server must not fill the worker's memory."""


def _error_code(response: Response) -> tuple[str, str]:
    try:
        error = json.loads(response.body or b"{}").get("error", {})
        return str(error.get("code", "")), " ".join(str(error.get("message", "")).split())[:300]
    except (ValueError, AttributeError):
        return "", ""


class GraphClient:
    """Authenticated calls to one Graph endpoint (``https://graph.microsoft.com/v1.0`` by default)."""

    def __init__(self, endpoint: Endpoint, tokens: TokenSource, *, version: str = "v1.0",
                 max_wait: float = 60.0, sleep: Callable[[float], object] = time.sleep) -> None:
        refuse_plaintext(endpoint, OAuth2Auth("graph", tokens.token), endpoint.label)
        self.endpoint = endpoint
        self.tokens = tokens
        self.prefix = f"/{version}"
        self.max_wait = max_wait  # seconds of Retry-After one call may spend waiting in total
        self.max_pages = MAX_PAGES
        self._sleep = sleep
        self.http = HttpsClient(endpoint)
        self.throttled = 0  # 429 / 503 / 504 answers seen (benchmarks and tests read it)

    @property
    def server(self) -> str:
        return self.endpoint.label

    def user_path(self, address: str) -> str:
        return f"{self.prefix}/users/{quote(address, safe='@')}"

    def _target(self, path_or_link: str) -> str:
        if "://" not in path_or_link:
            return path_or_link
        link = urlsplit(path_or_link)
        if (link.hostname or "").lower() != self.endpoint.host.lower() or (link.port or 443) != self.endpoint.port:
            raise ProtocolError("a paging link points at another host; refusing to send the token there",
                                server=self.server)
        return link.path + (f"?{link.query}" if link.query else "")

    def call(self, method: str, path_or_link: str, *, json_body: Any = None, body: bytes | None = None,
             content_type: str | None = None, headers: Mapping[str, str] | None = None,
             max_body: int | None = MAX_JSON_BYTES) -> Response:
        """One request with authentication, refresh-once and throttling handled; errors raise. An answer
        longer than ``max_body`` bytes is a ProtocolError (None: no limit, for a message's MIME)."""
        target = self._target(path_or_link)
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        waited, attempt, refreshed = 0.0, 0, False
        while True:
            token = self.tokens.token()
            if not _HEADER_SAFE.fullmatch(token):
                # http.client would refuse the header with a ValueError quoting it (on the exception chain).
                raise ProtocolError("the identity provider's token holds characters an HTTP header cannot carry",
                                    server=self.server)
            sent = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                    "Prefer": 'IdType="ImmutableId"', **(headers or {})}
            if content_type is not None:
                sent["Content-Type"] = content_type
            response = self.http.request(method, target, sent, body, secrets=(token,), max_body=max_body)
            logger.debug("graph request", extra={"method": method, "status": response.status,
                                                 "path": urlsplit(target).path, "server": self.server})
            if response.status == 401 and not refreshed:
                self.tokens.invalidate(token)  # expired or revoked: one fresh token, one more try
                refreshed = True
                continue
            delay = 0.0
            if response.status in _THROTTLED:
                self.throttled += 1
                delay = self._retry_after(response, attempt)
                if waited + delay <= self.max_wait and attempt < _MAX_THROTTLED_RETRIES:
                    logger.info("graph throttled", extra={"status": response.status, "wait": delay,
                                                          "server": self.server})
                    if self._sleep(delay) is True:  # cut short: the worker is stopping, so no more tries
                        raise self._error(response, method, target, token, waited, delay)
                    waited += delay
                    attempt += 1
                    continue
            if response.status < 300:  # a redirect is not followed (the token would go along), nor taken as data
                return response
            raise self._error(response, method, target, token, waited, delay)

    @staticmethod
    def _retry_after(response: Response, attempt: int) -> float:
        value = response.headers.get("retry-after", "").strip()
        if value.isascii() and value.isdigit():  # not "²": str.isdigit takes Latin-1 superscripts, float() does not
            return float(value)
        return min(2.0**attempt, 30.0) * (0.5 + random.random() / 2)

    def _error(self, response: Response, method: str, target: str, token: str, waited: float, delay: float
               ) -> TransportError:
        # A careless server may quote the request's Authorization header in its message.
        code, text = (scrub(part, (token,)) for part in _error_code(response))
        status = response.status
        what = f"{method} {urlsplit(target).path}"
        detail = f"{status} {code}".strip() + (f": {text}" if text else "")
        if status == 401:
            return AuthenticationError(f"Graph refused the token after one refresh ({detail})", server=self.server)
        if status == 403:
            return AuthenticationError(
                f"Graph denied {what} ({detail}); the app needs Mail.ReadWrite / Mail.Send, and an application "
                "access policy must include this mailbox", server=self.server)
        if status == 404:
            return MailboxMissingError(f"not found: {what} ({detail})", server=self.server)
        if status in _THROTTLED:
            # What this call really waited (the budget may not be spent: Retry-After 0, or the retry limit).
            return GraphError(f"Graph is throttling ({detail}); waited {waited:.0f} s in total",
                              status=status, code=code, server=self.server, retry_after=delay)
        return GraphError(f"Graph answered {detail} to {what}", status=status, code=code, server=self.server)

    def get_json(self, path_or_link: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self.json_of(self.call("GET", path_or_link, headers=headers))

    def json_of(self, response: Response) -> dict[str, Any]:
        try:
            data = json.loads(response.body)
        except ValueError:
            raise ProtocolError("Graph answered something that is not JSON", server=self.server) from None
        if not isinstance(data, dict):
            raise ProtocolError("Graph answered JSON that is not an object", server=self.server)
        return data

    def pages(self, path: str, headers: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following ``@odata.nextLink``; the last page is yielded last.

        A link back to a page already read would page for ever, and so would new links without end: either is a
        ProtocolError (past ``max_pages``, 20 million messages in pages of 200)."""
        link: str | None = path
        followed: set[str] = set()
        while link is not None:
            if len(followed) >= self.max_pages:
                raise ProtocolError(f"Graph's paging links did not end after {self.max_pages} pages",
                                    server=self.server)
            followed.add(link)
            page = self.get_json(link, headers)
            yield page
            next_link = page.get("@odata.nextLink")
            link = next_link if isinstance(next_link, str) else None
            if link in followed:
                raise ProtocolError("Graph's paging link points back to a page already read; the listing would "
                                    "never end", server=self.server)

    def close(self) -> None:
        self.http.close()
