"""The configuration as the user wrote it (docs/semantics.md §2, §3, §3.2–§3.5, §6): frozen pydantic models.

These models validate and normalise; they never route. ``Router.compile`` turns a :class:`Config` into
the fast, immutable matcher. Cross-object rules (one fallback per incoming connector, unique names, an
outgoing route's connector) are checked in :class:`Config`'s after-validator, which reports every problem
at once as a :class:`~enate_routing.errors.ConfigError`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ModelWrapValidatorHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from enate_routing._ack_template import DEFAULT_SUBJECT_TOKEN, AckTemplate, subject_token_problem
from enate_routing._delivery import Delivery, Target, Text
from enate_routing._link_pattern import UnsafePatternError, check_link_pattern
from enate_routing._oauth_settings import OAuthSettings
from enate_routing._parse_limits import ParseLimits
from enate_routing._secret_inputs import hide_secret_inputs
from enate_routing.errors import ConfigError, ConfigIssue

__all__ = [
    "AckTemplate",
    "BlockedEntry",
    "Config",
    "Connector",
    "Fallback",
    "IncomingRoute",
    "IncomingServer",
    "LimitsSettings",
    "Linking",
    "OAuthSettings",
    "OutgoingRoute",
    "OutgoingServer",
    "RoutingRules",
    "Target",
]
from enate_routing._connector import Connector, IncomingServer, OutgoingServer
from enate_routing._model_types import (
    DEFAULT_SUBJECT_PATTERN,
    Address,
    ExtensionList,
    KeywordList,
    Name,
    PatternList,
    TextList,
    _address,
    _Frozen,
    _pattern,
)

# --- routes ---------------------------------------------------------------------------------------------


class RoutingRules(_Frozen):
    """The optional rules of a route (semantics.md §3): every rule set must hold; items of one list are alternatives."""

    important: bool = False
    attachment_types: ExtensionList = ()
    subject_keywords: KeywordList = ()
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
    acknowledgement: AckTemplate = AckTemplate()

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
    subject_token: str | None = None  # how acknowledgements write a reference; see reference_token()
    plus_addressing: Literal["off", "mixed", "plus-only"] = "off"
    search_body: bool = False

    @model_validator(mode="after")
    def _token_matches_pattern(self) -> Linking:
        if self.subject_token is not None:
            problem = subject_token_problem(self.subject_token, self.subject_pattern)
            if problem:
                raise PydanticCustomError("token", "{problem}",
                                          {"problem": problem, "field": "subject_token", "item": self.subject_token})
        return self

    def reference_token(self) -> str | None:
        """The format string (with ``{ref}``) acknowledgements put in their subject: ``subject_token``, else
        ``[REF:{ref}]`` when ``subject_pattern`` finds that form; else None (acknowledgements carry no token)."""
        if self.subject_token is not None:
            return self.subject_token
        derived = DEFAULT_SUBJECT_TOKEN  # the default pattern's form, kept when the configured pattern finds it
        return None if subject_token_problem(derived, self.subject_pattern) else derived

    @field_validator("subject_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        if not value:
            return value
        try:
            compiled = re.compile(value)
        except (re.error, OverflowError, RecursionError) as exc:  # x{99999999999}; thousands of nested groups
            raise PydanticCustomError("regex", "not a valid regular expression ({reason})",
                                      {"reason": str(exc), "item": value}) from None
        try:
            check_link_pattern(value)  # issue 13: a pattern that passes check stays linear on any mail
        except UnsafePatternError as exc:
            raise PydanticCustomError(
                "regex", "unsafe pattern: {reason}", {"reason": str(exc), "item": value}
            ) from None
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
    max_ids_per_header: Annotated[int, Field(gt=0)] = 1000
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

    @model_validator(mode="wrap")  # last, so outermost: see Connector._hide_secret_inputs
    @classmethod
    def _hide_secret_inputs(cls, data: Any, handler: ModelWrapValidatorHandler[Config]) -> Config:
        """Connector secrets wrapped before validation: errors of the whole file never carry them."""
        if isinstance(data, Mapping) and isinstance(data.get("connectors"), list | tuple):
            data = {**data, "connectors": [hide_secret_inputs(entry) for entry in data["connectors"]]}
        return handler(data)

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

    def sending_addresses(self) -> list[tuple[str, str, str]]:
        """docs/semantics.md §3.1 step 1: (address, what sends from it, through which connector) for every
        address the system sends from — every address of an outgoing connector (a ``both`` connector's route
        addresses too: its acknowledgements go out from the deciding route's address) and every outgoing
        route's address. The router ignores mail from them; ``check`` reports one another connector routes."""
        sending = []
        for c in self.connectors:
            if c.uses_outgoing:
                own = sorted(self.own_addresses(c.name)) if c.uses_incoming else [c.primary_address]
                sending += [(address, f"connector {c.name!r}", c.name) for address in own]
        sending += [(out.address, f"outgoing route {out.name!r}", out.connector) for out in self.outgoing_routes]
        return sending


def _where_route(route: IncomingRoute | Fallback) -> str:
    if isinstance(route, Fallback):
        return f"fallback of connector {route.connector!r}"
    return f"route {route.name!r} of connector {route.connector!r}"


def _name_key(name: str) -> str:
    """How names compare for uniqueness: as read, so neither case nor Unicode normal form ("é" typed as one
    character or as "e" and a combining accent) makes two names that look the same different."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())  # canonical caseless


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
        key = (route.connector, _name_key(route.name))
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
        if (fallback.connector, _name_key(fallback.name)) in seen_routes:
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
        if _name_key(out.name) in seen_outgoing:
            issues.append(ConfigIssue("duplicate outgoing route name", where=where, field="name"))
        seen_outgoing.add(_name_key(out.name))
        connector = connectors.get(out.connector)
        if connector is None:
            issues.append(ConfigIssue("no connector has this name", where=where, field="connector",
                                      item=out.connector))
        elif not connector.uses_outgoing:
            issues.append(ConfigIssue("an outgoing route needs an outgoing or both connector", where=where,
                                      field="connector", item=out.connector))
    return issues
