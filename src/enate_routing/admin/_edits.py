"""Pure edit builders over a :class:`~enate_routing._model.Config` (docs/semantics.md §3.1, §3.2, §7).

An edit is a :data:`Build`: a function from the current configuration to the new one plus the history
events it causes. Builders never touch the service's state; :class:`~enate_routing.admin.Administration`
runs one under its lock after the version check, then records the events and swaps the configuration in.
An edit that changes nothing returns the same configuration and no events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel

from enate_routing._loading import parse_config
from enate_routing._model import Config, Connector, Fallback, IncomingRoute, OutgoingRoute
from enate_routing.admin._history import FieldChange, HistoryAction, HistorySubject, field_changes
from enate_routing.admin._search import RouteRow, route_rows
from enate_routing.errors import ConfigError, NotFoundError, NotTestedError, PermissionDeniedError, ReorderRefusedError

TargetKind = Literal["customer", "contract", "service", "process"]

# Fields whose value is a table: a partial edit merges into them one level deep instead of replacing them.
_NESTED_FIELDS = frozenset({"target", "rules", "incoming", "outgoing"})


@dataclass(frozen=True, slots=True)
class GridSort:
    """How the host's routes grid is sorted right now: a column name and a direction."""

    column: str
    direction: Literal["asc", "desc"] = "asc"


PRIORITY_ASCENDING = GridSort("priority", "asc")
"""The only grid sort under which routes may be moved (docs/semantics.md §7)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One history event an edit causes; the service adds actor, time and version."""

    subject: HistorySubject
    action: HistoryAction
    changes: tuple[FieldChange, ...] = ()
    note: str = ""


Build = Callable[[Config], tuple[Config, list[Event]]]
Passed = Callable[[Connector], bool]
"""Whether a connector's current settings passed a connection test (the service knows; builders ask)."""


# --- helpers ------------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return text.strip().casefold()


def linked_routes(
    config: Config, kind: TargetKind, name: str, *, customer: str | None = None
) -> tuple[RouteRow, ...]:
    """The incoming routes and fallbacks whose target names the deleted ``kind`` called ``name`` (§7).

    Names compare case-insensitively (listing one route too many is cheaper than leaving one creating work).
    A contract, service or process may be qualified by its ``customer``; a customer may not.
    Rows come in priority order.
    """
    if kind not in get_args(TargetKind):
        raise ValueError(f"cannot list routes by {kind!r}; a deleted target is a customer, contract, service or "
                         "process")
    if kind == "customer" and customer is not None:
        raise ValueError("a customer is not qualified by a customer; leave customer out")
    wanted, owner = _fold(name), None if customer is None else _fold(customer)
    return tuple(
        row for row in route_rows(config)
        if _fold(getattr(row.delivery.target, kind)) == wanted
        and (owner is None or _fold(row.delivery.target.customer) == owner)
    )


def rebuild(config: Config, **sections: Sequence[object]) -> Config:
    """A new Config with some sections replaced, validated like a file (located ConfigError on problems).

    Unchanged objects are passed as model instances, which pydantic does not re-validate, so an edit costs
    one object's validation plus the cross-object checks, not a whole re-parse.
    """
    data: dict[str, Any] = {field: getattr(config, field) for field in Config.model_fields}
    data.update({section: list(entries) for section, entries in sections.items()})
    return parse_config(data)


def merged(model: BaseModel, changes: Mapping[str, Any]) -> dict[str, Any]:
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


def fallback_index(config: Config, connector: str) -> int | None:
    return next((i for i, f in enumerate(config.fallbacks) if f.connector == connector), None)


def _outgoing_index(config: Config, name: str) -> int:
    for index, route in enumerate(config.outgoing_routes):
        if route.name == name:
            return index
    raise NotFoundError(f"no outgoing route is called {name!r}")


def connector_index(config: Config, name: str) -> int:
    for index, connector in enumerate(config.connectors):
        if connector.name == name:
            return index
    raise NotFoundError(f"no connector is called {name!r}")


def _route_subject(route: IncomingRoute) -> HistorySubject:
    return HistorySubject("route", connector=route.connector, name=route.name)


def fallback_subject(fallback: Fallback) -> HistorySubject:
    return HistorySubject("fallback", connector=fallback.connector)


def _outgoing_subject(route: OutgoingRoute) -> HistorySubject:
    return HistorySubject("outgoing_route", name=route.name)


def connector_subject(connector: Connector) -> HistorySubject:
    return HistorySubject("connector", connector=connector.name)


def edited(
    subject: HistorySubject, old: BaseModel, new: BaseModel, action: HistoryAction = "edited", note: str = ""
) -> list[Event]:
    changes = field_changes(old, new)
    return [Event(subject, action, changes, note)] if changes else []


def _require_priority_sort(sort: GridSort) -> None:
    # docs/semantics.md §7: on a grid sorted otherwise, the row the admin drops a route next to is not its
    # neighbour in priority, so a move would not do what the screen shows.
    if sort.column.strip().casefold() != "priority" or sort.direction != "asc":
        direction = "ascending" if sort.direction == "asc" else "descending"
        raise ReorderRefusedError(
            f"the grid is sorted by {sort.column} {direction}; sort it by priority ascending to move routes"
        )


# --- incoming routes and fallbacks ----------------------------------------------------------------------


