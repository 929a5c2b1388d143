"""The SQLite ledger: state machine, keys, leases, rate-limit counters (no servers)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from enate_routing.errors import LeaseHeldError, StoreError
from enate_routing.ingest import (
    AckState,
    Ledger,
    MessageState,
    PlannedWork,
    RoutedMessage,
    SpoolItem,
    SQLiteLedger,
    content_digest,
)
from enate_routing.ingest._sqlite_db import WAL_SIZE_LIMIT


def item(ref: str, raw: bytes) -> SpoolItem:
    return SpoolItem(ref, raw, content_digest(raw))


def raw_sql(ledger: SQLiteLedger, sql: str, params: tuple[object, ...] = ()) -> None:
    """Change the ledger file behind the ledger's back (what another process or an old version did)."""
    db = sqlite3.connect(ledger.path)
    db.execute(sql, params)
    db.commit()
    db.close()


def test_sqlite_ledger_satisfies_the_protocol(ledger: SQLiteLedger) -> None:
    """SQLiteLedger is a Ledger (the Protocol a host may implement on its own database)."""
    assert isinstance(ledger, Ledger)


def test_wal_and_full_sync(ledger: SQLiteLedger, tmp_path: Path) -> None:
    """The ledger runs in WAL mode with synchronous=FULL (every commit durable when it returns)."""
    db = sqlite3.connect(tmp_path / "ledger.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger._db.query("PRAGMA synchronous")[0][0] == 2
    db.close()


def test_the_write_ahead_log_shrinks_back_after_a_large_batch(ledger: SQLiteLedger) -> None:
    """A batch of large mail grows the WAL file; after the next checkpoint it is cut back to WAL_SIZE_LIMIT
    instead of keeping the size of the largest transaction for good (a 35-minute soak left 15 MB)."""
    wal = Path(f"{ledger.path}-wal")
    big = [item(f"imap:INBOX:1:{n}", bytes([n]) * (4 << 20)) for n in range(5)]
    ledger.spool("C", "INBOX", big)
    assert wal.stat().st_size > 2 * WAL_SIZE_LIMIT
    for n in range(10, 60):  # small commits; an automatic checkpoint runs and the log starts over
        ledger.spool("C", "INBOX", [item(f"imap:INBOX:1:{n}", b"small %d" % n + b"x" * 50_000)])
    assert wal.stat().st_size <= WAL_SIZE_LIMIT


def test_state_machine_spooled_routed_done_marked(ledger: SQLiteLedger) -> None:
    """A message walks SPOOLED → ROUTED → DONE → MARKED, each step recorded."""
    [rec] = ledger.spool("C", "INBOX", [item("imap:INBOX:1:1", b"raw-1")])
    assert rec.state is MessageState.SPOOLED and rec.sha256 == content_digest(b"raw-1")
    assert ledger.raw(rec.id) == b"raw-1"
    ledger.record_routed([RoutedMessage(rec.id, "m1@x", [{"work_key": "k1"}], [PlannedWork("k1", AckState.NONE)],
                                        False)])
    assert ledger.get(rec.id).state is MessageState.ROUTED
    assert ledger.record_handed("C", ["k1"], finish=[rec.id]) == {rec.id}
    assert ledger.get(rec.id).state is MessageState.DONE
    ledger.record_marked([rec.id])
    assert ledger.get(rec.id).state is MessageState.MARKED
    assert ledger.pending("C", "INBOX") == []


def test_same_bytes_under_a_new_ref_are_one_message(ledger: SQLiteLedger) -> None:
    """The SHA-256 second key: identical bytes under a new UID/UIDVALIDITY attach to the existing row."""
    [a] = ledger.spool("C", "INBOX", [item("imap:INBOX:1:7", b"same")])
    [b] = ledger.spool("C", "INBOX", [item("imap:INBOX:2:1", b"same")])
    assert a.id == b.id
    assert set(ledger.refs_of(a.id)) == {"imap:INBOX:1:7", "imap:INBOX:2:1"}
    assert set(ledger.lookup_refs("C", ["imap:INBOX:1:7", "imap:INBOX:2:1", "imap:INBOX:2:2"])) == {
        "imap:INBOX:1:7", "imap:INBOX:2:1"}


def test_duplicate_key_stays_with_its_first_owner(ledger: SQLiteLedger) -> None:
    """A work key already owned by another message is counted as a duplicate, not re-planned."""
    a, b = ledger.spool("C", "INBOX", [item("r1", b"copy-1"), item("r2", b"copy-2")])
    assert ledger.record_routed([RoutedMessage(a.id, "m@x", [], [PlannedWork("k", AckState.NONE)], False)]) == 0
    assert ledger.record_routed([RoutedMessage(b.id, "m@x", [], [PlannedWork("k", AckState.NONE)], False)]) == 1
    assert ledger.get(b.id).state is MessageState.DONE
    assert [w.message for w in ledger.work_of(a.id)] == [a.id]


def test_quarantine_keeps_raw_bytes_and_reason(ledger: SQLiteLedger) -> None:
    """A quarantined message is DONE (so it can be marked), listed, and keeps its bytes."""
    [rec] = ledger.spool("C", "INBOX", [item("r", b"\xff\xfe broken")])
    ledger.record_quarantine(rec.id, "header block over 1 MB")
    [q] = ledger.quarantined("C")
    assert q.quarantine_reason == "header block over 1 MB" and q.state is MessageState.DONE
    assert ledger.raw(q.id) == b"\xff\xfe broken"
    reopened = ledger.reopen(q.id, new_generation=False)
    assert reopened.state is MessageState.SPOOLED and not reopened.quarantined


def test_ack_counts_slide_over_the_hour(tmp_path: Path) -> None:
    """Acknowledgements count against the recipient for one hour, then no longer."""
    now = [1_000_000.0]
    store = SQLiteLedger(tmp_path / "l.db", clock=lambda: now[0])
    [rec] = store.spool("C", "INBOX", [item("r", b"x")])
    store.record_routed([RoutedMessage(rec.id, None, [], [PlannedWork("k", AckState.PENDING, ("A@x.example",))],
                                       False)])
    store.record_ack("C", "k", AckState.SENT, ["A@x.example"])
    assert store.ack_count("a@x.example", now[0] - 3600) == 1
    now[0] += 3601
    assert store.ack_count("a@x.example", now[0] - 3600) == 0
    assert store.prune_acks(now[0] - 3600) == 1
    store.close()


def test_lease_excludes_a_second_owner(ledger: SQLiteLedger) -> None:
    """Only one live owner per (connector, mailbox); the same owner may renew."""
    ledger.acquire_lease("C", "INBOX", "one", ttl=60)
    ledger.acquire_lease("C", "INBOX", "one", ttl=60)
    with pytest.raises(LeaseHeldError):
        ledger.acquire_lease("C", "INBOX", "two", ttl=60)
    ledger.acquire_lease("C", "Other", "two", ttl=60)
    ledger.release_lease("C", "INBOX", "one")
    ledger.acquire_lease("C", "INBOX", "two", ttl=60)


def test_lease_expires_and_dead_owner_releases(tmp_path: Path) -> None:
    """An expired lease, or one whose owner process is dead on this host, can be taken over."""
    now = [100.0]
    store = SQLiteLedger(tmp_path / "l.db", clock=lambda: now[0])
    store.acquire_lease("C", "INBOX", "one", ttl=10)
    with pytest.raises(LeaseHeldError):
        store.acquire_lease("C", "INBOX", "two", ttl=10)
    now[0] += 11
    store.acquire_lease("C", "INBOX", "two", ttl=10)
    # A lease left by a process that is gone (pid not alive) is free at once.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    pid = child.pid
    raw_sql(store, "UPDATE leases SET pid = ?, owner = 'dead'", (pid,))
    store.acquire_lease("C", "INBOX", "three", ttl=10)
    store.close()


def test_a_restarted_process_with_the_same_pid_takes_the_lease(ledger: SQLiteLedger) -> None:
    """A lease left by an earlier process that had our pid (a restarted container is PID 1 again) is free:
    the pid is alive, but it is a process started at another time."""
    ledger.acquire_lease("C", "INBOX", "before-restart", ttl=300)
    raw_sql(ledger, "UPDATE leases SET started = '1'")
    ledger.acquire_lease("C", "INBOX", "after-restart", ttl=300)
    with pytest.raises(LeaseHeldError):
        ledger.acquire_lease("C", "INBOX", "a-third-one", ttl=300)


def test_the_ledger_works_from_any_thread(ledger: SQLiteLedger) -> None:
    """Each thread gets its own connection: spooling from worker threads works (asyncio.to_thread)."""
    failures: list[BaseException] = []

    def spool(n: int) -> None:
        try:
            ledger.spool("C", "INBOX", [item(f"r{n}", f"raw-{n}".encode())])
        except BaseException as exc:  # noqa: BLE001 — reported to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=spool, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(ledger.pending("C", "INBOX")) == 8


def test_database_errors_inside_a_transaction_are_store_errors(ledger: SQLiteLedger) -> None:
    """A statement that fails inside a write transaction raises StoreError (and rolls back)."""
    raw_sql(ledger, "DROP TABLE refs")
    with pytest.raises(StoreError, match="refs"):
        ledger.spool("C", "INBOX", [item("r", b"x")])
    assert ledger.pending("C", "INBOX") == []


def test_an_empty_ledger_file_is_refused_unless_reset(tmp_path: Path) -> None:
    """A zero-length ledger (truncated by a full disk?) is not silently re-created; reset=True starts anew."""
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match=r"empty file.*--reset-ledger"):
        SQLiteLedger(path)
    with SQLiteLedger(path, reset=True) as store:
        assert store.pending("C", "INBOX") == []


