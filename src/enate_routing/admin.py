"""Administration: the typed API a host's admin screen calls (docs/semantics.md §2 life cycle, §3.1, §3.2, §7).

:class:`Administration` holds the current :class:`~enate_routing.model.Config` and its ``version``. Every
edit:

* names its ``actor`` and the ``expected_version`` the screen read; a stale version raises
  :class:`~enate_routing.errors.ConcurrentEditError`, so two admins never silently overwrite each other;
* builds a whole new configuration through :func:`~enate_routing.loading.parse_config`, so an invalid edit
  raises the same located :class:`~enate_routing.errors.ConfigError` as ``check`` (route, field, item);
* writes its history entries first and only then swaps the new configuration in: an edit is applied
  completely or not at all, and the old configuration object is never changed (models are frozen);
* returns a :class:`Revision` (the new configuration and version) that the host saves and compiles.

Where docs/semantics.md is silent, the decisions are written down in ``docs/administration.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from enate_routing.admin_search import RouteIndex, RouteRow, route_rows
from enate_routing.audit import (
    Action,
    FieldChange,
    HistoryEntry,
    HistoryStore,
    HistorySubject,
    MemoryHistoryStore,
    field_changes,
    history_of,
    utc_now,
)
from enate_routing.errors import (
    AdminError,
    ConcurrentEditError,
    ConfigError,
    ConnectorLiveError,
    NotFoundError,
    NotTestedError,
    PermissionDeniedError,
    ReorderRefusedError,
)
from enate_routing.loading import parse_config
from enate_routing.model import Config, Connector, Fallback, IncomingRoute, OutgoingRoute

__all__ = [
    "PRIORITY_ASCENDING",
    "Administration",
    "AllowAll",
    "ConnectionTestOutcome",
    "GridSort",
    "LinkedRoutesReport",
    "Permissions",
    "Revision",
    "TargetKind",
    "linked_routes",
]

TargetKind = Literal["customer", "contract", "service", "process"]

# Fields whose value is a table: a partial edit merges into them one level deep instead of replacing them.
_NESTED_FIELDS = frozenset({"target", "rules", "incoming", "outgoing"})


class Permissions(Protocol):
    """What the host grants. Reordering changes which route wins for everyone, so it is a permission (§7)."""

    def can_reorder(self, actor: str, connector: str) -> bool:
        """True when ``actor`` may change the priority order of ``connector``'s routes."""
        ...


class AllowAll:
    """Grants every permission: for hosts that check permissions before calling, and for tests."""

    def can_reorder(self, actor: str, connector: str) -> bool:
        return True


