"""PostgresLedger against a real throw-away PostgreSQL: the SQLite ledger's state machine, keys unique in the
database, leases with takeover and history, migrations, errors without the password."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakes import Mailbox, MemorySource

from enate_routing._loading import parse_config
from enate_routing._router import Router
from enate_routing.errors import LeaseHeldError, StoreError
from enate_routing.ingest import (
    AckState,
    Backoff,
    Ingestor,
    Ledger,
    MessageState,
    PlannedWork,
    RoutedMessage,
    SpoolItem,
    SQLiteLedger,
    WorkItem,
    content_digest,
    open_ledger,
)
from enate_routing.postgres import PostgresLedger, migrate_database
from enate_routing.postgres._driver import PostgresDatabase, redact_url
from enate_routing.postgres._migrations import LATEST
from mailrig.postgres import PostgresCluster
from mailrig.util import KEEPALIVE_EXPECTED, keepalive_options

pytestmark = [pytest.mark.servers, pytest.mark.postgres]


def item(ref_key: str, raw: bytes) -> SpoolItem:
    return SpoolItem(ref_key, raw, content_digest(raw))


@pytest.fixture
def pg(postgres_url: str) -> Any:
    ledger = PostgresLedger(postgres_url)
    yield ledger
    ledger.close()


def scenario(ledger: Any) -> list[Any]:
    """One walk through every ledger operation; what each returned (ids made relative to the first message)."""
    out: list[Any] = []
    a, b, c = ledger.spool("C", "INBOX", [item("imap:INBOX:1:1", b"one"), item("imap:INBOX:1:2", b"two"),
                                          item("imap:INBOX:1:3", b"three")])
    base = a.id

    def rel(record: Any) -> tuple[Any, ...]:
        return (record.id - base, record.ref_key, record.state, record.quarantine_reason, record.fallback_only,
                record.decisions, record.generation, record.attempts, record.message_id, record.size)

    out.append([rel(r) for r in (a, b, c)])
    out.append(ledger.observe_uidvalidity("C", "INBOX", 1))
    out.append(ledger.observe_uidvalidity("C", "INBOX", 1))
    out.append(ledger.observe_uidvalidity("C", "INBOX", 2))
    [alias] = ledger.spool("C", "INBOX", [item("imap:INBOX:2:1", b"one")])  # same bytes, new ref
    out.append(rel(alias))
    out.append(ledger.refs_of(a.id))
    found = ledger.lookup_refs("C", ["imap:INBOX:1:1", "imap:INBOX:2:1", "x"])
    out.append(sorted((k, rel(v)) for k, v in found.items()))
    ledger.note_attempt([a.id, a.id, b.id])
    out.append(ledger.record_routed([
        RoutedMessage(a.id, "a@x", [{"n": 1}],
                      [PlannedWork("k1", AckState.NONE), PlannedWork("k2", AckState.PENDING, ("r@x",))], False),
        RoutedMessage(b.id, "b@x", [{"n": 2}], [PlannedWork("k1", AckState.NONE)], True),  # k1 owned by a
    ]))
    out.append(ledger.ack_count("R@x", 0.0))  # k2's acknowledgement is pending: it counts (rate limit)
    out.append([rel(r) for r in ledger.pending("C", "INBOX")])
    out.append([(w.key, w.message - base, w.handed_at is None, w.ack_state, w.ack_recipients)
                for w in ledger.work_of(a.id)])
    out.append(ledger.record_handed("C", ["k1"], finish=[a.id, b.id, b.id],  # k2's ack is pending: a not DONE
                                    references={"k1": "T-1"}))
    out.append(ledger.record_handed("C", ["k1"], references={"k1": "T-2"}))  # the first reference stays
    out.append(ledger.record_handed("C", []))
    out.append([(w.key, w.reference) for w in ledger.work_of(a.id)])
    ledger.record_ack("C", "k2", AckState.FAILED, ["R@x"], attempt=True, reason="refused: 550")
    out.append([(w.key, w.ack_state, w.ack_reason, w.attempts) for w in ledger.work_of(a.id)])
    ledger.record_ack("C", "k2", AckState.SENT, ["R@x"], attempt=True, finish=a.id)
    out.append(ledger.ack_count("r@X", 0.0))
    out.append(ledger.note_work_failure("C", "k2"))
    out.append(ledger.note_work_failure("C", "nope"))
    out.append(ledger.get(a.id).state)
    ledger.record_marked([a.id, b.id, c.id])  # only DONE ones become MARKED
    out.append([ledger.get(m).state for m in (a.id, b.id, c.id)])
    ledger.record_quarantine(c.id, "too big", "c@x")
    out.append([rel(r) for r in ledger.quarantined()])
    out.append([rel(r) for r in ledger.quarantined("other")])
    out.append([rel(r) for r in ledger.unrouted("C")])
    out.append(rel(ledger.reopen(c.id, new_generation=True)))
    out.append(ledger.raw(c.id))
    # Retention: a (MARKED, routed) and b (MARKED, unrouted: fallback only) lose their bytes; c, back to
    # SPOOLED, keeps them; b is then no longer offered for reprocessing.
    out.append(ledger.drop_raw("C", ledger.get(a.id).updated_at))  # not older than that yet
    out.append(ledger.drop_raw("other", ledger.clock() + 1))
    out.append(ledger.drop_raw("C", ledger.clock() + 1))
    out.append(ledger.drop_raw("C", ledger.clock() + 1))  # already dropped
    out.append([ledger.raw(m) for m in (a.id, b.id, c.id)])
    out.append([rel(r) for r in ledger.unrouted("C")])
    out.append(rel(ledger.get(a.id)))  # the row stays: digest, size, state
    out.append(ledger.counts("C"))
    with pytest.raises(StoreError):
        ledger.get(base + 1000)
    return out


def test_same_results_as_the_sqlite_ledger(pg: PostgresLedger, tmp_path: Path) -> None:
    """Every operation, in the same order, returns the same as SQLiteLedger (the same state machine)."""
    assert isinstance(pg, Ledger)
    sqlite = SQLiteLedger(tmp_path / "ledger.db")
    try:
        expected = scenario(sqlite)
    finally:
        sqlite.close()
    assert scenario(pg) == expected
    # Not vacuous: the walk reached quarantine, and a message owning acknowledged work became MARKED.
    assert [(r[2], r[3]) for r in expected[-13]] == [(MessageState.DONE, "too big")]
    assert expected[-10] != [] and expected[-3] == []  # b unrouted, until its bytes are dropped
    assert expected[-8:-4] == [0, 0, 2, 0] and expected[-4] == [b"", b"", b"three"]
    assert expected[-14] == [MessageState.MARKED, MessageState.MARKED, MessageState.SPOOLED]


def test_a_work_key_has_one_owner_across_workers(postgres_url: str) -> None:
    """Two workers (two connections) route copies of one message at once: the key gets exactly one owner."""
    ledgers = [PostgresLedger(postgres_url) for _ in range(2)]
    try:
        records = [ledger.spool("C", "INBOX", [item(f"r{i}", f"copy {i}".encode())])[0]
                   for i, ledger in enumerate(ledgers)]
        duplicates: list[int] = []
        barrier = threading.Barrier(2)

        def route(i: int) -> None:
            barrier.wait()
            plan = [PlannedWork(f"k{n}", AckState.NONE) for n in range(50)]
            duplicates.append(ledgers[i].record_routed([RoutedMessage(records[i].id, "m@x", [], plan, False)]))

        threads = [threading.Thread(target=route, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        owned = [len(ledgers[0].work_of(r.id)) for r in records]
        assert sum(owned) == 50 and sorted(duplicates) == sorted(50 - n for n in owned)
    finally:
        for ledger in ledgers:
            ledger.close()


def lease_history(cluster: PostgresCluster, url: str) -> list[list[str]]:
    database = url.rsplit("/", 1)[1]
    out = cluster.psql("SELECT owner, ended_by FROM enate_lease_history ORDER BY id", database)
    return [line.split("|") for line in out.splitlines() if line]


def test_lease_held_renewed_expired_released(pg: PostgresLedger, postgres_cluster: PostgresCluster,
                                             postgres_url: str) -> None:
    """Another live owner is refused; the owner renews; after expiry (database clock) another takes over."""
    other = PostgresLedger(postgres_url)
    try:
        pg.acquire_lease("C", "INBOX", "worker-a", 0.5)
        with pytest.raises(LeaseHeldError, match="worker-a"):
            other.acquire_lease("C", "INBOX", "worker-b", 30)
        pg.acquire_lease("C", "INBOX", "worker-a", 0.5)  # a heartbeat
        other.acquire_lease("C", "OTHER", "worker-b", 30)  # another folder is free
        time.sleep(0.7)
        other.acquire_lease("C", "INBOX", "worker-b", 30)
        with pytest.raises(LeaseHeldError, match="worker-b"):
            pg.acquire_lease("C", "INBOX", "worker-a", 30)
        other.release_lease("C", "INBOX", "worker-b")
        pg.acquire_lease("C", "INBOX", "worker-a", 30)
        pg.release_lease("C", "INBOX", "worker-b")  # not the owner: nothing happens
        with pytest.raises(LeaseHeldError):
            other.acquire_lease("C", "INBOX", "worker-b", 30)
    finally:
        other.close()
    assert lease_history(postgres_cluster, postgres_url) == [
        ["worker-a", "expired"], ["worker-b", ""], ["worker-b", "released"], ["worker-a", ""]]


def test_lease_of_a_dead_process_is_taken_over_at_once(pg: PostgresLedger, postgres_url: str,
                                                       postgres_cluster: PostgresCluster) -> None:
    """A worker killed on this host (its pid gone) loses its folder at once, not after the ttl."""
    code = ("import os, sys; from enate_routing.postgres import PostgresLedger; "
            "PostgresLedger(sys.argv[1]).acquire_lease('C', 'INBOX', 'doomed', 3600); os._exit(9)")
    done = subprocess.run([sys.executable, "-c", code, postgres_url], check=False, timeout=60, env=os.environ)
    assert done.returncode == 9
    pg.acquire_lease("C", "INBOX", "survivor", 30)
    assert lease_history(postgres_cluster, postgres_url) == [["doomed", "owner-died"], ["survivor", ""]]


def test_a_lease_being_taken_is_skipped_not_waited_for(pg: PostgresLedger, postgres_url: str) -> None:
    """SKIP LOCKED: while another worker's transaction holds the lease row, acquiring fails at once."""
    import psycopg

    pg.acquire_lease("C", "INBOX", "worker-a", 0.01)
    time.sleep(0.05)
    with psycopg.connect(postgres_url) as locker:
        locker.execute("SELECT 1 FROM enate_leases FOR UPDATE")
        started = time.monotonic()
        with pytest.raises(LeaseHeldError, match="acquiring it now"):
            pg.acquire_lease("C", "INBOX", "worker-b", 30)
        assert time.monotonic() - started < 20  # did not queue behind the lock (its timeout is far longer)
        locker.rollback()
    pg.acquire_lease("C", "INBOX", "worker-b", 30)


