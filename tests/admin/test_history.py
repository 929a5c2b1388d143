"""Activity history (docs/semantics.md §7): created, edits old → new, who, when; secrets redacted; durable in SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from admin.helpers import INCIDENT, SUPPORT_PASSWORD, BrokenStore, FakeClock
from enate_routing._model import Config
from enate_routing.admin import (
    PRIORITY_ASCENDING,
    REDACTED,
    Administration,
    AllowAll,
    HistoryEntry,
    HistorySubject,
    MemoryHistoryStore,
    SQLiteHistoryStore,
    field_changes,
    history_of,
)
from enate_routing.errors import AdminError, StoreError

NEW_ROUTE = {"connector": "Support", "name": "New", "address": "support@acme.example", "target": INCIDENT}
NEW_SUBJECT = HistorySubject("route", "Support", "New")


def run_edits(admin: Administration) -> None:
    """A sequence of edits by two admins: create, edit, rename, move, disable."""
    admin.add_route(NEW_ROUTE, actor="ann", expected_version=1)
    admin.edit_route("Support", "New", {"ticket_category": "Ops", "rules": {"senders": "*globex.example"}},
                     actor="bob", expected_version=2)
    admin.edit_route("Support", "New", {"name": "Renamed"}, actor="ann", expected_version=3)
    admin.move_route("Support", "Renamed", 1, sort=PRIORITY_ASCENDING, actor="ann", expected_version=4)
    admin.set_route_enabled("Support", "Renamed", False, actor="bob", expected_version=5)


def summary(entries: tuple[HistoryEntry, ...]) -> list[tuple[str, str, int, str]]:
    return [(e.action, e.actor, e.version, e.at.strftime("%H:%M")) for e in entries]


def test_history_of_a_sequence_of_edits(admin: Administration) -> None:
    """Each edit adds one entry with action, actor, version and the injected clock's time, oldest first."""
    run_edits(admin)
    entries = admin.history(HistorySubject("route", "Support", "Renamed"))
    assert summary(entries) == [
        ("created", "ann", 2, "09:00"),
        ("edited", "bob", 3, "09:01"),
        ("edited", "ann", 4, "09:02"),
        ("moved", "ann", 5, "09:03"),
        ("disabled", "bob", 6, "09:04"),
    ]
    created, edited, renamed, moved, disabled = entries
    assert created.change("target.process") is not None
    assert [(c.field, c.old, c.new) for c in edited.changes] == [
        ("ticket_category", None, "Ops"), ("rules.senders", [], ["*globex.example"])]
    assert [(c.field, c.old, c.new) for c in renamed.changes] == [("name", "New", "Renamed")]
    assert [(c.field, c.old, c.new) for c in moved.changes] == [("priority", 4, 1)]
    assert [(c.field, c.old, c.new) for c in disabled.changes] == [("enabled", True, False)]


def test_deleted_route_keeps_its_history(admin: Administration) -> None:
    """Deleting a route adds a 'deleted' entry listing its last values; earlier entries stay."""
    admin.add_route(NEW_ROUTE, actor="ann", expected_version=1)
    admin.delete_route("Support", "New", actor="bob", expected_version=2)
    created, deleted = admin.history(NEW_SUBJECT)
    assert (created.action, deleted.action, deleted.actor) == ("created", "deleted", "bob")
    change = deleted.change("name")
    assert change is not None and (change.old, change.new) == ("New", None)


def test_secrets_are_redacted(admin: Administration) -> None:
    """A password change is recorded as changed but its values are never written, in any entry (semantics.md §2)."""
    admin.edit_connector("Support", {"password": "brand-new-secret"}, actor="ann", expected_version=1)
    admin.add_connector(
        {"name": "Help", "service": "other", "username": "h", "password": "help-secret-pw",
         "primary_address": "help@acme.example", "use_for": "incoming",
         "incoming": {"protocol": "imap", "host": "h.example", "port": 993, "security": "ssl"}},
        fallback={"target": INCIDENT}, actor="ann", expected_version=2,
    )
    (edit,) = admin.history(HistorySubject("connector", "Support"))
    change = edit.change("password")
    assert change is not None and change.old == change.new == REDACTED
    assert edit.change("enabled") is not None  # the settings change disabled it
    assert "disabled until" in edit.note
    everything = repr(admin.history_store.entries())
    for secret in (SUPPORT_PASSWORD, "brand-new-secret", "help-secret-pw"):
        assert secret not in everything


def test_connection_tests_are_recorded(admin: Administration) -> None:
    """A recorded connection test is in the connector's history with its outcome and the current version."""
    admin.record_connection_test("Relay", False, actor="ann", expected_version=1)
    (entry,) = admin.history(HistorySubject("connector", "Relay"))
    assert (entry.action, entry.version, entry.note) == ("tested", 1, "connection test failed")


