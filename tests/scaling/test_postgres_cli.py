"""``enate-routing ledger migrate`` and ``poll --ledger postgresql://...`` against real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_rig import append, connector_config, count, finish, read_stderr, sample_message, wait_until

from enate_routing._cli import main
from enate_routing._loading import load_config, parse_config, save_config
from enate_routing.postgres import PostgresLedger
from enate_routing.postgres._migrations import MIGRATIONS
from mailrig.dovecot import ALICE, BOB, Dovecot
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


def test_two_poll_workers_share_two_mailboxes(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, postgres_url: str, tmp_path: Path,
) -> None:
    """Two `poll --once --ledger postgresql://... Alice Bob` processes at once: every message decided exactly
    once between their two output files, both mailboxes drained."""
    config, env = _alice_and_bob(mailboxes, smtp_inbox, postgres_url, tmp_path)
    for user, tag in ((ALICE, "a"), (BOB, "b")):
        append(mailboxes, user, [sample_message(i, to=user.login, tag=tag, automatic=True) for i in range(30)])
    outs = [tmp_path / f"worker{n}.jsonl" for n in range(2)]
    workers = [subprocess.Popen([sys.executable, "-m", "enate_routing", "poll", "--config", str(config), "Alice", "Bob",
                                 "--once", "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
               for out in outs]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], errors
    decided = [json.loads(line)["message"] for out in outs if out.exists() for line in out.read_text().splitlines()]
    expected = [f"{tag}{i}@example.net" for tag in "ab" for i in range(30)]
    assert sorted(decided) == sorted(expected)
    assert count(mailboxes, ALICE) == 0 and count(mailboxes, BOB) == 0
    assert all("Alice: " in e and "Bob: " in e and postgres_url not in e for e in errors)


def _alice_and_bob(mailboxes: Dovecot, smtp_inbox: SmtpServers, url: str,
                   tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A configuration of two IMAP connectors (passwords in variables) and the environment to poll it with."""
    data = connector_config("imap", mailboxes.ports.imap, smtp_inbox.ports["open"], send_automated_emails=False)
    bob = connector_config("imap", mailboxes.ports.imap, smtp_inbox.ports["open"], user=BOB, name="Bob",
                           send_automated_emails=False)
    data["connectors"] += bob["connectors"]
    data["fallbacks"] += bob["fallbacks"]
    env = {**os.environ, "ENATE_ROUTING_LEDGER": url}
    for connector, user in zip(data["connectors"], (ALICE, BOB), strict=True):
        variable = f"{connector['name'].upper()}_PASSWORD"
        del connector["password"]
        connector["password_env"] = variable
        env[variable] = user.password
    config = tmp_path / "routing.toml"
    save_config(parse_config(data), config)
    return config, env


def _wait_for_lines(out: Path, expected: int, worker: subprocess.Popen[str], timeout: float = 90) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        decided = [json.loads(line)["message"] for line in out.read_text().splitlines()] if out.exists() else []
        if len(decided) >= expected:
            return decided
        time.sleep(0.2)
    raise AssertionError(f"{expected} decisions not written; worker exit code {worker.poll()}")


def test_a_poll_worker_outlives_a_restart_of_the_ledger_database(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path, own_postgres_cluster: PostgresCluster,
) -> None:
    """`poll NAME NAME --ledger postgresql://...` keeps running while the database restarts (a soak run: the
    worker exited with "terminating connection due to administrator command"): the mail that came meanwhile
    is decided once the database is back, nothing twice; SIGTERM then exits 0; the password is never shown."""
    cluster = own_postgres_cluster
    config, env = _alice_and_bob(mailboxes, smtp_inbox, cluster.create_database("restarted"), tmp_path)
    out = tmp_path / "decisions.jsonl"
    append(mailboxes, ALICE, [sample_message(i, tag="before", automatic=True) for i in range(3)])
    argv = ["poll", "--config", str(config), "Alice", "Bob", "--interval", "1", "--out", str(out), "-v"]
    worker = subprocess.Popen([sys.executable, "-m", "enate_routing", *argv], env=env, stderr=subprocess.PIPE,
                              text=True)
    try:
        _wait_for_lines(out, 3, worker)
        cluster.stop_server()
        append(mailboxes, BOB, [sample_message(i, to=BOB.login, tag="during", automatic=True) for i in range(3)])
        time.sleep(3)  # rounds fail while the database is down
        cluster.start_server()
        decided = _wait_for_lines(out, 6, worker)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert sorted(decided) == sorted([f"before{i}@example.net" for i in range(3)]
                                     + [f"during{i}@example.net" for i in range(3)])
    assert count(mailboxes, ALICE) == 0 and count(mailboxes, BOB) == 0
    assert "poll failed; retrying" in err and cluster.password not in err
    # Not asserted here: "the server closed an idle connection; reconnecting". It is logged only when the restart
    # finds the worker's connection idle; one stopped in the middle of a statement is dropped as broken instead
    # (CI saw it once). test_postgres_ledger.py checks that line where the timing is the test's own.
    assert "Alice: 3 hand-offs" in err and "Bob: 3 hand-offs" in err  # every round's, not 0 each


