"""The ingestion loop over a throttling Graph: a call that gives up on 429 does not retry before Retry-After."""

from __future__ import annotations

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

pytestmark = pytest.mark.servers

DESK = "desk@contoso.test"


def test_the_loop_waits_the_retry_after_that_ended_the_call(graph: FakeGraph, pki: Pki, tmp_path: Path) -> None:
    """A Retry-After longer than the call's own wait budget (60 s) ends the call at once; the loop then waits
    that long, not its short first backoff (under a second), before asking again."""
    for i in range(3):
        graph.deliver(DESK, sample_message(i, to=DESK, tag="throttled-"))
    config = parse_config(graph_config(graph.port, str(pki.ca_pem), DESK, "Desk", send_automated_emails=False))
    connector = config.connector("Desk")
    access = host_access(app_token(graph))
    host = Host()
    sleeps: list[float] = []
    graph.throttle(1, retry_after=120)
    with scratch_dir(tmp_path) as scratch:
        ledger = SQLiteLedger(scratch / "ledger.db")
        ingestor = Ingestor(connector="Desk", mailbox="inbox", source_factory=lambda: open_source(connector, access),
                            router=Router.compile(config), store=ledger, handler=host, sleep=sleeps.append)
        stats = ingestor.run_once()
        ledger.close()
    assert sleeps == [120.0], "one wait, as long as the server asked"
    assert stats.reconnects == 1 and len(host.items) == 3
    assert [status for _, _, status in graph.log].count(429) == 1, "no request before the wait was over"
