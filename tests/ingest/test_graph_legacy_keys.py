"""A ledger written before Graph refs had their own key form (``pop3:<mailbox>:<id>``) is still safe to run
against: messages handed off but not yet marked are found again by content digest, never handed off twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fakes import Host
from graph_rig import app_token, graph_config, host_access
from ingest_rig import sample_message, scratch_dir

from enate_routing._loading import parse_config
from enate_routing._router import Router
from enate_routing.ingest import Ingestor, SQLiteLedger
from enate_routing.transports._factory import open_source
from mailrig.graph import FakeGraph
from mailrig.pki import Pki

pytestmark = [pytest.mark.servers]

DESK = "legacy@contoso.test"
MAILBOX = f"{DESK}/inbox"


class Crash(BaseException):
    """Stands in for the process dying after the hand-offs were recorded, before any message was marked."""


def crash_after_commit(name: str, index: int) -> None:
    if name == "after_commit":
        raise Crash


def rewrite_to_legacy_keys(path: Path) -> int:
    """Turn every ``graph:<mailbox>/<id>`` key into the form older versions wrote, ``pop3:<mailbox>:<id>``."""
    prefix = f"graph:{MAILBOX}/"
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT ref_key FROM refs WHERE ref_key LIKE 'graph:%'").fetchall()
        for (key,) in rows:
            assert key.startswith(prefix), key
            legacy = f"pop3:{MAILBOX}:{key[len(prefix):]}"
            db.execute("UPDATE refs SET ref_key = ? WHERE ref_key = ?", (legacy, key))
            db.execute("UPDATE messages SET ref_key = ? WHERE ref_key = ?", (legacy, key))
    return len(rows)


def test_a_ledger_with_legacy_graph_keys_hands_nothing_off_twice(graph: FakeGraph, pki: Pki,
                                                                  tmp_path: Path) -> None:
    """Crash after the hand-offs, rewrite the keys to the old form, run again: each message once, all marked."""
    n = 4
    for i in range(n):
        graph.deliver(DESK, sample_message(i, to=DESK, tag="legacy-"))
    config = parse_config(graph_config(graph.port, str(pki.ca_pem), DESK, "Desk", send_automated_emails=False))
    connector = config.connector("Desk")
    access = host_access(app_token(graph))
    host = Host()
    with scratch_dir(tmp_path) as scratch:
        path = scratch / "ledger.db"

        def ingestor(ledger: SQLiteLedger, hook: object = None) -> Ingestor:
            return Ingestor(connector="Desk", mailbox="inbox", source_factory=lambda: open_source(connector, access),
                            router=Router.compile(config), store=ledger, handler=host, batch_size=10,
                            hook=hook)  # type: ignore[arg-type]

        first = SQLiteLedger(path)
        with pytest.raises(Crash):
            ingestor(first, crash_after_commit).run_once()
        first.close()
        assert len(host.calls) == n and len(graph.messages_in(DESK)) == n, "handed off, none marked yet"
        assert rewrite_to_legacy_keys(path) == n

        second = SQLiteLedger(path)
        ingestor(second).run_once()
        counts = second.counts("Desk")
        second.close()
        with sqlite3.connect(path) as db:
            keys = {k for (k,) in db.execute("SELECT ref_key FROM refs")}
    assert len(host.calls) == len(set(host.calls)) == n, "no message handed off twice"
    assert counts["marked"] == n and counts["quarantined"] == 0
    assert graph.messages_in(DESK) == [] and len(graph.messages_in(DESK, "archive")) == n
    assert sum(k.startswith(f"graph:{MAILBOX}/") for k in keys) == n, "the new keys join the old rows as aliases"
