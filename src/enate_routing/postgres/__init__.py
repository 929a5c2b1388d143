"""PostgreSQL stores for many workers on many hosts (docs/scaling.md): the ledger and the history.

Needs the optional extra ``enate-routing[postgres]`` (psycopg 3); importing this package does not, opening
a store does. :func:`enate_routing.ingest.open_ledger` picks the ledger by its location (a ``postgresql://``
URL or a SQLite file). The schema is created and migrated by the library (:func:`migrate_database`,
``enate-routing ledger migrate``).
"""

from __future__ import annotations

from enate_routing.postgres._driver import PostgresDatabase, is_postgres_url, redact_url
from enate_routing.postgres._history import PostgresHistoryStore
from enate_routing.postgres._ledger import PostgresLedger
from enate_routing.postgres._migrations import LATEST, Migration, current_version, migrate

__all__ = [
    "LATEST_SCHEMA_VERSION",
    "PostgresHistoryStore",
    "PostgresLedger",
    "is_postgres_url",
    "migrate_database",
    "redact_url",
]

LATEST_SCHEMA_VERSION = LATEST


def migrate_database(url: str) -> tuple[int, int, list[Migration]]:
    """Bring the database at ``url`` to the latest schema: (version before, version after, steps applied)."""
    db = PostgresDatabase(url, what="ingestion ledger")
    try:
        before = current_version(db)
        applied = migrate(db)
        return before, current_version(db), applied
    finally:
        db.close()
