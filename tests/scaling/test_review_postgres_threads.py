"""The PostgreSQL ledger used from short-lived threads (the lease heartbeat is a new thread every run)."""

from __future__ import annotations

import threading

from enate_routing.postgres import PostgresLedger


def sessions(ledger: PostgresLedger) -> int:
    rows = ledger._db.query(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'enate-routing'")
    return int(rows[0][0])


def test_a_finished_threads_connection_is_closed(postgres_url: str) -> None:
    """Each thread's connection is closed when the thread ends: months of runs used to pile up sessions
    until the server refused new ones (max_connections)."""
    ledger = PostgresLedger(postgres_url)
    try:
        before = sessions(ledger)
        for _ in range(5):
            thread = threading.Thread(target=ledger.ack_count, args=("a@example.net", 0.0))
            thread.start()
            thread.join()
        assert sessions(ledger) <= before + 1
    finally:
        ledger.close()
