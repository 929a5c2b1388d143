"""``poll --keep-raw-days``: how long the ledger keeps the raw bytes of handled mail (docs/ingestion.md
"Retention"), for one connector and for the worker form (several connectors)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_config import config_in_empty_cwd
from test_cli_review_fixes import CONFIG, usage_error

from enate_routing._cli import main
from enate_routing.ingest import Backoff, SQLiteLedger, content_digest
from enate_routing.ingest._ledger import RoutedMessage, SpoolItem

LONG_AGO = 1_000_000.0  # epoch seconds: decades before the test runs


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two connectors whose IMAP servers refuse connections: a run starts (and applies retention), then fails."""
    return config_in_empty_cwd(tmp_path, monkeypatch, CONFIG)


def handled_long_ago(path: Path, connector: str, raw: bytes) -> int:
    """A message of ``connector`` routed, handed off and marked on the server long ago."""
    with SQLiteLedger(path, clock=lambda: LONG_AGO) as ledger:
        [record] = ledger.spool(connector, "INBOX", [SpoolItem(f"imap:INBOX:1:{connector}", raw, content_digest(raw))])
        ledger.record_routed([RoutedMessage(record.id, None, [], [], False)])  # no open work: DONE
        ledger.record_marked([record.id])
        return record.id


def raw_of(path: Path, message: int) -> bytes:
    with SQLiteLedger(path) as ledger:
        return ledger.raw(message)


@pytest.mark.parametrize("names", [["Support"], ["Support", "Sales"]])
@pytest.mark.parametrize(("days", "dropped"), [(None, True), ("36500", False), ("0", True), ("1.5", True)])
def test_keep_raw_days_reaches_every_ingestor(config: Path, monkeypatch: pytest.MonkeyPatch, names: list[str],
                                              days: str | None, dropped: bool) -> None:
    monkeypatch.setattr(Backoff, "delay", lambda self, attempt, rng: 10.0)  # past --retry-for: give up at once
    state = config.parent / "ledger.db"
    messages = {name: handled_long_ago(state, name, f"Subject: {name}\r\n\r\nbody\r\n".encode()) for name in names}
    option = [] if days is None else ["--keep-raw-days", days]
    argv = ["poll", "--config", str(config), *names, "--once", "--retry-for", "1", "--out", "o.jsonl",
            "--state", str(state), *option]
    assert main(argv) == 1  # the server refuses connections, after retention ran at the start of the run
    # The first run started (in the worker form: the first connector drawn) gives up, ending the command.
    emptied = [name for name, message in messages.items() if raw_of(state, message) == b""]
    assert len(emptied) == int(dropped)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_keep_raw_days_must_be_zero_or_more_days(config: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    line = usage_error(capsys, ["poll", "--config", str(config), "Support", "--out", "o.jsonl",
                                "--keep-raw-days", value])
    assert "--keep-raw-days" in line and "days" in line
