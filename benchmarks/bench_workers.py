"""Benchmark: hand-offs per second with 1, 2 and 4 worker processes on one ledger, PostgreSQL and SQLite.

Starts its own loopback Dovecot (tests/mailrig; without its mail fsyncs, so the mail store is not what is
measured) and a throw-away PostgreSQL cluster (fsync on, as a real server runs), fills six mailboxes (INBOX
and Work of three users) with N messages each, and drains them with W worker processes
(tests/scaling/worker_driver.py: a MailboxWorker over all six mailboxes, the real IMAP source, router and
ledger, a no-op host). Each run measures from the first worker's start (after
its imports) to the last hand-off, for:

- **postgres**: every worker on one PostgreSQL database (``postgresql://`` ledger);
- **sqlite**: every worker on one SQLite ledger file (WAL, synchronous=FULL) on the temp dir's disk.

Prints hand-offs per second per run, the scaling ratio (W workers / 1 worker) and one JSON line. Every run
must hand off every message exactly once and leave every mailbox empty, or the benchmark fails.

    python benchmarks/bench_workers.py            # 6 x 200 messages, 1, 2, 4 workers
    python benchmarks/bench_workers.py --quick    # 6 x 10 messages, 1 and 4 workers (CI runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "ingest"), str(ROOT / "src")]

from ingest_rig import _FAST_DOVECOT  # noqa: E402 — the tests' Dovecot without fsync, reused

from mailrig.dovecot import ALICE, BOB, SHARED, Dovecot, RigUnavailable  # noqa: E402
from mailrig.pki import generate_pki  # noqa: E402
from mailrig.postgres import PostgresCluster  # noqa: E402

DRIVER = ROOT / "tests" / "scaling" / "worker_driver.py"
USERS = (ALICE, BOB, SHARED)
FOLDERS = ("INBOX", "Work")


def message(tag: str, i: int, to: str) -> bytes:
    return (
        f"From: customer{i % 50}@example.net\r\nTo: {to}\r\nSubject: Request {i}\r\n"
        f"Message-ID: <{tag}-{i}@example.net>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "Hello, this is a benchmark message.\r\n" * 20
    ).encode()


def fill(dovecot: Dovecot, n: int, run: str) -> None:
    import imaplib

    for user in USERS:
        dovecot.doveadm("expunge", "-u", user.login, "mailbox", "*", "all")
        if "Work" not in dovecot.mailboxes(user):
            dovecot.create_mailbox(user, "Work")
        conn = imaplib.IMAP4("127.0.0.1", dovecot.ports.imap, timeout=60)
        conn.login(user.login, user.password)
        for folder in FOLDERS:
            for i in range(n):
                conn.append(folder, None, None, message(f"{run}-{user.login}-{folder}", i, user.login))
        conn.logout()


def left(dovecot: Dovecot) -> int:
    total = 0
    for user in USERS:
        for folder in FOLDERS:
            out = dovecot.doveadm("-f", "flow", "mailbox", "status", "-u", user.login, "messages", folder).stdout
            total += int(out.strip().split("=", 1)[1])
    return total


def config(dovecot: Dovecot) -> dict[str, Any]:
    target = {"customer": "Acme", "contract": "C", "service": "IT", "process": "General", "kind": "ticket"}
    connectors, fallbacks = [], []
    for user in USERS:
        for folder in FOLDERS:
            name = f"{user.login.split('@')[0]}-{folder.lower()}"
            connectors.append({
                "name": name, "service": "other", "username": user.login, "password": user.password,
                "primary_address": user.login, "use_for": "incoming", "allow_plaintext_auth": True,
                "incoming": {"protocol": "imap", "host": "127.0.0.1", "port": dovecot.ports.imap, "security": "none",
                             "folder": folder, "processed": "move", "processed_folder": "Archive"},
            })
            fallbacks.append({"connector": name, "address": user.login, "send_automated_emails": False,
                              "target": target})
    return {"connectors": connectors, "fallbacks": fallbacks}


def run(dovecot: Dovecot, ledger: str, workers: int, n: int, workdir: Path, tag: str) -> float:
    """Drain 6 x n messages with ``workers`` processes on ``ledger``; hand-offs per second."""
    fill(dovecot, n, tag)
    spec = workdir / f"{tag}.json"
    spec.write_text(json.dumps({"config": config(dovecot), "ledger": ledger, "batch_size": 50}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    processes = [subprocess.Popen([sys.executable, str(DRIVER), str(spec)], stdout=subprocess.PIPE, env=env)  # noqa: S603 — our own driver
                 for _ in range(workers)]
    results = []
    try:
        for process in processes:
            out, _ = process.communicate(timeout=600)
            if process.returncode != 0:
                raise SystemExit(f"{tag}: a worker failed with {process.returncode}")
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:  # one failed or hung worker must not leave the others polling after the benchmark has ended
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    handed = sum(r["handed"] for r in results)
    if handed != 6 * n or left(dovecot) != 0:
        raise SystemExit(f"{tag}: {handed} hand-offs of {6 * n} messages, {left(dovecot)} left on the server")
    start = min(r["started"] for r in results)
    end = max(r["finished"] for r in results if r["handed"])
    return handed / (end - start)


def unavailable(reason: str) -> int:
    if os.environ.get("CI", "").lower() == "true":
        print(f"FAILED: {reason}")
        return 1
    print(f"skipped: {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 x 10 messages: checks that it works")
    parser.add_argument("--messages", type=int, help="messages per mailbox (default 200)")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts (default 1 2 4; --quick: 1 4)")
    args = parser.parse_args(argv)
    args.workers = args.workers or ([1, 4] if args.quick else [1, 2, 4])
    n = args.messages or (10 if args.quick else 200)
    rates: dict[str, dict[int, float]] = {"postgres": {}, "sqlite": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            # Without Dovecot's own fsyncs: the benchmark measures the ledger and the loop, not the mail store.
            dovecot = Dovecot.start(generate_pki(workdir / "pki"), extra_config=_FAST_DOVECOT)
        except RigUnavailable as exc:
            return unavailable(f"the loopback Dovecot is not available ({exc})")
        try:
            cluster = PostgresCluster.start(fsync=True)
        except RigUnavailable as exc:
            dovecot.stop()
            return unavailable(f"PostgreSQL is not available ({exc})")
        try:
            for workers in args.workers:
                for backend in ("postgres", "sqlite"):  # interleaved, so background load hits both alike
                    tag = f"{backend}{workers}"
                    if backend == "postgres":
                        ledger = cluster.create_database(f"bench_{tag}")
                    else:
                        ledger = str(workdir / f"{tag}.db")
                    began = time.monotonic()
                    rates[backend][workers] = run(dovecot, ledger, workers, n, workdir, tag)
                    print(f"  {backend} with {workers} worker(s): {rates[backend][workers]:.0f} hand-offs/s "
                          f"(run, with set-up: {time.monotonic() - began:.1f} s)", flush=True)
        finally:
            cluster.stop()
            dovecot.stop()
    print(f"6 mailboxes x {n} messages, workers {args.workers} (hand-offs per second; scaling = rate / 1 worker)")
    print(f"{'ledger':10} {'workers':>7} {'hand-offs/s':>12} {'scaling':>8}")
    for backend, by_workers in rates.items():
        base = by_workers[args.workers[0]]
        for workers, rate in by_workers.items():
            print(f"{backend:10} {workers:7d} {rate:12.0f} {rate / base:8.2f}")
    summary = {"benchmark": "workers", "messages_per_mailbox": n, "mailboxes": 6,
               **{f"{b}_{w}_per_s": round(r) for b, by in rates.items() for w, r in by.items()},
               **{f"{b}_scaling_{w}": round(r / by[args.workers[0]], 2)
                  for b, by in rates.items() for w, r in by.items()}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
