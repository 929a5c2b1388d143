"""The administration history (docs/semantics.md §7) in PostgreSQL, behind the same protocol as SQLite's.

:class:`PostgresHistoryStore` implements :class:`~enate_routing.admin.HistoryStore`: one edit's entries in one
transaction, ``seq`` assigned by the database. Appends from several admin processes are serialised by a
transaction-scoped advisory lock, so ``seq`` order is commit order and one edit's entries are adjacent (an
identity column alone would let a later commit hold a lower ``seq``). Secrets arrive already redacted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from enate_routing._closing import ClosedOnExit
from enate_routing.admin._history import HistoryEntry, HistorySubject, _entry_from_row
from enate_routing.postgres._driver import PostgresDatabase
from enate_routing.postgres._migrations import migrate

__all__ = ["PostgresHistoryStore"]

_APPEND_LOCK = 0x656E617466  # an arbitrary constant naming "history appends"
_COLUMNS = "seq, kind, connector, name, action, actor, at, version, changes, note"


class PostgresHistoryStore(ClosedOnExit):
    """History entries in a PostgreSQL database (``postgresql://`` URL; the password is never shown)."""

    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        self._db = PostgresDatabase(url, what="history database")
        try:
            if migrate_schema:
                migrate(self._db)
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresHistoryStore({self._db.shown!r})"

    def append(self, entries: Sequence[HistoryEntry]) -> tuple[HistoryEntry, ...]:
        stored: list[HistoryEntry] = []
        with self._db.transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
            for entry in entries:
                cursor.execute(
                    "INSERT INTO enate_history (kind, connector, name, action, actor, at, version, changes, note) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING seq",
                    (entry.subject.kind, entry.subject.connector, entry.subject.name, entry.action, entry.actor,
                     entry.at.isoformat(), entry.version,
                     json.dumps([[c.field, c.old, c.new] for c in entry.changes], ensure_ascii=False), entry.note),
                )
                row = cursor.fetchone()
                stored.append(replace(entry, seq=int(row[0]) if row else 0))
        return tuple(stored)

    def entries(self, subject: HistorySubject | None = None) -> tuple[HistoryEntry, ...]:
        if subject is None:
            rows = self._db.query(f"SELECT {_COLUMNS} FROM enate_history ORDER BY seq")  # noqa: S608 — constant SQL
        else:
            rows = self._db.query(
                f"SELECT {_COLUMNS} FROM enate_history WHERE kind = %s AND connector = %s AND name = %s "  # noqa: S608
                "ORDER BY seq",
                (subject.kind, subject.connector, subject.name),
            )
        return tuple(_entry_from_row(row) for row in rows)

    def close(self) -> None:
        self._db.close()

