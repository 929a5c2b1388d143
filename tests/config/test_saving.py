"""Saving keeps a hand-kept file and never writes a secret in clear unless asked (docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from admin.helpers import FakeClock
from enate_routing import load_config, save_config
from enate_routing._loading import secret_reference
from enate_routing.admin import PRIORITY_ASCENDING, Administration, AllowAll
from enate_routing.errors import ConfigError

HAND_KEPT = '''# Routing for Acme. Owner: the service desk (ext. 4711).

[[connectors]]
name = "Support"            # the shared help desk mailbox
service = "other"
username = "support@acme.example"
password_env = "SUPPORT_PASSWORD"
primary_address = "support@acme.example"
use_for = "incoming"
incoming = { protocol = "imap", host = "mail.acme.example", port = 993, security = "ssl" }

# Invoices first: finance wants them before anything else.
[[routes]]
connector = "Support"
name = "Invoices"
address = "support@acme.example"
target = { customer = "Globex", contract = "2026", service = "Finance", process = "Invoice query", kind = "case" }
rules = { senders = "*globex.example", attachment_types = ".pdf; .xlsx" }

[[routes]]
connector = "Support"
name = "Urgent"
address = "support@acme.example"
target = { customer = "Acme", contract = "Internal", service = "IT", process = "Incident", kind = "ticket" }
rules = { subject_keywords = "urgent; outage" }   # keep in sync with the status page

[[fallbacks]]
connector = "Support"
address = "support@acme.example"
target = { customer = "Acme", contract = "Internal", service = "IT", process = "General", kind = "ticket" }
'''


@pytest.fixture
def hand_kept(tmp_path: Path) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(HAND_KEPT, encoding="utf-8")
    return path


def admin_for(path: Path) -> Administration:
    return Administration(load_config(path), permissions=AllowAll(), clock=FakeClock())


def test_unchanged_configuration_saves_the_file_byte_for_byte(hand_kept: Path) -> None:
    """Loading and saving without an edit leaves the file exactly as written (comments, order, list style)."""
    save_config(load_config(hand_kept), hand_kept)
    assert hand_kept.read_text(encoding="utf-8") == HAND_KEPT


def test_an_edit_changes_only_its_value(hand_kept: Path) -> None:
    """An admin edit rewrites the changed value only; comments and the other routes' text stay."""
    admin = admin_for(hand_kept)
    revision = admin.edit_route("Support", "Urgent", {"ticket_category": "P1", "rules": {"subject_keywords":
                                "urgent; outage; down"}}, actor="ann", expected_version=1)
    save_config(revision.config, hand_kept)
    text = hand_kept.read_text(encoding="utf-8")
    assert load_config(hand_kept) == revision.config
    assert text.startswith("# Routing for Acme. Owner: the service desk (ext. 4711).\n")
    assert 'name = "Support"            # the shared help desk mailbox' in text
    assert "# Invoices first: finance wants them before anything else." in text
    assert 'attachment_types = ".pdf; .xlsx"' in text  # untouched list keeps its style
    assert 'subject_keywords = "urgent; outage; down"' in text  # changed list keeps the string style
    assert 'ticket_category = "P1"' in text
    changed = [line for line in text.splitlines() if line not in HAND_KEPT.splitlines()]
    assert len(changed) <= 3, changed


def test_a_moved_route_is_written_in_its_new_order(hand_kept: Path) -> None:
    """Reordering writes the routes in the new priority order, each keeping its own comment."""
    admin = admin_for(hand_kept)
    revision = admin.move_route("Support", "Urgent", 1, sort=PRIORITY_ASCENDING, actor="ann", expected_version=1)
    save_config(revision.config, hand_kept)
    text = hand_kept.read_text(encoding="utf-8")
    assert [r.name for r in load_config(hand_kept).routes] == ["Urgent", "Invoices"]
    assert text.index('name = "Urgent"') < text.index('name = "Invoices"')
    assert "# keep in sync with the status page" in text


def test_added_and_deleted_objects(hand_kept: Path) -> None:
    """A new route is appended as a table; a deleted one disappears; the rest stays."""
    admin = admin_for(hand_kept)
    version = admin.delete_route("Support", "Invoices", actor="ann", expected_version=1).version
    revision = admin.add_route({"connector": "Support", "name": "Printers", "address": "support@acme.example",
                                "target": {"customer": "Acme", "contract": "Internal", "service": "IT",
                                           "process": "Printers", "kind": "ticket"},
                                "rules": {"subject_keywords": "printer"}}, actor="ann", expected_version=version)
    save_config(revision.config, hand_kept)
    assert load_config(hand_kept) == revision.config
    text = hand_kept.read_text(encoding="utf-8")
    assert 'name = "Invoices"' not in text and 'name = "Printers"' in text
    assert "# keep in sync with the status page" in text


