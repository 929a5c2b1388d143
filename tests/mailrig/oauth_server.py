"""A fake identity provider on 127.0.0.1 (HTTPS, the rig's CA): Microsoft's v2.0 endpoints and Google's token URL.

Microsoft (``{url}/{tenant}/...``, as MSAL reads them):

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` — the token and device-code endpoints;
- ``POST /{tenant}/oauth2/v2.0/token`` — ``client_credentials`` with a ``client_secret`` or a signed
  ``client_assertion`` (RS256 / PS256 JWT checked against the app's registered certificate: signature, ``aud``
  = the token endpoint, ``iss`` = ``sub`` = the client id, not expired); ``refresh_token`` (rotated on every
  use); the device-code grant (RFC 8628: ``authorization_pending`` until :meth:`approve`, or at once when
  ``auto_approve``);
- ``POST /{tenant}/oauth2/v2.0/devicecode``.

Google (``{url}/google/token``): the JWT-bearer grant of a service account (RS256 with the registered
key, ``aud`` = ``https://oauth2.googleapis.com/token`` as Google requires, ``sub`` = the mailbox, which
must be in the account's delegation list) and the ``refresh_token`` grant with client id and secret.

Issued access tokens go into a :class:`TokenBook` the fake Graph API (and a Dovecot introspection server)
checks: who (app or user), the audience, roles / scopes, the expiry. :meth:`TokenBook.expire_all` makes every
live token answer 401. ``requests`` records each grant type asked for.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mailrig.https import HttpsServer, JsonHandler
from mailrig.pki import Pki

__all__ = ["Grant", "IdentityProvider", "MicrosoftApp", "ServiceAccount", "TokenBook"]


@dataclass
class Grant:
    """What an access token allows: ``who`` (client id or user), ``audience``, ``permissions`` (roles of an app
    token, scopes of a delegated one), until ``expires_at`` (``time.time()``)."""

    who: str
    audience: str
    permissions: frozenset[str]
    expires_at: float
    app_only: bool
    user: str | None = None


class TokenBook:
    """The access tokens issued so far; thread-safe through the owner's lock."""

    def __init__(self) -> None:
        self.grants: dict[str, Grant] = {}
        self.issued = 0
        self.listeners: list[Callable[[str, Grant], None]] = []  # told of every token issued (introspection)

    def issue(self, grant: Grant) -> str:
        token = "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(48)
        self.grants[token] = grant
        self.issued += 1
        for listener in self.listeners:
            listener(token, grant)
        return token

    def check(self, token: str) -> Grant | None:
        grant = self.grants.get(token)
        return grant if grant is not None and grant.expires_at > time.time() else None

    def expire_all(self) -> None:
        for grant in self.grants.values():
            grant.expires_at = 0.0


@dataclass
class MicrosoftApp:
    client_id: str
    secret: str | None = None
    certificate: x509.Certificate | None = None
    roles: frozenset[str] = frozenset({"Mail.ReadWrite", "Mail.Send"})


@dataclass
class ServiceAccount:
    email: str
    certificate_key: rsa.RSAPublicKey
    delegated: set[str] = field(default_factory=set)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jwt(assertion: str, key: Any) -> dict[str, Any] | None:
    """The claims of an RS256 / PS256 JWT signed by ``key`` (an RSA public key), or None."""
    try:
        head, claims, signature = assertion.split(".")
        header = json.loads(_b64url(head))
        alg = header.get("alg")
        pad: padding.AsymmetricPadding
        if alg == "RS256":
            pad = padding.PKCS1v15()
        elif alg == "PS256":
            pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        else:
            return None
        key.verify(_b64url(signature), f"{head}.{claims}".encode(), pad, hashes.SHA256())
        data: dict[str, Any] = json.loads(_b64url(claims))
    except (ValueError, InvalidSignature):
        return None
    return data if float(data.get("exp", 0)) > time.time() else None


