"""MailboxWorker's round on its own (in-memory stand-ins for Ingestor; the real thing runs in test_workers.py)."""

from __future__ import annotations

import logging

import pytest

from enate_routing.errors import LeaseHeldError
from enate_routing.ingest import IngestStats, MailboxWorker


class _HeldElsewhere:
    """An Ingestor whose lease another worker holds."""

    connector = "Support"
    mailbox = "INBOX"

    def run_once(self, *, give_up_after: float | None = None) -> IngestStats:
        raise LeaseHeldError(self.connector, self.mailbox, "host-b:4242")


class _Drains:
    connector = "Billing"
    mailbox = "INBOX"

    def run_once(self, *, give_up_after: float | None = None) -> IngestStats:
        stats = IngestStats()
        stats.handed = 3
        return stats


def test_a_held_mailbox_is_skipped_and_said_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    """A worker that finds a mailbox held says so at -vv (and nothing at -v: an idle worker stays quiet)."""
    worker = MailboxWorker([_HeldElsewhere(), _Drains()], shuffle=lambda order: None)  # type: ignore[list-item]
    with caplog.at_level(logging.DEBUG, logger="enate_routing.ingest"):
        done = worker.run_round()
    assert done.held == ["Support/INBOX"] and list(done.drained) == ["Billing/INBOX"]
    assert worker.handed == {"Billing/INBOX": 3}
    (record,) = [r for r in caplog.records if r.getMessage() == "mailbox held by another worker"]
    assert record.levelno == logging.DEBUG
    assert (record.connector, record.folder, record.owner) == ("Support", "INBOX", "host-b:4242")  # type: ignore[attr-defined]