def test_the_holders_heartbeat_waits_out_a_probe_instead_of_losing_the_lease(pg: PostgresLedger,
                                                                          postgres_url: str) -> None:
    """While another worker's acquisition has the row locked, the holder's own renewal waits and succeeds."""
    import psycopg

    pg.acquire_lease("C", "INBOX", "holder", 30)
    renewed: list[BaseException | None] = []
    with psycopg.connect(postgres_url) as locker:
        locker.execute("SELECT 1 FROM enate_leases FOR UPDATE")
        heartbeat = threading.Thread(target=lambda: renewed.append(renew(pg)))
        heartbeat.start()
        heartbeat.join(0.5)
        assert heartbeat.is_alive()  # waiting for the lock, not failed
        locker.rollback()
    heartbeat.join(30)
    assert renewed == [None]


def renew(ledger: PostgresLedger) -> BaseException | None:
    try:
        ledger.acquire_lease("C", "INBOX", "holder", 30)
    except LeaseHeldError as exc:
        return exc
    return None


def test_migrations_are_versioned_idempotent_and_concurrent(postgres_url: str,
                                                           postgres_cluster: PostgresCluster) -> None:
    """Four workers migrating at once apply each step once; a second run applies nothing."""
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(migrate_database(postgres_url))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each step applied exactly once, by whichever worker got to it first.
    assert sorted(step.version for r in results for step in r[2]) == list(range(1, LATEST + 1))
    assert {r[1] for r in results} == {LATEST}
    database = postgres_url.rsplit("/", 1)[1]
    assert postgres_cluster.psql("SELECT version FROM enate_schema_version ORDER BY version", database).split() == [
        str(v) for v in range(1, LATEST + 1)]
    assert migrate_database(postgres_url) == (LATEST, LATEST, [])


