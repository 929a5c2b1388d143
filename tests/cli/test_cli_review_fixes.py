"""Command-line defects found in review: ledger locations, numeric options, the worker's --retry-for, errors
that named the wrong file, message files read whole, unknown options not named."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from cli_config import config_in_empty_cwd

from enate_routing._cli import _routing, main
from enate_routing._loading import load_config
from enate_routing.ingest import Backoff, Ingestor

PASSWORD = "LEDGERPWsecret9"
CONFIG = """\
[[connectors]]
name = "Support"
service = "other"
username = "support@acme.example"
password = "MAILPW-never-shown"
primary_address = "support@acme.example"
use_for = "incoming"
incoming = { protocol = "imap", host = "127.0.0.1", port = 1, security = "ssl" }

[[connectors]]
name = "Sales"
service = "other"
username = "sales@acme.example"
password = "MAILPW-never-shown"
primary_address = "sales@acme.example"
use_for = "incoming"
incoming = { protocol = "imap", host = "127.0.0.1", port = 1, security = "ssl" }

[[fallbacks]]
connector = "Support"
address = "support@acme.example"
target = { customer = "Acme", contract = "Internal", service = "IT", process = "General", kind = "ticket" }

[[fallbacks]]
connector = "Sales"
address = "sales@acme.example"
target = { customer = "Acme", contract = "Internal", service = "Sales", process = "General", kind = "ticket" }

