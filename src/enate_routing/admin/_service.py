"""The administration service: lock, version and commit (docs/semantics.md §2 life cycle, §3.1, §3.2, §7).

:class:`Administration` holds the current :class:`~enate_routing._model.Config` and its ``version``. Every
edit:

* names its ``actor`` and the ``expected_version`` the screen read; a stale version raises
  :class:`~enate_routing.errors.ConcurrentEditError`, so two admins never silently overwrite each other;
* builds a whole new configuration through a pure builder (:mod:`._edits`, :mod:`._connectors`), which
  validates it like a file, so an invalid edit raises the same located
  :class:`~enate_routing.errors.ConfigError` as ``check`` (route, field, item);
* is saved through the host's ``save`` callback when one is given (a refused save applies nothing), then
  written to the history, and only then swapped in: an edit is applied completely or not at all, and the
  old configuration object is never changed (models are frozen);
* returns a :class:`Revision` (the new configuration and version) that the host compiles (and saves, when it
  passes no ``save`` callback).

Where docs/semantics.md is silent, the decisions are written down in ``docs/administration.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from enate_routing._model import Config, Connector
from enate_routing.admin import _connectors as connector_edits
from enate_routing.admin import _edits as edits
from enate_routing.admin._edits import Build, GridSort, TargetKind, connector_index, connector_subject, linked_routes
from enate_routing.admin._history import (
    HistoryAction,
    HistoryEntry,
    HistoryStore,
    HistorySubject,
    MemoryHistoryStore,
    history_of,
    utc_now,
)
from enate_routing.admin._search import RouteIndex, RouteRow
from enate_routing.errors import AdminError, ConcurrentEditError

SaveConfig = Callable[[Config, Config], object]
"""The host's save, called as ``save(new, old)`` inside an edit (e.g. ``save_config(new, path, expected=old)``)."""


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


def _enabled_action(enabled: bool) -> HistoryAction:
    return "enabled" if enabled else "disabled"


