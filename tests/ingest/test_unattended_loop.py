"""Unattended operation against in-memory mailboxes: output failures, leases, outages, threads, logging."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import threading
from collections.abc import Callable
from email import message_from_bytes
from typing import Any

import pytest
from fakes import FakeRouter, Host, Mailbox, MemorySender, MemorySource, make_message

from enate_routing.errors import ConnectError
from enate_routing.ingest import AckState, Backoff, Ingestor, LeaseLostError, SQLiteLedger, WorkItem

Make = Callable[..., tuple[Ingestor, Host, MemorySender]]


def fill(box: Mailbox, n: int, **kwargs: Any) -> None:
    for i in range(n):
        box.deliver(make_message(i, **kwargs))


def test_output_oserror_stops_the_pass_without_quarantine(make_ingestor: Make, box: Mailbox,
                                                          ledger: SQLiteLedger) -> None:
    """An OSError from the handler's output (disk full) ends the run: nothing quarantined, nothing marked
    that was not handed off; the next run, with space again, finishes every message exactly once."""
    fill(box, 8)
    full = [True]
    host = Host(fail=lambda item: OSError(errno.ENOSPC, "No space left on device")
                if full[0] and item.envelope.subject == "Message 5" else None)
    first, _, _ = make_ingestor(host=host, router=FakeRouter(acks=False))
    with pytest.raises(OSError, match="No space"):
        first.run_once()
    assert ledger.quarantined() == []
    marked = set(range(1, 9)) - set(box.unprocessed())
    handed_uids = {i + 1 for i in range(5)}  # messages 0-4 were handed before the failure
    assert marked <= handed_uids
    full[0] = False
    second, _, _ = make_ingestor(host=host, router=FakeRouter(acks=False))
    second.run_once()
    assert len(host.items) == 8 and box.unprocessed() == [] and ledger.quarantined() == []
    # Only the failed call repeats its key; every other key was handed off once.
    assert len(host.calls) - len(set(host.calls)) == 1


def test_a_poller_that_lost_its_lease_stops_before_its_next_hand_off(make_ingestor: Make, box: Mailbox,
                                                                     ledger: SQLiteLedger) -> None:
    """Another owner takes the lease mid-batch: the heartbeat notices and no further message is handed off."""
    fill(box, 10)
    taken = threading.Event()

    def slow(item: WorkItem) -> None:
        if item.envelope.subject == "Message 2" and not taken.is_set():
            db = sqlite3.connect(ledger.path)
            db.execute("UPDATE leases SET owner = 'usurper', host = 'elsewhere', expires_at = expires_at + 600")
            db.commit()
            db.close()
            taken.set()
            threading.Event().wait(1.0)  # the heartbeat (every ttl / 3) runs meanwhile

    host = Host(fail=lambda item: slow(item))  # type: ignore[func-returns-value]
    ingestor, _, _ = make_ingestor(host=host, router=FakeRouter(acks=False), lease_ttl=0.6)
    with pytest.raises(LeaseLostError):
        ingestor.run_once()
    assert len(host.calls) == 3  # messages 0, 1 and 2; nothing after the lease was lost
    assert box.unprocessed() != []


def test_daemon_never_gives_up_on_an_outage(make_ingestor: Make, box: Mailbox) -> None:
    """run_forever keeps retrying through many more failures than run_once's limit, then drains the mailbox."""
    fill(box, 3)
    attempts = [0]

    class Flaky(MemorySource):
        def list_new(self) -> Any:
            attempts[0] += 1
            if attempts[0] <= 25:
                raise ConnectError("connection refused", server="memory")
            return super().list_new()

    delays: list[float] = []
    ingestor, host, _ = make_ingestor(source=lambda: Flaky(box), backoff=Backoff(base=1.0, cap=8.0, max_failures=3),
                                      sleep=delays.append)
    ingestor.run_forever(interval=1.0, stop=lambda: len(host.items) == 3)
    assert attempts[0] > 25 and len(host.items) == 3 and box.unprocessed() == []
    assert max(delays) <= 8.0 and len(delays) >= 25  # capped; one wait per failed attempt


