"""PostgreSQL stores for many workers on many hosts (docs/scaling.md): the ledger and the history.

Needs the optional extra ``enate-routing[postgres]`` (psycopg 3); importing this package does not, opening
a store does. A store is chosen by URL: :func:`open_ledger` returns a :class:`PostgresLedger` for a
``postgresql://`` URL and a :class:`~enate_routing.store.SqliteLedger` for a file path. The schema is created
and migrated by the library (:func:`migrate_database`, ``enate-routing ledger migrate``).
"""

from __future__ import annotations

import os

from enate_routing.postgres._driver import PostgresDatabase, is_postgres_url, redact_url
from enate_routing.postgres._history import PostgresHistoryStore
from enate_routing.postgres._ledger import PostgresLedger
from enate_routing.postgres._migrations import LATEST, Migration, current_version, migrate
from enate_routing.store import Ledger, SqliteLedger

__all__ = [
    "LATEST_SCHEMA_VERSION",
    "PostgresHistoryStore",
    "PostgresLedger",
    "is_postgres_url",
    "migrate_database",
    "open_ledger",
    "redact_url",
]

LATEST_SCHEMA_VERSION = LATEST


def open_ledger(location: str | os.PathLike[str]) -> Ledger:
    """The ledger at ``location``: a ``postgresql://`` URL, or the path of a SQLite file."""
    if is_postgres_url(location):
        return PostgresLedger(str(location))
    return SqliteLedger(location)


def migrate_database(url: str) -> tuple[int, int, list[Migration]]:
    """Bring the database at ``url`` to the latest schema: (version before, version after, steps applied)."""
    db = PostgresDatabase(url, what="ingestion ledger")
    try:
        before = current_version(db)
        applied = migrate(db)
        return before, current_version(db), applied
    finally:
        db.close()
