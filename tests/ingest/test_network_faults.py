"""Network faults: a proxy cuts the connection every K mailbox commands and cuts downloads mid-literal.

All N messages must be ingested (handed off once each, marked on the server) and none twice, for IMAP
and POP3 and K = 3, 7, 13, 50. N is 1,000 for K = 13 and 50; at K = 3 and 7 nearly every message costs a
reconnect (about 2,000 of them for 1,000 messages at K = 3), so N is 250 and 500 there to keep the module
near a minute and a half on two cores. ``ENATE_FAULT_MESSAGES=1000`` runs every case with 1,000 (about
three and a half minutes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import Host
from ingest_rig import connector_config, count, empty, maildir_drop, private_dovecot, sample_message, scratch_dir
from proxy import FaultProxy

from enate_routing._loading import parse_config
from enate_routing._router import Router
from enate_routing.ingest import Backoff, Ingestor, SQLiteLedger
from enate_routing.transports import Endpoint, ImapSource, MoveAction, PasswordAuth, Pop3Source
from mailrig.dovecot import ALICE, Dovecot
from mailrig.pki import Pki

pytestmark = [pytest.mark.servers, pytest.mark.slow]

_OVERRIDE = os.environ.get("ENATE_FAULT_MESSAGES")
SIZES = {3: 250, 7: 500, 13: 1000, 50: 1000}


@pytest.fixture(scope="module")
def fault_dovecot(pki: Pki) -> Iterator[Dovecot]:
    with private_dovecot(pki) as server:
        yield server


@pytest.mark.parametrize("every", [3, 7, 13, 50])
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_all_messages_once_through_a_flaky_connection(
    protocol: str, every: int, fault_dovecot: Dovecot, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Cutting the connection every K commands (and downloads mid-literal) loses nothing and duplicates nothing."""
    dovecot = fault_dovecot
    n = int(_OVERRIDE) if _OVERRIDE else SIZES[every]
    empty(dovecot, ALICE)
    messages = [sample_message(i, tag=f"{protocol}-{every}-") for i in range(n)]
    maildir_drop(dovecot, ALICE, messages)
    port = dovecot.ports.imap if protocol == "imap" else dovecot.ports.pop3
    config = parse_config(connector_config(protocol, port, 1, send_automated_emails=False))
    host = Host()
    sleeps: list[float] = []
    with FaultProxy(port, every) as proxy, scratch_dir(tmp_path) as scratch:

        def source() -> Any:
            endpoint = Endpoint("127.0.0.1", proxy.port, "none", timeout=5.0, allow_plaintext_auth=True)
            # LOGIN, not AUTHENTICATE: its continuation line meets Nagle + delayed ACK (40 ms a login).
            credentials = PasswordAuth(ALICE.login, ALICE.password, method="login")
            if protocol == "imap":
                return ImapSource(endpoint, credentials, "INBOX", processed=MoveAction("Archive"))
            return Pop3Source(endpoint, credentials)

        ledger = SQLiteLedger(scratch / "ledger.db")
        ingestor = Ingestor(
            connector="Alice", mailbox="INBOX", source_factory=source, router=Router.compile(config), store=ledger,
            handler=host, batch_size=100, backoff=Backoff(base=0.001, cap=0.01, max_failures=30),
            sleep=sleeps.append,
        )
        stats = ingestor.run_once()
        counts = ledger.counts("Alice")
        ledger.close()
    keys = set(host.calls)
    assert len(host.items) == n, "every message handed off"
    assert len(host.calls) == len(keys) == n, "no work item handed off twice"
    assert counts["marked"] == n and counts["quarantined"] == 0
    assert count(dovecot, ALICE) == 0
    assert stats.reconnects >= 1 and len(sleeps) == stats.reconnects
    assert proxy.faults["drop-before"] and proxy.faults["drop-after"]
    if protocol == "imap" or every != 50:
        assert proxy.faults["cut-download"]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and request.config.get_verbosity() > 0:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"  {protocol} K={every}: {n} messages, {stats.reconnects} reconnects, "
                                f"faults {proxy.faults}, lost 0, duplicates 0")
