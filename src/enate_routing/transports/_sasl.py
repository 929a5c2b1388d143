"""SASL client exchanges shared by IMAP AUTHENTICATE, POP3 AUTH and SMTP AUTH.

One :class:`SaslClient` per login: the optional initial response, the answers to the server's next
challenges, and what to answer once those are used up (which, for the OAuth mechanisms, is how a client
acknowledges the server's error report). The wire framing (``+ ``/``334 ``, base64, line limits) is the
adapters' business; the content is decided here, once.

- ``PLAIN`` (RFC 4616): ``authzid NUL authcid NUL password``, UTF-8; the authzid is left empty.
- ``LOGIN`` (draft-murchison-sasl-login): the user name, then the password, each on request.
- ``XOAUTH2`` (Google / Microsoft): ``user=U ^A auth=Bearer T ^A ^A``; after a failure the server sends a
  JSON challenge which the client answers with an empty response.
- ``OAUTHBEARER`` (RFC 7628 §3.1): ``n,a=U, ^A host=H ^A port=P ^A auth=Bearer T ^A ^A``; a failure
  challenge is answered with a single ``^A`` (§3.2.3).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from enate_routing.errors import AuthenticationError, TransportError
from enate_routing.transports._base import OAuth2Auth, PasswordAuth

__all__ = ["SaslClient", "login", "oauth", "plain"]


@dataclass
class SaslClient:
    """The client side of one SASL exchange. ``secrets`` lists what must never appear in a message."""

    mechanism: str
    initial: bytes | None = field(repr=False)
    steps: list[bytes] = field(default_factory=list, repr=False)
    after: bytes = b""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    bearer: str | None = field(default=None, repr=False)  # the OAuth token sent, to report a refusal of it
    _initial_used: bool = False

    def respond(self, challenge: bytes) -> bytes:
        """The answer to the next server challenge (its content does not matter for these mechanisms)."""
        if self.initial is not None and not self._initial_used:
            self._initial_used = True
            return self.initial
        if self.steps:
            return self.steps.pop(0)
        return self.after

    def take_initial(self) -> bytes | None:
        """The initial response, sent with the AUTH command itself (then no longer owed)."""
        if self.initial is None or self._initial_used:
            return None
        self._initial_used = True
        return self.initial

    def __call__(self, challenge: bytes) -> bytes:
        # imaplib's ``authenticate`` calls its auth object once per continuation request.
        return self.respond(challenge)


def _sent(blob: bytes) -> str:
    """A message as it crosses the wire (base64): a server that echoes it must not print it either."""
    return base64.b64encode(blob).decode("ascii")


def plain(credentials: PasswordAuth) -> SaslClient:
    blob = b"\0" + credentials.username.encode() + b"\0" + credentials.password.encode()
    return SaslClient("PLAIN", blob, secrets=(credentials.password, _sent(blob)))


def login(credentials: PasswordAuth) -> SaslClient:
    return SaslClient(
        "LOGIN",
        None,
        [credentials.username.encode(), credentials.password.encode()],
        secrets=(credentials.password,),
    )


def _saslname(value: str) -> str:
    # RFC 5801 §5 / RFC 7628 §3.1: ',' and '=' in the authzid are escaped as =2C and =3D.
    return value.replace("=", "=3D").replace(",", "=2C")


def oauth(credentials: OAuth2Auth, host: str, port: int) -> SaslClient:
    """Fetch a fresh token from the provider and build the exchange for its mechanism."""
    failure: str | None = None
    try:
        token = credentials.token_provider()
    except TransportError as exc:  # our own token sources: the message names the endpoint, never a secret
        failure = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - the host's provider may fail in any way; report, not crash
        failure = type(exc).__name__
    if failure is not None:
        # Raised outside the ``except`` block: ``from None`` only hides the provider's exception, it would
        # still be the error's ``__context__`` (its message may hold a refresh token or a client secret).
        raise AuthenticationError(f"the OAuth token provider failed ({failure})")
    if not isinstance(token, str) or not token:
        raise AuthenticationError("the OAuth token provider returned no token")
    user = credentials.username
    if credentials.mechanism == "XOAUTH2":
        blob = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
        return SaslClient("XOAUTH2", blob, after=b"", secrets=(token, _sent(blob)), bearer=token)
    blob = f"n,a={_saslname(user)},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()
    return SaslClient("OAUTHBEARER", blob, after=b"\x01", secrets=(token, _sent(blob)), bearer=token)
