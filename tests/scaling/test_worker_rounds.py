"""MailboxWorker's round on its own (in-memory stand-ins for Ingestor; the real thing runs in test_workers.py)."""

from __future__ import annotations

import logging

import pytest

from enate_routing.errors import AuthenticationError, ConnectError, LeaseHeldError, StoreError
from enate_routing.ingest import IngestStats, MailboxWorker, _workers


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


class _HandsOffThenLosesTheLedger:
    """An Ingestor whose run hands two messages off, then fails (the ledger's database stopped)."""

    connector = "Alice"
    mailbox = "INBOX"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.run_stats = IngestStats()

    def run_once(self, *, give_up_after: float | None = None) -> IngestStats:
        self.run_stats = IngestStats()
        self.run_stats.handed = 2
        raise self.error


def test_hand_offs_of_a_run_that_failed_afterwards_are_counted() -> None:
    """The exit summary counts what was handed off before a round failed, whether it is retried or raised."""
    worker = MailboxWorker([_HandsOffThenLosesTheLedger(StoreError("cannot open the ingestion ledger"))],  # type: ignore[list-item]
                           shuffle=lambda order: None)
    done = worker.run_round(keep_going=True)
    assert done.failed == {"Alice/INBOX": "StoreError: cannot open the ingestion ledger"}
    assert worker.handed == {"Alice/INBOX": 2}
    with pytest.raises(StoreError):
        worker.run_round()
    assert worker.handed == {"Alice/INBOX": 4}


@pytest.mark.parametrize(("error", "retried"), [
    (StoreError("ledger busy"), True),
    (OSError("connection reset"), True),
    (ConnectError("server closed the connection"), True),
    (AuthenticationError("credentials refused"), False),
    (ValueError("a bug"), False),
])
def test_a_round_goes_on_only_after_failures_retrying_may_fix(error: Exception, retried: bool) -> None:
    """keep_going notes a failure that retrying may fix and raises anything else (refused credentials, a bug)."""
    worker = MailboxWorker([_HandsOffThenLosesTheLedger(error)], shuffle=lambda order: None)  # type: ignore[list-item]
    if retried:
        assert list(worker.run_round(keep_going=True).failed) == ["Alice/INBOX"]
    else:
        with pytest.raises(type(error)):
            worker.run_round(keep_going=True)


class _Refused:
    """An Ingestor whose server refuses the credentials, until ``fixed``."""

    connector = "Bob"
    mailbox = "INBOX"

    def __init__(self) -> None:
        self.run_stats = IngestStats()
        self.runs = 0
        self.fixed = False

    def run_once(self, *, give_up_after: float | None = None) -> IngestStats:
        self.runs += 1
        if not self.fixed:
            raise AuthenticationError("the server refused the credentials: [AUTHENTICATIONFAILED]",
                                      server="imap://127.0.0.1:143")
        return IngestStats()


def test_a_mailbox_whose_failure_retrying_cannot_fix_is_set_aside_and_the_others_served(
        caplog: pytest.LogCaptureFixture) -> None:
    """One worker over many mailboxes: refused credentials on one (a password changed on the server) no longer
    end the worker and with it every other mailbox. That mailbox is set aside — an error in the log naming it,
    tried again after SET_ASIDE_FOR seconds — and the others are drained every round. Only when every mailbox
    is set aside is the failure raised."""
    now = [0.0]
    refused, drains = _Refused(), _Drains()
    worker = MailboxWorker([refused, drains], shuffle=lambda order: None, clock=lambda: now[0])  # type: ignore[list-item]
    with caplog.at_level(logging.ERROR, logger="enate_routing.ingest"):
        first = worker.run_round(keep_going=True)
    assert list(first.drained) == ["Billing/INBOX"] and list(first.set_aside) == ["Bob/INBOX"]
    assert "refused the credentials" in first.set_aside["Bob/INBOX"] and first.failed == {}
    assert worker.set_aside == first.set_aside  # what the worker holds aside, whichever round ran last
    (record,) = caplog.records
    assert record.getMessage().startswith("mailbox set aside: AuthenticationError: imap://127.0.0.1:143: the server")
    assert (record.connector, record.folder) == ("Bob", "INBOX")  # type: ignore[attr-defined]

    now[0] = _workers.SET_ASIDE_FOR - 1  # not yet tried again; the other mailbox still is
    second = worker.run_round(keep_going=True)
    assert (refused.runs, list(second.drained), list(second.set_aside)) == (1, ["Billing/INBOX"], ["Bob/INBOX"])
    now[0] = _workers.SET_ASIDE_FOR + 1  # tried again: still refused, set aside once more
    assert list(worker.run_round(keep_going=True).set_aside) == ["Bob/INBOX"] and refused.runs == 2
    refused.fixed = True
    now[0] = 2 * _workers.SET_ASIDE_FOR + 2  # fixed on the server: served again
    fourth = worker.run_round(keep_going=True)
    assert sorted(fourth.drained) == ["Billing/INBOX", "Bob/INBOX"] and fourth.set_aside == worker.set_aside == {}

    everyone = MailboxWorker([_Refused(), _HandsOffThenLosesTheLedger(AuthenticationError("refused"))],  # type: ignore[list-item]
                             shuffle=lambda order: None, clock=lambda: now[0])
    with pytest.raises(AuthenticationError, match="refused"):
        everyone.run_round(keep_going=True)  # the second is set aside too: nothing left to serve
