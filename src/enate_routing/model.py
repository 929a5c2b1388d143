"""The configuration as the user wrote it (docs/semantics.md §2, §3, §3.2–§3.5, §6): frozen pydantic models.

These models validate and normalise; they never route. ``Router.compile`` turns a :class:`Config` into
the fast, immutable matcher. Cross-object rules (one fallback per incoming connector, unique names, an
outgoing route's connector) are checked in :class:`Config`'s after-validator, which reports every problem
at once as a :class:`~enate_routing.errors.ConfigError`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from enate_routing.delivery import Delivery, Target, Text
from enate_routing.envelope import ParseLimits
from enate_routing.errors import ConfigError, ConfigIssue
from enate_routing.patterns import AddressPattern, normalize_address, normalize_extension, split_list
from enate_routing.presets import INCOMING_PRESETS, OUTGOING_PRESETS, SERVICE_AUTH, SERVICE_USE

__all__ = [
    "BlockedEntry",
    "Config",
    "Connector",
    "Fallback",
    "IncomingRoute",
    "IncomingServer",
    "LimitsSettings",
    "Linking",
    "OutgoingRoute",
    "OutgoingServer",
    "RoutingRules",
    "Target",
]

Service = Literal[
    "gmail-pop3", "gmail-imap", "office365-pop3", "office365-imap", "gmail-smtp", "office365-smtp-relay", "other"
]
Security = Literal["ssl", "starttls", "none"]
UseFor = Literal["incoming", "outgoing", "both"]
OutgoingAuth = Literal["none", "username-password", "certificate", "oauth2"]
IncomingAuth = Literal["username-password", "oauth2"]

DEFAULT_SUBJECT_PATTERN = r"\[REF:(?P<ref>[A-Z]+-\d+)\]"


# --- reusable annotated types -------------------------------------------------------------------------


def _as_list(value: object) -> object:
    if isinstance(value, str | list | tuple):
        return split_list(value)
    return value


def _address(value: str) -> str:
    normal = normalize_address(value)
    if normal is None:
        raise PydanticCustomError("address", "not a valid email address", {"item": value})
    return normal


def _pattern(value: str) -> str:
    try:
        return str(AddressPattern.parse(value))
    except ValueError as exc:
        raise PydanticCustomError("pattern", str(exc), {"item": value}) from None


def _patterns(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_pattern(v) for v in values))


def _extensions(values: tuple[str, ...]) -> tuple[str, ...]:
    normal = tuple(dict.fromkeys(e for v in values if (e := normalize_extension(v))))
    return normal


def _words(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


Address = Annotated[str, AfterValidator(_address)]
"""A valid email address, stored case-folded with an IDNA domain."""

PatternList = Annotated[tuple[str, ...], BeforeValidator(_as_list), AfterValidator(_patterns)]
"""Semicolon list (or array) of address patterns: exact addresses or ``*domain``."""

ExtensionList = Annotated[tuple[str, ...], BeforeValidator(_as_list), AfterValidator(_extensions)]
"""Semicolon list of file extensions, stored without the leading dot, case-folded."""

TextList = Annotated[tuple[str, ...], BeforeValidator(_as_list), AfterValidator(_words)]
"""Semicolon list of free-text items (keywords, company names); matching case-folds them."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Secret = Annotated[SecretStr, Field(max_length=50)]
EnvName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- connectors -----------------------------------------------------------------------------------------


class IncomingServer(_Frozen):
    """How to reach a mailbox (semantics.md §2). ``folder`` is read; processed mail is moved, flagged or deleted."""

    protocol: Literal["imap", "pop3"]
    host: Text
    port: Annotated[int, Field(ge=1, le=65535)]
    security: Security
    ca_file: str | None = None
    auth: IncomingAuth = "username-password"
    folder: Text = "INBOX"
    processed: Literal["move", "flag", "delete"] = "move"
    processed_folder: Text = "Processed"


class OutgoingServer(_Frozen):
    """How to send through SMTP (docs/semantics.md §2)."""

    host: Text
    port: Annotated[int, Field(ge=1, le=65535)]
    security: Security
    auth: OutgoingAuth
    ca_file: str | None = None


class Connector(_Frozen):
    """An email connector (docs/semantics.md §2). Secrets are ``SecretStr`` or the name of an environment variable."""

    name: Name
    service: Service
    username: str | None = None
    password: Secret | None = None
    password_env: EnvName | None = None
    primary_address: Address
    additional_mailbox: str | None = None
    use_for: UseFor
    incoming: IncomingServer | None = None
    outgoing: OutgoingServer | None = None
    certificate: str | None = None
    certificate_password: Secret | None = None
    certificate_password_env: EnvName | None = None
    enabled: bool = True
    allow_plaintext_auth: bool = False

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
        return self

    @property
    def uses_incoming(self) -> bool:
        return self.use_for in ("incoming", "both")

    @property
    def uses_outgoing(self) -> bool:
        return self.use_for in ("outgoing", "both")

    def _needs_login(self) -> bool:
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
            include={"service", "username", "primary_address", "additional_mailbox", "use_for", "incoming",
                     "outgoing", "certificate", "password_env", "certificate_password_env",
                     "allow_plaintext_auth"}
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