def test_a_newer_schema_is_refused(postgres_url: str, postgres_cluster: PostgresCluster) -> None:
    migrate_database(postgres_url)
    database = postgres_url.rsplit("/", 1)[1]
    newer = LATEST + 1
    postgres_cluster.psql(f"INSERT INTO enate_schema_version (version, description) VALUES ({newer}, 'x')",  # noqa: S608
                          database)
    with pytest.raises(StoreError, match="newer than this release"):
        PostgresLedger(postgres_url)


def test_errors_name_the_database_but_never_the_password(postgres_cluster: PostgresCluster) -> None:
    """A wrong password or a missing database: a StoreError with the URL, its password cut out."""
    wrong = postgres_cluster.url("postgres").replace(postgres_cluster.password, "Secret-Wrong-Pw")
    for url, secret in ((wrong, "Secret-Wrong-Pw"), (postgres_cluster.url("nosuchdb"), postgres_cluster.password)):
        with pytest.raises(StoreError) as caught:
            open_ledger(url)
        text = f"{caught.value!s} {caught.value!r} {caught.value.__cause__!r} {caught.value.__context__!r}"
        assert secret not in text and "ingestion ledger postgresql://enate@127.0.0.1" in text
    ledger = open_ledger(postgres_cluster.url("postgres"))
    try:
        assert postgres_cluster.password not in repr(ledger)
    finally:
        ledger.close()


