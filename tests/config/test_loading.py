"""Loading and saving (docs/semantics.md §6): TOML and JSON, lossless round trips, secrets written only on request."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from config_examples import DOC_EXAMPLE

from enate_routing import config_schema, dump_config, load_config, parse_config, save_config
from enate_routing._cli import main
from enate_routing.errors import ConfigError

SECRET = "Inline-Secret-7"


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_save_then_load_gives_an_equal_config(write_config: Callable[[str], Path], tmp_path: Path,
                                              suffix: str) -> None:
    """save_config then load_config returns a Config equal to the original, in TOML and in JSON."""
    config = load_config(write_config(DOC_EXAMPLE))
    path = tmp_path / f"saved{suffix}"
    save_config(config, path)
    assert load_config(path) == config


def test_json_with_the_same_shape_is_accepted(write_config: Callable[[str], Path], tmp_path: Path) -> None:
    """A JSON file with the TOML file's shape loads to the same Config."""
    config = load_config(write_config(DOC_EXAMPLE))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dump_config(config)), encoding="utf-8")
    assert load_config(path) == config


def test_inline_secrets_are_not_written_unless_asked(write_config: Callable[[str], Path], tmp_path: Path) -> None:
    """An inline password is left out of a saved file by default and written only with include_secrets."""
    text = DOC_EXAMPLE.replace('password_env = "SUPPORT_PASSWORD"', f'password = "{SECRET}"')
    config = load_config(write_config(text))
    plain, secret = tmp_path / "plain.toml", tmp_path / "secret.toml"
    save_config(config, plain)
    save_config(config, secret, include_secrets=True)
    assert SECRET not in plain.read_text(encoding="utf-8")
    assert load_config(plain).connector("Support").password is None
    assert load_config(secret) == config


def test_references_are_written_as_references(write_config: Callable[[str], Path], tmp_path: Path) -> None:
    """A password given by environment variable is saved as the variable's name."""
    config = load_config(write_config(DOC_EXAMPLE))
    path = tmp_path / "saved.toml"
    save_config(config, path)
    assert 'password_env = "SUPPORT_PASSWORD"' in path.read_text(encoding="utf-8")


def test_toml_writer_escapes_awkward_strings(write_config: Callable[[str], Path], tmp_path: Path) -> None:
    """Quotes, backslashes, newlines, tabs and non-ASCII letters survive the TOML writer."""
    awkward = 'Kundenservice "Zürich" \\ tab\there'
    text = DOC_EXAMPLE.replace('process = "Incident"', f"process = {json.dumps(awkward)}")
    config = load_config(write_config(text))
    path = tmp_path / "saved.toml"
    save_config(config, path)
    assert load_config(path).routes[1].target.process == awkward


def test_unreadable_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing configuration file is a ConfigError naming the file; check exits 1 without a traceback."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_config(missing)
    assert main(["check", "--config", str(missing)]) == 1
    err = capsys.readouterr().err
    assert "nope.toml" in err and "Traceback" not in err


def test_json_syntax_error_names_line(tmp_path: Path) -> None:
    """Invalid JSON names the file, line and column."""
    path = tmp_path / "broken.json"
    path.write_text('{"connectors": [}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.json: invalid JSON at line 1"):
        load_config(path)


def test_schema_command_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`schema` prints a JSON Schema that describes connectors, routes and fallbacks."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == config_schema()
    assert {"connectors", "routes", "fallbacks", "companies", "blocked", "linking"} <= set(schema["properties"])


def test_parse_config_accepts_a_mapping() -> None:
    """parse_config validates in-memory data the same way as a file, naming the route in errors."""
    with pytest.raises(ConfigError, match="route 'R' of connector 'C'"):
        parse_config({"routes": [{"connector": "C", "name": "R", "address": "x",
                                  "target": {"customer": "a", "contract": "b", "service": "c", "process": "d",
                                             "kind": "ticket"}}]})


def test_a_huge_value_is_located_in_a_readable_line() -> None:
    """A 100,000-character route name and address (a file, or an admin screen, hands in anything): each part
    of the line is cut with the length said; the issue keeps the whole text for a program."""
    data = tomllib.loads(DOC_EXAMPLE)
    data["routes"][0]["name"] = "n" * 100_000
    data["routes"][0]["address"] = "a" * 100_000
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    lines = str(caught.value).splitlines()
    assert lines and all(len(line) < 1_000 for line in lines)
    assert any("(100,0" in line and "address" in line for line in lines)
    assert any(issue.where is not None and len(issue.where) > 100_000 for issue in caught.value.issues)
