"""Saving (docs/configuration.md): one variable per inline secret, the file's permissions and links kept, a
file that cannot be written named."""

from __future__ import annotations

from pathlib import Path

import pytest

from admin.helpers import base_data
from config.test_saving import HAND_KEPT
from enate_routing import load_config, save_config
from enate_routing._loading import parse_config
from enate_routing.admin import Administration, AllowAll
from enate_routing.errors import ConfigError


def test_connectors_whose_names_give_the_same_variable_get_distinct_references(tmp_path: Path) -> None:
    """"Sales EU" and "Sales-EU" both spell ENATE_ROUTING_SALES_EU_PASSWORD: the second gets its own name,
    so one connector never logs in with the other's password, and both are returned to the host."""
    data = base_data()
    sales = data["connectors"][1]
    data["connectors"].append({**sales, "name": "Sales-EU", "password": "eu-pw", "primary_address": "eu@acme.example"})
    data["fallbacks"].append({**data["fallbacks"][1], "connector": "Sales-EU", "address": "eu@acme.example"})
    sales["name"] = "Sales EU"
    for route in [*data["routes"], *data["fallbacks"][:2]]:
        if route["connector"] == "Sales":
            route["connector"] = "Sales EU"
    config = parse_config(data)
    path = tmp_path / "routing.toml"
    written = save_config(config, path)
    assert written == {
        "ENATE_ROUTING_SUPPORT_PASSWORD": "connector 'Support': password",
        "ENATE_ROUTING_SALES_EU_PASSWORD": "connector 'Sales EU': password",
        "ENATE_ROUTING_SALES_EU_PASSWORD_2": "connector 'Sales-EU': password",
    }
    environ = {"ENATE_ROUTING_SUPPORT_PASSWORD": "s", "ENATE_ROUTING_SALES_EU_PASSWORD": "sales-pw",
               "ENATE_ROUTING_SALES_EU_PASSWORD_2": "eu-pw"}
    saved = load_config(path)
    assert [c.password_value(environ) for c in saved.connectors if c.name.startswith("Sales")] == ["sales-pw", "eu-pw"]


def test_a_reference_never_takes_a_variable_another_connector_already_names(tmp_path: Path) -> None:
    """A connector whose password_env already is ENATE_ROUTING_SALES_PASSWORD keeps it to itself."""
    data = base_data()
    data["connectors"][0]["password_env"] = "ENATE_ROUTING_SALES_PASSWORD"
    del data["connectors"][0]["password"]
    written = save_config(parse_config(data), tmp_path / "routing.toml")
    assert written == {"ENATE_ROUTING_SALES_PASSWORD_2": "connector 'Sales': password"}


def test_saving_keeps_a_private_file_private(tmp_path: Path) -> None:
    """A file made owner-only because it holds secrets stays owner-only after a save (it was 0644 after the
    replace); a new file written with include_secrets=True is owner-only from the start."""
    config = parse_config(base_data())
    path = tmp_path / "routing.toml"
    save_config(config, path, include_secrets=True)
    assert path.stat().st_mode & 0o077 == 0
    path.chmod(0o640)
    save_config(config, path, include_secrets=True)
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["routing.toml"]  # no temporary file left behind


def test_a_file_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    """An unwritable place is a ConfigError naming the file, not a raw OSError."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    target = blocker / "routing.toml"
    with pytest.raises(ConfigError, match="cannot write the configuration") as caught:
        save_config(parse_config(base_data()), target)
    assert str(target) in str(caught.value)


def test_a_password_typed_over_a_reference_is_saved_as_the_returned_reference(tmp_path: Path) -> None:
    """The connector had password_env; an admin types a password in (password_env cleared). The save returned
    ENATE_ROUTING_SUPPORT_PASSWORD but wrote no reference at all, so the connector lost its password."""
    path = tmp_path / "routing.toml"
    path.write_text(HAND_KEPT, encoding="utf-8")
    admin = Administration(load_config(path), permissions=AllowAll(), environ={})
    revision = admin.edit_connector("Support", {"password": "typed-in", "password_env": None}, actor="ann",
                                    expected_version=1)
    written = save_config(revision.config, path)
    assert written == {"ENATE_ROUTING_SUPPORT_PASSWORD": "connector 'Support': password"}
    text = path.read_text(encoding="utf-8")
    assert 'password_env = "ENATE_ROUTING_SUPPORT_PASSWORD"' in text and "typed-in" not in text
    saved = load_config(path).connectors[0]
    assert saved.password_value({"ENATE_ROUTING_SUPPORT_PASSWORD": "typed-in"}) == "typed-in"


def test_saving_through_a_symbolic_link_updates_the_file_it_points_at(tmp_path: Path) -> None:
    """A configuration linked into place (ln -s /srv/conf/routing.toml) stays linked: the save replaced the
    link itself with a plain file, so the real file kept the old configuration."""
    real = tmp_path / "conf" / "routing.toml"
    real.parent.mkdir()
    real.write_text(HAND_KEPT, encoding="utf-8")
    link = tmp_path / "routing.toml"
    link.symlink_to(real)
    admin = Administration(load_config(link), permissions=AllowAll(), environ={})
    revision = admin.edit_route("Support", "Urgent", {"ticket_category": "P1"}, actor="ann", expected_version=1)
    save_config(revision.config, link)
    assert link.is_symlink()
    assert load_config(real) == revision.config
