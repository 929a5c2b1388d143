"""From a connector's ``[connectors.oauth]`` section to a token source (docs/microsoft365.md, docs/google.md).

:func:`token_source` gives the Graph client and the OAuth 2.0 logins their tokens: the host's
``ConnectorAccess.token_provider`` when it supplies one, else the flow the configuration names, cached per
process (:func:`._tokens.cached_token`) so every pass of a long ``poll`` reuses a live token.
:func:`default_scopes` says what each use asks for; :func:`sign_in` is ``enate-routing login``'s flow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from enate_routing._certificates import load_pkcs12
from enate_routing._model import Connector, OAuthSettings
from enate_routing._paths import configured_path
from enate_routing.errors import ConfigError
from enate_routing.transports import _tokens_google, _tokens_microsoft
from enate_routing.transports._tokens import CachedToken, TokenSource, cached_token

__all__ = ["HostTokens", "Use", "default_scopes", "sign_in", "token_source"]

Use = Literal["graph", "imap", "pop3", "smtp"]

_OUTLOOK = "https://outlook.office.com"
_DELEGATED = {"imap": "IMAP.AccessAsUser.All", "pop3": "POP.AccessAsUser.All", "smtp": "SMTP.Send"}


class HostTokens:
    """The host's token callback as a :class:`~._tokens.TokenSource` (the host refreshes; nothing to drop)."""

    def __init__(self, provider: Callable[[], str]) -> None:
        self._provider = provider

    def __repr__(self) -> str:
        return "HostTokens()"

    def token(self) -> str:
        return self._provider()

    def invalidate(self, token: str) -> None:
        """The host's callback decides when to refresh; a second 401 then reports the refusal."""


def _resource(graph_host: str | None) -> str:
    return f"https://{graph_host}" if graph_host else "https://graph.microsoft.com"


def default_scopes(oauth: OAuthSettings, use: Use, graph_host: str | None = None) -> list[str]:
    """The scopes a token for ``use`` needs, unless the configuration lists its own."""
    if oauth.scopes:
        return list(oauth.scopes)
    if oauth.provider == "google":
        return ["https://mail.google.com/"]
    if oauth.flow != "refresh-token":  # app-only: everything the app was granted on that resource
        return [f"{_resource(graph_host) if use == 'graph' else 'https://outlook.office365.com'}/.default"]
    if use == "graph":
        return [f"{_resource(graph_host)}/Mail.ReadWrite", f"{_resource(graph_host)}/Mail.Send"]
    return [f"{_OUTLOOK}/{_DELEGATED[use]}"]


def _secret(oauth: OAuthSettings, connector: Connector, environ: Mapping[str, str] | None) -> str:
    import os

    source = os.environ if environ is None else environ
    name = oauth.client_secret_env or ""
    if name not in source:
        raise ConfigError.single("environment variable is not set", where=f"connector {connector.name!r}",
                                 field="oauth.client_secret_env", item=name)
    return source[name]


def microsoft_app(connector: Connector, oauth: OAuthSettings, base_dir: Path, timeout: float
                  ) -> _tokens_microsoft.MicrosoftApp:
    ca_file = configured_path(oauth.ca_file, base_dir) if oauth.ca_file else None
    return _tokens_microsoft.MicrosoftApp(
        tenant=oauth.tenant or "", client_id=oauth.client_id or "",
        authority=oauth.authority or _tokens_microsoft.DEFAULT_AUTHORITY, ca_file=ca_file, timeout=timeout,
        where=f"connector {connector.name!r}",
    )


