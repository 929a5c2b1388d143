"""Three worker processes, six Dovecot mailboxes of 200 messages, one PostgreSQL ledger, SIGKILLs at random.

Each worker (tests/scaling/worker_driver.py) runs a MailboxWorker over all six mailboxes; the parent kills a
worker that holds a lease (so a kill lands mid-mailbox) every 1–2.5 s, eight times, restarting it at
once, then lets the workers run until every mailbox is drained. Then:

- every message was handed off exactly once (the host's work table has each Message-ID once), and the
  handler re-invocations — the documented window between a hand-off and its group commit — are counted;
- every mailbox is empty on the server and every ledger row MARKED;
- no mailbox was polled by two workers at once: the lease history's holdings of one mailbox never overlap,
  and every handler call happened inside a holding of the calling worker (database clock on both sides);
- the mailboxes were spread (more than one worker drained mailboxes) and killed workers' mailboxes were
  taken over (``owner-died`` in the history).
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ingest_rig import append, connector_config, count, empty, private_dovecot, sample_message
from test_crash_matrix import show
from worker_driver import HOST_TABLES

from enate_routing.postgres import migrate_database
from mailrig.dovecot import ALICE, BOB, SHARED, Dovecot
from mailrig.pki import Pki
from mailrig.postgres import PostgresCluster

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.postgres]

PER_MAILBOX = 200
FOLDERS = ("INBOX", "Work")
WORKERS = 3
KILLS = 8
DRIVER = Path(__file__).with_name("worker_driver.py")


@pytest.fixture(scope="module")
def workers_dovecot(pki: Pki) -> Iterator[Dovecot]:
    with private_dovecot(pki) as server:
        yield server


def six_mailboxes(dovecot: Dovecot) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """Fill INBOX and Work of three users; the configuration (one connector per mailbox) and the Message-IDs."""
    config: dict[str, Any] = {"connectors": [], "fallbacks": []}
    expected: dict[str, set[str]] = {}
    for user in (ALICE, BOB, SHARED):
        empty(dovecot, user)
        if "Work" not in dovecot.mailboxes(user):
            dovecot.create_mailbox(user, "Work")
        for folder in FOLDERS:
            name = f"{user.login.split('@')[0]}-{folder.lower()}"
            tag = f"{name}-"
            append(dovecot, user, [sample_message(i, to=user.login, tag=tag) for i in range(PER_MAILBOX)], folder)
            expected[name] = {f"{tag}{i}@example.net" for i in range(PER_MAILBOX)}
            data = connector_config("imap", dovecot.ports.imap, 0, user=user, name=name, send_automated_emails=False)
            data["connectors"][0]["incoming"]["folder"] = folder
            del data["connectors"][0]["outgoing"]
            data["connectors"][0]["use_for"] = "incoming"
            config["connectors"] += data["connectors"]
            config["fallbacks"] += data["fallbacks"]
    config["limits"] = data["limits"]
    return config, expected


class Workers:
    """The worker processes; kills reap at once (a zombie's pid would still look alive to the lease check)."""

    def __init__(self, spec_path: Path, logs: Path) -> None:
        self.spec_path = spec_path
        self.logs = logs
        self.started = 0
        self.running: list[subprocess.Popen[bytes]] = []
        self.exits: list[int] = []

    def start(self) -> None:
        self.started += 1
        with (self.logs / f"worker-{self.started}.log").open("wb") as log:  # the child keeps its own copy
            self.running.append(subprocess.Popen([sys.executable, str(DRIVER), str(self.spec_path)],
                                                 stdout=log, stderr=subprocess.STDOUT))

    def kill(self, pid: int) -> None:
        [process] = [p for p in self.running if p.pid == pid]
        process.kill()
        process.wait()
        self.running.remove(process)

    def reap(self) -> None:
        for process in [p for p in self.running if p.poll() is not None]:
            self.exits.append(process.returncode)
            self.running.remove(process)

    def stop(self) -> None:
        for process in self.running:
            process.kill()
            process.wait()


def test_three_workers_six_mailboxes_random_kills(
    workers_dovecot: Dovecot, postgres_cluster: PostgresCluster, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    dovecot = workers_dovecot
    config, expected = six_mailboxes(dovecot)
    url = postgres_cluster.create_database("workers")
    migrate_database(url)  # as `enate-routing ledger migrate` would, before the workers start
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(HOST_TABLES.encode())
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"config": config, "ledger": url, "host": url, "batch_size": 50}))
    workers = Workers(spec, tmp_path)
    rng = random.Random(16)
    kills = 0
    started = time.monotonic()
    db = psycopg.connect(url, autocommit=True)
    try:
        for _ in range(WORKERS):
            workers.start()
        while kills < KILLS and time.monotonic() - started < 120:
            time.sleep(rng.uniform(0.4, 1.2))  # eight kills land well before the mail runs out
            workers.reap()
            holders = {int(row[0]) for row in db.execute("SELECT pid FROM enate_leases")}
            victims = [p.pid for p in workers.running if p.pid in holders]
            if victims:
                workers.kill(rng.choice(victims))
                kills += 1
            while len(workers.running) < WORKERS:
                workers.start()
        # No more kills: let the workers finish (each exits after a round that hands nothing off); start one
        # again while mail is left (a worker may have exited while a killed one's mailbox was still leased).
        while time.monotonic() - started < 200:
            workers.reap()
            if workers.running:
                time.sleep(0.3)
                continue
            if sum(count(dovecot, user, folder) for user in (ALICE, BOB, SHARED) for folder in FOLDERS) == 0:
                break
            workers.start()
        logs = "\n".join(p.read_text(errors="replace")[-800:] for p in sorted(tmp_path.glob("worker-*.log")))
        assert not workers.running, f"workers still running after 200 s\n{logs}"
        assert set(workers.exits) == {0}, f"a worker failed: {workers.exits}\n{logs}"

        calls = db.execute("SELECT key, message_id, connector, pid, at FROM host_calls").fetchall()
        work = db.execute("SELECT message_id, connector FROM host_work").fetchall()
        history = db.execute("SELECT connector, mailbox, pid, acquired_at, ended_at, ended_by FROM enate_lease_history "
                             "ORDER BY connector, mailbox, acquired_at").fetchall()
        states = dict(db.execute("SELECT state, COUNT(*) FROM enate_messages GROUP BY state").fetchall())
    finally:
        workers.stop()
        db.close()

    # Every message handed off exactly once, every mailbox drained.
    by_connector: dict[str, list[str]] = defaultdict(list)
    for message_id, connector in work:
        by_connector[connector].append(message_id)
    assert {c: sorted(ids) for c, ids in by_connector.items()} == {c: sorted(ids) for c, ids in expected.items()}
    assert states == {"marked": PER_MAILBOX * len(expected)}
    assert all(count(dovecot, user, folder) == 0 for user in (ALICE, BOB, SHARED) for folder in FOLDERS)

    # No mailbox polled by two workers at once.
    holdings: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for connector, _mailbox, pid, acquired, ended, _how in history:
        holdings[connector].append((pid, acquired, ended if ended is not None else float("inf")))
    for connector, spans in holdings.items():
        for (_, _, end), (_, next_start, _) in itertools.pairwise(spans):
            assert end <= next_start, f"{connector}: two holders at once"
    outside = [(key, connector, pid) for key, _, connector, pid, at in calls
               if not any(p == pid and start <= at <= end for p, start, end in holdings[connector])]
    assert outside == [], "handler calls by a worker that did not hold the mailbox's lease"

    # The kills landed mid-mailbox and the mailboxes were spread over the workers.
    died = sum(1 for row in history if row[5] == "owner-died")
    drainers = {pid for _, _, _, pid, _ in calls}
    assert kills == KILLS and died >= 1 and len(drainers) >= WORKERS
    reinvocations = len(calls) - len({c[0] for c in calls})
    show(request, f"workers: {WORKERS} workers (+{workers.started - WORKERS} restarts), {len(expected)} mailboxes x "
                  f"{PER_MAILBOX} messages, {kills} SIGKILLs ({died} leases taken over from a dead worker): "
                  f"{len(work)} handed off once each, lost 0, duplicates 0, handler re-invocations {reinvocations}, "
                  f"{len(history)} lease holdings, none overlapping, {time.monotonic() - started:.0f} s")
