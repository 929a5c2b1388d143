"""Text output for people never passes a control character from mail to the terminal (docs/routing.md, Commands).

An ESC in a Message-ID or an address (the envelope keeps them: they are what the mail says) would start an
escape sequence in the operator's terminal when `explain` or `diff` prints it; they are written as ``\\x1b``.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from pathlib import Path

import pytest

from enate_routing._cli import main
from enate_routing._cli._logging import TextFormatter
from enate_routing._decision import visible

DEMO = str(resources.files("enate_routing") / "data" / "demo.toml")
HOSTILE = (b"From: a\x1bcb@example.org\r\nTo: help@contoso.example\r\nCc: z\x07z@example.org\r\n"
           b"Subject: hi \x9b2J\r\nMessage-ID: <x\x1b]52;c;aGk=\x07@example.org>\r\n\r\nbody\r\n")
# Every C0 and C1 control but the line break.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.eml"
    path.write_bytes(HOSTILE)
    return path


def test_explain_writes_controls_from_mail_as_escapes(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--config", DEMO, str(hostile)]) == 0
    out = capsys.readouterr().out
    assert CONTROL.search(out) is None
    assert "from a\\x1bcb@example.org" in out and "message x\\x1b]52;c;aGk=\\x07@example.org" in out
    assert "z\\x07z@example.org" in out


def test_diff_writes_controls_as_escapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A changed decision is printed under its file's name, which may hold an ESC too."""
    message = tmp_path / "x\x1b[2Jy.eml"
    message.write_bytes(HOSTILE.replace(b"a\x1bcb@", b"ann@"))
    quiet = tmp_path / "quiet.toml"
    quiet.write_text(Path(DEMO).read_text(encoding="utf-8").replace("send_automated_emails = true",
                                                                     "send_automated_emails = false"),
                     encoding="utf-8")
    assert main(["diff", "--config", DEMO, "--against", str(quiet), str(message)]) == 0
    out = capsys.readouterr().out
    assert "x\\x1b[2Jy.eml: Help desk" in out and "ann@example.org" in out and CONTROL.search(out) is None


def test_visible_keeps_line_breaks_and_printable_text() -> None:
    assert visible("a\nb ✓ § ü\t\x1b\x85") == "a\nb ✓ § ü\\x09\\x1b\\x85"


def test_a_text_log_record_is_one_line_without_controls() -> None:
    """A reason quoting mail (or a handler's exception) cannot forge a second log line or drive the terminal."""
    record = logging.LogRecord("enate_routing.ingest", logging.WARNING, __file__, 1, "message quarantined", (), None)
    record.reason = "handler failed: bad subject\n12:00:00 error   enate_routing: forged \x1b[2J"
    line = TextFormatter().format(record)
    assert "\n" not in line and CONTROL.search(line) is None
    assert line.endswith("reason=handler failed: bad subject\\x0a12:00:00 error   enate_routing: forged \\x1b[2J")