class ConnectionTestOutcome(Protocol):
    """Any result of a connection test (the transports' typed result qualifies): only ``ok`` is read."""

    @property
    def ok(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class GridSort:
    """How the host's routes grid is sorted right now: a column name and a direction."""

    column: str
    direction: Literal["asc", "desc"] = "asc"


PRIORITY_ASCENDING = GridSort("priority", "asc")
"""The only grid sort under which routes may be moved (docs/semantics.md §7)."""


@dataclass(frozen=True, slots=True)
class Revision:
    """A configuration and its version; pass ``version`` back as ``expected_version`` on the next edit."""

    config: Config
    version: int


@dataclass(frozen=True, slots=True)
class LinkedRoutesReport:
    """What :meth:`Administration.disable_linked_routes` did.

    ``routes``: every incoming route and fallback pointing at the deleted item, as they were before the edit;
    ``disabled``: the routes this edit disabled; ``needs_update``: the fallbacks among them, which can never
    be disabled (docs/semantics.md §3.1) and must be pointed at another target by the host.
    """

    revision: Revision
    routes: tuple[RouteRow, ...]
    disabled: tuple[RouteRow, ...]
    needs_update: tuple[RouteRow, ...]


@dataclass(frozen=True, slots=True)
class _Event:
    subject: HistorySubject
    action: Action
    changes: tuple[FieldChange, ...] = ()
    note: str = ""


_Build = Callable[[Config], tuple[Config, list[_Event]]]


# --- pure helpers over a Config ------------------------------------------------------------------------


def _fold(text: str) -> str:
    return text.strip().casefold()


def linked_routes(
    config: Config, kind: TargetKind, name: str, *, customer: str | None = None
) -> tuple[RouteRow, ...]:
    """The incoming routes and fallbacks whose target names the deleted ``kind`` called ``name`` (docs/semantics.md §7).

    Names compare case-insensitively (listing one route too many is cheaper than leaving one creating work).
    A contract, service or process may be qualified by its ``customer``; a customer may not.
    Rows come in priority order.
    """
    if kind == "customer" and customer is not None:
        raise ValueError("a customer is not qualified by a customer; leave customer out")
    wanted, owner = _fold(name), None if customer is None else _fold(customer)
    return tuple(
        row for row in route_rows(config)
        if _fold(getattr(row.delivery.target, kind)) == wanted
        and (owner is None or _fold(row.delivery.target.customer) == owner)
    )


def _rebuild(config: Config, **sections: Sequence[object]) -> Config:
    """A new Config with some sections replaced, validated like a file (located ConfigError on problems).

    Unchanged objects are passed as model instances, which pydantic does not re-validate, so an edit costs
    one object's validation plus the cross-object checks, not a whole re-parse.
    """
    data: dict[str, Any] = {field: getattr(config, field) for field in Config.model_fields}
    data.update({section: list(entries) for section, entries in sections.items()})
    return parse_config(data)


def _merged(model: BaseModel, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``model`` as file-shaped data with ``changes`` applied; tables (target, rules, servers) merge."""
    data = model.model_dump()
    for key, value in changes.items():
        current = data.get(key)
        if key in _NESTED_FIELDS and isinstance(value, Mapping) and isinstance(current, dict):
            data[key] = {**current, **value}
        else:
            data[key] = value
    return data


def _where(route: IncomingRoute | Fallback) -> str:
    if isinstance(route, Fallback):
        return f"fallback of connector {route.connector!r}"
    return f"route {route.name!r} of connector {route.connector!r}"


def _refuse_connector_change(route: IncomingRoute | Fallback, changes: Mapping[str, Any]) -> None:
    # docs/semantics.md §3.1/§7: a route belongs to its connector's group and never crosses groups.
    if "connector" in changes and changes["connector"] != route.connector:
        raise ConfigError.single(
            "a route cannot move to another connector; delete it and add it to the other connector",
            where=_where(route), field="connector", item=str(changes["connector"]),
        )


def _is_wildcard_data(data: Mapping[str, Any]) -> bool:
    address = data.get("address")
    return isinstance(address, str) and address.strip() == "*"


def _route_index(config: Config, connector: str, name: str) -> int:
    for index, route in enumerate(config.routes):
        if route.connector == connector and route.name == name:
            return index
    hint = ""
    if any(f.connector == connector and f.name == name for f in config.fallbacks):
        hint = " (that is its fallback: use edit_fallback)"
    raise NotFoundError(f"connector {connector!r} has no route {name!r}{hint}")


def _fallback_index(config: Config, connector: str) -> int | None:
    return next((i for i, f in enumerate(config.fallbacks) if f.connector == connector), None)


def _outgoing_index(config: Config, name: str) -> int:
    for index, route in enumerate(config.outgoing_routes):
        if route.name == name:
            return index
    raise NotFoundError(f"no outgoing route is called {name!r}")


def _connector_index(config: Config, name: str) -> int:
    for index, connector in enumerate(config.connectors):
        if connector.name == name:
            return index
    raise NotFoundError(f"no connector is called {name!r}")


def _route_subject(route: IncomingRoute) -> HistorySubject:
    return HistorySubject("route", connector=route.connector, name=route.name)


def _fallback_subject(fallback: Fallback) -> HistorySubject:
    return HistorySubject("fallback", connector=fallback.connector)


def _outgoing_subject(route: OutgoingRoute) -> HistorySubject:
    return HistorySubject("outgoing_route", name=route.name)


def _connector_subject(connector: Connector) -> HistorySubject:
    return HistorySubject("connector", connector=connector.name)


def _edited(
    subject: HistorySubject, old: BaseModel, new: BaseModel, action: Action = "edited", note: str = ""
) -> list[_Event]:
    changes = field_changes(old, new)
    return [_Event(subject, action, changes, note)] if changes else []


def _require_priority_sort(sort: GridSort) -> None:
    # docs/semantics.md §7: on a grid sorted otherwise, the row the admin drops a route next to is not its neighbour in
    # priority, so a move would not do what the screen shows.
    if sort.column.strip().casefold() != "priority" or sort.direction != "asc":
        direction = "ascending" if sort.direction == "asc" else "descending"
        raise ReorderRefusedError(
            f"the grid is sorted by {sort.column} {direction}; sort it by priority ascending to move routes"
        )


# --- the administration object -----------------------------------------------------------------------------


class Administration:
    """The current configuration, its version, passed connection tests, permissions, history and clock.

    Thread-safe: edits are serialised by a lock, and each one checks ``expected_version`` under it.
    ``tested`` restores the fingerprints of passed connection tests (see :attr:`tested_fingerprints`);
    ``environ`` is where ``password_env`` references are read when fingerprinting (default ``os.environ``).
    """

    def __init__(
        self,
        config: Config,
        *,
        permissions: Permissions,
        history: HistoryStore | None = None,
        clock: Callable[[], datetime] = utc_now,
        version: int = 1,
        tested: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._version = version
        self._permissions = permissions
        self._history: HistoryStore = history if history is not None else MemoryHistoryStore()
        self._clock = clock
        self._tested: dict[str, str] = dict(tested or {})
        self._environ = environ
        self._lock = threading.RLock()
        self._index: tuple[int, RouteIndex] | None = None

    # --- reading ----------------------------------------------------------------------------------------

    @property
    def revision(self) -> Revision:
        """The current configuration and version, read together."""
        with self._lock:
            return Revision(self._config, self._version)

    @property
    def config(self) -> Config:
        return self.revision.config

    @property
    def version(self) -> int:
        return self.revision.version

    @property
    def history_store(self) -> HistoryStore:
        return self._history

    @property
    def tested_fingerprints(self) -> dict[str, str]:
        """Connector name → settings fingerprint of its last passed test; safe to persist (salted, slow hash)."""
        with self._lock:
            return dict(self._tested)

    def is_tested(self, connector: str) -> bool:
        """True when ``connector``'s current settings passed a connection test (docs/semantics.md §2)."""
        with self._lock:
            return self._passed(self._config.connectors[_connector_index(self._config, connector)])

    def history(self, subject: HistorySubject) -> tuple[HistoryEntry, ...]:
        """The activity history of one connector, route, fallback or outgoing route, renames followed."""
        return history_of(self._history, subject)

    def search(self, filters: Mapping[str, str] | None = None, *, connector: str | None = None) -> tuple[RouteRow, ...]:
        """Start-with search over the routes grid (see :mod:`enate_routing.admin_search`), priority order."""
        with self._lock:
            config, version, cached = self._config, self._version, self._index
        if cached is None or cached[0] != version:
            index = RouteIndex(config)  # built outside the lock: searches must not stall edits
            with self._lock:
                if self._version == version:
                    self._index = (version, index)
            cached = (version, index)
        return cached[1].search(filters, connector=connector)

    def linked_routes(self, kind: TargetKind, name: str, *, customer: str | None = None) -> tuple[RouteRow, ...]:
        """The routes pointing at a deleted customer, contract, service or process (see :func:`linked_routes`)."""
        return linked_routes(self.config, kind, name, customer=customer)

    # --- the commit path ----------------------------------------------------------------------------------

    def _commit(self, actor: str, expected_version: int, build: _Build) -> Revision:
        if not actor.strip():
            raise AdminError("an edit needs the actor who makes it")
        with self._lock:
            self._check_version(expected_version)
            config, events = build(self._config)
            if not events:  # nothing changed: no new version, no history
                return Revision(self._config, self._version)
            version, at = self._version + 1, self._clock()
            # History first: if the store fails, the edit is not applied (StoreError propagates).
            self._history.append([
                HistoryEntry(e.subject, e.action, actor, at, version, e.changes, e.note) for e in events
            ])
            self._config, self._version = config, version
            return Revision(config, version)

    def _check_version(self, expected_version: int) -> None:
        if expected_version != self._version:
            raise ConcurrentEditError(
                f"the configuration changed since it was read (version {expected_version}, now {self._version}); "
                "reload it and make the edit again"
            )

    def _passed(self, connector: Connector) -> bool:
        return self._tested.get(connector.name) == connector.settings_fingerprint(self._environ)

    # --- incoming routes ------------------------------------------------------------------------------------

    def add_route(self, route: Mapping[str, Any], *, actor: str, expected_version: int) -> Revision:
        """Add an incoming route; it goes last in its connector's tier (address or wildcard, docs/semantics.md §3.1)."""

        def build(config: Config) -> tuple[Config, list[_Event]]:
            new_config = _rebuild(config, routes=[*config.routes, dict(route)])
            new = new_config.routes[-1]
            return new_config, [_Event(_route_subject(new), "created", field_changes(None, new))]

        return self._commit(actor, expected_version, build)

    def edit_route(
        self, connector: str, name: str, changes: Mapping[str, Any], *, actor: str, expected_version: int
    ) -> Revision:
        """Change some fields of a route (``target`` and ``rules`` merge). A route whose address moves it to
        the other tier (to or from ``*``) goes last in its new tier."""
        return self._commit(actor, expected_version, self._route_edit(connector, name, changes, "edited"))

    def set_route_enabled(
        self, connector: str, name: str, enabled: bool, *, actor: str, expected_version: int
    ) -> Revision:
        """Enable or disable an incoming route."""
        action: Action = "enabled" if enabled else "disabled"
        return self._commit(actor, expected_version, self._route_edit(connector, name, {"enabled": enabled}, action))

    def _route_edit(self, connector: str, name: str, changes: Mapping[str, Any], action: Action) -> _Build:
        def build(config: Config) -> tuple[Config, list[_Event]]:
            index = _route_index(config, connector, name)
            old = config.routes[index]
            _refuse_connector_change(old, changes)
            data = _merged(old, changes)
            routes: list[object] = list(config.routes)
            if _is_wildcard_data(data) != old.is_wildcard:
                del routes[index]
                routes.append(data)
                index = len(routes) - 1
            else:
                routes[index] = data
            new_config = _rebuild(config, routes=routes)
            new = new_config.routes[index]
            return new_config, _edited(_route_subject(new), old, new, action)

        return build

    def delete_route(self, connector: str, name: str, *, actor: str, expected_version: int) -> Revision:
        """Delete an incoming route (never the fallback: docs/semantics.md §3.1 requires one per incoming connector)."""

        def build(config: Config) -> tuple[Config, list[_Event]]:
            index = _route_index(config, connector, name)
            old = config.routes[index]
            new_config = _rebuild(config, routes=[*config.routes[:index], *config.routes[index + 1:]])
            return new_config, [_Event(_route_subject(old), "deleted", field_changes(old, None))]

        return self._commit(actor, expected_version, build)

    def move_route(
        self, connector: str, name: str, position: int, *, sort: GridSort, actor: str, expected_version: int
    ) -> Revision:
        """Move a route to ``position`` (1-based priority) within its connector's tier (docs/semantics.md §3.1, §7).

        Refused with PermissionDeniedError unless the host grants ``can_reorder``; with ReorderRefusedError
        when the grid is not sorted by priority ascending, for the fallback, and for a position outside the
        route's tier (which would cross into another tier). Other connectors' routes keep their places.
        """

        def build(config: Config) -> tuple[Config, list[_Event]]:
            if not self._permissions.can_reorder(actor, connector):
                raise PermissionDeniedError(f"{actor!r} may not reorder the routes of connector {connector!r}")
            _require_priority_sort(sort)
            fallback = _fallback_index(config, connector)
            if fallback is not None and config.fallbacks[fallback].name == name:
                raise ReorderRefusedError(
                    f"the fallback of connector {connector!r} is always last and cannot be moved (semantics.md §3.1)"
                )
            index = _route_index(config, connector, name)
            route = config.routes[index]
            # The model keeps one tuple in file order; a tier's priority order is the order of its routes in
            # it. Permute the tier's routes among the tier's own slots, leaving every other slot alone.
            slots = [i for i, r in enumerate(config.routes)
                     if r.connector == connector and r.is_wildcard == route.is_wildcard]
            tier = "wildcard" if route.is_wildcard else "address"
            if not 1 <= position <= len(slots):
                raise ReorderRefusedError(
                    f"position {position} is outside the {tier} routes of connector {connector!r} "
                    f"(1 to {len(slots)}); a route moves only within its tier (docs/semantics.md §3.1)"
                )
            old_position = slots.index(index) + 1
            if position == old_position:
                return config, []
            order = [config.routes[i] for i in slots]
            order.insert(position - 1, order.pop(old_position - 1))
            routes = list(config.routes)
            for slot, moved in zip(slots, order, strict=True):
                routes[slot] = moved
            change = FieldChange("priority", old_position, position)
            return _rebuild(config, routes=routes), [_Event(_route_subject(route), "moved", (change,), tier)]

        return self._commit(actor, expected_version, build)

    def edit_fallback(
        self, connector: str, changes: Mapping[str, Any], *, actor: str, expected_version: int
    ) -> Revision:
        """Change some fields of a connector's fallback (it stays enabled, last and on the primary address)."""

        def build(config: Config) -> tuple[Config, list[_Event]]:
            index = _fallback_index(config, connector)
            if index is None:
                raise NotFoundError(f"connector {connector!r} has no fallback")
            old = config.fallbacks[index]
            _refuse_connector_change(old, changes)
            fallbacks: list[object] = list(config.fallbacks)
            fallbacks[index] = _merged(old, changes)
            new_config = _rebuild(config, fallbacks=fallbacks)
            new = new_config.fallbacks[index]
            return new_config, _edited(_fallback_subject(new), old, new)

        return self._commit(actor, expected_version, build)

    # --- outgoing routes ------------------------------------------------------------------------------------

    def add_outgoing_route(self, route: Mapping[str, Any], *, actor: str, expected_version: int) -> Revision:
        """Add an outgoing route. It starts disabled unless ``enabled`` is given true, which needs a passed
        connection test of its connector (docs/semantics.md §3.2)."""

        def build(config: Config) -> tuple[Config, list[_Event]]:
            new_config = _rebuild(config, outgoing_routes=[*config.outgoing_routes, {"enabled": False, **route}])
            new = new_config.outgoing_routes[-1]
            self._require_tested_connector(new_config, None, new)
            return new_config, [_Event(_outgoing_subject(new), "created", field_changes(None, new))]

        return self._commit(actor, expected_version, build)

    def edit_outgoing_route(
        self, name: str, changes: Mapping[str, Any], *, actor: str, expected_version: int
    ) -> Revision:
        """Change some fields of an outgoing route (enabling, or moving an enabled one to another connector,
        needs a passed test of the connector)."""
        return self._commit(actor, expected_version, self._outgoing_edit(name, changes, "edited"))

    def set_outgoing_route_enabled(self, name: str, enabled: bool, *, actor: str, expected_version: int) -> Revision:
        """Enable (after a passed connection test of its connector, semantics.md §3.2) or disable an outgoing route."""
        action: Action = "enabled" if enabled else "disabled"
        return self._commit(actor, expected_version, self._outgoing_edit(name, {"enabled": enabled}, action))

    def _outgoing_edit(self, name: str, changes: Mapping[str, Any], action: Action) -> _Build:
        def build(config: Config) -> tuple[Config, list[_Event]]:
            index = _outgoing_index(config, name)
            old = config.outgoing_routes[index]
            routes: list[object] = list(config.outgoing_routes)
            routes[index] = _merged(old, changes)
            new_config = _rebuild(config, outgoing_routes=routes)
            new = new_config.outgoing_routes[index]
            self._require_tested_connector(new_config, old, new)
            return new_config, _edited(_outgoing_subject(new), old, new, action)

        return build

    def delete_outgoing_route(self, name: str, *, actor: str, expected_version: int) -> Revision:
        """Delete an outgoing route."""

        def build(config: Config) -> tuple[Config, list[_Event]]:
            index = _outgoing_index(config, name)
            old = config.outgoing_routes[index]
            routes = [*config.outgoing_routes[:index], *config.outgoing_routes[index + 1:]]
            return _rebuild(config, outgoing_routes=routes), [
                _Event(_outgoing_subject(old), "deleted", field_changes(old, None))
            ]

        return self._commit(actor, expected_version, build)

    def _require_tested_connector(self, config: Config, old: OutgoingRoute | None, new: OutgoingRoute) -> None:
        # semantics.md §3.2: an outgoing route is enabled only after a passed test of its connector's current settings.
        if not new.enabled or (old is not None and old.enabled and old.connector == new.connector):
            return
        connector = config.connector(new.connector)
        if not self._passed(connector):
            raise NotTestedError(
                f"outgoing route {new.name!r}: connector {connector.name!r} has no passed connection test of its "
                "current settings; test it before enabling the route (docs/semantics.md §3.2)"
            )

    # --- connectors -----------------------------------------------------------------------------------------

    def add_connector(
        self,
        connector: Mapping[str, Any],
        *,
        fallback: Mapping[str, Any] | None = None,
        actor: str,
        expected_version: int,
    ) -> Revision:
        """Add a connector; it starts disabled (semantics.md §2). An incoming connector needs its ``fallback`` (target
        and options; the address defaults to the connector's primary address) in the same edit (semantics.md §3.1)."""
        if connector.get("enabled") is True:
            raise NotTestedError(
                f"connector {connector.get('name')!r}: a new connector starts disabled; enable it after a passed "
                "connection test (docs/semantics.md §2)"
            )

        def build(config: Config) -> tuple[Config, list[_Event]]:
            sections: dict[str, list[object]] = {"connectors": [*config.connectors, {**connector, "enabled": False}]}
            if fallback is not None:
                defaults = {"connector": connector.get("name"), "address": connector.get("primary_address")}
                sections["fallbacks"] = [*config.fallbacks, {**defaults, **fallback}]
            new_config = _rebuild(config, **sections)
            new = new_config.connectors[-1]
            events = [_Event(_connector_subject(new), "created", field_changes(None, new))]
            if fallback is not None:
                new_fallback = new_config.fallbacks[-1]
                events.append(_Event(_fallback_subject(new_fallback), "created", field_changes(None, new_fallback)))
            return new_config, events

        return self._commit(actor, expected_version, build)

    def edit_connector(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        fallback: Mapping[str, Any] | None = None,
        actor: str,
        expected_version: int,
    ) -> Revision:
        """Change some fields of a connector (``incoming`` / ``outgoing`` merge).

        Changing anything a connection test depends on (host, port, security, login, password, certificate:
        :meth:`Connector.settings_fingerprint`) disables an enabled connector until its new settings pass a
        test; asking for ``enabled = true`` in the same edit raises NotTestedError. A live outgoing connector
        (enabled, used by an enabled outgoing route) cannot be switched to incoming (semantics.md §3.2). Changing the
        primary address moves the fallback with it; ``fallback`` edits the fallback (or adds it, when the
        connector becomes incoming) in the same edit.
        """
        return self._commit(actor, expected_version, self._connector_edit(name, changes, fallback, "edited"))

    def set_connector_enabled(self, name: str, enabled: bool, *, actor: str, expected_version: int) -> Revision:
        """Enable a connector whose current settings passed a connection test (docs/semantics.md §2), or disable one."""
        action: Action = "enabled" if enabled else "disabled"
        return self._commit(actor, expected_version, self._connector_edit(name, {"enabled": enabled}, None, action))

    def _connector_edit(
        self, name: str, changes: Mapping[str, Any], fallback: Mapping[str, Any] | None, action: Action
    ) -> _Build:
        def build(config: Config) -> tuple[Config, list[_Event]]:
            index = _connector_index(config, name)
            old = config.connectors[index]
            if "name" in changes and changes["name"] != old.name:
                # History, passed tests and every route refer to the connector by name.
                raise ConfigError.single("a connector cannot be renamed; add a new connector instead",
                                         where=f"connector {name!r}", field="name", item=str(changes["name"]))
            data = _merged(old, changes)
            self._refuse_live_switch(config, old, data)
            connectors: list[object] = list(config.connectors)
            connectors[index] = data
            fallbacks = self._fallbacks_after(config, old, changes, fallback)
            new_config = _rebuild(config, connectors=connectors, fallbacks=fallbacks)
            new = new_config.connectors[index]
            note = ""
            if new.enabled and not self._passed(new) and (not old.enabled or self._settings_changed(old, new)):
                if changes.get("enabled") is True:
                    raise NotTestedError(
                        f"connector {name!r}: enabling needs a passed connection test of its current settings "
                        "(docs/semantics.md §2)"
                    )
                # docs/semantics.md §2: changed connection settings disable the connector until they are tested.
                connectors[index] = {**data, "enabled": False}
                new_config = _rebuild(config, connectors=connectors, fallbacks=fallbacks)
                new = new_config.connectors[index]
                note = "connection settings changed: disabled until a connection test of them passes"
            events = _edited(_connector_subject(new), old, new, action, note)
            old_fallback, fb_index = None, _fallback_index(config, name)
            if fb_index is not None:
                old_fallback = config.fallbacks[fb_index]
            new_index = _fallback_index(new_config, name)
            if new_index is not None:
                new_fallback = new_config.fallbacks[new_index]
                if old_fallback is None:
                    events.append(_Event(_fallback_subject(new_fallback), "created",
                                         field_changes(None, new_fallback)))
                else:
                    events += _edited(_fallback_subject(new_fallback), old_fallback, new_fallback)
            return new_config, events

        return build

    def _settings_changed(self, old: Connector, new: Connector) -> bool:
        return old.settings_fingerprint(self._environ) != new.settings_fingerprint(self._environ)

    @staticmethod
    def _refuse_live_switch(config: Config, old: Connector, data: Mapping[str, Any]) -> None:
        # docs/semantics.md §3.2: mail is being sent through a live outgoing connector; switching it to incoming would
        # silently stop that, so it must first be disabled (or its outgoing routes).
        if not (old.uses_outgoing and data.get("use_for") == "incoming" and old.enabled):
            return
        live = [r.name for r in config.outgoing_routes if r.connector == old.name and r.enabled]
        if live:
            raise ConnectorLiveError(
                f"connector {old.name!r} is live for outgoing mail (enabled outgoing routes: {', '.join(live)}) "
                "and cannot be switched to incoming; disable it or those routes first (docs/semantics.md §3.2)"
            )

    @staticmethod
    def _fallbacks_after(
        config: Config, old: Connector, changes: Mapping[str, Any], fallback: Mapping[str, Any] | None
    ) -> list[object]:
        fallbacks: list[object] = list(config.fallbacks)
        index = _fallback_index(config, old.name)
        primary = changes.get("primary_address", old.primary_address)
        if index is None:
            if fallback is not None:
                fallbacks.append({"connector": old.name, "address": primary, **fallback})
            return fallbacks
        update = dict(fallback or {})
        # docs/semantics.md §3.1: the fallback is on the primary address, so it follows the primary address.
        if "primary_address" in changes and "address" not in update:
            update["address"] = primary
        if update:
            fallbacks[index] = _merged(config.fallbacks[index], update)
        return fallbacks

    def record_connection_test(
        self, name: str, result: bool | ConnectionTestOutcome, *, actor: str, expected_version: int
    ) -> Revision:
        """Record a connection test of connector ``name``'s settings at ``expected_version``.

        A pass remembers the fingerprint of the tested settings, so enabling works until they change; a
        failure forgets any earlier pass (the connector's state is left alone). The configuration and its
        version do not change; the version check makes sure the settings tested are the current ones.
        """
        passed = result if isinstance(result, bool) else bool(result.ok)
        if not actor.strip():
            raise AdminError("an edit needs the actor who makes it")
        with self._lock:
            self._check_version(expected_version)
            connector = self._config.connectors[_connector_index(self._config, name)]
            fingerprint = connector.settings_fingerprint(self._environ)
            self._history.append([HistoryEntry(
                _connector_subject(connector), "tested", actor, self._clock(), self._version,
                note="connection test passed" if passed else "connection test failed",
            )])
            if passed:
                self._tested[name] = fingerprint
            else:
                self._tested.pop(name, None)
            return Revision(self._config, self._version)

    # --- deleted targets ------------------------------------------------------------------------------------

    def disable_linked_routes(
        self, kind: TargetKind, name: str, *, customer: str | None = None, actor: str, expected_version: int
    ) -> LinkedRoutesReport:
        """Disable every enabled incoming route pointing at a deleted target, in one edit (docs/semantics.md §7).

        Fallbacks pointing at it cannot be disabled (docs/semantics.md §3.1); they are reported in ``needs_update``.
        """
        report: list[tuple[tuple[RouteRow, ...], tuple[RouteRow, ...]]] = []
        note = f"{kind} {name!r} was deleted" + (f" (customer {customer!r})" if customer else "")

        def build(config: Config) -> tuple[Config, list[_Event]]:
            linked = linked_routes(config, kind, name, customer=customer)
            targets = {(r.connector, r.name) for r in linked if not r.is_fallback and r.enabled}
            report.append((linked, tuple(r for r in linked if (r.connector, r.name) in targets)))
            if not targets:
                return config, []
            routes: list[object] = [
                _merged(r, {"enabled": False}) if (r.connector, r.name) in targets else r for r in config.routes
            ]
            new_config = _rebuild(config, routes=routes)
            events = [
                _Event(_route_subject(new), "disabled", field_changes(old, new), note)
                for old, new in zip(config.routes, new_config.routes, strict=True)
                if (old.connector, old.name) in targets
            ]
            return new_config, events

        revision = self._commit(actor, expected_version, build)
        linked, disabled = report[-1]
        return LinkedRoutesReport(revision, linked, disabled, tuple(r for r in linked if r.is_fallback))
