"""Network faults over the Graph source: every K-th request is dropped before or after the server acted, or a
download is cut mid-body. All N messages are ingested once, none twice, and all end in Archive."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import Host
from graph_rig import app_token, graph_config, host_access
from ingest_rig import sample_message, scratch_dir

from enate_routing._loading import parse_config
from enate_routing._router import Router
from enate_routing.ingest import Backoff, Ingestor, SQLiteLedger
from enate_routing.transports._factory import open_source
from mailrig.graph import FAULT_MODES, FakeGraph
from mailrig.pki import Pki

pytestmark = [pytest.mark.servers, pytest.mark.slow]

DESK = "desk@contoso.test"
SIZES = {3: 150, 7: 300, 13: 500}


@pytest.mark.parametrize("every", sorted(SIZES))
def test_graph_all_messages_once_through_a_flaky_connection(every: int, graph: FakeGraph, pki: Pki,
                                                           tmp_path: Path) -> None:
    """Dropping every K-th Graph request (before / after the server acted / mid-download): 0 lost, 0 duplicates."""
    n = SIZES[every]
    for i in range(n):
        graph.deliver(DESK, sample_message(i, to=DESK, tag=f"graph-{every}-"))
    config = parse_config(graph_config(graph.port, str(pki.ca_pem), DESK, "Desk", send_automated_emails=False))
    connector = config.connector("Desk")
    access = host_access(app_token(graph))
    host = Host()
    sleeps: list[float] = []
    graph.disrupt_every(every)
    with scratch_dir(tmp_path) as scratch:
        ledger = SQLiteLedger(scratch / "ledger.db")
        ingestor = Ingestor(
            connector="Desk", mailbox="inbox", source_factory=lambda: open_source(connector, access),
            router=Router.compile(config), store=ledger, handler=host, batch_size=100,
            backoff=Backoff(base=0.001, cap=0.01, max_failures=60), sleep=sleeps.append,
        )
        stats = ingestor.run_once()
        counts = ledger.counts("Desk")
        ledger.close()
    disrupted = dict(graph.disrupted)
    graph.disrupt_every(0)
    assert len(host.items) == n, "every message handed off"
    assert len(host.calls) == len(set(host.calls)) == n, "no work item handed off twice"
    assert counts["marked"] == n and counts["quarantined"] == 0
    assert graph.messages_in(DESK) == [] and len(graph.messages_in(DESK, "archive")) == n
    assert stats.reconnects >= 1
    assert all(disrupted[mode] for mode in FAULT_MODES), disrupted