def test_a_file_that_is_not_a_ledger_is_refused(tmp_path: Path) -> None:
    """Garbage where the ledger should be is a StoreError naming the file, not a raw sqlite3 error."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database file at all" * 200)
    with pytest.raises(StoreError, match=r"garbage\.db"):
        SQLiteLedger(path)


def test_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    """A ledger that cannot be opened raises StoreError, not a raw sqlite3 error."""
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError):
        SQLiteLedger(tmp_path / "dir.db")


def test_processes_creating_one_new_ledger_at_once_all_open_it(tmp_path: Path) -> None:
    """A new ledger file appears complete: processes starting together never see it empty (which is refused)."""
    path = tmp_path / "new" / "ledger.db"
    start = time.time() + 1.0
    code = ("import sys, time\n"
            "from enate_routing.ingest import SQLiteLedger\n"
            f"time.sleep(max(0.0, {start} - time.time()))\n"
            "SQLiteLedger(sys.argv[1]).close()\n")
    children = [subprocess.Popen([sys.executable, "-c", code, str(path)], stderr=subprocess.PIPE, text=True)
                for _ in range(10)]
    errors = [child.communicate(timeout=60)[1] for child in children]
    assert [child.returncode for child in children] == [0] * 10, errors
    assert sorted(p.name for p in path.parent.iterdir() if ".new-" in p.name) == []
    SQLiteLedger(path).close()