def test_field_changes_compare_secrets_by_value(config: Config) -> None:
    """Re-entering the same password is no change; a different one is a redacted change."""
    connector = config.connector("Support")
    same = connector.model_validate({**connector.model_dump(), "password": SUPPORT_PASSWORD})
    assert field_changes(connector, same) == ()
    other = connector.model_validate({**connector.model_dump(), "password": SUPPORT_PASSWORD + "!"})
    assert [(c.field, c.old, c.new) for c in field_changes(connector, other)] == [("password", REDACTED, REDACTED)]


def test_sqlite_history_survives_reopening(tmp_path: Path, config: Config) -> None:
    """Entries written through SQLiteHistoryStore are all there, equal, after closing and reopening the file."""
    path = tmp_path / "history.sqlite"
    with SQLiteHistoryStore(path) as store:
        admin = Administration(config, permissions=AllowAll(), history=store, clock=FakeClock(), environ={})
        run_edits(admin)
        written = store.entries()
    with SQLiteHistoryStore(path) as reopened:
        assert reopened.entries() == written
        followed = history_of(reopened, HistorySubject("route", "Support", "Renamed"))
        assert summary(followed)[0] == ("created", "ann", 2, "09:00")
        assert reopened.entries(HistorySubject("route", "Support", "Nope")) == ()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_memory_and_sqlite_stores_agree(tmp_path: Path, config: Config) -> None:
    """The same edits give the same entries in both stores."""
    memory = MemoryHistoryStore()
    Administration(config, permissions=AllowAll(), history=memory, clock=FakeClock(), environ={}).add_route(
        NEW_ROUTE, actor="ann", expected_version=1)
    with SQLiteHistoryStore(tmp_path / "h.sqlite") as sqlite_store:
        Administration(config, permissions=AllowAll(), history=sqlite_store, clock=FakeClock(), environ={}).add_route(
            NEW_ROUTE, actor="ann", expected_version=1)
        assert sqlite_store.entries() == memory.entries()


def test_failed_history_write_applies_nothing(config: Config) -> None:
    """When the history cannot be written the edit is not applied: same configuration, same version."""
    admin = Administration(config, permissions=AllowAll(), history=BrokenStore(), clock=FakeClock(), environ={})
    with pytest.raises(StoreError):
        admin.add_route(NEW_ROUTE, actor="ann", expected_version=1)
    assert admin.revision.config is config
    assert admin.version == 1


def test_unreadable_database_is_a_store_error(tmp_path: Path) -> None:
    """A file that is not an SQLite database raises StoreError, not sqlite3's own error."""
    path = tmp_path / "not-a-db.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not-a-db"):
        SQLiteHistoryStore(path)


def test_edit_needs_an_actor(admin: Administration) -> None:
    """An edit without an actor is refused: history must say who."""
    with pytest.raises(AdminError, match="actor"):
        admin.add_route(NEW_ROUTE, actor=" ", expected_version=1)


def test_a_new_route_with_a_used_name_has_only_its_own_history(admin: Administration) -> None:
    """History follows an object, not a name: a route added under a deleted route's name, or under the name
    another route was renamed away from, starts its history at its own creation (docs/administration.md)."""
    admin.add_route(NEW_ROUTE, actor="ann", expected_version=1)
    admin.edit_route("Support", "New", {"ticket_category": "Ops"}, actor="ann", expected_version=2)
    admin.edit_route("Support", "New", {"name": "Renamed"}, actor="ann", expected_version=3)
    admin.add_route(NEW_ROUTE, actor="bob", expected_version=4)  # a second route called "New"
    assert summary(admin.history(NEW_SUBJECT)) == [("created", "bob", 5, "09:03")]
    assert [e.version for e in admin.history(HistorySubject("route", "Support", "Renamed"))] == [2, 3, 4]

    admin.delete_route("Support", "New", actor="bob", expected_version=5)
    admin.add_route(NEW_ROUTE, actor="cy", expected_version=6)  # and a third, after the second was deleted
    assert summary(admin.history(NEW_SUBJECT)) == [("created", "cy", 7, "09:05")]

    admin.delete_route("Support", "New", actor="cy", expected_version=7)
    admin.edit_route("Support", "Renamed", {"name": "New"}, actor="ann", expected_version=8)  # renamed back
    assert [e.version for e in admin.history(NEW_SUBJECT)] == [2, 3, 4, 9]


def test_a_route_renamed_into_a_freed_name_does_not_take_its_history(admin: Administration) -> None:
    """A1 is renamed away, then A2 takes the name A1: A1's old entries stay with the route now called Old."""
    admin.edit_route("Support", "A1", {"for_attention": "Mail"}, actor="ann", expected_version=1)
    admin.edit_route("Support", "A1", {"name": "Old"}, actor="ann", expected_version=2)
    admin.edit_route("Support", "A2", {"name": "A1"}, actor="bob", expected_version=3)
    taken = admin.history(HistorySubject("route", "Support", "A1"))
    assert [(e.version, e.actor) for e in taken] == [(4, "bob")]
    assert [e.version for e in admin.history(HistorySubject("route", "Support", "Old"))] == [2, 3]