def test_run_once_gives_up_after_the_retry_time(make_ingestor: Make, box: Mailbox,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """`give_up_after` bounds how long run_once waits for a server that is down, logging what it waits for."""
    class Down(MemorySource):
        def list_new(self) -> Any:
            raise ConnectError("connection refused", server="imap://127.0.0.1:9")

    ingestor, _, _ = make_ingestor(source=lambda: Down(box), backoff=Backoff(base=1.0, cap=4.0, max_failures=1000),
                                   random=lambda low, high: high)
    with caplog.at_level(logging.WARNING, logger="enate_routing"), pytest.raises(ConnectError):
        ingestor.run_once(give_up_after=5.0)
    waits = [r for r in caplog.records if r.getMessage().startswith("waiting for the mail server")]
    assert 1 <= len(waits) <= 3
    assert "imap://127.0.0.1:9" in waits[0].getMessage()


def test_stop_finishes_the_current_message_and_releases_the_lease(make_ingestor: Make, box: Mailbox,
                                                                  ledger: SQLiteLedger) -> None:
    """stop() during a hand-off: that message is finished and marked, no other is started, the lease is free."""
    fill(box, 6)
    holder: list[Ingestor] = []

    def stop_at_two(item: WorkItem) -> None:
        if item.envelope.subject == "Message 2":
            holder[0].stop()

    host = Host(fail=lambda item: stop_at_two(item))  # type: ignore[func-returns-value]
    ingestor, _, _ = make_ingestor(host=host, router=FakeRouter(acks=False))
    holder.append(ingestor)
    ingestor.run_once()
    assert len(host.items) == 3 and len(box.unprocessed()) == 3  # 0-2 done and marked, 3-5 untouched
    ledger.acquire_lease("Support", "INBOX", "next-poller", ttl=60)  # free at once


def test_the_loop_runs_in_a_worker_thread(make_ingestor: Make, box: Mailbox) -> None:
    """An ingestor built in one thread runs in another (asyncio.to_thread): the ledger is thread-safe."""
    fill(box, 4)
    ingestor, host, _ = make_ingestor()
    stats = asyncio.run(asyncio.to_thread(ingestor.run_once))
    assert stats.handed == 4 and len(host.items) == 4 and box.unprocessed() == []


POISON = {
    "crlf": "=?utf-8?q?hi=0D=0ABcc:_victim@example.org?=",
    "form-feed": "=?utf-8?q?a=0Cb?=",
    "line-separator": "=?utf-8?b?YeKAqGI=?=",
    "nul": "=?utf-8?q?a=00b?=",
}


@pytest.mark.parametrize("subject", list(POISON.values()), ids=list(POISON))
def test_poison_subject_is_acknowledged_on_one_clean_line(make_ingestor: Make, box: Mailbox, subject: str) -> None:
    """A decoded Subject with CR/LF, form feed, U+2028 or NUL yields a one-line Subject, no injected header."""
    box.deliver(make_message(1, subject=subject))
    box.deliver(make_message(2))
    ingestor, host, sender = make_ingestor()
    ingestor.run_once()
    assert len(host.items) == 2 and box.unprocessed() == [] and len(sender.sent) == 2
    ack = message_from_bytes(sender.sent[0][2])
    assert ack["Bcc"] is None and not any(c in ack["Subject"] for c in "\r\n\x0c\x00\u2028")
    assert set(ack.keys()) == set(message_from_bytes(sender.sent[1][2]).keys())


def test_an_acknowledgement_that_cannot_be_built_is_skipped_with_its_reason(
    make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger,
) -> None:
    """A builder failure is recorded (failed, with the reason) and never blocks the mailbox or a later run."""
    fill(box, 5)

    def builder(envelope: Any, decision: Any, from_address: str, recipients: Any) -> Any:
        if envelope.subject == "Message 2":
            raise ValueError("cannot encode this subject")
        from enate_routing.ingest import build_acknowledgement
        return build_acknowledgement(envelope, decision, from_address, recipients)

    ingestor, host, sender = make_ingestor(ack_builder=builder)
    stats = ingestor.run_once()
    assert len(host.items) == 5 and box.unprocessed() == [] and len(sender.sent) == 4 and stats.acks_failed == 1
    [failed] = [w for m in range(1, 6) for w in ledger.work_of(m) if w.ack_state is AckState.FAILED]
    assert failed.ack_reason is not None and "cannot encode this subject" in failed.ack_reason
    box.deliver(make_message(9))
    again, _, _ = make_ingestor(host=host, sender=sender, ack_builder=builder)
    again.run_once()
    assert len(host.items) == 6 and len(sender.sent) == 5 and len(host.calls) == 6


def test_logging_tells_what_the_loop_does_without_secrets(make_ingestor: Make, box: Mailbox,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Pass start/end with counts, quarantines with reason, lease changes; structured fields on the records."""
    from enate_routing._parse_limits import ParseLimits
    box.deliver(make_message(1, body="x" * 5000))
    fill(box, 2)
    ingestor, _, _ = make_ingestor(limits=ParseLimits(max_message_bytes=2000))
    with caplog.at_level(logging.DEBUG, logger="enate_routing"):
        ingestor.run_once()
    by_message = {r.getMessage(): r for r in caplog.records}
    assert {"pass started", "pass finished", "lease acquired", "lease released", "message quarantined"} <= set(
        by_message)
    finished = by_message["pass finished"]
    assert (finished.connector, finished.handed, finished.quarantined) == ("Support", 2, 1)  # type: ignore[attr-defined]
    assert "size" in by_message["message quarantined"].reason  # type: ignore[attr-defined]
    assert all(r.name.startswith("enate_routing.") for r in caplog.records)
    assert logging.getLogger("enate_routing").handlers  # the package's NullHandler


def test_a_failed_wait_for_mail_checks_the_mailbox_soon_and_backs_off_while_waits_keep_failing(
        make_ingestor: Make, box: Mailbox, caplog: pytest.LogCaptureFixture) -> None:
    """An IDLE wait that fails (the server restarted, a gateway ended the idle connection) may have missed new
    mail: the next pass comes after a short backoff, not after the whole interval. The backoff doubles while
    waits keep failing at once, so a server that ends every IDLE is not polled in a loop; it never exceeds the
    interval, and starts over after a wait that worked, or that failed only after lasting longer than the
    longest backoff (an autologout). (The real restart: tests/ingest/test_unattended_servers.py.)"""
    dropped = ConnectError("the server closed the connection during IDLE", server="imap://127.0.0.1:9")
    autologout = ConnectError("the server closed the connection during IDLE (after a while)", server="imap://x")
    outcomes: list[bool | ConnectError] = [dropped, dropped, dropped, dropped, False, dropped, dropped, autologout]

    class Idling(MemorySource):
        can_wait = True

        def wait_for_new(self, timeout: float, known: Any = (), stop: Any = None) -> bool:
            outcome = outcomes.pop(0)
            if outcome is autologout:
                threading.Event().wait(0.2)  # longer than the longest backoff
            if isinstance(outcome, ConnectError):
                raise outcome
            return outcome

    ingestor, _, _ = make_ingestor(source=lambda: Idling(box), sleep=None, backoff=Backoff(base=0.01, cap=0.1),
                                   random=lambda low, high: high)
    with caplog.at_level(logging.INFO, logger="enate_routing"):
        for interval in (5.0, 5.0, 5.0, 0.03, 5.0, 5.0, 5.0, 5.0):
            ingestor.wait_for_mail(interval)
    assert outcomes == []
    ended = [r for r in caplog.records if r.getMessage().startswith("the wait for new mail ended")]
    assert [r.delay for r in ended] == [0.01, 0.02, 0.04, 0.03, 0.01, 0.02, 0.01]  # type: ignore[attr-defined]
    assert all(r.levelno == logging.INFO and "closed the connection during IDLE" in r.reason  # type: ignore[attr-defined]
               for r in ended)


def test_an_idle_pass_logs_nothing_at_info(make_ingestor: Make, box: Mailbox,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """`poll -v` runs for months: a pass that finds no mail is not worth a line at info (it was four: lease
    acquired, pass started, lease released, pass finished); a pass that did work is still one line."""
    ingestor, _, _ = make_ingestor()
    with caplog.at_level(logging.INFO, logger="enate_routing"):
        ingestor.run_once()
        ingestor.run_once()
    assert [r.getMessage() for r in caplog.records] == []
    fill(box, 2)
    with caplog.at_level(logging.INFO, logger="enate_routing"):
        ingestor.run_once()
    assert [r.getMessage() for r in caplog.records] == ["pass finished"]
    assert caplog.records[0].handed == 2  # type: ignore[attr-defined]


def test_pass_finished_says_why_a_listed_message_was_not_handed_off(make_ingestor: Make, box: Mailbox,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A soak's `poll -v` said `listed=248 handed=232 marked=248` and nothing about the 16: they were the same
    Message-ID delivered again (duplicates of owned work). The line counts them."""
    box.deliver(make_message(1, message_id="<same@example.net>", body="first copy\n"))
    box.deliver(make_message(2, message_id="<same@example.net>", body="second copy\n"))
    ingestor, _, _ = make_ingestor()
    with caplog.at_level(logging.INFO, logger="enate_routing"):
        ingestor.run_once()
    [finished] = [r for r in caplog.records if r.getMessage() == "pass finished"]
    assert (finished.listed, finished.handed, finished.duplicates) == (2, 1, 1)  # type: ignore[attr-defined]


def test_a_batch_of_large_messages_is_bounded_by_bytes_not_only_by_count(
        make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A soak run: 20 scans of 5 MB fetched into one batch of 50 took `poll` from 50 MB to 214 MB resident (94 MB
    with --batch-size 1). A batch now ends once its fetched bytes reach twice max_message_bytes (here without the
    32 MiB floor, so that small messages show it)."""
    from enate_routing._parse_limits import ParseLimits
    from enate_routing.ingest import _fetching
    monkeypatch.setattr(_fetching, "MIN_BATCH_BYTES", 0)
    for i in range(10):
        box.deliver(make_message(i, body="x" * 3000))
    largest = max(len(raw) for raw in box.messages.values())
    batches: list[int] = []
    spool = ledger.spool

    def recording_spool(connector: str, mailbox: str, items: Any) -> Any:
        batches.append(sum(len(item.raw) for item in items))
        return spool(connector, mailbox, items)

    monkeypatch.setattr(ledger, "spool", recording_spool)
    ingestor, host, _ = make_ingestor(limits=ParseLimits(max_message_bytes=5000))
    ingestor.run_once()
    assert len(host.items) == 10 and box.unprocessed() == []
    assert len(batches) > 1 and max(batches) < 2 * 5000 + largest