def _field_error(field: str, message: str, item: str | None = None) -> PydanticCustomError:
    return PydanticCustomError("connector", message, {"field": field, "item": item})


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


# --- routes ---------------------------------------------------------------------------------------------


class RoutingRules(_Frozen):
    """The optional rules of a route (semantics.md §3): every rule set must hold; items of one list are alternatives."""

    important: bool = False
    attachment_types: ExtensionList = ()
    subject_keywords: TextList = ()
    recipients: PatternList = ()
    senders: PatternList = ()
    sender_companies: TextList = ()


class _RouteBase(_Frozen):
    connector: Name
    name: Name
    address: str
    target: Target
    ticket_category: str | None = None
    send_automated_emails: bool = False
    test_mode: bool = False
    for_attention: str | None = None

    @model_validator(mode="after")
    def _category_only_on_tickets(self) -> _RouteBase:
        if self.ticket_category is not None and self.target.kind == "case":
            raise PydanticCustomError(
                "route", "a ticket category is only allowed on ticket routes, not on case routes",
                {"field": "ticket_category", "item": self.ticket_category},
            )
        return self

    @property
    def delivery(self) -> Delivery:
        """The route's delivery fields as the one value object that compiled routes and decisions carry."""
        return Delivery(target=self.target, ticket_category=self.ticket_category,
                        send_automated_emails=self.send_automated_emails, test_mode=self.test_mode,
                        for_attention=self.for_attention)


def _route_address(value: str) -> str:
    return "*" if value.strip() == "*" else _address(value)


class IncomingRoute(_RouteBase):
    """An incoming email route (docs/semantics.md §3); ``address = "*"`` makes it a wildcard route."""

    address: Annotated[str, AfterValidator(_route_address)]
    enabled: bool = True
    rules: RoutingRules = RoutingRules()

    @property
    def is_wildcard(self) -> bool:
        return self.address == "*"

    @model_validator(mode="after")
    def _wildcard_needs_senders(self) -> IncomingRoute:
        if self.is_wildcard and not self.rules.senders:
            raise PydanticCustomError(
                "route", "a wildcard route (address '*') must have a senders rule",
                {"field": "rules.senders", "item": None},
            )
        return self


class Fallback(_RouteBase):
    """The mandatory last route of an incoming connector, on its primary address (docs/semantics.md §3.1)."""

    name: Name = "Fallback"
    address: Address
    enabled: Literal[True] = True


class OutgoingRoute(_Frozen):
    """Selects the sending connector for a "from" address (docs/semantics.md §3.2)."""

    name: Name
    description: str = ""
    address: Address
    connector: Name
    enabled: bool = True


class BlockedEntry(_Frozen):
    """A blocked address or ``*domain`` (docs/semantics.md §3.5)."""

    address: Annotated[str, AfterValidator(_pattern)]
    action: Literal["reject", "no-automated-emails"]


class Linking(_Frozen):
    """How follow-ups find existing work (docs/semantics.md §3.4)."""

    subject_pattern: str = DEFAULT_SUBJECT_PATTERN  # "" turns subject tokens off
    plus_addressing: Literal["off", "mixed", "plus-only"] = "off"
    search_body: bool = False

    @field_validator("subject_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        if not value:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise PydanticCustomError("regex", "not a valid regular expression ({reason})",
                                      {"reason": str(exc), "item": value}) from None
        if "ref" not in compiled.groupindex and compiled.groups != 1:
            raise PydanticCustomError(
                "regex", "the pattern needs a group named 'ref' (or exactly one group)", {"item": value}
            )
        return value


class LimitsSettings(_Frozen):
    """Parsing limits of docs/semantics.md §3.1.1 and the acknowledgement rate limit of §3.5."""

    max_message_bytes: Annotated[int, Field(gt=0)] = 25 * 1024 * 1024
    max_header_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    max_mime_depth: Annotated[int, Field(gt=0)] = 32
    max_mime_parts: Annotated[int, Field(gt=0)] = 1000
    max_addresses_per_header: Annotated[int, Field(gt=0)] = 1000
    max_encoded_words_per_header: Annotated[int, Field(gt=0)] = 2000
    acknowledgements_per_hour: Annotated[int, Field(ge=0)] = 10

    def parse_limits(self) -> ParseLimits:
        """The parsing limits as :meth:`Envelope.from_bytes` takes them."""
        return ParseLimits(**self.model_dump(exclude={"acknowledgements_per_hour"}))


Companies = dict[Text, PatternList]


# --- the whole configuration ----------------------------------------------------------------------------


