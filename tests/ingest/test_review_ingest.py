"""Adversarial review of the ingestion loop: defects found by attacking it as an operator would."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeRouter, Host, Mailbox, MemorySender, MemorySource, make_message

from enate_routing.errors import ConnectError, ProtocolError, StoreError
from enate_routing.ingest import AckState, Backoff, Ingestor, IngestStats, SQLiteLedger
from enate_routing.ingest._ledger import PlannedWork, RoutedMessage, SpoolItem, content_digest
from enate_routing.transports._base import MessageRef

Make = Callable[..., tuple[Ingestor, Host, MemorySender]]


def test_rate_limit_counts_acknowledgements_still_pending(make_ingestor: Make, box: Mailbox) -> None:
    """While the SMTP server is down, acknowledgements wait as pending; every batch must not plan another
    hour's worth for the same sender, or the recovery sends them all at once (docs/semantics.md §3.5)."""
    for i in range(15):
        box.deliver(make_message(i))
    sender = MemorySender(fail=ConnectError("smtp.example:25: connection refused"))
    ingestor, host, _ = make_ingestor(sender=sender, acknowledgements_per_hour=10, batch_size=4)
    ingestor.run_once()
    assert len(host.items) == 15 and sender.sent == []
    sender.fail = None
    ingestor.run_once()
    assert len(sender.sent) == 10


def test_ledger_counts_pending_acknowledgements_until_they_are_decided(ledger: SQLiteLedger) -> None:
    """A pending acknowledgement counts against its recipient (any case) until it is sent or given up."""
    [record] = ledger.spool("Support", "INBOX", [SpoolItem("imap:INBOX:1:1", b"x", content_digest(b"x"))])
    ledger.record_routed([RoutedMessage(record.id, "m@x", [], [PlannedWork("k", AckState.PENDING, ("A@x.example",))],
                                        False)])
    assert ledger.ack_count("a@X.example", 0.0) == 1
    ledger.record_ack("Support", "k", AckState.FAILED, ["A@x.example"], reason="refused")
    assert ledger.ack_count("a@x.example", 0.0) == 0


def test_acknowledgement_counters_are_pruned_after_the_hour(make_ingestor: Make, box: Mailbox, tmp_path: Path) -> None:
    """Months of distinct senders must not grow the counter table: rows older than the window are dropped."""
    now = [1_000_000.0]
    store = SQLiteLedger(tmp_path / "clocked.db", clock=lambda: now[0])
    try:
        for i in range(3):
            box.deliver(make_message(i, sender=f"c{i}@example.net"))
        ingestor, _, sender = make_ingestor(store=store, clock=lambda: now[0])
        ingestor.run_once()
        assert len(sender.sent) == 3
        now[0] += 3601
        box.deliver(make_message(99))
        ingestor.run_once()
        with sqlite3.connect(store.path) as db:
            assert db.execute("SELECT COUNT(*) FROM acks").fetchone()[0] == 1  # only the last hour's
    finally:
        store.close()


def test_a_ledger_deleted_while_in_use_is_refused_not_written_blind(make_ingestor: Make, box: Mailbox,
                                                                   ledger: SQLiteLedger) -> None:
    """An operator (or a clean-up job) deletes the ledger file while `poll` runs: the open connections would
    go on writing to the unlinked file, every record (quarantined raw bytes too) lost at exit while the
    server copies are marked. The next write must fail with a StoreError naming the file instead."""
    box.deliver(make_message(1))
    ingestor, host, _ = make_ingestor()
    ingestor.run_once()
    Path(ledger.path).unlink()
    box.deliver(make_message(2))
    with pytest.raises(StoreError, match=str(ledger.path)):
        ingestor.run_once()
    assert len(host.items) == 1 and box.unprocessed() == [2], "nothing handed off or marked on a ghost ledger"


