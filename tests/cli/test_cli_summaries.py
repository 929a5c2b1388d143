"""What `poll` and `quarantine` print for a person: one-line summaries on stderr that count in plural forms, as
`check` does (``1 decision written``, never ``1 decisions written``), and errors located where they belong."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_config import config_in_empty_cwd
from test_cli_review_fixes import CONFIG

from enate_routing._cli import main
from enate_routing.ingest import Ingestor, IngestStats, SQLiteLedger, content_digest
from enate_routing.ingest._ledger import SpoolItem

RAW = b"From: ann@globex.example\r\nTo: support@acme.example\r\nMessage-ID: <q1@globex.example>\r\n" \
      b"Subject: Invoice\r\n\r\nbody\r\n"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return config_in_empty_cwd(tmp_path, monkeypatch, CONFIG)


def quarantined(path: Path) -> int:
    """A message of 'Support' spooled and quarantined (then, say, a limit was raised)."""
    with SQLiteLedger(path) as ledger:
        [record] = ledger.spool("Support", "INBOX", [SpoolItem("imap:INBOX:1:1", RAW, content_digest(RAW))])
        ledger.record_quarantine(record.id, "parser error: test")
        return record.id


def test_quarantine_reprocess_of_one_message(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One message reprocessed, one decision written: singular nouns."""
    quarantined(config.parent / "ledger.db")
    argv = ["quarantine", "reprocess", "--config", str(config), "Support", "--out", "o.jsonl",
            "--state", "ledger.db", "all"]
    assert main(argv) == 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        "Support: 1 reprocessed, 1 handed off, 1 decision written to o.jsonl, 0 still in quarantine")


def test_poll_once_that_marked_one_message(config: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass that marked one message and wrote nothing (its decision was written by an earlier run)."""
    monkeypatch.setattr(Ingestor, "run_once", lambda self, give_up_after=None: IngestStats(marked=1))
    assert main(["poll", "--config", str(config), "Support", "--once", "--out", "o.jsonl"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        "Support: 0 decisions written to o.jsonl, 1 message marked processed, 0 in quarantine")


def test_an_unknown_ledger_id_is_located_at_the_connector(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The connector is where the id was looked for, not the item the message is about."""
    quarantined(config.parent / "ledger.db")
    assert main(["quarantine", "show", "--config", str(config), "Support", "--state", "ledger.db", "99"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: connector 'Support': no quarantined message with id 99 (see `enate-routing quarantine list`)")


def test_ledger_migrate_without_a_ledger_names_the_option_first(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Like `--state: …`, the option leads the line; it is not quoted after it as if it were a wrong value."""
    monkeypatch.delenv("ENATE_ROUTING_LEDGER", raising=False)
    assert main(["ledger", "migrate"]) == 1
    assert capsys.readouterr().err.strip() == "error: --ledger: give --ledger URL|FILE or set ENATE_ROUTING_LEDGER"


@pytest.mark.parametrize("where", [["--state", "typo.db"], ["--out", "typo.jsonl"], ["--ledger", "typo.db"]])
def test_quarantine_of_a_ledger_that_does_not_exist(config: Path, capsys: pytest.CaptureFixture[str],
                                                    where: list[str]) -> None:
    """A mistyped path (or a command run from another folder) is not "0 in quarantine" of a new, empty ledger left
    behind: only `poll` creates a ledger, the quarantine commands read one."""
    assert main(["quarantine", "list", "--config", str(config), "Support", *where]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: typo.") and "no ingestion ledger" in err and "enate-routing poll" in err
    assert sorted(p.name for p in config.parent.iterdir()) == ["routing.toml"]


def test_poll_refuses_a_connector_named_twice(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`poll Support Sales Support`: two ingestors of one mailbox would only compete for its lease."""
    assert main(["poll", "--config", str(config), "Support", "Sales", "Support", "--once", "--out", "o.jsonl"]) == 1
    assert capsys.readouterr().err.strip() == "error: NAME: a connector is named twice: 'Support'"
    assert sorted(p.name for p in config.parent.iterdir()) == ["routing.toml"]
