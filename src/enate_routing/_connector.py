"""Connector models (docs/semantics.md §2): a mailbox and its servers, its login and its secrets.

Secrets are ``SecretStr`` or the name of an environment variable; no validation error ever carries a secret's
value (``hide_secret_inputs``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ModelWrapValidatorHandler, SecretStr, model_validator
from pydantic_core import PydanticCustomError

from enate_routing._model_types import (
    AdditionalAccess,
    Address,
    EnvName,
    Folder,
    Host,
    IncomingAuth,
    Name,
    OneLine,
    OutgoingAuth,
    Port,
    Secret,
    Security,
    Service,
    UseFor,
    _field_error,
    _Frozen,
)
from enate_routing._oauth_settings import OAuthSettings, legacy_auth_warnings, modern_auth_problem
from enate_routing._presets import INCOMING_PRESETS, OUTGOING_PRESETS, SERVICE_AUTH, SERVICE_USE
from enate_routing._secret_inputs import hide_secret_inputs
from enate_routing.errors import ConfigError

__all__ = ["Connector", "IncomingServer", "OutgoingServer"]


# --- connectors -----------------------------------------------------------------------------------------


class IncomingServer(_Frozen):
    """How to reach a mailbox (semantics.md §2). ``folder`` is read; processed mail is moved, flagged or deleted."""

    protocol: Literal["imap", "pop3", "graph"]
    host: Host
    port: Port
    security: Security
    ca_file: str | None = None
    auth: IncomingAuth = "username-password"
    folder: Folder = "INBOX"
    processed: Literal["move", "flag", "mark-read", "delete"] = "move"
    processed_folder: Folder = "Processed"


class OutgoingServer(_Frozen):
    """How to send through SMTP (docs/semantics.md §2)."""

    host: Host
    port: Port
    security: Security
    auth: OutgoingAuth
    ca_file: str | None = None


class Connector(_Frozen):
    """An email connector (docs/semantics.md §2). Secrets are ``SecretStr`` or the name of an environment variable."""

    name: Name
    service: Service
    username: OneLine | None = None
    password: Secret | None = None
    password_env: EnvName | None = None
    primary_address: Address
    additional_mailbox: OneLine | None = None
    additional_access: AdditionalAccess | None = None
    use_for: UseFor
    incoming: IncomingServer | None = None
    outgoing: OutgoingServer | None = None
    certificate: str | None = None
    certificate_password: Secret | None = None
    certificate_password_env: EnvName | None = None
    enabled: bool = True
    allow_plaintext_auth: bool = False
    oauth: OAuthSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_presets(cls, data: Any) -> Any:
        """Fill the Gmail / Office 365 server settings the user left out (docs/semantics.md §2)."""
        if not isinstance(data, Mapping):
            return data
        service = data.get("service")
        data = dict(data)
        for key, presets in (("incoming", INCOMING_PRESETS), ("outgoing", OUTGOING_PRESETS)):
            preset = presets.get(service) if isinstance(service, str) else None
            given = data.get(key)
            if preset is None or (given is None and not _direction_used(data.get("use_for"), key)):
                continue
            if given is None:
                data[key] = dict(preset)
            elif isinstance(given, Mapping):
                data[key] = {**preset, **given}
        return data

    @model_validator(mode="after")
    def _check(self) -> Connector:
        if self.use_for not in SERVICE_USE[self.service]:
            raise PydanticCustomError(
                "use_for", "service {service} cannot be used for {use_for}",
                {"service": self.service, "use_for": self.use_for},
            )
        if self.uses_incoming and self.incoming is None:
            raise _field_error("incoming", "an incoming server (protocol, host, port, security) is required")
        if self.uses_outgoing and self.outgoing is None:
            raise _field_error("outgoing", "an outgoing server (host, port, security, auth) is required")
        if not self.uses_incoming and self.incoming is not None:
            raise _field_error("incoming", f"a connector used for {self.use_for} has no incoming server")
        if not self.uses_outgoing and self.outgoing is not None:
            raise _field_error("outgoing", f"a connector used for {self.use_for} has no outgoing server")
        if self.incoming is not None and self.service in INCOMING_PRESETS:
            wanted = INCOMING_PRESETS[self.service]["protocol"]
            if self.incoming.protocol != wanted:
                raise _field_error("incoming.protocol", f"service {self.service} reads mail over {wanted}")
        if self.outgoing is not None and self.outgoing.auth not in SERVICE_AUTH[self.service]:
            allowed = ", ".join(sorted(SERVICE_AUTH[self.service]))
            raise _field_error(
                "outgoing.auth", f"service {self.service} allows only: {allowed}", self.outgoing.auth
            )
        if self.username is None and self._needs_login():
            raise _field_error("username", "a username is required for this authentication method")
        if self.password is not None and self.password_env is not None:
            raise _field_error("password", "give password or password_env, not both")
        if self.certificate_password is not None and self.certificate_password_env is not None:
            raise _field_error("certificate_password", "give certificate_password or certificate_password_env")
        if self.outgoing is not None and self.outgoing.auth == "certificate" and self.certificate is None:
            raise _field_error("certificate", "certificate authentication needs a .pfx certificate file")
        if (self.additional_mailbox is not None and self.incoming is not None and self.incoming.protocol == "pop3"
                and self.additional_mode == "shared-folder"):
            # POP3 has no folders: a "shared folder" would silently read (and delete from) the primary mailbox.
            raise _field_error("additional_access", "POP3 has no folders, so a shared folder would read the "
                               "primary mailbox; use a delegated login (delegate or office365-delegate)",
                               "shared-folder")
        self._check_modern_auth()
        return self

    def _check_modern_auth(self) -> None:
        problem = modern_auth_problem(self.service, self.incoming, self.outgoing, self.oauth, self.certificate)
        if problem is not None:
            raise _field_error(*problem)

    def auth_warnings(self) -> list[str]:
        """Legacy-authentication advice ``check`` prints (docs/google.md)."""
        return legacy_auth_warnings(self.name, self.service, self.incoming, self.outgoing)

    @property
    def additional_mode(self) -> AdditionalAccess:
        """``additional_access``, or its default: Office 365 → office365-delegate, POP3 → delegate, else
        shared-folder."""
        if self.additional_access is not None:
            return self.additional_access
        if self.service.startswith("office365"):
            return "office365-delegate"
        if self.incoming is not None and self.incoming.protocol == "pop3":
            return "delegate"
        return "shared-folder"

    # A wrap validator defined last is outermost: every validator inside it, and every error they raise
    # (after-validators report the input they were handed), sees the wrapped input, never the secret.
    @model_validator(mode="wrap")
    @classmethod
    def _hide_secret_inputs(cls, data: Any, handler: ModelWrapValidatorHandler[Connector]) -> Connector:
        """Wrap secret inputs before anything can fail, so no ValidationError carries them (issue 13)."""
        return handler(hide_secret_inputs(data))

    @property
    def uses_incoming(self) -> bool:
        return self.use_for in ("incoming", "both")

    @property
    def uses_outgoing(self) -> bool:
        return self.use_for in ("outgoing", "both")

    def _needs_login(self) -> bool:
        if self.service == "office365-graph":
            return False  # Graph names the mailbox in the URL; the token says who is asking
        if self.incoming is not None:
            return True
        return self.outgoing is not None and self.outgoing.auth in ("username-password", "oauth2")

    def password_value(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The password, read from the environment when given by reference; None when not given."""
        return _secret_value(self.password, self.password_env, "password_env", self.name, environ)

    def certificate_password_value(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The certificate password, inline or from its environment variable; None when not given."""
        return _secret_value(
            self.certificate_password, self.certificate_password_env, "certificate_password_env",
            self.name, environ,
        )

    def settings_fingerprint(self, environ: Mapping[str, str] | None = None) -> str:
        """A digest of everything a connection test depends on (docs/semantics.md §2 life cycle).

        Host, port, security, login, password, certificate: changing any changes the digest, so a
        passed test no longer counts. Secrets enter only through a slow salted hash, so the digest does
        not help anyone guess them.
        """
        secrets = "\0".join(
            _slow_hash(value, self.name) if value else ""
            for value in (self._safe_value(self.password_value, environ),
                          self._safe_value(self.certificate_password_value, environ))
        )
        settings = self.model_dump_json(
            include={"service", "username", "primary_address", "additional_mailbox", "additional_access", "use_for",
                     "incoming",
                     "outgoing", "certificate", "password_env", "certificate_password_env",
                     "allow_plaintext_auth", "oauth"}
        )
        return hashlib.sha256(f"{settings}\0{secrets}".encode()).hexdigest()

    @staticmethod
    def _safe_value(getter: Any, environ: Mapping[str, str] | None) -> str | None:
        try:
            value: str | None = getter(environ)
        except ConfigError:
            return None
        return value

    def __repr_args__(self) -> Any:  # secrets are SecretStr already; keep the repr short and safe
        return [(k, v) for k, v in super().__repr_args__() if k in ("name", "service", "use_for", "enabled")]


def _direction_used(use_for: object, key: str) -> bool:
    if key == "incoming":
        return use_for in ("incoming", "both")
    return use_for in ("outgoing", "both")


def _secret_value(
    inline: SecretStr | None, env: str | None, env_field: str, connector: str,
    environ: Mapping[str, str] | None,
) -> str | None:
    if inline is not None:
        return inline.get_secret_value()
    if env is None:
        return None
    source = os.environ if environ is None else environ
    if env not in source:
        raise ConfigError.single(
            "environment variable is not set", where=f"connector {connector!r}", field=env_field, item=env
        )
    return source[env]


def _slow_hash(value: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", value.encode(), f"enate-routing:{salt}".encode(), 20_000).hex()
