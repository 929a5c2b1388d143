"""Ingestion against the loopback Dovecot and aiosmtpd: the poll command, UIDVALIDITY, Bcc, expunge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import Host
from ingest_rig import append, connector_config, count, message_id, sample_message

from enate_routing._cli import main
from enate_routing._loading import parse_config, save_config
from enate_routing._router import Router
from enate_routing.errors import ConfigError
from enate_routing.ingest import Backoff, Ingestor, MessageState, SQLiteLedger
from enate_routing.transports._factory import ConnectorAccess
from mailrig.dovecot import ALICE, Dovecot
from mailrig.smtp import SmtpServers

pytestmark = pytest.mark.servers

DECISION_FIELDS = ["message", "connector", "action", "address", "route", "fallback", "target", "ticket_category",
                   "send_automated_emails", "test_mode", "for_attention", "acknowledge", "suppressed", "link",
                   "reason", "idempotency_key", "ledger_id", "message_id", "sender", "subject"]


def write_config(path: Path, data: dict[str, Any]) -> Path:
    save_config(parse_config(data), path)
    return path


def ingestor(dovecot: Dovecot, smtp: SmtpServers, ledger: SQLiteLedger, host: Host, *, processed: str = "move",
             **options: Any) -> Ingestor:
    data = connector_config("imap", dovecot.ports.imap, smtp.ports["open"])
    data["connectors"][0]["incoming"]["processed"] = processed
    config = parse_config(data)
    options.setdefault("backoff", Backoff(base=0.01, cap=0.05))
    return Ingestor.from_config(config, "Alice", router=Router.compile(config), store=ledger, handler=host,
                                access=ConnectorAccess(timeout=10), **options)


def test_poll_once_writes_spec_decisions_and_is_idempotent(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`poll --once` writes one semantics.md §5 line per decision, acks, empties the inbox; a rerun adds nothing."""
    append(mailboxes, ALICE, [sample_message(i) for i in range(5)])
    data = connector_config("imap", mailboxes.ports.imap, smtp_inbox.ports["open"])
    del data["connectors"][0]["password"]
    data["connectors"][0]["password_env"] = "ALICE_PASSWORD"
    monkeypatch.setenv("ALICE_PASSWORD", ALICE.password)
    config = write_config(tmp_path / "routing.toml", data)
    out = tmp_path / "decisions.jsonl"
    assert main(["poll", "--config", str(config), "Alice", "--once", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5 and all(list(line) == DECISION_FIELDS for line in lines)
    assert {line["message"] for line in lines} == {f"m{i}@example.net" for i in range(5)}
    with SQLiteLedger(tmp_path / "decisions.jsonl.ledger.db") as ledger:  # each line reaches its ledger row
        assert all(ledger.get(line["ledger_id"]).message_id == line["message_id"] for line in lines)
    assert {(line["sender"], line["subject"]) for line in lines} == {
        (f"customer{i}@example.net", f"Request {i}") for i in range(5)}
    assert all(line["action"] == "create" and line["fallback"] for line in lines)
    assert count(mailboxes, ALICE) == 0 and count(mailboxes, ALICE, "Archive") == 5
    assert len(smtp_inbox.received("open")) == 5
    assert "5 decisions written" in capsys.readouterr().err
    # The same mail again in the inbox (a restore): the ledger and the writer both recognise it.
    append(mailboxes, ALICE, [sample_message(i) for i in range(5)])
    assert main(["poll", "--config", str(config), "Alice", "--once", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 5 and len(smtp_inbox.received("open")) == 5
    assert (tmp_path / "decisions.jsonl.ledger.db").exists()


def test_poll_refuses_a_disabled_connector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/semantics.md §2: poll refuses a disabled connector with a clear one-line message."""
    data = connector_config("imap", 1, 2)
    data["connectors"][0]["enabled"] = False
    config = write_config(tmp_path / "routing.toml", data)
    assert main(["poll", "--config", str(config), "Alice", "--once", "--out", str(tmp_path / "o.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "connector 'Alice'" in err and "disabled" in err and "Traceback" not in err


def test_poll_names_an_unknown_connector(tmp_path: Path) -> None:
    """An unknown connector name is a configuration error, not a crash."""
    config = parse_config(connector_config("imap", 1, 2))
    with pytest.raises(ConfigError, match="no connector"):
        Ingestor.from_config(config, "Nope", router=Router.compile(config), store=SQLiteLedger(tmp_path / "l.db"),
                             handler=Host())


def test_uidvalidity_change_on_the_server(mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path) -> None:
    """A real UIDVALIDITY change (flag mode: messages stay in the folder) creates no new work."""
    append(mailboxes, ALICE, [sample_message(i) for i in range(6)])
    host = Host()
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    crashed: list[int] = []

    class Stop(BaseException):
        pass

    def hook(point: str, index: int) -> None:
        if point == "after_mark" and index == 2 and not crashed:
            crashed.append(index)
            raise Stop

    with pytest.raises(Stop):
        ingestor(mailboxes, smtp_inbox, ledger, host, processed="flag", hook=hook).run_once()
    mailboxes.set_uidvalidity(ALICE, "INBOX", mailboxes.uidvalidity(ALICE) + 1000)
    stats = ingestor(mailboxes, smtp_inbox, ledger, host, processed="flag").run_once()
    assert stats.uidvalidity_changes >= 1
    assert len(host.items) == 6 and len(host.calls) == 6
    assert len(smtp_inbox.received("open")) == 6
    assert all("$Processed" in m["flags"] for m in mailboxes.messages(ALICE))
    assert ledger.pending("Alice", "INBOX") == []
    ledger.close()


def test_bcc_copies_with_one_message_id(mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path) -> None:
    """Two copies of one Message-ID (Bcc'd to two aliases) yield one work item and one acknowledgement."""
    base = sample_message(1, to="someone@example.org")
    copies = [b"Delivered-To: " + alias.encode() + b"\r\n" + base for alias in (ALICE.login, "alias@example.test")]
    append(mailboxes, ALICE, copies)
    host = Host()
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    stats = ingestor(mailboxes, smtp_inbox, ledger, host).run_once()
    assert len(host.calls) == 1 and stats.duplicates == 1
    assert len(smtp_inbox.received("open")) == 1
    assert count(mailboxes, ALICE) == 0 and ledger.counts("Alice")["marked"] == 2
    ledger.close()


def test_spooled_then_expunged_by_another_client(mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path) -> None:
    """Messages spooled before another client expunged them are still handed off, and the run completes."""
    messages = [sample_message(i) for i in range(4)]
    append(mailboxes, ALICE, messages)
    host = Host()
    ledger = SQLiteLedger(tmp_path / "ledger.db")

    class Stop(BaseException):
        pass

    def hook(point: str, index: int) -> None:
        if point == "after_spool" and index == 3:
            raise Stop

    with pytest.raises(Stop):
        ingestor(mailboxes, smtp_inbox, ledger, host, hook=hook).run_once()
    mailboxes.doveadm("expunge", "-u", ALICE.login, "mailbox", "INBOX", "all")
    ingestor(mailboxes, smtp_inbox, ledger, host).run_once()
    assert sorted(item.envelope.message_id or "" for item in host.items.values()) == sorted(
        message_id(m) or "" for m in messages)
    assert all(r.state is MessageState.MARKED for r in (ledger.get(i) for i in range(1, 5)))
    ledger.close()