[limits]
max_message_bytes = 1000
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid configuration whose IMAP servers refuse connections (127.0.0.1:1), in an otherwise empty cwd."""
    return config_in_empty_cwd(tmp_path, monkeypatch, CONFIG)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and "unexpected" not in lines[0] and "Traceback" not in captured.err
    return lines[0]


def usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one stderr line of a command line argparse refuses (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return one_error_line(capsys)


# --- 1. the ledger location -----------------------------------------------------------------------------

REFUSED = [
    f"mysql://bob:{PASSWORD}@127.0.0.1:1/db",
    f"postgresql+psycopg://bob:{PASSWORD}@127.0.0.1:1/db",
    f"host=127.0.0.1 user=bob password={PASSWORD}",
    f"postgresql:bob:{PASSWORD}@127.0.0.1:1/db",
    f"postgres://bob:{PASSWORD}@[::1",
]


@pytest.mark.parametrize("location", REFUSED)
def test_ledger_migrate_refuses_what_is_neither_a_postgresql_url_nor_a_file(
        config: Path, capsys: pytest.CaptureFixture[str], location: str) -> None:
    """Other URLs, libpq keyword strings and malformed PostgreSQL URLs: a config error without the password,
    and no file or folder named after them."""
    assert main(["ledger", "migrate", "--ledger", location]) == 1
    line = one_error_line(capsys)
    assert PASSWORD not in line and "ledger " in line and "bob" in line
    assert sorted(p.name for p in config.parent.iterdir()) == ["routing.toml"]


def test_a_libpq_keyword_string_is_told_to_use_a_url(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "migrate", "--ledger", f"host=db user=bob password='{PASSWORD} x'"]) == 1
    line = one_error_line(capsys)
    assert "use a postgresql:// URL" in line and PASSWORD not in line


@pytest.mark.parametrize("location", REFUSED[:3])
def test_poll_refuses_such_a_ledger_from_the_environment(
        config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, location: str) -> None:
    monkeypatch.setenv("ENATE_ROUTING_LEDGER", location)
    assert main(["poll", "--config", str(config), "Support", "--once", "--out", "out.jsonl"]) == 1
    assert PASSWORD not in one_error_line(capsys)
    assert sorted(p.name for p in config.parent.iterdir()) == ["routing.toml"]


def test_the_postgresql_scheme_is_matched_in_any_case(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """libpq knows only the lower-case scheme: it is lower-cased, and the server is tried (nothing listens)."""
    pytest.importorskip("psycopg")
    from enate_routing.postgres._driver import store_url

    assert store_url("PostgreSQL://bob:pw@host/db") == "postgresql://bob:pw@host/db"
    assert main(["ledger", "migrate", "--ledger", f"PostgreSQL://bob:{PASSWORD}@127.0.0.1:1/db"]) == 1
    line = one_error_line(capsys)
    assert line.startswith("error: cannot open the ingestion ledger postgresql://bob@127.0.0.1:1/db: ")
    assert "connection info string" not in line and PASSWORD not in line


@pytest.mark.parametrize("location", ["ledger.db", "./odd:name.db", "sub/x=y.db"])
def test_file_paths_are_still_sqlite_ledgers(config: Path, capsys: pytest.CaptureFixture[str], location: str) -> None:
    (config.parent / "sub").mkdir()
    assert main(["ledger", "migrate", "--ledger", location]) == 0
    assert (config.parent / location).is_file()
    assert capsys.readouterr().out == f"ledger {location}: SQLite schema up to date\n"


# --- 2. --timeout and --batch-size ----------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
@pytest.mark.parametrize("command", [["test-connection", "Support"], ["login", "Support"],
                                     ["poll", "Support", "--out", "o.jsonl"]])
def test_every_timeout_must_be_positive_seconds(config: Path, capsys: pytest.CaptureFixture[str], command: list[str],
                                               value: str) -> None:
    line = usage_error(capsys, [command[0], "--config", str(config), *command[1:], "--timeout", value])
    assert "--timeout" in line and "seconds" in line


@pytest.mark.parametrize("value", ["0", "-5", "x"])
def test_poll_batch_size_must_be_a_positive_whole_number(config: Path, capsys: pytest.CaptureFixture[str],
                                                        value: str) -> None:
    line = usage_error(capsys, ["poll", "--config", str(config), "Support", "--out", "o.jsonl", "--batch-size", value])
    assert "--batch-size" in line


# --- 3. poll --once --retry-for, one connector or several -----------------------------------------------

@pytest.mark.parametrize("names", [["Support"], ["Support", "Sales"]])
def test_poll_once_gives_up_after_retry_for(config: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch, names: list[str]) -> None:
    """Every backoff is 10 s, past --retry-for 1: the unreachable server is given up at once, with no wait,
    whether one connector is polled or a worker drains several (before: eight attempts, seven waits)."""
    waits: list[float] = []
    monkeypatch.setattr(Backoff, "delay", lambda self, attempt, rng: 10.0)
    monkeypatch.setattr(Ingestor, "wait", lambda self, seconds: waits.append(seconds))
    argv = ["poll", "--config", str(config), *names, "--once", "--retry-for", "1", "--out", "o.jsonl"]
    assert main(argv) == 1
    assert "connection refused" in capsys.readouterr().err
    assert waits == []


# --- 4. errors name the file they are about -------------------------------------------------------------

def test_a_recursion_error_does_not_blame_the_first_configuration(
        config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """diff --against DEEP: a RecursionError the command does not place names no file (it used to name --config)."""
    deep = config.parent / "deep.toml"

    def load(path: Path) -> object:
        if path == deep:
            raise RecursionError
        return load_config(path)

    monkeypatch.setattr(_routing, "load_config", load)
    message = config.parent / "m.eml"
    message.write_bytes(b"From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n")
    assert main(["diff", "--config", str(config), "--against", str(deep), str(message)]) == 1
    line = one_error_line(capsys)
    assert str(config) not in line and "nested too deeply" in line


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_check_json_reports_a_file_nested_too_deeply_as_json(config: Path, capsys: pytest.CaptureFixture[str],
                                                             suffix: str) -> None:
    """docs/json-output.md: a file that does not load is `valid: false` with an `invalid` error, still JSON."""
    deep = config.parent / f"deep{suffix}"
    nested = "[" * 5000 + "]" * 5000
    deep.write_text(f"a = {nested}\n" if suffix == ".toml" else f'{{"a": {nested}}}', encoding="utf-8")
    assert main(["check", str(deep), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and [e["code"] for e in report["errors"]] == ["invalid"]
    assert report["errors"][0]["file"] == str(deep)


# --- 5. message files are read up to the size limit -----------------------------------------------------

def _limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # reading /dev/zero whole fails fast


def enate(*args: str, cwd: Path, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m enate_routing`` in 1 GiB of address space."""
    return subprocess.run([sys.executable, "-m", "enate_routing", *args], cwd=cwd, stdin=stdin, capture_output=True,
                          text=True, timeout=120, check=False, preexec_fn=_limited_memory, env=os.environ)


