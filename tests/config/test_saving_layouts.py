"""Saving over hand-kept files written in less common TOML styles (docs/configuration.md, docs/administration.md):
byte order marks, CRLF line ends, dotted keys, renamed and deleted objects, and a file changed since it was read."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.test_saving import HAND_KEPT, admin_for
from enate_routing import load_config, save_config
from enate_routing.errors import ConcurrentEditError

URGENT_EDIT = {"ticket_category": "P1"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_bytes(text.encode("utf-8"))
    return path


def test_a_byte_order_mark_is_kept_and_the_file_saves(tmp_path: Path) -> None:
    """A file a Windows editor wrote with a BOM loads; saving an edit over it works and keeps the BOM."""
    path = _write(tmp_path, "\ufeff" + HAND_KEPT)
    revision = admin_for(path).edit_route("Support", "Urgent", URGENT_EDIT, actor="ann", expected_version=1)
    save_config(revision.config, path)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf# Routing for Acme.")
    assert load_config(path) == revision.config


def test_crlf_line_ends_are_kept(tmp_path: Path) -> None:
    """A CRLF file stays CRLF after an edit: every line, the new value's included."""
    path = _write(tmp_path, HAND_KEPT.replace("\n", "\r\n"))
    revision = admin_for(path).edit_route("Support", "Urgent", URGENT_EDIT, actor="ann", expected_version=1)
    save_config(revision.config, path)
    data = path.read_bytes()
    assert b'ticket_category = "P1"\r\n' in data
    assert data.count(b"\n") == data.count(b"\r\n")
    assert load_config(path) == revision.config


DOTTED = HAND_KEPT.replace(
    'incoming = { protocol = "imap", host = "mail.acme.example", port = 993, security = "ssl" }',
    'incoming.protocol = "imap"\nincoming.host = "mail.acme.example"   # the new cluster\n'
    'incoming.port = 993\nincoming.security = "ssl"',
)


def test_dotted_keys_stay_dotted(tmp_path: Path) -> None:
    """A table written as dotted keys gets only the changed key rewritten, in place, comment kept."""
    path = _write(tmp_path, DOTTED)
    revision = admin_for(path).edit_connector("Support", {"incoming": {"host": "imap2.acme.example"}},
                                              actor="ann", expected_version=1)
    save_config(revision.config, path)
    text = path.read_text(encoding="utf-8")
    assert 'incoming.host = "imap2.acme.example"   # the new cluster\nincoming.port = 993\n' in text
    assert "incoming = {" not in text
    assert text.index("enabled = false") < text.index("# Invoices first")  # new key stays in its table
    assert load_config(path) == revision.config


@pytest.mark.parametrize("new_name", ["Very urgent", "URGENT"])
def test_a_renamed_route_keeps_its_comments_and_list_style(tmp_path: Path, new_name: str) -> None:
    """A rename is an edit of the route's name, not a delete and an add: its comment and style stay."""
    path = _write(tmp_path, HAND_KEPT)
    revision = admin_for(path).edit_route("Support", "Urgent", {"name": new_name}, actor="ann", expected_version=1)
    save_config(revision.config, path)
    text = path.read_text(encoding="utf-8")
    assert text == HAND_KEPT.replace('name = "Urgent"', f'name = "{new_name}"')
    assert load_config(path) == revision.config


def test_deleting_every_route_removes_the_section(tmp_path: Path) -> None:
    """No ``routes = []`` written above the file's first comment when the last route goes."""
    path = _write(tmp_path, HAND_KEPT)
    admin = admin_for(path)
    admin.delete_route("Support", "Urgent", actor="ann", expected_version=1)
    revision = admin.delete_route("Support", "Invoices", actor="ann", expected_version=2)
    save_config(revision.config, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Routing for Acme.")
    assert "routes" not in text
    assert load_config(path) == revision.config


def test_a_file_changed_since_it_was_read_is_not_overwritten(tmp_path: Path) -> None:
    """Two admin processes (or an admin and a hand edit) on one file: the later save is refused, not lost."""
    path = _write(tmp_path, HAND_KEPT)
    first, second = admin_for(path), admin_for(path)
    read_by_first, read_by_second = first.config, second.config
    one = first.edit_route("Support", "Urgent", URGENT_EDIT, actor="ann", expected_version=1)
    save_config(one.config, path, expected=read_by_first)
    two = second.edit_route("Support", "Invoices", {"for_attention": "Finance"}, actor="bob", expected_version=1)
    before = path.read_bytes()
    with pytest.raises(ConcurrentEditError, match="changed since it was read"):
        save_config(two.config, path, expected=read_by_second)
    assert path.read_bytes() == before
    assert load_config(path) == one.config


def test_the_last_saved_configuration_is_expected_also_when_its_secrets_were_saved_as_references(
        tmp_path: Path) -> None:
    """A password typed in is saved as a reference, so the file no longer holds the configuration object
    saved; passing that object as ``expected`` on the next save is still right, not a ConcurrentEditError."""
    path = _write(tmp_path, HAND_KEPT)
    admin = admin_for(path)
    loaded = admin.config
    typed = admin.edit_connector("Support", {"password": "typed-in", "password_env": None}, actor="ann",
                                 expected_version=1)
    save_config(typed.config, path, expected=loaded)
    edited = admin.edit_route("Support", "Urgent", URGENT_EDIT, actor="ann", expected_version=2)
    save_config(edited.config, path, expected=typed.config)
    assert 'ticket_category = "P1"' in path.read_text(encoding="utf-8")
    path.write_text(path.read_text(encoding="utf-8").replace('"P1"', '"P2"'), encoding="utf-8")  # a hand edit
    again = admin.edit_route("Support", "Urgent", {"for_attention": "Dana"}, actor="ann", expected_version=3)
    with pytest.raises(ConcurrentEditError):
        save_config(again.config, path, expected=edited.config)