class _Handler(JsonHandler):
    server: Any

    def do_GET(self) -> None:
        idp: IdentityProvider = self.server.owner
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            base = f"{idp.url}/{parts[0]}"
            self.reply(200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0",
            })
            return
        self.reply(404, {"error": "not_found"})

    def do_POST(self) -> None:
        idp: IdentityProvider = self.server.owner
        path = self.path.split("?")[0]
        form = self.form()
        with idp.lock:
            idp.requests.append(form.get("grant_type", path.rsplit("/", 1)[-1]))
            if path.endswith("/oauth2/v2.0/devicecode"):
                status, answer = idp.device_code(form)
            elif path.endswith("/oauth2/v2.0/token"):
                status, answer = idp.microsoft_token(f"{idp.url}{path}", form)
            elif path == "/google/token":
                status, answer = idp.google_token(form)
            else:
                status, answer = 404, {"error": "not_found"}
        self.reply(status, answer)


def _error(code: str, description: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"error": code, "error_description": description}


class IdentityProvider(HttpsServer):
    """Microsoft and Google token endpoints at ``url``; register apps, users and accounts, then ask."""

    def __init__(self, pki: Pki, book: TokenBook) -> None:
        super().__init__(pki, _Handler)
        self.book = book
        self.tenant = "contoso-tenant"
        self.apps: dict[str, MicrosoftApp] = {}
        self.refresh_tokens: dict[str, tuple[str, str, frozenset[str]]] = {}  # token -> (client, user, scopes)
        self.devices: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, ServiceAccount] = {}
        self.google_clients: dict[str, str] = {}  # client id -> secret
        self.auto_approve: str | None = None  # the user who signs in at once, without approve()
        self.token_lifetime = 3600
        self.announced_lifetime: object = None  # when set, app-only tokens' expires_in says this instead
        self.requests: list[str] = []

    @property
    def authority(self) -> str:
        return self.url

    @property
    def google_token_url(self) -> str:
        return f"{self.url}/google/token"

    def reset(self) -> None:
        with self.lock:
            self.apps.clear()
            self.refresh_tokens.clear()
            self.devices.clear()
            self.accounts.clear()
            self.google_clients.clear()
            self.requests.clear()
            self.auto_approve = None
            self.token_lifetime = 3600
            self.announced_lifetime = None

    # ------------------------------------------------------------------ Microsoft
    def new_refresh_token(self, client_id: str, user: str, scopes: set[str]) -> str:
        token = "0.refresh." + secrets.token_urlsafe(32)
        self.refresh_tokens[token] = (client_id, user, frozenset(scopes))
        return token

    def _delegated(self, client_id: str, user: str, scopes: frozenset[str], audience: str) -> dict[str, Any]:
        permissions = frozenset(s.rsplit("/", 1)[-1] for s in scopes)
        access = self.book.issue(Grant(client_id, audience, permissions, time.time() + self.token_lifetime,
                                       app_only=False, user=user))
        refresh = self.new_refresh_token(client_id, user, set(scopes))
        return {"token_type": "Bearer", "access_token": access, "expires_in": self.token_lifetime,
                "scope": " ".join(sorted(scopes)), "refresh_token": refresh}

    def microsoft_token(self, endpoint: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type")
        device = self.devices.get(form.get("device_code", ""))
        scopes = {s for s in form.get("scope", "").split() if s not in ("offline_access", "openid", "profile")}
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code" and device is not None:
            scopes = set(device["scopes"])  # RFC 8628: the scopes were given when the code was issued
        audiences = {s.rsplit("/", 1)[0] for s in scopes}
        if len(audiences) != 1:
            return _error("invalid_scope", "AADSTS28000: scopes of exactly one resource are required")
        audience = audiences.pop()
        if grant_type == "client_credentials":
            app = self.apps.get(form.get("client_id", ""))
            if app is None:
                return _error("unauthorized_client", "AADSTS700016: application not found", 400)
            if not self._client_authenticated(app, endpoint, form):
                return _error("invalid_client", "AADSTS7000215: invalid client secret or assertion", 401)
            if scopes != {f"{audience}/.default"}:
                return _error("invalid_scope", "AADSTS1002012: client credentials need the /.default scope")
            access = self.book.issue(Grant(app.client_id, audience, app.roles, time.time() + self.token_lifetime,
                                           app_only=True))
            announced = self.token_lifetime if self.announced_lifetime is None else self.announced_lifetime
            return 200, {"token_type": "Bearer", "access_token": access, "expires_in": announced}
        if grant_type == "refresh_token":
            known = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if known is None or known[0] != form.get("client_id"):
                return _error("invalid_grant", "AADSTS70008: the refresh token has expired or was revoked")
            return 200, self._delegated(known[0], known[1], frozenset(scopes), audience)
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
            if device is None:
                return _error("expired_token", "AADSTS70019: the device code expired")
            if not (device["approved_by"] or self.auto_approve):
                return _error("authorization_pending", "AADSTS70016: the user has not signed in yet")
            del self.devices[form["device_code"]]
            return 200, self._delegated(device["client_id"], device["approved_by"] or self.auto_approve or "",
                                        frozenset(device["scopes"]), audience)
        return _error("unsupported_grant_type", f"grant {grant_type!r} is not supported")

    def _client_authenticated(self, app: MicrosoftApp, endpoint: str, form: dict[str, str]) -> bool:
        if "client_secret" in form:
            return app.secret is not None and secrets.compare_digest(form["client_secret"], app.secret)
        if app.certificate is None or form.get("client_assertion_type") != (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            return False
        claims = verify_jwt(form.get("client_assertion", ""), app.certificate.public_key())
        return (claims is not None and claims.get("aud") == endpoint and claims.get("iss") == app.client_id
                and claims.get("sub") == app.client_id)

    def device_code(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") not in self.apps:
            return _error("unauthorized_client", "AADSTS700016: application not found")
        code, user_code = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
        self.devices[code] = {"client_id": form["client_id"], "approved_by": None, "user_code": user_code,
                              "scopes": {s for s in form.get("scope", "").split()
                                         if s not in ("offline_access", "openid", "profile")}}
        return 200, {"device_code": code, "user_code": user_code, "verification_uri": f"{self.url}/devicelogin",
                     "expires_in": 900, "interval": 1,
                     "message": f"To sign in, open {self.url}/devicelogin and enter the code {user_code}."}

    def approve(self, user_code: str, user: str) -> None:
        with self.lock:
            for device in self.devices.values():
                if device["user_code"] == user_code:
                    device["approved_by"] = user

    # ------------------------------------------------------------------ Google
    def google_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type")
        if grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = form.get("assertion", "")
            try:
                issuer = json.loads(_b64url(assertion.split(".")[1])).get("iss", "")
            except (ValueError, IndexError):
                return _error("invalid_grant", "malformed assertion")
            account = self.accounts.get(issuer)
            claims = verify_jwt(assertion, account.certificate_key) if account else None
            # Google wants its own token URL as the audience, wherever the request is sent.
            if account is None or claims is None or claims.get("aud") != "https://oauth2.googleapis.com/token":
                return _error("invalid_grant", "Invalid JWT Signature.")
            subject = str(claims.get("sub", ""))
            if subject not in account.delegated:
                return _error("unauthorized_client", "Client is unauthorized to retrieve access tokens using this "
                              "method, or client not authorized for any of the scopes requested.", 401)
            scopes = frozenset(str(claims.get("scope", "")).split())
            access = self.book.issue(Grant(issuer, "https://mail.google.com", scopes, time.time() + self.token_lifetime,
                                           app_only=False, user=subject))
            announced = self.token_lifetime if self.announced_lifetime is None else self.announced_lifetime
            return 200, {"access_token": access, "expires_in": announced, "token_type": "Bearer"}
        if grant_type == "refresh_token":
            client = form.get("client_id", "")
            if self.google_clients.get(client) != form.get("client_secret"):
                return _error("invalid_client", "The OAuth client was not found.", 401)
            known = self.refresh_tokens.get(form.get("refresh_token", ""))
            if known is None or known[0] != client:
                return _error("invalid_grant", "Token has been expired or revoked.")
            access = self.book.issue(Grant(client, "https://mail.google.com", known[2],
                                           time.time() + self.token_lifetime, app_only=False, user=known[1]))
            return 200, {"access_token": access, "expires_in": self.token_lifetime, "token_type": "Bearer",
                         "scope": " ".join(sorted(known[2]))}
        return _error("unsupported_grant_type", f"grant {grant_type!r} is not supported")
