"""README.md stays true: its embedding example runs, and every command it lists exists."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

from enate_routing._cli import build_parser

README = Path(__file__).parents[1] / "README.md"
DATA = Path(str(files("enate_routing") / "data"))


def test_embedding_example_runs_on_the_demo_data(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's Python example, pointed at the bundled demo data, routes a mail and prints its trace."""
    text = README.read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(.*?)```", text, re.S)
    message = DATA / "demo_mail" / "11-two-routed-addresses.eml"
    assert message.exists()
    code = (example.replace('"routing.toml"', repr(str(DATA / "demo.toml")))
            .replace('"mail.eml"', repr(str(message)))
            .replace('connector="Support"', 'connector="Contoso Support"'))
    exec(compile(code, str(README), "exec"), {})  # noqa: S102 - running our own README is the point
    out = capsys.readouterr().out
    decisions = [line for line in out.splitlines() if re.fullmatch(r"create .* [0-9a-f]{32}", line)]
    assert len(decisions) == 2 and "Fabrikam invoices" in out and "HOLDS" in out


def test_every_listed_command_exists() -> None:
    """Each `enate-routing COMMAND` in the README is a command of the parser."""
    text = README.read_text(encoding="utf-8")
    listed = set(re.findall(r"^enate-routing ([a-z-]+)", text, re.M))
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert listed and listed <= commands
    assert {"check", "schema", "route", "explain", "diff", "test-connection", "poll", "demo"} <= commands