def _acquirer(connector: Connector, oauth: OAuthSettings, use: Use, subject: str, graph_host: str | None,
              base_dir: Path, environ: Mapping[str, str] | None, timeout: float
              ) -> Callable[[], tuple[str, float]]:
    scopes = default_scopes(oauth, use, graph_host)
    where = f"connector {connector.name!r}"
    token_file = configured_path(oauth.token_file, base_dir) if oauth.token_file else None
    if oauth.provider == "microsoft":
        app = microsoft_app(connector, oauth, base_dir, timeout)
        if oauth.flow == "refresh-token":
            assert token_file is not None  # required by OAuthSettings
            return _tokens_microsoft.refresh_token_flow(app, scopes, token_file)
        if oauth.flow == "certificate":
            if connector.certificate is None:
                raise ConfigError.single("no certificate given", where=where, field="certificate")
            certificate = load_pkcs12(configured_path(connector.certificate, base_dir),
                                      connector.certificate_password_value(environ), where=where)
            return _tokens_microsoft.client_credentials(app, scopes, certificate=certificate)
        return _tokens_microsoft.client_credentials(app, scopes, secret=_secret(oauth, connector, environ))
    client = _tokens_google.GoogleClient(
        token_url=oauth.token_url or _tokens_google.DEFAULT_TOKEN_URL,
        ca_file=configured_path(oauth.ca_file, base_dir) if oauth.ca_file else None, timeout=timeout, where=where,
    )
    if oauth.flow == "service-account":
        assert oauth.service_account_file is not None  # required by OAuthSettings
        return _tokens_google.service_account(client, configured_path(oauth.service_account_file, base_dir), subject,
                                              scopes)
    assert token_file is not None and oauth.client_id is not None
    return _tokens_google.refresh_token_flow(client, oauth.client_id, _secret(oauth, connector, environ),
                                             token_file, scopes)


def token_source(connector: Connector, use: Use, subject: str, *, host_provider: Callable[[], str] | None,
                 graph_host: str | None = None, base_dir: Path = Path(),
                 environ: Mapping[str, str] | None = None, timeout: float = 30.0) -> TokenSource:
    """Tokens for ``use`` of ``connector``, on behalf of ``subject`` (the mailbox; Google's delegation subject)."""
    if host_provider is not None:
        return HostTokens(host_provider)
    oauth = connector.oauth
    if oauth is None:
        raise ConfigError.single(
            "OAuth 2.0 needs an [connectors.oauth] section (or a token provider from the host)",
            where=f"connector {connector.name!r}", field="oauth",
        )
    key = (connector.name, use, subject.casefold(), graph_host or "", str(base_dir.resolve()),
           connector.model_dump_json(include={"oauth", "certificate", "certificate_password_env"}))

    def make() -> CachedToken:
        acquire = _acquirer(connector, oauth, use, subject, graph_host, base_dir, environ, timeout)
        return CachedToken(acquire, label=f"{oauth.provider} {oauth.flow} for connector {connector.name!r}")

    return cached_token(key, make)


def sign_in(connector: Connector, base_dir: Path, show: Callable[[str], None], *, timeout: float = 30.0) -> Path:
    """``enate-routing login``: the device-code sign-in of a Microsoft ``refresh-token`` connector.

    Asks for the scopes of every use the connector has; returns where the refresh token was stored.
    """
    oauth = connector.oauth
    where = f"connector {connector.name!r}"
    if oauth is None or oauth.flow != "refresh-token" or oauth.provider != "microsoft" or not oauth.token_file:
        raise ConfigError.single(
            "`login` signs in Microsoft connectors with oauth flow \"refresh-token\" (Google refresh tokens come "
            "from Google's own consent tools: docs/google.md)", where=where, field="oauth.flow",
        )
    graph = connector.incoming if connector.incoming is not None else connector.outgoing
    graph_host = _host(graph.host, graph.port) if graph is not None and connector.service == "office365-graph" else None
    uses: list[Use] = []
    if connector.incoming is not None:
        uses.append("graph" if connector.incoming.protocol == "graph" else connector.incoming.protocol)
    if connector.outgoing is not None:
        uses.append("graph" if connector.service == "office365-graph" else "smtp")
    scopes = list(dict.fromkeys(s for use in uses for s in default_scopes(oauth, use, graph_host)))
    token_file = configured_path(oauth.token_file, base_dir)
    _tokens_microsoft.sign_in(microsoft_app(connector, oauth, base_dir, timeout), scopes, token_file, show)
    return token_file


def _host(host: str, port: int) -> str:
    return host if port == 443 else f"{host}:{port}"
