"""Google tokens through google-auth (the ``enate-routing[google]`` extra; docs/google.md).

The only module that imports ``google.auth``. Flows:

- **service account with domain-wide delegation**: the key file's account signs a JWT bearer assertion
  (RFC 7523) with the mailbox as subject, so one key reads every mailbox the Workspace admin allowed;
- **refresh token**: a user's consent, stored in a 0600 file (``client_id`` and the client secret name
  the OAuth client it was issued to).

``token_url`` (default ``https://oauth2.googleapis.com/token``) replaces the key file's ``token_uri``, so a
loopback test server or a private endpoint works; ``ca_file`` trusts a private CA.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enate_routing._token_files import write_token_file
from enate_routing.errors import ConfigError, ProtocolError, TransportError
from enate_routing.transports._tokens import (
    read_refresh_token,
    refused,
    request_failure,
    verifying_session,
)

__all__ = ["DEFAULT_TOKEN_URL", "GoogleClient", "refresh_token_flow", "service_account"]

DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret


@dataclass(frozen=True, slots=True)
class GoogleClient:
    """Where Google's token endpoint is and how to reach it."""

    token_url: str = DEFAULT_TOKEN_URL
    ca_file: Path | None = None
    timeout: float = 30.0
    where: str = field(default="", compare=False)

    @property
    def server(self) -> str:
        return self.token_url.split("://", 1)[-1].split("/", 1)[0]


def _libraries() -> tuple[Any, Any, tuple[Any, Any]]:
    """google-auth's modules, imported on first use (an optional extra)."""
    try:
        from google.auth import exceptions
        from google.auth.transport import requests as transport
        from google.oauth2 import credentials, service_account
    except ImportError:
        raise ConfigError.single(
            "Google sign-in needs the google-auth library: pip install 'enate-routing[google]'", field="oauth"
        ) from None
    return exceptions, transport, (credentials, service_account)


def _refresh(client: GoogleClient, creds: Any, secrets: tuple[str, ...]) -> tuple[str, float]:
    exceptions, transport, _ = _libraries()
    session = verifying_session(client.ca_file, client.timeout)
    try:
        creds.refresh(transport.Request(session))
    except exceptions.RefreshError as exc:
        data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        error = str(data.get("error") or "refused")
        raise refused(error, str(data.get("error_description", "")), client.server, secrets) from None
    except exceptions.TransportError as exc:
        mapped = request_failure(exc.__cause__ or exc.__context__ or exc, client.server)
        raise (mapped or ProtocolError("the token request failed", server=client.server)) from None
    except TransportError:
        raise
    except Exception as exc:
        mapped = request_failure(exc, client.server)
        if mapped is None:
            raise
        raise mapped from None
    finally:
        session.close()
    expiry = creds.expiry
    lifetime = (expiry - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds() if expiry else 0.0
    return str(creds.token), lifetime


def service_account(client: GoogleClient, key_file: Path, subject: str, scopes: list[str]
                    ) -> Callable[[], tuple[str, float]]:
    """Tokens for ``subject``'s mailbox through the service account in ``key_file`` (domain-wide delegation)."""
    _, _, (_, accounts) = _libraries()
    try:
        info = json.loads(key_file.read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
        info["token_uri"] = client.token_url
        creds = accounts.Credentials.from_service_account_info(info, scopes=scopes, subject=subject)
    except (OSError, ValueError, KeyError) as exc:
        reason = getattr(exc, "strerror", None) or "not a service account key file (JSON with private_key)"
        raise ConfigError.single(f"cannot use the service account key ({reason})", where=client.where,
                                 field="oauth.service_account_file", item=str(key_file)) from None
    return lambda: _refresh(client, creds, ())


def refresh_token_flow(client: GoogleClient, client_id: str, client_secret: str, token_file: Path,
                       scopes: list[str]) -> Callable[[], tuple[str, float]]:
    """Tokens from the refresh token in ``token_file`` issued to the OAuth client ``client_id``."""
    _, _, (user_credentials, _) = _libraries()

    def acquire() -> tuple[str, float]:
        refresh = read_refresh_token(token_file, client.where, provider="google", client_id=client_id)
        creds = user_credentials.Credentials(
            None, refresh_token=refresh, token_uri=client.token_url, client_id=client_id,
            client_secret=client_secret, scopes=scopes,
        )
        token = _refresh(client, creds, (refresh, client_secret))
        if creds.refresh_token and creds.refresh_token != refresh:
            write_token_file(token_file, str(creds.refresh_token), provider="google", client_id=client_id)
        return token

    return acquire
