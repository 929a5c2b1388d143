"""A worker process for the multi-worker tests and benchmarks/bench_workers.py: many mailboxes, one ledger.

``python worker_driver.py spec.json`` builds an :class:`~enate_routing.ingest.Ingestor` per connector of the
configuration (real IMAP sources, the real router), all on the ledger named by ``spec["ledger"]`` (a
``postgresql://`` URL or a SQLite file), and runs a :class:`~enate_routing.ingest.MailboxWorker` until a
round hands nothing off. The parent may SIGKILL it at any moment.

The host is idempotent on the idempotency key, as the host contract asks (docs/ingestion.md), and keeps
its records in the PostgreSQL database ``spec["host"]``: ``host_calls`` gets a row for every handler
invocation (which worker, which mailbox, the database's clock), ``host_work`` one row per key — the
primary key is the idempotency.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HOST_TABLES = """
CREATE TABLE IF NOT EXISTS host_calls (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL,
    message_id TEXT,
    connector TEXT NOT NULL,
    pid INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch from clock_timestamp())
);
CREATE TABLE IF NOT EXISTS host_work (
    key TEXT PRIMARY KEY,
    message_id TEXT,
    connector TEXT NOT NULL,
    pid INTEGER NOT NULL
)
"""


class PostgresHost:
    """Records every call, and each work item once (ON CONFLICT DO NOTHING), in one transaction per call."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.db = psycopg.connect(url, autocommit=True)
        self.pid = os.getpid()

    def __call__(self, item: Any) -> None:
        values = (item.idempotency_key, item.envelope.message_id, item.connector, self.pid)
        with self.db.transaction():
            self.db.execute("INSERT INTO host_calls (key, message_id, connector, pid) VALUES (%s, %s, %s, %s)", values)
            self.db.execute("INSERT INTO host_work (key, message_id, connector, pid) VALUES (%s, %s, %s, %s) "
                            "ON CONFLICT (key) DO NOTHING", values)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from enate_routing._loading import parse_config
    from enate_routing._router import Router
    from enate_routing.ingest import Backoff, Ingestor, MailboxWorker, open_ledger
    from enate_routing.transports._factory import ConnectorAccess

    config = parse_config(spec["config"])
    router = Router.compile(config)
    store = open_ledger(spec["ledger"])
    host = PostgresHost(spec["host"]) if spec.get("host") else (lambda item: None)
    access = ConnectorAccess(timeout=30)
    ingestors = [
        Ingestor.from_config(config, connector.name, router=router, store=store, handler=host, access=access,
                             batch_size=spec.get("batch_size", 50), backoff=Backoff(base=0.05, cap=0.5))
        for connector in config.connectors
    ]
    started = time.time()  # after imports and set-up: the benchmark times the work, not Python's start
    rounds = MailboxWorker(ingestors).run_until_idle()
    finished = time.time()
    store.close()
    return {"rounds": len(rounds), "handed": sum(r.handed for r in rounds), "started": started,
            "finished": finished,
            "drained": sorted({name for r in rounds for name, s in r.drained.items() if s.handed})}


if __name__ == "__main__":
    result = run(json.loads(Path(sys.argv[1]).read_text()))
    print(json.dumps(result))  # noqa: T201 — the parent reads it
