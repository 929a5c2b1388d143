"""Edits saved through the host's ``save`` callback (docs/administration.md): the file, the history and the
Administration agree — a refused save records nothing, a failed history write undoes the save."""

from __future__ import annotations

from pathlib import Path

import pytest

from admin.helpers import INCIDENT, BrokenStore, FakeClock
from enate_routing import load_config, save_config
from enate_routing._model import Config
from enate_routing.admin import Administration, AllowAll, HistorySubject, MemoryHistoryStore
from enate_routing.errors import ConcurrentEditError, StoreError

NEW_ROUTE = {"connector": "Support", "name": "New", "address": "support@acme.example", "target": INCIDENT}
SUPPORT = HistorySubject("connector", "Support")
NEW = HistorySubject("route", "Support", "New")


@pytest.fixture
def saved(config: Config, tmp_path: Path) -> Path:
    path = tmp_path / "routing.toml"
    save_config(config, path, include_secrets=True)
    return path


def admin_saving_to(path: Path, history: MemoryHistoryStore) -> Administration:
    def save(new: Config, old: Config) -> None:
        save_config(new, path, expected=old, include_secrets=True)

    return Administration(load_config(path), permissions=AllowAll(), history=history, clock=FakeClock(),
                          environ={}, save=save)


def test_an_edit_is_saved_before_it_is_recorded(saved: Path) -> None:
    history = MemoryHistoryStore()
    admin = admin_saving_to(saved, history)
    revision = admin.add_route(NEW_ROUTE, actor="ann", expected_version=1)
    assert load_config(saved) == revision.config
    assert "New" in [r.name for r in load_config(saved).routes]
    assert [e.action for e in admin.history(NEW)] == ["created"]


def test_a_refused_save_records_nothing(saved: Path) -> None:
    """Someone changed the file by hand since it was loaded: the edit raises and leaves no trace."""
    history = MemoryHistoryStore()
    admin = admin_saving_to(saved, history)
    before = admin.revision
    saved.write_text(saved.read_text(encoding="utf-8").replace("Support", "Helpdesk"), encoding="utf-8")
    hand_edited = saved.read_bytes()
    with pytest.raises(ConcurrentEditError, match="changed since it was read"):
        admin.add_route(NEW_ROUTE, actor="ann", expected_version=1)
    assert history.entries() == ()
    assert admin.revision == before
    assert saved.read_bytes() == hand_edited  # the hand edit survives


def test_a_failed_history_write_undoes_the_save(saved: Path) -> None:
    admin = admin_saving_to(saved, BrokenStore())
    before = admin.revision
    with pytest.raises(StoreError, match="disk full"):
        admin.add_route(NEW_ROUTE, actor="ann", expected_version=1)
    assert load_config(saved) == before.config  # the file holds the configuration the history describes
    assert admin.revision == before


def test_without_a_save_callback_the_host_saves(config: Config, tmp_path: Path) -> None:
    """The callback is optional: an Administration with none changes no file."""
    admin = Administration(config, permissions=AllowAll(), clock=FakeClock(), environ={})
    admin.add_route(NEW_ROUTE, actor="ann", expected_version=1)
    assert list(tmp_path.iterdir()) == []