def test_without_psycopg_the_message_says_what_to_install(postgres_url: str) -> None:
    """psycopg is optional: opening a postgresql:// ledger without it says which extra to install."""
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from enate_routing.ingest import open_ledger\n"
            "try:\n    open_ledger(sys.argv[1])\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n")
    done = subprocess.run([sys.executable, "-c", code, postgres_url], capture_output=True, text=True, check=True,
                          timeout=60, env=os.environ)
    assert done.stdout.startswith("StoreError") and "pip install 'enate-routing[postgres]'" in done.stdout


def test_open_ledger_selects_by_url(tmp_path: Path, postgres_url: str) -> None:
    sqlite = open_ledger(tmp_path / "x.db")
    pg = open_ledger(postgres_url)
    try:
        assert isinstance(sqlite, SQLiteLedger) and isinstance(pg, PostgresLedger)
    finally:
        sqlite.close()
        pg.close()


def test_text_postgresql_cannot_hold_is_stored_replaced_not_refused(pg: PostgresLedger) -> None:
    """A NUL in a Message-ID, a quarantine reason or a host's reference is stored as U+FFFD, a lone surrogate
    as '?': psycopg refused both, and every pass of the mailbox failed on that one message. Decisions (JSON)
    keep them."""
    a, b = pg.spool("C", "INBOX", [item("imap:INBOX:1:1", b"one"), item("imap:INBOX:1:2", b"two")])
    pg.record_routed([RoutedMessage(a.id, "a\x00b@x", [{"subject": "x\x00y\ud800"}],
                                    [PlannedWork("k1", AckState.NONE)], False)])
    pg.record_quarantine(b.id, "invalid address a\x00b in From", "m\ud800@x")
    pg.record_handed("C", ["k1"], references={"k1": "T-1\x00"})
    assert (pg.get(a.id).message_id, pg.get(a.id).decisions) == ("a\ufffdb@x", ({"subject": "x\x00y\ud800"},))
    assert (pg.get(b.id).quarantine_reason, pg.get(b.id).message_id) == ("invalid address a\ufffdb in From", "m?@x")
    assert [w.reference for w in pg.work_of(a.id)] == ["T-1\ufffd"]


