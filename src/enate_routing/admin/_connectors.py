"""Pure edit builders for connectors and their fallbacks (docs/semantics.md §2, §3.1, §3.2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from enate_routing._model import Config, Connector
from enate_routing.admin._edits import (
    Build,
    Event,
    Passed,
    connector_index,
    connector_subject,
    edited,
    fallback_index,
    fallback_subject,
    merged,
    rebuild,
)
from enate_routing.admin._history import HistoryAction, field_changes
from enate_routing.errors import ConfigError, ConnectorLiveError, NotTestedError

SettingsChanged = Callable[[Connector, Connector], bool]
"""Whether two versions of a connector differ in what a connection test depends on."""


def add_connector(connector: Mapping[str, Any], fallback: Mapping[str, Any] | None) -> Build:
    if connector.get("enabled") is True:
        raise NotTestedError(
            f"connector {connector.get('name')!r}: a new connector starts disabled; enable it after a passed "
            "connection test (docs/semantics.md §2)"
        )

    def build(config: Config) -> tuple[Config, list[Event]]:
        sections: dict[str, list[object]] = {"connectors": [*config.connectors, {**connector, "enabled": False}]}
        if fallback is not None:
            defaults = {"connector": connector.get("name"), "address": connector.get("primary_address")}
            sections["fallbacks"] = [*config.fallbacks, {**defaults, **fallback}]
        new_config = rebuild(config, **sections)
        new = new_config.connectors[-1]
        events = [Event(connector_subject(new), "created", field_changes(None, new))]
        if fallback is not None:
            new_fallback = new_config.fallbacks[-1]
            events.append(Event(fallback_subject(new_fallback), "created", field_changes(None, new_fallback)))
        return new_config, events

    return build


def edit_connector(
    name: str,
    changes: Mapping[str, Any],
    fallback: Mapping[str, Any] | None,
    action: HistoryAction,
    passed: Passed,
    settings_changed: SettingsChanged,
) -> Build:
    def build(config: Config) -> tuple[Config, list[Event]]:
        index = connector_index(config, name)
        old = config.connectors[index]
        if "name" in changes and changes["name"] != old.name:
            # History, passed tests and every route refer to the connector by name.
            raise ConfigError.single("a connector cannot be renamed; add a new connector instead",
                                     where=f"connector {name!r}", field="name", item=str(changes["name"]))
        data = merged(old, changes)
        _refuse_live_switch(config, old, data)
        connectors: list[object] = list(config.connectors)
        connectors[index] = data
        fallbacks = _fallbacks_after(config, old, changes, fallback)
        new_config = rebuild(config, connectors=connectors, fallbacks=fallbacks)
        new = new_config.connectors[index]
        note = ""
        if new.enabled and not passed(new) and (not old.enabled or settings_changed(old, new)):
            if changes.get("enabled") is True:
                raise NotTestedError(
                    f"connector {name!r}: enabling needs a passed connection test of its current settings "
                    "(docs/semantics.md §2)"
                )
            # docs/semantics.md §2: changed connection settings disable the connector until they are tested.
            connectors[index] = {**data, "enabled": False}
            new_config = rebuild(config, connectors=connectors, fallbacks=fallbacks)
            new = new_config.connectors[index]
            note = "connection settings changed: disabled until a connection test of them passes"
        events = edited(connector_subject(new), old, new, action, note)
        old_index, new_index = fallback_index(config, name), fallback_index(new_config, name)
        if new_index is not None:
            new_fallback = new_config.fallbacks[new_index]
            if old_index is None:
                events.append(Event(fallback_subject(new_fallback), "created", field_changes(None, new_fallback)))
            else:
                events += edited(fallback_subject(new_fallback), config.fallbacks[old_index], new_fallback)
        elif old_index is not None:
            old_fallback = config.fallbacks[old_index]
            events.append(Event(fallback_subject(old_fallback), "deleted", field_changes(old_fallback, None)))
        return new_config, events

    return build


def _refuse_live_switch(config: Config, old: Connector, data: Mapping[str, Any]) -> None:
    # docs/semantics.md §3.2: mail is being sent through a live outgoing connector; switching it to incoming
    # would silently stop that, so it must first be disabled (or its outgoing routes).
    if not (old.uses_outgoing and data.get("use_for") == "incoming" and old.enabled):
        return
    live = [r.name for r in config.outgoing_routes if r.connector == old.name and r.enabled]
    if live:
        raise ConnectorLiveError(
            f"connector {old.name!r} is live for outgoing mail (enabled outgoing routes: {', '.join(live)}) "
            "and cannot be switched to incoming; disable it or those routes first (docs/semantics.md §3.2)"
        )


def _fallbacks_after(
    config: Config, old: Connector, changes: Mapping[str, Any], fallback: Mapping[str, Any] | None
) -> list[object]:
    fallbacks: list[object] = list(config.fallbacks)
    index = fallback_index(config, old.name)
    if index is not None and fallback is None and changes.get("use_for") == "outgoing":
        # docs/semantics.md §3.1: only an incoming connector has a fallback, and it cannot be deleted on its
        # own; it goes with the incoming side (routes still on the connector are the usual located error).
        del fallbacks[index]
        return fallbacks
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
        fallbacks[index] = merged(config.fallbacks[index], update)
    return fallbacks
