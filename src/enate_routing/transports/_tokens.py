"""Access tokens the library obtains itself: cached until shortly before expiry, refreshed once on a 401.

:class:`CachedToken` wraps one acquisition function (a provider module's flow: Microsoft's
:mod:`._tokens_microsoft` or Google's :mod:`._tokens_google`) and is the :class:`TokenSource` the Graph
client and the OAuth 2.0 logins (``OAuth2Auth.token_provider``) use:

- :meth:`CachedToken.token` answers from the cache until :data:`EXPIRY_MARGIN` seconds before the token
  expires (a request must not start with a token that dies mid-way);
- :meth:`CachedToken.invalidate` drops a token the server refused (HTTP 401), so the next call acquires a
  fresh one; a caller retries once, then reports :class:`~enate_routing.errors.AuthenticationError`.

A token never appears in a repr, a log line or an error message: :class:`AccessToken` hides it, and
:func:`cached_token` keeps one cache per connector settings so a long-running ``poll`` reuses it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from enate_routing._token_files import TokenFileProblem, read_token_file
from enate_routing.errors import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    ProtocolError,
    TLSVerificationError,
    TransportError,
    TransportTimeoutError,
)

__all__ = [
    "EXPIRY_MARGIN",
    "AccessToken",
    "CachedToken",
    "TokenSource",
    "cached_token",
    "forget_cached_tokens",
    "read_refresh_token",
    "refused",
    "request_failure",
    "verifying_session",
]

_log = logging.getLogger("enate_routing.transports")

EXPIRY_MARGIN = 300.0
"""Seconds before expiry from which a cached token is no longer handed out (Microsoft and Google tokens live
about an hour; five minutes covers a slow pass)."""


@dataclass(frozen=True, slots=True, repr=False)
class AccessToken:
    """A bearer token and the (monotonic) time from which it is no longer handed out."""

    value: str = field(repr=False)
    renew_at: float

    def __repr__(self) -> str:
        return "AccessToken(value='***')"


class TokenSource(Protocol):
    """What a bearer-token client needs: a current token, and a way to drop one the server refused."""

    def token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class CachedToken:
    """A thread-safe cache around one acquisition function ``acquire() -> (token, lifetime seconds)``."""

    def __init__(self, acquire: Callable[[], tuple[str, float]], *, label: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._acquire = acquire
        self._clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None
        self.label = label  # e.g. "microsoft client-secret for connector 'Support'"; never a secret
        self.acquisitions = 0  # how many times a token was requested from the identity provider

    def __repr__(self) -> str:
        return f"CachedToken({self.label!r}, acquisitions={self.acquisitions})"

    def token(self) -> str:
        with self._lock:
            current = self._current
            if current is None or self._clock() >= current.renew_at:
                value, lifetime = self._acquire()
                self.acquisitions += 1
                # A provider issuing short-lived tokens (tests, some proxies) must not make every call
                # re-acquire: renew at the margin, or half-way through a shorter life.
                lifetime = max(lifetime, 0.0)
                renew_in = lifetime - min(EXPIRY_MARGIN, lifetime / 2)
                current = self._current = AccessToken(value, self._clock() + renew_in)
                _log.info("access token acquired (%s); renewed in %.0f s", self.label, renew_in,
                          extra={"token_source": self.label, "lifetime": lifetime, "renew_in": renew_in,
                                 "acquisitions": self.acquisitions})
            return current.value

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._current is not None and self._current.value == token:
                self._current = None
                _log.info("access token refused by the server (%s); a new one is acquired on next use",
                          self.label, extra={"token_source": self.label})


_CACHES: dict[tuple[str, ...], CachedToken] = {}
_CACHES_LOCK = threading.Lock()


def forget_cached_tokens() -> None:
    """Drop every process-wide token cache (after rotating app credentials or changing its permissions: a
    cached token keeps the roles it was issued with until it expires)."""
    with _CACHES_LOCK:
        _CACHES.clear()


def cached_token(key: tuple[str, ...], make: Callable[[], CachedToken]) -> CachedToken:
    """The process-wide cache for ``key`` (connector name and settings digest), made on first use."""
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = make()
        return cache


# --- what both providers share: the refresh-token file and the HTTP failure of a token request ---------------


def read_refresh_token(path: Path, where: str, *, provider: str, client_id: str) -> str:
    """The refresh token ``enate-routing login`` stored in ``path``; a ConfigError (located, never the token)
    when the file is missing, unreadable, readable by other users, not a token file, or issued to another
    provider or client — the same rule as ``check`` (:func:`enate_routing._token_files.read_token_file`)."""
    try:
        return read_token_file(path, provider=provider, client_id=client_id)
    except TokenFileProblem as problem:
        raise ConfigError.single(problem.reason, where=where, field="oauth.token_file", item=str(path)) from None



def request_failure(exc: BaseException, server: str) -> TransportError | None:
    """Our error for an HTTP-library failure of a token request (``requests``'s, seen through its class names,
    so this module imports neither provider library), or for the provider library choking on a malformed answer;
    None when ``exc`` is something else."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "SSLError" in names:
        return TLSVerificationError("the identity provider's certificate is not trusted (or TLS failed)",
                                    server=server)
    if names & {"Timeout", "TimeoutError"}:
        return TransportTimeoutError("the identity provider did not answer in time", server=server)
    if names & {"ConnectionError", "ConnectError", "RequestException", "OSError"}:
        return ConnectError("cannot reach the identity provider", server=server)
    if isinstance(exc, ValueError | TypeError | OverflowError) and not isinstance(exc, UnicodeError):
        # MSAL and google-auth int() the answer's expires_in: "abc", NaN, Infinity from a broken provider. The
        # text is left out: it quotes the answer.
        return ProtocolError(f"the identity provider's token answer is malformed ({type(exc).__name__})",
                             server=server)
    return None


def refused(error: str, description: str, server: str, secrets: tuple[str, ...] = ()) -> TransportError:
    """An OAuth 2.0 error response (RFC 6749 §5.2) as our error: the grant or client was refused (not
    retryable), or the provider is busy (retryable). The description is the provider's, one line, scrubbed."""
    text = " ".join(description.split())[:300]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    message = f"the identity provider refused the token request: {error}" + (f" ({text})" if text else "")
    if error in ("temporarily_unavailable", "server_error", "slow_down"):
        busy = ProtocolError(message, server=server)
        busy.retryable = True
        return busy
    return AuthenticationError(message, server=server)


def verifying_session(ca_file: Path | None, timeout: float) -> Any:
    """A ``requests.Session`` (the provider libraries' HTTP client) that verifies against ``ca_file`` (else the
    system store) and applies ``timeout`` on every request.

    Passed per request, so ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` cannot replace the configured CA file
    (``requests`` lets those variables override ``Session.verify``); proxies from the environment still apply.
    """
    import requests

    verify: str | bool = str(ca_file) if ca_file is not None else True

    class _Session(requests.Session):
        def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["verify"] = verify
            kwargs["timeout"] = timeout
            return super().request(method, url, *args, **kwargs)

    return _Session()