def _reasons(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["reason"] for line in result.stdout.splitlines()]


def route(config: Path, *messages: str, stdin: int | None = None) -> list[str]:
    """The decisions' reasons of ``route`` for connector Support."""
    return _reasons(enate("route", "--config", str(config), "--connector", "Support", *messages, cwd=config.parent,
                          stdin=stdin))


def _sparse(directory: Path) -> tuple[Path, int]:
    path, size = directory / "sparse.eml", 1 << 40
    path.touch()
    try:
        os.truncate(path, size)
    except OSError:
        pytest.skip("this file system has no 1 TiB sparse files")
    return path, size


SIZE_OVER = "quarantined: message size {} exceeds the limit of 1000"


def test_route_never_reads_a_message_past_the_limit_whole(config: Path) -> None:
    """/dev/zero has no end and a sparse file claims 1 TiB: both are quarantined as too large, with the real
    size when the file system knows it (the envelope's own wording), instead of a MemoryError."""
    sparse, size = _sparse(config.parent)
    assert route(config, "/dev/zero", str(sparse)) == [SIZE_OVER.format("1001+"), SIZE_OVER.format(size)]


def test_explain_reads_a_message_up_to_the_limit(config: Path) -> None:
    result = enate("explain", "--config", str(config), "--connector", "Support", "--format", "json", "/dev/zero",
                   cwd=config.parent)
    assert result.returncode == 0, result.stderr
    assert [d["reason"] for d in json.loads(result.stdout)["decisions"]] == [SIZE_OVER.format("1001+")]


def test_diff_reads_up_to_the_larger_limit_and_parses_with_each(config: Path) -> None:
    """Old limit 1000, new 2000: 2001 bytes are read, and each side reports its own limit."""
    larger = config.parent / "larger.toml"
    larger.write_text(CONFIG.replace("max_message_bytes = 1000", "max_message_bytes = 2000"), encoding="utf-8")
    result = enate("diff", "--config", str(config), "--against", str(larger), "--connector", "Support",
                   "--format", "json", "/dev/zero", cwd=config.parent)
    assert result.returncode == 0, result.stderr
    [change] = json.loads(result.stdout)["changes"]
    assert [d["reason"] for d in change["before"]] == ["quarantined: message size 2001+ exceeds the limit of 1000"]
    assert [d["reason"] for d in change["after"]] == ["quarantined: message size 2001+ exceeds the limit of 2000"]


def test_a_message_on_stdin_is_read_up_to_the_limit(config: Path) -> None:
    sparse, size = _sparse(config.parent)
    for source, shown in ((sparse, str(size)), (Path("/dev/zero"), "1001+")):
        with source.open("rb") as stdin:
            assert route(config, "-", stdin=stdin.fileno()) == [SIZE_OVER.format(shown)]


def test_the_limit_itself_is_within_and_one_byte_more_is_not(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = b"From: a@b.example\r\nTo: support@acme.example\r\nSubject: x\r\n\r\n"
    for size in (1000, 1001):
        (config.parent / f"{size}.eml").write_bytes(head + b"y" * (size - len(head)))
    assert main(["route", "--config", str(config), "--connector", "Support", "1000.eml", "1001.eml"]) == 0
    within, over = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (within["action"], within["reason"]) == ("create", None)
    assert over["reason"] == SIZE_OVER.format(1001)


# --- 6. unknown options are named -----------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["--bogus"], ["ledger", "--bogus"], ["poll", "--bogus"], ["--bogus=1"]])
def test_an_unknown_option_is_named(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    line = usage_error(capsys, argv)
    assert "unrecognized arguments: --bogus" in line


@pytest.mark.parametrize("argv", [["poll", "-vv"], ["poll", "--conf", "x"], ["poll", "--batch-size", "-5"]])
def test_known_options_abbreviations_and_values_are_not_called_unknown(capsys: pytest.CaptureFixture[str],
                                                                       argv: list[str]) -> None:
    assert "unrecognized" not in usage_error(capsys, argv)
