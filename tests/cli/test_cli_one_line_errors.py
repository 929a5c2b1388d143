"""The command line never prints a traceback (issue 13 item 6): each error case as a real subprocess.

Every case checks the exit code, exactly one line on stderr, and no "Traceback". Subprocesses inherit
PYTHONPATH, so they run this checkout's code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

DATA = Path(str(resources.files("enate_routing") / "data"))
DEMO = DATA / "demo.toml"
MAIL = sorted((DATA / "demo_mail").glob("*.eml"))


def enate(*args: str | bytes, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m enate_routing`` with ``args`` (bytes for file names that are not UTF-8)."""
    command: list[str | bytes] = [sys.executable, "-m", "enate_routing", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, timeout=120,
                          env={**os.environ, **(env or {})}, check=False)


def one_error_line(result: subprocess.CompletedProcess[bytes], code: int) -> str:
    """The single stderr line, after checking the exit code and that no traceback was printed."""
    stderr = result.stderr.decode("utf-8", "surrogateescape")
    assert "Traceback" not in stderr
    assert result.returncode == code, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_check_on_a_file_nested_2000_deep(tmp_path: Path, suffix: str) -> None:
    """A 2,000-deep nested array (RecursionError in the parsers) is one error naming the file."""
    deep = "[" * 2000 + "]" * 2000
    path = tmp_path / f"deep{suffix}"
    path.write_text(f"a = {deep}\n" if suffix == ".toml" else f'{{"a": {deep}}}', encoding="utf-8")
    line = one_error_line(enate("check", "--config", str(path), cwd=tmp_path), 1)
    assert str(path) in line  # the wording depends on the parser of the Python version (3.13 reads it all)


@pytest.mark.parametrize("content", ['{"work_items": [' + "9" * 5000 + "]}", '{"a": ' + "[" * 100_000 + "}"])
def test_work_items_with_a_huge_number_or_deep_nesting(tmp_path: Path, content: str) -> None:
    """A 5,000-digit integer (more than Python converts: ValueError) or 100,000 levels of nesting in the
    --work-items file is one error naming the file; the first was an internal error (exit 70)."""
    path = tmp_path / "items.json"
    path.write_text(content, encoding="utf-8")
    line = one_error_line(enate("route", "--config", str(DEMO), "--work-items", str(path), str(MAIL[0]),
                                cwd=tmp_path), 1)
    assert str(path) in line and "cannot read the work items" in line


def test_poll_out_is_a_folder(tmp_path: Path) -> None:
    """poll --out DIR is refused before anything starts, as a usage error."""
    line = one_error_line(enate("poll", "--config", str(DEMO), "Contoso Support", "--out", str(tmp_path),
                                "--once", cwd=tmp_path), 2)
    assert "--out" in line and "is a folder" in line


def test_poll_out_cannot_be_written(tmp_path: Path) -> None:
    """An --out under a plain file cannot be created (root included): one usage error line."""
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    line = one_error_line(enate("poll", "--config", str(DEMO), "Contoso Support", "--out",
                                str(blocker / "out.jsonl"), "--once", cwd=tmp_path), 2)
    assert "is a file, not a folder" in line


def test_unwritable_output_at_run_time_is_one_line(tmp_path: Path) -> None:
    """An OSError while running (the ledger path is a folder) is one line naming the path."""
    state = tmp_path / "state"
    state.mkdir()
    result = enate("poll", "--config", str(DEMO), "Contoso Support", "--out", str(tmp_path / "out.jsonl"),
                   "--state", str(state), "--once", cwd=tmp_path, env={"CONTOSO_SUPPORT_PASSWORD": "x"})
    line = one_error_line(result, 1)
    assert str(state) in line or "state" in line


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_poll_timeout_must_be_positive_seconds(tmp_path: Path, value: str) -> None:
    """--timeout 0, -1, nan, inf or text: one usage error, exit 2."""
    line = one_error_line(enate("poll", "--config", str(DEMO), "Contoso Support", "--out",
                                str(tmp_path / "o.jsonl"), "--timeout", value, cwd=tmp_path), 2)
    assert "--timeout" in line


def test_explain_given_a_folder_of_two_messages(tmp_path: Path) -> None:
    """explain takes one message; a folder of two is one error naming the folder."""
    folder = tmp_path / "two"
    folder.mkdir()
    for path in MAIL[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    line = one_error_line(enate("explain", "--config", str(DEMO), str(folder), cwd=tmp_path), 1)
    assert "2 messages" in line and str(folder) in line


def test_non_utf8_file_name_is_printed_as_its_bytes(tmp_path: Path) -> None:
    """A missing message named b'\\xff\\xfe.eml' gives one error line carrying those very bytes."""
    name = b"\xff\xfe-missing.eml"
    result = enate("explain", "--config", str(DEMO), name, cwd=tmp_path)
    one_error_line(result, 1)
    assert name in result.stderr


def test_non_utf8_file_name_in_normal_output(tmp_path: Path) -> None:
    """A message file with a non-UTF-8 name is explained; its name comes out as its bytes, exit 0."""
    name = b"\xff\xfe.eml"
    (tmp_path / os.fsdecode(name)).write_bytes(MAIL[0].read_bytes())  # the surrogateescape'd str name
    result = enate("explain", "--config", str(DEMO), name, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout.startswith(name + b": from ")


def test_ascii_output_encoding_escapes(tmp_path: Path) -> None:
    """PYTHONIOENCODING=ascii: check's '—' comes out as a backslash escape, exit 0."""
    result = enate("check", "--config", str(DEMO), cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0 and b"Traceback" not in result.stderr
    assert b"OK \\u2014 " in result.stdout


def test_ascii_error_output_escapes(tmp_path: Path) -> None:
    """PYTHONIOENCODING=ascii and an error with non-ASCII text: still one line, escaped."""
    result = enate("explain", "--config", str(DEMO), "späť.eml", cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    line = one_error_line(result, 1)
    assert "sp\\xe4\\u0165.eml" in line


def test_bad_command_line_is_one_line(tmp_path: Path) -> None:
    """argparse's usage text is replaced by one line; exit 2."""
    line = one_error_line(enate("route", cwd=tmp_path), 2)
    assert "--config" in line
