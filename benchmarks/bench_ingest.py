"""Benchmark: the whole ingestion pipeline against a bare imaplib loop, on the loopback Dovecot.

Starts its own Dovecot (tests/mailrig), fills alice's INBOX with N small messages, and times, in one run:

- **bare**: one imaplib connection; ``UID SEARCH``, then per message ``UID FETCH (BODY.PEEK[])`` and
  ``UID STORE +FLAGS.SILENT ($Processed)`` — only fetching and flagging, nothing recorded;
- **pipeline**: :class:`enate_routing.ingest.Ingestor` with the IMAP adapter (flag mode, the same flag), the
  compiled router, the SQLite ledger (WAL, synchronous=FULL, on the disk of the system temp dir) and an
  in-memory idempotent handler: spool, parse, route, hand off, commit, mark for every message.

The flags are cleared between rounds, so both sides read the very same messages. Prints messages per
second for both, the ratio (target: pipeline ≥ 0.5 × bare) and one JSON line.

    python benchmarks/bench_ingest.py            # 1,000 messages, 3 rounds
    python benchmarks/bench_ingest.py --quick    # 200 messages, 1 round (a few seconds)
"""

from __future__ import annotations

import argparse
import imaplib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from enate_routing._loading import parse_config  # noqa: E402
from enate_routing._router import Router  # noqa: E402
from enate_routing.ingest import (  # noqa: E402
    Ingestor,
    SQLiteLedger,
    WorkItem,
)
from enate_routing.transports import Endpoint, FlagAction, ImapSource, PasswordAuth  # noqa: E402
from mailrig.dovecot import ALICE, Dovecot, RigUnavailable  # noqa: E402
from mailrig.pki import generate_pki  # noqa: E402

FLAG = "$Processed"


def message(i: int) -> bytes:
    return (
        f"From: customer{i % 50}@example.net\r\nTo: {ALICE.login}\r\nSubject: Request {i}\r\n"
        f"Message-ID: <bench-{i}@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"\r\n" + "Hello, this is a benchmark message.\r\n" * 20
    ).encode()


def fill(dovecot: Dovecot, n: int) -> None:
    dovecot.doveadm("expunge", "-u", ALICE.login, "mailbox", "*", "all")
    dovecot.doveadm("mailbox", "status", "-u", ALICE.login, "messages", "INBOX")
    new = dovecot.root / "mail" / ALICE.login / "Maildir" / "new"
    import os

    for i in range(n):
        path = new / f"{time.time_ns()}.B{i}.bench"
        path.write_bytes(message(i))
        os.chown(path, 5000, 5000)
    dovecot.doveadm("mailbox", "status", "-u", ALICE.login, "messages", "INBOX")  # let Dovecot assign UIDs


def unflag(dovecot: Dovecot) -> None:
    conn = imaplib.IMAP4("127.0.0.1", dovecot.ports.imap)
    conn.login(ALICE.login, ALICE.password)
    conn.select("INBOX")
    conn.uid("STORE", "1:*", "-FLAGS.SILENT", f"({FLAG})")
    conn.logout()


def bare(dovecot: Dovecot) -> int:
    conn = imaplib.IMAP4("127.0.0.1", dovecot.ports.imap)
    conn.login(ALICE.login, ALICE.password)
    conn.select("INBOX")
    _, data = conn.uid("SEARCH", "UNDELETED", "UNKEYWORD", FLAG)
    uids = data[0].split() if data and data[0] else []
    for uid in uids:
        conn.uid("FETCH", uid, "(UID BODY.PEEK[])")
        conn.uid("STORE", uid, "+FLAGS.SILENT", f"({FLAG})")
    conn.logout()
    return len(uids)


def pipeline(dovecot: Dovecot, workdir: Path, round_: int) -> int:
    config = parse_config({
        "connectors": [{
            "name": "Alice", "service": "other", "username": ALICE.login, "password": ALICE.password,
            "primary_address": ALICE.login, "use_for": "incoming", "allow_plaintext_auth": True,
            "incoming": {"protocol": "imap", "host": "127.0.0.1", "port": dovecot.ports.imap, "security": "none",
                         "processed": "flag"},
        }],
        "routes": [{
            "connector": "Alice", "name": "Urgent", "address": ALICE.login, "rules": {"subject_keywords": "urgent"},
            "target": {"customer": "Acme", "contract": "C", "service": "IT", "process": "Incident", "kind": "ticket"},
        }],
        "fallbacks": [{
            "connector": "Alice", "address": ALICE.login,
            "target": {"customer": "Acme", "contract": "C", "service": "IT", "process": "General", "kind": "ticket"},
        }],
    })
    keys: set[str] = set()

    def handler(item: WorkItem) -> None:
        keys.add(item.idempotency_key)

    store = SQLiteLedger(workdir / f"ledger-{round_}.db")
    ingestor = Ingestor(
        connector="Alice", mailbox="INBOX", router=Router.compile(config), store=store, handler=handler,
        source_factory=lambda: ImapSource(
            Endpoint("127.0.0.1", dovecot.ports.imap, "none", timeout=30, allow_plaintext_auth=True),
            PasswordAuth(ALICE.login, ALICE.password, method="login"), "INBOX", processed=FlagAction(FLAG),
        ),
    )
    stats = ingestor.run_once()
    store.close()
    return stats.marked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 messages, one round")
    parser.add_argument("--messages", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args(argv)
    n = args.messages or (200 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            dovecot = Dovecot.start(generate_pki(workdir / "pki"))
        except RigUnavailable as exc:
            print(f"skipped: the loopback Dovecot is not available ({exc})")
            return 0
        try:
            fill(dovecot, n)
            results: dict[str, list[float]] = {"bare": [], "pipeline": []}
            for round_ in range(rounds):
                for name in ("bare", "pipeline"):  # interleaved, so background load hits both alike
                    unflag(dovecot)
                    start = time.perf_counter()
                    done = bare(dovecot) if name == "bare" else pipeline(dovecot, workdir, round_)
                    elapsed = time.perf_counter() - start
                    if done != n:
                        raise SystemExit(f"{name} processed {done} of {n} messages")
                    results[name].append(n / elapsed)
        finally:
            dovecot.stop()
    bare_rate = statistics.median(results["bare"])
    pipe_rate = statistics.median(results["pipeline"])
    ratio = pipe_rate / bare_rate
    print(f"messages: {n}, rounds: {rounds}")
    print(f"bare imaplib fetch + flag : {bare_rate:8.0f} msg/s")
    print(f"full ingestion pipeline   : {pipe_rate:8.0f} msg/s")
    print(f"ratio pipeline / bare     : {ratio:8.2f}   (target >= 0.50: {'met' if ratio >= 0.5 else 'NOT met'})")
    summary: dict[str, Any] = {
        "benchmark": "ingest", "messages": n, "rounds": rounds, "bare_msgs_per_s": round(bare_rate),
        "pipeline_msgs_per_s": round(pipe_rate), "ratio": round(ratio, 3),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
