"""What `poll` takes on SIGHUP (docs/ingestion.md, Running poll as a service): the file read again, or — when
it no longer loads or no longer has the connectors `poll` runs — the configuration before, with an error logged.
The signal itself, against a running daemon: tests/ingest/test_unattended_servers.py, tests/scaling."""

from __future__ import annotations

import argparse
import logging
from importlib import resources
from pathlib import Path

import pytest

from enate_routing._cli._poll import _runs_with
from enate_routing._cli._signals import reloaded
from enate_routing._loading import load_config

DEMO = resources.files("enate_routing") / "data" / "demo.toml"
POLLED = "Contoso Support"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_a_file_read_again_replaces_the_configuration(config_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    current = load_config(config_file)
    text = config_file.read_text(encoding="utf-8")
    start = text.index("[[routes]]")
    config_file.write_text(text[:start] + text[text.index("[[routes]]", start + 1):], encoding="utf-8")  # one less
    usable = _runs_with(argparse.Namespace(mailbox="primary"), [POLLED])
    with caplog.at_level(logging.INFO, logger="enate_routing"):
        fresh = reloaded(config_file, current, usable)
    assert len(fresh.routes) == len(current.routes) - 1
    (record,) = caplog.records
    assert (record.getMessage(), record.levelno) == ("configuration reloaded", logging.INFO)
    assert (record.file, record.routes) == (str(config_file), len(fresh.routes))  # type: ignore[attr-defined]


@pytest.mark.parametrize(("edit", "said"), [
    (lambda text: text.replace("[[routes]]", "[[routes]\n", 1), "routing.toml"),  # no longer TOML
    (lambda text: text.replace(f'name = "{POLLED}"', 'name = "Renamed"', 1), "no connector has this name"),
    (lambda text: text.replace("use_for = ", "enabled = false\nuse_for = ", 1), "connector is disabled"),
])
def test_a_file_that_no_longer_serves_the_command_changes_nothing(
        config_file: Path, caplog: pytest.LogCaptureFixture, edit: object, said: str) -> None:
    """Not TOML any more, the polled connector renamed away, or disabled: the configuration before stays in
    force, and one error says why (a reload must never stop a daemon that was working)."""
    current = load_config(config_file)
    config_file.write_text(edit(config_file.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]
    with caplog.at_level(logging.INFO, logger="enate_routing"):
        kept = reloaded(config_file, current, _runs_with(argparse.Namespace(mailbox="primary"), [POLLED]))
    assert kept is current
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.file == str(config_file)  # type: ignore[attr-defined]
    assert record.getMessage().startswith("configuration not reloaded; going on with the one loaded before: ")
    assert said in record.getMessage() and "\n" not in record.getMessage()