def test_a_message_with_a_nul_in_its_message_id_is_handed_off_once(postgres_url: str) -> None:
    """The whole pass on a PostgreSQL ledger: the message is handed off and marked, the pass ends; before,
    recording its Message-ID failed the pass, every time."""
    box = Mailbox()
    box.deliver(b"From: ann@example.org\r\nTo: help@acme.example\r\nSubject: x\x00y\r\n"
                b"Message-ID: <a\x00b@example.org>\r\n\r\nHello\r\n")
    handed: list[WorkItem] = []
    config = parse_config({
        "connectors": [{"name": "Support", "service": "other", "username": "help@acme.example", "password": "pw",
                        "primary_address": "help@acme.example", "use_for": "incoming",
                        "incoming": {"protocol": "imap", "host": "127.0.0.1", "port": 1, "security": "ssl"}}],
        "fallbacks": [{"connector": "Support", "address": "help@acme.example", "target": {
            "customer": "Acme", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}}],
    })
    ledger = PostgresLedger(postgres_url)
    try:
        ingestor = Ingestor(connector="Support", mailbox="INBOX", source_factory=lambda: MemorySource(box),
                            router=Router.compile(config), store=ledger, handler=handed.append,
                            backoff=Backoff(base=0.0, cap=0.0), sleep=lambda _: None)
        stats = ingestor.run_once()
        assert stats.errors == [] and box.unprocessed() == []
        assert [item.envelope.message_id for item in handed] == ["a\x00b@example.org"]
        assert [r.message_id for r in ledger.pending("Support", "INBOX")] == []
        ingestor.run_once()
        assert len(handed) == 1
    finally:
        ledger.close()


def test_a_restart_of_the_database_fails_no_operation_once_it_is_back(caplog: pytest.LogCaptureFixture,
                                                                     own_postgres_cluster: PostgresCluster) -> None:
    """A restart ends every idle connection ("terminating connection due to administrator command"): each is
    replaced before its next use, so no spool, lease or read fails once the server is back (a worker logged
    one failed round per mailbox before). A healthy connection is kept: one backend serves the operations
    between restarts. Its own cluster: the restart must not touch the other tests' connections."""
    cluster = own_postgres_cluster
    url = cluster.create_database("restarted")
    ledger = PostgresLedger(url)
    database = PostgresDatabase(url, what="ingestion ledger")
    try:
        ledger.spool("C", "INBOX", [item("imap:INBOX:1:1", b"one")])
        backend = database.query("SELECT pg_backend_pid()")
        assert database.query("SELECT pg_backend_pid()") == backend  # kept while healthy
        caplog.set_level(logging.INFO, logger="enate_routing.postgres")
        for round_ in range(2):
            cluster.stop_server()
            cluster.start_server()
            ledger.acquire_lease("C", "INBOX", "worker-a", 30)
            ledger.spool("C", "INBOX", [item(f"imap:INBOX:1:{round_ + 2}", b"more")])
            assert [r.ref_key for r in ledger.pending("C", "INBOX")][-1] == f"imap:INBOX:1:{round_ + 2}"
            ledger.release_lease("C", "INBOX", "worker-a")
            assert database.query("SELECT pg_backend_pid()") != backend
            backend = database.query("SELECT pg_backend_pid()")
    finally:
        ledger.close()
        database.close()
    reconnects = [r for r in caplog.records if "closed an idle connection" in r.getMessage()]
    assert reconnects and all(r.store == redact_url(url) for r in reconnects)  # type: ignore[attr-defined]
    assert cluster.password not in caplog.text


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket options")
def test_connections_keep_alive_and_bound_unanswered_data_unless_the_url_says_otherwise(postgres_url: str) -> None:
    """A worker's connection idles through IMAP IDLE waits that NAT gateways and load balancers cut silently,
    and a vanished host would hold a statement for about 15 minutes: every connection probes every minute
    (6 probes 10 s apart) and gives up on data unanswered for 2 minutes, unless the URL sets its own values."""
    database = PostgresDatabase(postgres_url, what="ingestion ledger")
    try:
        assert keepalive_options(database._connection().fileno()) == KEEPALIVE_EXPECTED
    finally:
        database.close()
    database = PostgresDatabase(f"{postgres_url}?keepalives_idle=300&tcp_user_timeout=0", what="ingestion ledger")
    try:
        own = {**KEEPALIVE_EXPECTED, "idle": 300, "user_timeout": 0}
        assert keepalive_options(database._connection().fileno()) == own
    finally:
        database.close()


def test_an_option_libpq_does_not_know_is_a_store_error_without_the_password(
        postgres_url: str, postgres_cluster: PostgresCluster) -> None:
    """A misspelt URL option is refused in one line naming it, as an unreachable server is: never a traceback."""
    with pytest.raises(StoreError) as caught:
        PostgresDatabase(f"{postgres_url}?keepalive_idle=300", what="ingestion ledger")  # (keepalives_idle)
    text = str(caught.value)
    assert text.startswith("cannot open the ingestion ledger postgresql://enate@")
    assert text.endswith('invalid URI query parameter: "keepalive_idle"') and postgres_cluster.password not in text
