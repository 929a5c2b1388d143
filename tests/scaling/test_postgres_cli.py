"""``enate-routing ledger migrate`` and ``poll --ledger postgresql://...`` against real servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ingest_rig import append, connector_config, count, sample_message

from enate_routing.cli import main
from enate_routing.loading import parse_config, save_config
from enate_routing.postgres import PostgresLedger
from enate_routing.postgres._migrations import MIGRATIONS
from mailrig.dovecot import ALICE, Dovecot
from mailrig.postgres import PostgresCluster
from mailrig.smtp import SmtpServers

pytestmark = [pytest.mark.servers, pytest.mark.postgres]


def test_ledger_migrate_applies_each_step_once_and_never_prints_the_password(
    postgres_url: str, postgres_cluster: PostgresCluster, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["ledger", "migrate", "--ledger", postgres_url]) == 0
    first = capsys.readouterr()
    assert [line.split(": ", 2)[1] for line in first.out.splitlines()[:-1]] == [
        f"applied step {m.version}" for m in MIGRATIONS]
    assert first.out.splitlines()[-1].endswith(f"schema version 0 -> {MIGRATIONS[-1].version}")
    monkeypatch.setenv("ENATE_ROUTING_LEDGER", postgres_url)
    assert main(["ledger", "migrate"]) == 0
    second = capsys.readouterr()
    assert second.out.strip().endswith(f"schema version {MIGRATIONS[-1].version}, up to date")
    assert postgres_cluster.password not in first.out + first.err + second.out + second.err
    assert "postgresql://enate@127.0.0.1" in second.out


def test_ledger_migrate_errors_are_one_line(postgres_cluster: PostgresCluster, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENATE_ROUTING_LEDGER", raising=False)
    assert main(["ledger", "migrate"]) == 1
    assert "--ledger" in capsys.readouterr().err
    wrong = postgres_cluster.url().replace(postgres_cluster.password, "Not-The-Password-42")
    assert main(["ledger", "migrate", "--ledger", wrong]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open the ingestion ledger postgresql://enate@127.0.0.1")
    assert "Not-The-Password-42" not in err and "password authentication failed" in err


def test_poll_with_a_postgres_ledger(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`poll --once --ledger postgresql://...` hands off and marks every message; a rerun adds nothing."""
    append(mailboxes, ALICE, [sample_message(i, tag="pg") for i in range(5)])
    config = tmp_path / "routing.toml"
    data = connector_config("imap", mailboxes.ports.imap, smtp_inbox.ports["open"])
    del data["connectors"][0]["password"]  # a saved configuration names the variable, never the password
    data["connectors"][0]["password_env"] = "ALICE_PASSWORD"
    monkeypatch.setenv("ALICE_PASSWORD", ALICE.password)
    save_config(parse_config(data), config)
    out = tmp_path / "decisions.jsonl"
    argv = ["poll", "--config", str(config), "Alice", "--once", "--out", str(out), "--ledger", postgres_url]
    assert main(argv) == 0
    assert main(argv) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["message"] for line in lines) == sorted(f"pg{i}@example.net" for i in range(5))
    assert count(mailboxes, ALICE) == 0
    assert not (tmp_path / "decisions.jsonl.ledger.db").exists()  # the ledger is in PostgreSQL, not beside --out
    with PostgresLedger(postgres_url) as ledger:
        assert ledger.counts("Alice")["marked"] == 5