def add_route(route: Mapping[str, Any]) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        new_config = rebuild(config, routes=[*config.routes, dict(route)])
        new = new_config.routes[-1]
        return new_config, [Event(_route_subject(new), "created", field_changes(None, new))]

    return build


def edit_route(connector: str, name: str, changes: Mapping[str, Any], action: HistoryAction) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        index = _route_index(config, connector, name)
        old = config.routes[index]
        _refuse_connector_change(old, changes)
        data = merged(old, changes)
        routes: list[object] = list(config.routes)
        if _is_wildcard_data(data) != old.is_wildcard:  # it changes tier: it goes last in the new one
            del routes[index]
            routes.append(data)
            index = len(routes) - 1
        else:
            routes[index] = data
        new_config = rebuild(config, routes=routes)
        new = new_config.routes[index]
        return new_config, edited(_route_subject(new), old, new, action)

    return build


def delete_route(connector: str, name: str) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        index = _route_index(config, connector, name)
        old = config.routes[index]
        new_config = rebuild(config, routes=[*config.routes[:index], *config.routes[index + 1:]])
        return new_config, [Event(_route_subject(old), "deleted", field_changes(old, None))]

    return build


def move_route(connector: str, name: str, position: int, sort: GridSort, may_reorder: Callable[[], bool],
               actor: str) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        if not may_reorder():
            raise PermissionDeniedError(f"{actor!r} may not reorder the routes of connector {connector!r}")
        _require_priority_sort(sort)
        fallback = fallback_index(config, connector)
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
        return rebuild(config, routes=routes), [Event(_route_subject(route), "moved", (change,), tier)]

    return build


def edit_fallback(connector: str, changes: Mapping[str, Any]) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        index = fallback_index(config, connector)
        if index is None:
            raise NotFoundError(f"connector {connector!r} has no fallback")
        old = config.fallbacks[index]
        _refuse_connector_change(old, changes)
        fallbacks: list[object] = list(config.fallbacks)
        fallbacks[index] = merged(old, changes)
        new_config = rebuild(config, fallbacks=fallbacks)
        new = new_config.fallbacks[index]
        return new_config, edited(fallback_subject(new), old, new)

    return build


def disable_linked_routes(
    kind: TargetKind, name: str, customer: str | None,
    report: list[tuple[tuple[RouteRow, ...], tuple[RouteRow, ...]]],
) -> Build:
    """Disable the enabled routes pointing at a deleted target; appends (linked, disabled) to ``report``."""
    note = f"{kind} {name!r} was deleted" + (f" (customer {customer!r})" if customer else "")

    def build(config: Config) -> tuple[Config, list[Event]]:
        linked = linked_routes(config, kind, name, customer=customer)
        targets = {(r.connector, r.name) for r in linked if not r.is_fallback and r.enabled}
        report.append((linked, tuple(r for r in linked if (r.connector, r.name) in targets)))
        if not targets:
            return config, []
        routes: list[object] = [
            merged(r, {"enabled": False}) if (r.connector, r.name) in targets else r for r in config.routes
        ]
        new_config = rebuild(config, routes=routes)
        events = [
            Event(_route_subject(new), "disabled", field_changes(old, new), note)
            for old, new in zip(config.routes, new_config.routes, strict=True)
            if (old.connector, old.name) in targets
        ]
        return new_config, events

    return build


# --- outgoing routes ------------------------------------------------------------------------------------


def add_outgoing_route(route: Mapping[str, Any], passed: Passed) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        new_config = rebuild(config, outgoing_routes=[*config.outgoing_routes, {"enabled": False, **route}])
        new = new_config.outgoing_routes[-1]
        _require_tested_connector(new_config, None, new, passed)
        return new_config, [Event(_outgoing_subject(new), "created", field_changes(None, new))]

    return build


def edit_outgoing_route(name: str, changes: Mapping[str, Any], action: HistoryAction, passed: Passed) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        index = _outgoing_index(config, name)
        old = config.outgoing_routes[index]
        routes: list[object] = list(config.outgoing_routes)
        routes[index] = merged(old, changes)
        new_config = rebuild(config, outgoing_routes=routes)
        new = new_config.outgoing_routes[index]
        _require_tested_connector(new_config, old, new, passed)
        return new_config, edited(_outgoing_subject(new), old, new, action)

    return build


def delete_outgoing_route(name: str) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        index = _outgoing_index(config, name)
        old = config.outgoing_routes[index]
        routes = [*config.outgoing_routes[:index], *config.outgoing_routes[index + 1:]]
        return rebuild(config, outgoing_routes=routes), [
            Event(_outgoing_subject(old), "deleted", field_changes(old, None))
        ]

    return build


def _require_tested_connector(config: Config, old: OutgoingRoute | None, new: OutgoingRoute, passed: Passed) -> None:
    # docs/semantics.md §3.2: an outgoing route is enabled only after a passed test of its connector's current
    # settings.
    if not new.enabled or (old is not None and old.enabled and old.connector == new.connector):
        return
    connector = config.connector(new.connector)
    if not passed(connector):
        raise NotTestedError(
            f"outgoing route {new.name!r}: connector {connector.name!r} has no passed connection test of its "
            "current settings; test it before enabling the route (docs/semantics.md §3.2)"
        )
