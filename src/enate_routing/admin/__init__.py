"""Administration: the typed API a host's admin screen calls (docs/administration.md).

* :class:`Administration`, the service: current configuration, version, lock and commit, passed
  connection tests (``_service``);
* pure edit builders behind its methods (``_edits``, ``_connectors``);
* the routes grid and its start-with search, :class:`RouteIndex` (``_search``);
* the activity history of edits, :class:`HistoryStore` and its two stores (``_history``).

Import from ``enate_routing.admin``; the underscored modules are the implementation.
"""

from enate_routing.admin._edits import PRIORITY_ASCENDING, GridSort, TargetKind, linked_routes
from enate_routing.admin._history import (
    REDACTED,
    FieldChange,
    HistoryAction,
    HistoryEntry,
    HistoryStore,
    HistorySubject,
    HistorySubjectKind,
    MemoryHistoryStore,
    SQLiteHistoryStore,
    field_changes,
    history_of,
)
from enate_routing.admin._search import COLUMNS, Column, RouteIndex, RouteRow, Tier, linear_search, route_rows
from enate_routing.admin._service import (
    Administration,
    AllowAll,
    ConnectionTestOutcome,
    LinkedRoutesReport,
    Permissions,
    Revision,
    SaveConfig,
)

__all__ = [
    "COLUMNS",
    "PRIORITY_ASCENDING",
    "REDACTED",
    "Administration",
    "AllowAll",
    "Column",
    "ConnectionTestOutcome",
    "FieldChange",
    "GridSort",
    "HistoryAction",
    "HistoryEntry",
    "HistoryStore",
    "HistorySubject",
    "HistorySubjectKind",
    "LinkedRoutesReport",
    "MemoryHistoryStore",
    "Permissions",
    "Revision",
    "RouteIndex",
    "RouteRow",
    "SQLiteHistoryStore",
    "SaveConfig",
    "TargetKind",
    "Tier",
    "field_changes",
    "history_of",
    "linear_search",
    "linked_routes",
    "route_rows",
]