def test_the_same_bytes_in_two_folders_polled_at_once_are_handed_off_once(ledger: SQLiteLedger) -> None:
    """An IMAP COPY (or a label) puts identical bytes in two folders of one connector, each drained by its own
    poller (its own lease). The second poller's spool finds the first one's row by digest while that one is
    still handing it off: it must leave the message to that poller, and mark its own copy once it is MARKED."""
    inbox, other = Mailbox("INBOX"), Mailbox("Other")
    raw = make_message(1)
    inbox.deliver(raw)
    other.deliver(raw)
    host = Host()

    def make(box: Mailbox, hook: Any = None) -> Ingestor:
        return Ingestor(connector="Support", mailbox=box.name, source_factory=lambda: MemorySource(box),
                        router=FakeRouter(acks=False), store=ledger, handler=host, hook=hook,
                        backoff=Backoff(base=0.0, cap=0.0, max_failures=5), sleep=lambda _: None)

    second = make(other)
    concurrently: list[IngestStats] = []

    def run_the_other_folder(point: str, index: int) -> None:
        if point == "after_handler" and not concurrently:  # the first poller's handler returned, not recorded
            concurrently.append(second.run_once())

    make(inbox, run_the_other_folder).run_once()
    assert concurrently and len(host.calls) == 1, "handed off once, by the poller that spooled it first"
    assert inbox.unprocessed() == [] and other.unprocessed() == [1]
    second.run_once()
    assert len(host.calls) == 1 and other.unprocessed() == [], "the copy is marked once the first is MARKED"


class RefusesOneMessage(MemorySource):
    """A server whose FETCH of one message always answers NO (a damaged mail file), the rest fine."""

    def __init__(self, box: Mailbox, bad_uid: int) -> None:
        super().__init__(box)
        self.bad_uid = bad_uid

    def fetch(self, ref: MessageRef) -> bytes:
        if ref.uid == self.bad_uid:
            raise ProtocolError("unexpected reply during command: NO [SERVERBUG] Internal error", server="memory")
        return super().fetch(ref)


def test_a_message_the_server_cannot_deliver_does_not_block_the_ones_after_it(make_ingestor: Make,
                                                                            box: Mailbox) -> None:
    """One message whose FETCH always fails (not the connection: the server answers NO) must not stall the
    mailbox: the messages after it are handed off and marked; it stays on the server for a later pass."""
    for i in range(1, 4):
        box.deliver(make_message(i))
    ingestor, host, _ = make_ingestor(source=lambda: RefusesOneMessage(box, 2))
    stats = ingestor.run_once()
    assert len(host.items) == 2 and box.unprocessed() == [2]
    assert any("SERVERBUG" in error for error in stats.errors)
    with pytest.raises(ProtocolError):  # alone, it fails the pass: retried with backoff, then reported
        ingestor.run_once()


def open_files(path: Path) -> int:
    """This process's open file descriptors on ``path`` (the database file itself)."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += Path(os.readlink(fd)) == path.resolve()
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_runs_longer_than_a_heartbeat_do_not_leak_ledger_connections(make_ingestor: Make, box: Mailbox,
                                                                      ledger: SQLiteLedger) -> None:
    """Every run whose lease heartbeat beat opened a connection in that run's heartbeat thread and kept it
    open after the thread ended: months of `poll` ran out of file descriptors (or PostgreSQL connections)."""
    slow = Host(fail=lambda item: time.sleep(0.2))  # type: ignore[func-returns-value]
    ingestor, _, _ = make_ingestor(host=slow, lease_ttl=0.15)  # beats every 0.05 s
    box.deliver(make_message(0))
    ingestor.run_once()
    baseline = open_files(Path(ledger.path))
    for n in range(1, 7):
        box.deliver(make_message(n))
        ingestor.run_once()
    assert open_files(Path(ledger.path)) <= baseline  # one leaked per run before: baseline + 6


def test_the_ledger_does_not_keep_every_handled_message_forever(make_ingestor: Make, box: Mailbox,
                                                                tmp_path: Path) -> None:
    """Months of `poll`: a handled message's raw bytes are not kept forever (here: a year later; the default
    retention is 30 days). Routed mail: unrouted mail keeps its bytes for reprocessing (test_raw_retention)."""
    now = [1_000_000.0]
    store = SQLiteLedger(tmp_path / "clocked.db", clock=lambda: now[0])
    try:
        for i in range(20):
            box.deliver(make_message(i, subject=f"routed {i}", body="x" * 10_000))
        ingestor, _, _ = make_ingestor(store=store, clock=lambda: now[0])
        ingestor.run_once()
        now[0] += 365 * 86400.0
        box.deliver(make_message(99))
        ingestor.run_once()
        with sqlite3.connect(store.path) as db:
            kept = db.execute("SELECT COALESCE(SUM(LENGTH(raw)), 0) FROM messages WHERE created_at < ?",
                              (now[0] - 30 * 86400.0,)).fetchone()[0]
        assert kept == 0
    finally:
        store.close()
