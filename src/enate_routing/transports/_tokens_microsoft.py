"""Microsoft identity platform tokens through MSAL (the ``enate-routing[microsoft]`` extra; docs/microsoft365.md).

The only module that imports ``msal``. Flows:

- **client credentials** with a client secret or with a certificate (MSAL signs the client assertion with
  the ``.pfx`` key, RSA only) — app-only access to every mailbox the app is granted;
- **refresh token** — delegated access after ``enate-routing login`` (device-code sign-in, :func:`sign_in`)
  stored the refresh token in a 0600 file; a rotated refresh token is written back.

``authority`` (``https://login.microsoftonline.com`` by default; ``.us`` / ``chinacloudapi.cn`` for the
sovereign clouds) is any HTTPS URL: MSAL reads ``{authority}/{tenant}/v2.0/.well-known/openid-configuration``
and is told not to ask the public cloud's instance discovery, so a loopback test server works too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enate_routing._certificates import ClientCertificate
from enate_routing._token_files import write_token_file
from enate_routing.errors import CertificateError, ConfigError, ProtocolError, TransportError
from enate_routing.transports._tokens import (
    read_refresh_token,
    refused,
    request_failure,
    verifying_session,
)

__all__ = ["DEFAULT_AUTHORITY", "MicrosoftApp", "client_credentials", "refresh_token_flow", "sign_in"]

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


@dataclass(frozen=True, slots=True)
class MicrosoftApp:
    """An app registration: where it lives and how to reach its identity provider."""

    tenant: str
    client_id: str
    authority: str = DEFAULT_AUTHORITY
    ca_file: Path | None = None
    timeout: float = 30.0
    where: str = field(default="", compare=False)

    @property
    def url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant}"

    @property
    def server(self) -> str:
        return self.authority.split("://", 1)[-1].split("/", 1)[0]


def _msal() -> Any:
    try:
        import msal  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ConfigError.single(
            "Microsoft sign-in needs the msal library: pip install 'enate-routing[microsoft]'", field="oauth"
        ) from None
    return msal


def _application(app: MicrosoftApp, kind: str, **credential: Any) -> Any:
    msal = _msal()
    try:
        return getattr(msal, kind)(
            app.client_id, authority=app.url, instance_discovery=False,
            http_client=verifying_session(app.ca_file, app.timeout), **credential,
        )
    except ValueError as exc:  # MSAL's "Unable to get authority configuration" (no or bad discovery answer)
        raise ProtocolError(f"the authority {app.url} did not answer its OpenID configuration ({exc})",
                            server=app.server) from None
    except Exception as exc:  # MSAL lets requests' network errors through
        mapped = request_failure(exc, app.server)
        if mapped is None:
            raise
        raise mapped from None


def _token(app: MicrosoftApp, result: Any, secrets: tuple[str, ...] = ()) -> tuple[str, float]:
    if not isinstance(result, dict):
        raise ProtocolError("the identity provider answered no token", server=app.server)
    if "access_token" not in result:
        raise refused(str(result.get("error", "unknown_error")), str(result.get("error_description", "")),
                      app.server, secrets)
    return str(result["access_token"]), float(result.get("expires_in", 0) or 0)


def _call(app: MicrosoftApp, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except TransportError:
        raise
    except Exception as exc:
        mapped = request_failure(exc, app.server)
        if mapped is None:
            raise
        raise mapped from None


def client_credentials(
    app: MicrosoftApp, scopes: list[str], *, secret: str | None = None, certificate: ClientCertificate | None = None
) -> Callable[[], tuple[str, float]]:
    """App-only tokens: a client secret, or a client assertion signed with ``certificate``'s RSA key."""
    if certificate is not None:
        if not certificate.is_rsa:
            raise CertificateError.single("Microsoft signs client assertions with RSA keys only; this "
                                          "certificate's key is not RSA", where=app.where, field="certificate")
        key, public = certificate.signing_material()
        credential: Any = {"private_key": key, "public_certificate": public}
    elif secret is not None:
        credential = secret
    else:
        raise ConfigError.single("no client secret or certificate", where=app.where, field="oauth")
    holder: list[Any] = []

    def acquire() -> tuple[str, float]:
        if not holder:
            holder.append(_application(app, "ConfidentialClientApplication", client_credential=credential))
        client = holder[0]
        # MSAL keeps its own cache; drop it so an invalidated (refused) token is really replaced.
        client.remove_tokens_for_client()
        return _token(app, _call(app, lambda: client.acquire_token_for_client(scopes=scopes)),
                      (secret or "",))

    return acquire


def refresh_token_flow(app: MicrosoftApp, scopes: list[str], token_file: Path) -> Callable[[], tuple[str, float]]:
    """Delegated tokens from the refresh token in ``token_file``; a rotated refresh token is stored back."""
    holder: list[Any] = []

    def acquire() -> tuple[str, float]:
        # The file first: a missing or exposed token file is the user's to fix, whatever the network does.
        refresh = read_refresh_token(token_file, app.where, provider="microsoft", client_id=app.client_id)
        if not holder:
            holder.append(_application(app, "PublicClientApplication"))
        result = _call(app, lambda: holder[0].acquire_token_by_refresh_token(refresh, scopes=scopes))
        token = _token(app, result, (refresh,))
        rotated = result.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != refresh:
            write_token_file(token_file, rotated, provider="microsoft", client_id=app.client_id)
        return token

    return acquire


def sign_in(app: MicrosoftApp, scopes: list[str], token_file: Path, show: Callable[[str], None]) -> None:
    """Device-code sign-in (RFC 8628): ``show`` the user where to enter the code, wait, store the refresh token."""
    client = _application(app, "PublicClientApplication")
    flow = _call(app, lambda: client.initiate_device_flow(scopes=scopes))
    if "user_code" not in flow:
        raise refused(str(flow.get("error", "unknown_error")), str(flow.get("error_description", "")), app.server)
    show(str(flow.get("message") or f"Open {flow.get('verification_uri')} and enter the code {flow['user_code']}"))
    result = _call(app, lambda: client.acquire_token_by_device_flow(flow))
    _token(app, result)
    refresh = result.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise ProtocolError("the sign-in returned no refresh token: include the offline_access scope",
                            server=app.server)
    write_token_file(token_file, refresh, provider="microsoft", client_id=app.client_id)