class Config(_Frozen):
    """A whole configuration file (docs/semantics.md §6). Routes are in priority order per connector."""

    connectors: tuple[Connector, ...] = ()
    routes: tuple[IncomingRoute, ...] = ()
    fallbacks: tuple[Fallback, ...] = ()
    outgoing_routes: tuple[OutgoingRoute, ...] = ()
    companies: Companies = Field(default_factory=dict)
    blocked: tuple[BlockedEntry, ...] = ()
    linking: Linking = Linking()
    limits: LimitsSettings = LimitsSettings()

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        issues = cross_check(self)
        if issues:
            raise ConfigError(issues)
        return self

    def connector(self, name: str) -> Connector:
        """The connector called ``name``; KeyError when there is none."""
        for connector in self.connectors:
            if connector.name == name:
                return connector
        raise KeyError(name)

    def routes_of(self, connector: str) -> tuple[IncomingRoute, ...]:
        """The routes of ``connector`` in priority order: address routes, then wildcard routes (semantics.md §3.1)."""
        own = [r for r in self.routes if r.connector == connector]
        return tuple([r for r in own if not r.is_wildcard] + [r for r in own if r.is_wildcard])

    def fallback_of(self, connector: str) -> Fallback:
        """The fallback route of ``connector``; KeyError when there is none."""
        for fallback in self.fallbacks:
            if fallback.connector == connector:
                return fallback
        raise KeyError(connector)

    def own_addresses(self, connector: str) -> frozenset[str]:
        """Every address of ``connector``: its primary address and the addresses of its routes."""
        c = self.connector(connector)
        addresses = {c.primary_address}
        addresses.update(r.address for r in self.routes if r.connector == connector and not r.is_wildcard)
        addresses.update(f.address for f in self.fallbacks if f.connector == connector)
        return frozenset(addresses)


def _where_route(route: IncomingRoute | Fallback) -> str:
    if isinstance(route, Fallback):
        return f"fallback of connector {route.connector!r}"
    return f"route {route.name!r} of connector {route.connector!r}"


def cross_check(config: Config) -> list[ConfigIssue]:
    """Every rule that spans objects (docs/semantics.md §3.1, §3.2); one issue per problem found."""
    issues: list[ConfigIssue] = []
    connectors: dict[str, Connector] = {}
    for c in config.connectors:
        if c.name in connectors:
            issues.append(ConfigIssue("duplicate connector name", where=f"connector {c.name!r}", field="name"))
        connectors[c.name] = c

    seen_routes: set[tuple[str, str]] = set()
    for route in config.routes:
        where = _where_route(route)
        connector = connectors.get(route.connector)
        if connector is None:
            issues.append(ConfigIssue("no connector has this name", where=where, field="connector",
                                      item=route.connector))
        elif not connector.uses_incoming:
            issues.append(ConfigIssue(f"connector is used for {connector.use_for} only; routes need incoming mail",
                                      where=where, field="connector", item=route.connector))
        key = (route.connector, route.name.casefold())
        if key in seen_routes:
            issues.append(ConfigIssue("duplicate route name in this connector", where=where, field="name"))
        seen_routes.add(key)

    fallback_count: dict[str, int] = {}
    for fallback in config.fallbacks:
        where = _where_route(fallback)
        fallback_count[fallback.connector] = fallback_count.get(fallback.connector, 0) + 1
        connector = connectors.get(fallback.connector)
        if connector is None:
            issues.append(ConfigIssue("no connector has this name", where=where, field="connector",
                                      item=fallback.connector))
            continue
        if not connector.uses_incoming:
            issues.append(ConfigIssue(f"connector is used for {connector.use_for} only; a fallback needs incoming mail",
                                      where=where, field="connector", item=fallback.connector))
        if fallback.address != connector.primary_address:
            issues.append(ConfigIssue(
                f"the fallback must be on the connector's primary address {connector.primary_address!r}",
                where=where, field="address", item=fallback.address))
        if (fallback.connector, fallback.name.casefold()) in seen_routes:
            issues.append(ConfigIssue("a route of this connector has the fallback's name", where=where, field="name",
                                      item=fallback.name))
    for name, count in fallback_count.items():
        if count > 1:
            issues.append(ConfigIssue(f"{count} fallbacks; exactly one is allowed",
                                      where=f"connector {name!r}", field="fallbacks"))
    for c in config.connectors:
        if c.uses_incoming and c.name not in fallback_count:
            issues.append(ConfigIssue("an incoming connector needs exactly one [[fallbacks]] entry on its "
                                      "primary address", where=f"connector {c.name!r}", field="fallbacks"))

    seen_outgoing: set[str] = set()
    for out in config.outgoing_routes:
        where = f"outgoing route {out.name!r}"
        if out.name.casefold() in seen_outgoing:
            issues.append(ConfigIssue("duplicate outgoing route name", where=where, field="name"))
        seen_outgoing.add(out.name.casefold())
        connector = connectors.get(out.connector)
        if connector is None:
            issues.append(ConfigIssue("no connector has this name", where=where, field="connector",
                                      item=out.connector))
        elif not connector.uses_outgoing:
            issues.append(ConfigIssue("an outgoing route needs an outgoing or both connector", where=where,
                                      field="connector", item=out.connector))
    return issues
