"""PostgresHistoryStore against a real PostgreSQL: the same entries as the SQLite store, durable, shared."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from enate_routing.admin import (
    REDACTED,
    FieldChange,
    HistoryEntry,
    HistoryStore,
    HistorySubject,
    SQLiteHistoryStore,
    history_of,
)
from enate_routing.errors import StoreError
from enate_routing.postgres import PostgresHistoryStore

pytestmark = [pytest.mark.servers, pytest.mark.postgres]

ROUTE = HistorySubject("route", "Support", "Urgent")
RENAMED = HistorySubject("route", "Support", "Critical")


def edits() -> list[list[HistoryEntry]]:
    at = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    return [
        [HistoryEntry(ROUTE, "created", "ann", at, 2, (FieldChange("rules.senders", [], ["*@globex.example"]),)),
         HistoryEntry(HistorySubject("connector", "Support"), "edited", "ann", at, 2,
                      (FieldChange("password", REDACTED, REDACTED),), note="disabled until tested")],
        [HistoryEntry(RENAMED, "edited", "bob", at.replace(minute=5), 3, (FieldChange("name", "Urgent", "Critical"),))],
        [HistoryEntry(RENAMED, "disabled", "bób ☃", at.replace(minute=9), 4, (FieldChange("enabled", True, False),))],
    ]


def write_and_read(store: HistoryStore) -> tuple[list[tuple[HistoryEntry, ...]], tuple[HistoryEntry, ...],
                                                  tuple[HistoryEntry, ...]]:
    returned = [store.append(edit) for edit in edits()]
    return returned, store.entries(), history_of(store, RENAMED)


def test_same_entries_as_the_sqlite_store(postgres_url: str, tmp_path: Path) -> None:
    """Appends return seq-numbered entries, read back equal, and renames are followed — as in SQLite."""
    with SQLiteHistoryStore(tmp_path / "history.db") as sqlite:
        expected = write_and_read(sqlite)
    with PostgresHistoryStore(postgres_url) as store:
        assert write_and_read(store) == expected
    assert [e.action for e in expected[2]] == ["created", "edited", "disabled"]  # followed the rename
    with PostgresHistoryStore(postgres_url) as reopened:  # durable: another connection sees it all
        assert reopened.entries() == expected[1]
        assert reopened.entries(HistorySubject("route", "Support", "Nope")) == ()


def test_two_admin_processes_append_without_losing_or_reusing_a_seq(postgres_url: str) -> None:
    stores = [PostgresHistoryStore(postgres_url) for _ in range(2)]
    at = datetime(2026, 1, 2, tzinfo=UTC)
    try:
        def append(store: PostgresHistoryStore, actor: str) -> None:
            for i in range(25):
                store.append([HistoryEntry(ROUTE, "edited", actor, at, i), HistoryEntry(ROUTE, "moved", actor, at, i)])

        threads = [threading.Thread(target=append, args=(s, f"admin{n}")) for n, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        entries = stores[0].entries(ROUTE)
        seqs = [e.seq for e in entries]
        assert len(entries) == 100 and seqs == sorted(set(seqs))
        # One edit's two entries are adjacent: appends are atomic and in commit order.
        assert all(entries[i].actor == entries[i + 1].actor for i in range(0, 100, 2))
    finally:
        for store in stores:
            store.close()


def test_unreachable_database_is_a_store_error_without_the_password(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/missing_db"
    with pytest.raises(StoreError, match="history database postgresql://enate@") as caught:
        PostgresHistoryStore(url)
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in str(caught.value)
