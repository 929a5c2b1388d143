"""A configuration file for command-line tests, in a working directory of its own."""

from __future__ import annotations

from pathlib import Path

import pytest


def config_in_empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    """``text`` written as ``routing.toml`` in ``tmp_path``, which becomes the working directory, with no
    ledger named in the environment: the files a command creates by default land in this empty folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENATE_ROUTING_LEDGER", raising=False)
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    return path
