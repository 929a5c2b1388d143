"""Shared helpers for the ingestion tests that use the loopback Dovecot and aiosmtpd servers."""

from __future__ import annotations

import contextlib
import imaplib
import json
import multiprocessing
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import crash_driver

from mailrig.dovecot import ALICE, Dovecot, RigUnavailable, User
from mailrig.fixtures import server_unavailable
from mailrig.pki import Pki

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^>]+)>", re.IGNORECASE | re.MULTILINE)
_PRELOAD = ["crash_driver", "enate_routing.ingest", "enate_routing._router", "enate_routing.transports",
            "enate_routing._loading"]


def connector_config(
    protocol: str, port: int, smtp_port: int, *, user: User = ALICE, name: str = "Alice",
    max_message_bytes: int = 4000, acks_per_hour: int = 10, send_automated_emails: bool = True,
) -> dict[str, Any]:
    """A configuration (as a mapping) with one both-ways connector on the loopback servers and its fallback."""
    return {
        "connectors": [{
            "name": name, "service": "other", "username": user.login, "password": user.password,
            "primary_address": user.login, "use_for": "both", "allow_plaintext_auth": True,
            "incoming": {"protocol": protocol, "host": "127.0.0.1", "port": port, "security": "none",
                         "processed": "move", "processed_folder": "Archive"},
            "outgoing": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "auth": "none"},
        }],
        "fallbacks": [{
            "connector": name, "address": user.login, "send_automated_emails": send_automated_emails,
            "target": {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "General",
                       "kind": "ticket"},
        }],
        "limits": {"max_message_bytes": max_message_bytes, "acknowledgements_per_hour": acks_per_hour},
    }


def sample_message(
    i: int, *, to: str = ALICE.login, big: bool = False, tag: str = "m", sender: str | None = None,
    automatic: bool = False,
) -> bytes:
    """A small (or, with ``big``, over-the-limit) message; ``automatic`` ones get no acknowledgement."""
    msg = EmailMessage()
    msg["From"] = sender or f"customer{i}@example.net"
    msg["To"] = to
    msg["Subject"] = f"Request {i}"
    msg["Message-ID"] = f"<{tag}{i}@example.net>"
    if automatic:
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no acknowledgement, so the group-commit path
    msg.set_content(("x" * 70 + "\n") * (80 if big else 2))
    return msg.as_bytes().replace(b"\n", b"\r\n")


def append(dovecot: Dovecot, user: User, messages: Sequence[bytes], folder: str = "INBOX") -> None:
    """APPEND every message over one IMAP connection (much faster than one doveadm per message)."""
    conn = imaplib.IMAP4("127.0.0.1", dovecot.ports.imap, timeout=30)
    try:
        conn.login(user.login, user.password)
        for raw in messages:
            typ, data = conn.append(folder, None, None, raw)
            assert typ == "OK", data
    finally:
        conn.logout()


def count(dovecot: Dovecot, user: User, folder: str = "INBOX") -> int:
    out = dovecot.doveadm("-f", "flow", "mailbox", "status", "-u", user.login, "messages", folder).stdout
    return int(out.strip().split("=", 1)[1])


def empty(dovecot: Dovecot, user: User) -> None:
    dovecot.doveadm("expunge", "-u", user.login, "mailbox", "*", "all")


def message_id(raw: bytes) -> str | None:
    match = _MESSAGE_ID.search(raw)
    return match.group(1).decode() if match else None


def ledger_quarantine(path: Path) -> list[tuple[str | None, bytes, str]]:
    """(message id, raw bytes, reason) of every quarantined message in a ledger file."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT raw, quarantine_reason FROM messages WHERE quarantine_reason IS NOT NULL")
        return [(message_id(bytes(raw)), bytes(raw), reason) for raw, reason in rows]
    finally:
        db.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _context() -> Any:
    # forkserver: children are forked from a clean single-threaded server that preloaded the package, so
    # they start in milliseconds and never inherit the aiosmtpd thread of the test process.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def run_child(spec: dict[str, Any], timeout: float = 120.0) -> int:
    """Run one ingestion in a child process; its exit status (``crash_driver.CRASH_EXIT`` when killed)."""
    return run_children([spec], timeout)[0]


def run_children(specs: Sequence[dict[str, Any]], timeout: float = 120.0) -> list[int]:
    """Run several ingestions at once (each on its own mailbox and ledger); their exit statuses."""
    ctx = _context()
    processes = [ctx.Process(target=crash_driver.child, args=(spec,)) for spec in specs]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
    stuck = [p for p in processes if p.is_alive()]
    for process in stuck:
        process.kill()
        process.join(5)
    if stuck:
        raise AssertionError(f"{len(stuck)} ingestion children did not finish in {timeout} s")
    return [p.exitcode if p.exitcode is not None else -1 for p in processes]


# Tests that kill the client, never the server, need no server fsync; reusing login and mail processes
# (service_count = 0) makes a reconnect cost milliseconds instead of a process start; thousands of dropped
# connections must not trip the per-user connection limit while Dovecot notices each disconnect.
_FAST_DOVECOT = """
mail_fsync = never
service imap-login {
  service_count = 0
}
service pop3-login {
  service_count = 0
}
service imap {
  service_count = 0
}
service pop3 {
  service_count = 0
}
protocol imap {
  mail_max_userip_connections = 100000
}
protocol pop3 {
  mail_max_userip_connections = 100000
}
"""


@contextlib.contextmanager
def private_dovecot(pki: Pki) -> Iterator[Dovecot]:
    """A Dovecot of our own that skips fsync (we kill the client, never the server), stopped on exit."""
    try:
        server = Dovecot.start(pki, extra_config=_FAST_DOVECOT)
    except RigUnavailable as exc:
        server_unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def scratch_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one (ledger fsyncs are then cheap; we kill processes, not the
    machine), else ``tmp_path``; removed on exit."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="enate-ingest-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def maildir_drop(dovecot: Dovecot, user: User, messages: Sequence[bytes]) -> None:
    """Put messages straight into the user's Maildir ``new/`` (Dovecot assigns UIDs on its next sync).

    Thousands of messages take milliseconds this way; ``doveadm save`` or APPEND take seconds.
    """
    dovecot.doveadm("mailbox", "status", "-u", user.login, "messages", "INBOX")  # creates the Maildir
    new = dovecot.root / "mail" / user.login / "Maildir" / "new"
    for i, raw in enumerate(messages):
        path = new / f"{time.time_ns()}.M{i}P{os.getpid()}.enate-test"
        path.write_bytes(raw)
        os.chown(path, 5000, 5000)


def read_stderr(process: subprocess.Popen[str], into: list[str]) -> threading.Thread:
    """Collect ``process``'s standard error lines into ``into`` while it runs (a test can wait for one)."""
    reader = threading.Thread(target=lambda: into.extend(process.stderr or ()), daemon=True)
    reader.start()
    return reader


def finish(process: subprocess.Popen[str], reader: threading.Thread, timeout: float) -> None:
    """Wait for ``process`` and its stderr reader, then close its pipes."""
    process.wait(timeout=timeout)
    reader.join(timeout=5)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def wait_until(condition: Any, timeout: float, what: str) -> float:
    """Seconds until ``condition()`` holds; an AssertionError naming ``what`` after ``timeout`` seconds."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started
