"""The ``[connectors.oauth]`` section and the modern-authentication rules (docs/microsoft365.md, docs/google.md).

Kept apart from :mod:`enate_routing._model`, which embeds :class:`OAuthSettings` in ``Connector`` and calls
:func:`modern_auth_problem` / :func:`legacy_auth_warnings` from its validators: plain rules over a service
name and the servers' ``auth`` values, so this module needs nothing from the model.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from enate_routing._patterns import split_list

__all__ = ["OAuthSettings", "legacy_auth_warnings", "modern_auth_problem"]

# The constraints of the model's Text and EnvName (non-empty, stripped; a valid variable name).
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_EnvName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
_Scopes = Annotated[tuple[str, ...], BeforeValidator(lambda v: split_list(v) if isinstance(v, str | list) else v)]

_FLOWS = {
    "microsoft": ("client-secret", "certificate", "refresh-token"),
    "google": ("service-account", "refresh-token"),
}
_NEEDED = {
    ("microsoft", "client-secret"): ("tenant", "client_id", "client_secret_env"),
    ("microsoft", "certificate"): ("tenant", "client_id"),
    ("microsoft", "refresh-token"): ("tenant", "client_id", "token_file"),
    ("google", "service-account"): ("service_account_file",),
    ("google", "refresh-token"): ("client_id", "client_secret_env", "token_file"),
}


def _error(field: str, message: str, item: str | None = None) -> PydanticCustomError:
    return PydanticCustomError("connector", message, {"field": field, "item": item})


class OAuthSettings(BaseModel):
    """How the library obtains OAuth 2.0 access tokens itself.

    Microsoft: ``client-secret`` or ``certificate`` (the connector's ``.pfx`` signs a client assertion) for
    app-only access; ``refresh-token`` for a delegated sign-in stored by ``enate-routing login``. Google:
    ``service-account`` (domain-wide delegation, the mailbox as subject) or ``refresh-token``. ``authority``
    (Microsoft) and ``token_url`` (Google) point at sovereign clouds or a test server; ``ca_file`` trusts a
    private CA for the identity provider. Secrets are only ever named (``client_secret_env``) or in files.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["microsoft", "google"]
    flow: Literal["client-secret", "certificate", "refresh-token", "service-account"]
    client_id: _Text | None = None
    tenant: _Text | None = None
    client_secret_env: _EnvName | None = None
    authority: _Text | None = None
    token_url: _Text | None = None
    token_file: _Text | None = None
    service_account_file: _Text | None = None
    scopes: _Scopes = ()
    ca_file: _Text | None = None

    @model_validator(mode="after")
    def _complete(self) -> OAuthSettings:
        flows = _FLOWS[self.provider]
        if self.flow not in flows:
            raise _error("oauth.flow", f"provider {self.provider} offers only: {', '.join(flows)}", self.flow)
        for name in _NEEDED[(self.provider, self.flow)]:
            if getattr(self, name) is None:
                raise _error(f"oauth.{name}", f"the {self.provider} {self.flow} flow needs {name}")
        return self


class _Server(Protocol):
    @property
    def auth(self) -> str: ...


def _basic(incoming: _Server | None, outgoing: _Server | None) -> list[str]:
    return [name for name, server in (("incoming.auth", incoming), ("outgoing.auth", outgoing))
            if server is not None and server.auth == "username-password"]


def modern_auth_problem(service: str, incoming: _Server | None, outgoing: _Server | None,
                        oauth: OAuthSettings | None, certificate: str | None) -> tuple[str, str, str | None] | None:
    """``(field, problem, item)`` when a connector breaks a modern-authentication rule, else None.

    Exchange Online refuses basic authentication; the OAuth provider must be the service's; the
    certificate flow signs with the connector's ``.pfx``.
    """
    basic = _basic(incoming, outgoing)
    if basic and service.startswith("office365-"):
        return (basic[0], "Microsoft retired basic authentication (username and password) for Exchange Online "
                "IMAP, POP3 and SMTP: use auth = \"oauth2\" with an [connectors.oauth] section", "username-password")
    if oauth is None:
        return None
    provider = {"gmail": "google", "office365": "microsoft"}.get(service.split("-")[0])
    if provider is not None and oauth.provider != provider:
        return "oauth.provider", f"service {service} signs in with {provider}", oauth.provider
    if oauth.flow == "certificate" and certificate is None:
        return "certificate", "the certificate flow signs with the connector's .pfx certificate", None
    return None


def legacy_auth_warnings(name: str, service: str, incoming: _Server | None, outgoing: _Server | None) -> list[str]:
    """What ``check`` advises: Google accepts passwords only as app passwords, and may switch them off."""
    if _basic(incoming, outgoing) and service.startswith("gmail-"):
        return [f"connector {name!r}: Google accepts username and password only as an app password "
                "(2-step verification on); prefer auth = \"oauth2\""]
    return []