def test_a_poll_worker_serves_the_other_mailboxes_when_one_refuses_its_credentials(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, postgres_url: str, tmp_path: Path,
) -> None:
    """`poll Alice Bob` with Bob's password changed on the server: the worker used to end on the refusal, and
    with it Alice's polling. Bob is set aside (an error naming him, tried again in 15 minutes) and Alice's mail
    is handed off round after round; SIGTERM exits 0 and the last lines say which mailbox was set aside."""
    config, env = _alice_and_bob(mailboxes, smtp_inbox, postgres_url, tmp_path)
    env["BOB_PASSWORD"] = "changed-on-the-server-7"
    out = tmp_path / "decisions.jsonl"
    append(mailboxes, ALICE, [sample_message(i, tag="first", automatic=True) for i in range(2)])
    argv = ["poll", "--config", str(config), "Alice", "Bob", "--interval", "1", "--out", str(out)]
    worker = subprocess.Popen([sys.executable, "-m", "enate_routing", *argv], env=env, stderr=subprocess.PIPE,
                              text=True)
    try:
        _wait_for_lines(out, 2, worker)
        append(mailboxes, ALICE, [sample_message(i, tag="later", automatic=True) for i in range(2)])
        decided = _wait_for_lines(out, 4, worker)  # a later round: the worker did not end
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert sorted(decided) == sorted(f"{tag}{i}@example.net" for tag in ("first", "later") for i in range(2))
    assert err.count("mailbox set aside: AuthenticationError") == 1 and "connector=Bob" in err, err
    assert "Alice: 4 hand-offs" in err
    assert "Bob: 0 hand-offs (set aside: AuthenticationError: imap://127.0.0.1:" in err
    assert "changed-on-the-server-7" not in err and BOB.password not in err


def test_a_poll_worker_reloads_its_configuration_on_sighup(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, postgres_url: str, tmp_path: Path,
) -> None:
    """`poll Alice Bob` takes an edited configuration on SIGHUP, as the one-connector form does: the round ends,
    every lease is released, and the next rounds route with the file read again; the counts span both."""
    config, env = _alice_and_bob(mailboxes, smtp_inbox, postgres_url, tmp_path)
    out = tmp_path / "decisions.jsonl"
    append(mailboxes, ALICE, [sample_message(1, tag="before", sender="vip@example.net", automatic=True)])
    argv = ["poll", "--config", str(config), "Alice", "Bob", "--interval", "1", "--out", str(out), "-v"]
    worker = subprocess.Popen([sys.executable, "-m", "enate_routing", *argv], env=env, stderr=subprocess.PIPE,
                              text=True)
    err_lines: list[str] = []
    reader = read_stderr(worker, err_lines)
    try:
        _wait_for_lines(out, 1, worker)
        data = load_config(config).model_dump(mode="json", exclude_none=True)
        data["routes"] = [{"connector": "Alice", "name": "VIP", "address": ALICE.login, "rules": {
            "senders": "vip@example.net"}, "target": {"customer": "Acme", "contract": "Gold", "service": "IT",
                                                     "process": "VIP", "kind": "case"}}]
        save_config(parse_config(data), config)
        worker.send_signal(signal.SIGHUP)
        wait_until(lambda: worker.poll() is not None or any("configuration reloaded" in line for line in err_lines),
                   60, "the reload")
        assert worker.poll() is None, err_lines
        append(mailboxes, ALICE, [sample_message(2, tag="after", sender="vip@example.net", automatic=True)])
        _wait_for_lines(out, 2, worker)
    finally:
        worker.send_signal(signal.SIGTERM)
        finish(worker, reader, 60)
    err = "".join(err_lines)
    assert worker.returncode == 0, err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["message"], line["route"]) for line in lines] == [("before1@example.net", "Fallback"),
                                                                      ("after2@example.net", "VIP")]
    assert "configuration reloaded" in err and "Alice: 2 hand-offs" in err and "2 decisions written" in err
