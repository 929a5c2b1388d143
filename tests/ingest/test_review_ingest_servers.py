"""Adversarial review of ingestion against the loopback Dovecot: a message the server cannot deliver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import Host
from ingest_rig import append, count, sample_message
from test_servers import ingestor

from enate_routing.errors import ConnectError
from enate_routing.ingest import SQLiteLedger
from mailrig.dovecot import ALICE, Dovecot
from mailrig.smtp import SmtpServers

pytestmark = pytest.mark.servers


def mail_file(dovecot: Dovecot, message_id: bytes) -> Path:
    """The maildir file holding ``message_id`` (Dovecot may move it from new/ to cur/ at any time)."""
    for path in sorted(dovecot.root.rglob("*,S=*")):
        try:
            if message_id in path.read_bytes():
                return path
        except FileNotFoundError:
            continue
    raise AssertionError(f"no mail file holds {message_id!r}")


def test_a_message_dovecot_cannot_read_does_not_block_the_mailbox(mailboxes: Dovecot, smtp_inbox: SmtpServers,
                                                                  tmp_path: Path) -> None:
    """A mail file Dovecot cannot read (it answers the FETCH with BYE): the messages after it are still handed
    off and marked; it stays in the INBOX until it is repaired."""
    append(mailboxes, ALICE, [sample_message(i) for i in range(3)])
    damaged = mail_file(mailboxes, b"<m1@example.net>")
    os.chmod(damaged, 0)
    host = Host()
    with SQLiteLedger(tmp_path / "ledger.db") as ledger:
        ingest = ingestor(mailboxes, smtp_inbox, ledger, host)
        with pytest.raises(ConnectError):  # Dovecot answers the damaged file with BYE: the pass fails...
            ingest.run_once()
        # ...but after two such passes it is fetched last, so the messages after it are not held up.
        assert sorted(item.envelope.message_id for item in host.items.values()) == ["m0@example.net",
                                                                                   "m2@example.net"]
        assert count(mailboxes, ALICE) == 1
        os.chmod(mail_file(mailboxes, b"<m1@example.net>"), 0o600)  # repaired: the next pass takes it
        ingest.run_once()
        assert len(host.items) == 3 and count(mailboxes, ALICE) == 0