class Administration:
    """The current configuration, its version, passed connection tests, permissions, history and clock.

    Thread-safe: edits are serialised by a lock, and each one checks ``expected_version`` under it.
    ``tested`` restores the fingerprints of passed connection tests (see :attr:`tested_fingerprints`);
    ``environ`` is where ``password_env`` references are read when fingerprinting (default ``os.environ``).
    ``save``, when given, writes each edit before it is recorded (see :meth:`_commit`).
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
        save: SaveConfig | None = None,
    ) -> None:
        self._config = config
        self._save = save
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
            return self._passed(self._config.connectors[connector_index(self._config, connector)])

    def history(self, subject: HistorySubject) -> tuple[HistoryEntry, ...]:
        """The activity history of one connector, route, fallback or outgoing route, renames followed."""
        return history_of(self._history, subject)

    def search(self, filters: Mapping[str, str] | None = None, *, connector: str | None = None) -> tuple[RouteRow, ...]:
        """Start-with search over the routes grid (see :class:`~enate_routing.admin.RouteIndex`), priority order."""
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

    def _commit(self, actor: str, expected_version: int, build: Build) -> Revision:
        """Apply one edit: saved (``save``), then recorded in the history, then swapped in; all or nothing.

        A save that raises (``ConcurrentEditError``: the file changed under us) leaves no trace: no history
        entry, no new version. A history store that fails after the save puts the old configuration back
        through ``save`` before the StoreError propagates, so the file, the history and this object agree.
        """
        _require_actor(actor)
        with self._lock:
            self._check_version(expected_version)
            old = self._config
            config, events = build(old)
            if not events:  # nothing changed: no new version, no history
                return Revision(old, self._version)
            version, at = self._version + 1, self._clock()
            entries = [HistoryEntry(e.subject, e.action, actor, at, version, e.changes, e.note) for e in events]
            if self._save is not None:
                self._save(config, old)
            try:
                self._history.append(entries)
            except BaseException:
                if self._save is not None:
                    self._save(old, config)  # undo the save: the edit is not applied
                raise
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

    def _settings_changed(self, old: Connector, new: Connector) -> bool:
        return old.settings_fingerprint(self._environ) != new.settings_fingerprint(self._environ)

    # --- incoming routes and fallbacks ----------------------------------------------------------------------

    def add_route(self, route: Mapping[str, Any], *, actor: str, expected_version: int) -> Revision:
        """Add an incoming route; it goes last in its connector's tier (address or wildcard, §3.1)."""
        return self._commit(actor, expected_version, edits.add_route(route))

    def edit_route(
        self, connector: str, name: str, changes: Mapping[str, Any], *, actor: str, expected_version: int
    ) -> Revision:
        """Change some fields of a route (``target`` and ``rules`` merge). A route whose address moves it to
        the other tier (to or from ``*``) goes last in its new tier."""
        return self._commit(actor, expected_version, edits.edit_route(connector, name, changes, "edited"))

    def set_route_enabled(
        self, connector: str, name: str, enabled: bool, *, actor: str, expected_version: int
    ) -> Revision:
        """Enable or disable an incoming route."""
        build = edits.edit_route(connector, name, {"enabled": enabled}, _enabled_action(enabled))
        return self._commit(actor, expected_version, build)

    def delete_route(self, connector: str, name: str, *, actor: str, expected_version: int) -> Revision:
        """Delete an incoming route (never the fallback: docs/semantics.md §3.1 requires one per incoming connector)."""
        return self._commit(actor, expected_version, edits.delete_route(connector, name))

    def move_route(
        self, connector: str, name: str, position: int, *, sort: GridSort, actor: str, expected_version: int
    ) -> Revision:
        """Move a route to ``position`` (1-based priority) within its connector's tier (docs/semantics.md §3.1, §7).

        Refused with PermissionDeniedError unless the host grants ``can_reorder``; with ReorderRefusedError
        when the grid is not sorted by priority ascending, for the fallback, and for a position outside the
        route's tier (which would cross into another tier). Other connectors' routes keep their places.
        """
        build = edits.move_route(connector, name, position, sort,
                                 lambda: self._permissions.can_reorder(actor, connector), actor)
        return self._commit(actor, expected_version, build)

    def edit_fallback(
        self, connector: str, changes: Mapping[str, Any], *, actor: str, expected_version: int
    ) -> Revision:
        """Change some fields of a connector's fallback (it stays enabled, last and on the primary address)."""
        return self._commit(actor, expected_version, edits.edit_fallback(connector, changes))

    # --- outgoing routes ------------------------------------------------------------------------------------

    def add_outgoing_route(self, route: Mapping[str, Any], *, actor: str, expected_version: int) -> Revision:
        """Add an outgoing route. It starts disabled unless ``enabled`` is given true, which needs a passed
        connection test of its connector (docs/semantics.md §3.2)."""
        return self._commit(actor, expected_version, edits.add_outgoing_route(route, self._passed))

    def edit_outgoing_route(
        self, name: str, changes: Mapping[str, Any], *, actor: str, expected_version: int
    ) -> Revision:
        """Change some fields of an outgoing route (enabling, or moving an enabled one to another connector,
        needs a passed test of the connector)."""
        build = edits.edit_outgoing_route(name, changes, "edited", self._passed)
        return self._commit(actor, expected_version, build)

    def set_outgoing_route_enabled(self, name: str, enabled: bool, *, actor: str, expected_version: int) -> Revision:
        """Enable (after a passed connection test of its connector, §3.2) or disable an outgoing route."""
        build = edits.edit_outgoing_route(name, {"enabled": enabled}, _enabled_action(enabled), self._passed)
        return self._commit(actor, expected_version, build)

    def delete_outgoing_route(self, name: str, *, actor: str, expected_version: int) -> Revision:
        """Delete an outgoing route."""
        return self._commit(actor, expected_version, edits.delete_outgoing_route(name))

    # --- connectors -----------------------------------------------------------------------------------------

    def add_connector(
        self,
        connector: Mapping[str, Any],
        *,
        fallback: Mapping[str, Any] | None = None,
        actor: str,
        expected_version: int,
    ) -> Revision:
        """Add a connector; it starts disabled (§2). An incoming connector needs its ``fallback`` (target
        and options; the address defaults to the connector's primary address) in the same edit (§3.1)."""
        return self._commit(actor, expected_version, connector_edits.add_connector(connector, fallback))

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
        (enabled, used by an enabled outgoing route) cannot be switched to incoming (§3.2). Changing the
        primary address moves the fallback with it; ``fallback`` edits the fallback (or adds it, when the
        connector becomes incoming) in the same edit.
        """
        return self._commit(actor, expected_version, self._connector_edit(name, changes, fallback, "edited"))

    def set_connector_enabled(self, name: str, enabled: bool, *, actor: str, expected_version: int) -> Revision:
        """Enable a connector whose current settings passed a connection test (§2), or disable one."""
        build = self._connector_edit(name, {"enabled": enabled}, None, _enabled_action(enabled))
        return self._commit(actor, expected_version, build)

    def _connector_edit(
        self, name: str, changes: Mapping[str, Any], fallback: Mapping[str, Any] | None, action: HistoryAction
    ) -> Build:
        return connector_edits.edit_connector(name, changes, fallback, action, self._passed, self._settings_changed)

    def record_connection_test(
        self,
        name: str,
        result: bool | ConnectionTestOutcome | Iterable[ConnectionTestOutcome],
        *,
        actor: str,
        expected_version: int,
    ) -> Revision:
        """Record a connection test of connector ``name``'s settings at ``expected_version``.

        ``result`` is what the connection test returned: the sequence of one result per direction
        (:func:`~enate_routing.transports._factory.check_connection`), a single result, or a bool. The test
        passed only when every result passed, the sequence is not empty and, when the results name their
        protocol, they cover every direction the connector is used for: a ``both`` connector whose sending
        side failed or was not tested is never enabled on the strength of its receiving side.

        A pass remembers the fingerprint of the tested settings, so enabling works until they change; a
        failure forgets any earlier pass (the connector's state is left alone). The configuration and its
        version do not change; the version check makes sure the settings tested are the current ones.
        """
        _require_actor(actor)
        with self._lock:
            self._check_version(expected_version)
            connector = self._config.connectors[connector_index(self._config, name)]
            passed, detail = _outcome(result, connector)
            fingerprint = connector.settings_fingerprint(self._environ)
            note = "connection test passed" if passed else "connection test failed"
            self._history.append([HistoryEntry(
                connector_subject(connector), "tested", actor, self._clock(), self._version,
                note=f"{note}{detail}",
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
        """Disable every enabled incoming route pointing at a deleted target, in one edit (§7).

        Fallbacks pointing at it cannot be disabled (docs/semantics.md §3.1); they are reported in ``needs_update``.
        """
        report: list[tuple[tuple[RouteRow, ...], tuple[RouteRow, ...]]] = []
        revision = self._commit(actor, expected_version, edits.disable_linked_routes(kind, name, customer, report))
        linked, disabled = report[-1]
        return LinkedRoutesReport(revision, linked, disabled, tuple(r for r in linked if r.is_fallback))


def _require_actor(actor: str) -> None:
    if not actor.strip():
        raise AdminError("an edit needs the actor who makes it")
    try:
        actor.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a user name decoded from JSON): no history store holds it
        raise AdminError("the actor is not valid Unicode text (a lone surrogate)") from None


def _outcome(
    result: bool | ConnectionTestOutcome | Iterable[ConnectionTestOutcome], connector: Connector
) -> tuple[bool, str]:
    """(passed, a note saying what failed) for any shape a connection test result comes in.

    Results that name their ``protocol`` (the transports' typed result) must together cover every direction
    the connector is used for: an IMAP pass alone never passes a ``both`` connector (docs/semantics.md §2).
    """
    if isinstance(result, bool):
        return result, ""
    results = list(result) if isinstance(result, Iterable) else [result]
    if not results:
        return False, " (no direction was tested)"
    failed = [str(getattr(r, "protocol", "?")) for r in results if not r.ok]
    if failed:
        return False, f" ({', '.join(failed)} failed)"
    protocols = [p for p in (getattr(r, "protocol", None) for r in results) if p is not None]
    if protocols:
        wanted = {d for d, used in (("incoming", connector.uses_incoming), ("outgoing", connector.uses_outgoing))
                  if used}
        missing = wanted - {"outgoing" if p == "smtp" else "incoming" for p in protocols}
        if missing:
            return False, f" ({' and '.join(sorted(missing))} not tested)"
    return True, ""
