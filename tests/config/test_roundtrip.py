"""Save → load is lossless for any configuration a strategy builds (semantics.md §7)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from enate_routing import load_config, parse_config, save_config
from enate_routing.testing.strategies import config_data

# Any Unicode text but surrogates (which no UTF-8 file can hold); TOML and JSON escape the rest.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40).filter(str.strip)
# Any character a password may hold: a line break or NUL would end a protocol command, so loading refuses them.
SECRET = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"), min_size=1, max_size=50)


@st.composite
def rich_config_data(draw: st.DrawFn) -> dict[str, Any]:
    """config_data() plus inline secrets and free text in every text field a user types."""
    data = draw(config_data())
    for connector in data["connectors"]:
        if draw(st.booleans()):
            connector["password"] = draw(SECRET)
        else:
            connector["password_env"] = draw(st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True))
    for route in [*data["routes"], *data["fallbacks"]]:
        route["target"] = {**route["target"], "process": draw(TEXT), "customer": draw(TEXT)}
        if draw(st.booleans()):
            route["for_attention"] = draw(TEXT)
    for out in data["outgoing_routes"]:
        out["description"] = draw(TEXT)
    return data


@given(data=rich_config_data(), suffix=st.sampled_from([".toml", ".json"]))
def test_save_then_load_is_lossless(data: dict[str, Any], suffix: str) -> None:
    """For any generated configuration, save_config(include_secrets=True) then load_config gives an equal Config."""
    config = parse_config(data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"config{suffix}"
        save_config(config, path, include_secrets=True)
        assert load_config(path) == config


@given(password=SECRET)
def test_passwords_are_kept_exactly(password: str) -> None:
    """A password keeps its surrounding whitespace and every character through validation and a TOML round trip."""
    data = {"connectors": [{"name": "C", "service": "other", "username": "u", "password": password,
                            "primary_address": "c@acme.example", "use_for": "outgoing",
                            "outgoing": {"host": "smtp.acme.example", "port": 587, "security": "starttls",
                                         "auth": "username-password"}}]}
    config = parse_config(data)
    assert config.connector("C").password_value() == password
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        save_config(config, path, include_secrets=True)
        assert load_config(path).connector("C").password_value() == password


@settings(max_examples=40)  # two configurations and two saves per example
@given(first=rich_config_data(), second=rich_config_data())
def test_saving_over_an_existing_file_is_lossless(first: dict[str, Any], second: dict[str, Any]) -> None:
    """Saving configuration B over a file holding A (layout kept, tomlkit) loads back as exactly B."""
    old, new = parse_config(first), parse_config(second)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        save_config(old, path, include_secrets=True)
        save_config(new, path, include_secrets=True)
        assert load_config(path) == new