def test_inline_secrets_are_saved_as_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An inline password is written as a reference (its value never); the returned map names the variable."""
    path = tmp_path / "routing.toml"
    path.write_text(HAND_KEPT.replace('password_env = "SUPPORT_PASSWORD"', 'password = "Inline-Secret-7"'),
                    encoding="utf-8")
    config = load_config(path)
    written = save_config(config, path)
    name = secret_reference("Support", "password")
    assert written == {name: "connector 'Support': password"} and name == "ENATE_ROUTING_SUPPORT_PASSWORD"
    text = path.read_text(encoding="utf-8")
    assert "Inline-Secret-7" not in text and f'password_env = "{name}"' in text
    monkeypatch.setenv(name, "Inline-Secret-7")
    assert load_config(path).connector("Support").password_value() == "Inline-Secret-7"


def test_secret_written_in_clear_only_when_asked(tmp_path: Path) -> None:
    """include_secrets=True is the explicit request to write the value."""
    path = tmp_path / "routing.toml"
    path.write_text(HAND_KEPT.replace('password_env = "SUPPORT_PASSWORD"', 'password = "Inline-Secret-7"'),
                    encoding="utf-8")
    config = load_config(path)
    assert save_config(config, path, include_secrets=True) == {}
    assert load_config(path) == config


def test_an_invalid_existing_file_is_not_overwritten(hand_kept: Path) -> None:
    """When the file on disk does not load, its layout cannot be kept: a located error, the file untouched."""
    config = load_config(hand_kept)
    hand_kept.write_text(HAND_KEPT.replace("port = 993", "port = 0"), encoding="utf-8")
    with pytest.raises(ConfigError, match="layout cannot be kept"):
        save_config(config, hand_kept)
    assert "port = 0" in hand_kept.read_text(encoding="utf-8")
    save_config(config, hand_kept, keep_layout=False)
    assert load_config(hand_kept) == config


def test_missing_tomlkit_is_an_actionable_error(hand_kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the toml-edit extra, keeping a file's layout fails with the command that installs it."""
    from enate_routing import _toml_edit

    monkeypatch.setattr(_toml_edit, "tomlkit", None)
    config = load_config(hand_kept)
    with pytest.raises(ConfigError, match=r"pip install 'enate-routing\[toml-edit\]'") as caught:
        save_config(config, hand_kept)
    assert caught.value.file == str(hand_kept)
    assert hand_kept.read_text(encoding="utf-8") == HAND_KEPT


def test_new_file_needs_no_tomlkit(tmp_path: Path, hand_kept: Path) -> None:
    """A file that does not exist yet is written by the built-in writer and loads back equal."""
    config = load_config(hand_kept)
    target = tmp_path / "new.toml"
    save_config(config, target)
    assert load_config(target) == config


def test_the_bundled_demo_file_survives_a_save_unchanged(tmp_path: Path) -> None:
    """The demo configuration (comments, inline tables, raw strings) is rewritten byte for byte."""
    from importlib import resources

    original = (resources.files("enate_routing") / "data" / "demo.toml").read_text(encoding="utf-8")
    path = tmp_path / "demo.toml"
    path.write_text(original, encoding="utf-8")
    save_config(load_config(path, verify_certificates=False), path)
    assert path.read_text(encoding="utf-8") == original


def test_free_tables_and_normalised_values_keep_their_spelling(tmp_path: Path) -> None:
    """[companies] entries, a blocked address in capitals and [linking] stay as written unless they change."""
    from enate_routing._loading import dump_config, parse_config

    text = HAND_KEPT + '''
[companies]
"Globex Corporation" = "*globex.example; ceo.globex@gmail.com"   # both of Globex's domains
Initech = ["*initech.example"]

[[blocked]]
address = "*SPAM.example"
action = "reject"
'''
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    save_config(config, path)
    assert path.read_text(encoding="utf-8") == text
    data = dump_config(config, include_secrets=True)
    data["companies"]["Initech"] = ["*initech.example", "*initech.test"]
    changed = parse_config(data)
    save_config(changed, path)
    saved = path.read_text(encoding="utf-8")
    assert load_config(path) == changed
    assert '"Globex Corporation" = "*globex.example; ceo.globex@gmail.com"   # both of Globex\'s domains' in saved
    assert 'address = "*SPAM.example"' in saved
    assert saved.count("\n") == text.count("\n")


def test_two_blocked_entries_for_one_address_stay_two(hand_kept: Path) -> None:
    """[[blocked]] tables are matched by address; two entries for the same address (the first wins) are the
    first and the second of the file, not one table written twice with the last entry's action."""
    old = load_config(hand_kept)
    twice = [{"address": "*spam.example", "action": "reject"}, {"address": "*spam.example", "action": "reject"}]
    save_config(old.model_validate({**old.model_dump(), "blocked": twice}), hand_kept)
    new = old.model_validate({**old.model_dump(), "blocked": [{**twice[0], "action": "no-automated-emails"},
                                                               twice[1]]})
    save_config(new, hand_kept)
    assert [entry.action for entry in load_config(hand_kept).blocked] == ["no-automated-emails", "reject"]
