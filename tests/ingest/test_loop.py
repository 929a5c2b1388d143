"""The ingestion loop against in-memory mailboxes: resume, quarantine, reprocess, rate limit, faults."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from email import message_from_bytes
from typing import Any

import pytest
from fakes import FakeRouter, Host, Mailbox, MemorySender, MemorySource, PartialFetchSource, make_message

from enate_routing._parse_limits import ParseLimits
from enate_routing.errors import AuthenticationError, ConnectError, HandlerError, LeaseHeldError
from enate_routing.ingest import HOOK_POINTS, AckState, Backoff, Ingestor, MessageState, SQLiteLedger, WorkItem

Make = Callable[..., tuple[Ingestor, Host, MemorySender]]


class Crash(BaseException):
    """Stands in for the process dying at a hook point (nothing after it runs in this run)."""


class CrashOnce:
    """A step hook that raises Crash the first time step ``point`` is reached for message ``at``."""

    def __init__(self, point: str, at: int) -> None:
        self.point, self.at, self.fired = point, at, False

    def __call__(self, name: str, index: int) -> None:
        if name == self.point and index == self.at and not self.fired:
            self.fired = True
            raise Crash


def fill(box: Mailbox, n: int, **kwargs: Any) -> None:
    for i in range(n):
        box.deliver(make_message(i, **kwargs))


def test_happy_path_hands_acknowledges_and_marks(make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger) -> None:
    """Every message becomes one work item, one acknowledgement, and is marked on the server last."""
    fill(box, 5)
    ingestor, host, sender = make_ingestor()
    stats = ingestor.run_once()
    assert len(host.items) == 5 and len(host.calls) == 5
    assert len(sender.sent) == 5 and stats.acks_sent == 5
    assert box.unprocessed() == [] and stats.marked == 5
    assert ledger.counts("Support")["marked"] == 5
    assert all(w.ack_state is AckState.SENT for r in range(1, 6) for w in ledger.work_of(r))


def test_acknowledgement_headers(make_ingestor: Make, box: Mailbox) -> None:
    """The acknowledgement is an RFC 3834 auto-reply threaded under the original."""
    box.deliver(make_message(1, extra={"References": "<older@example.net>"}))
    ingestor, _, sender = make_ingestor()
    ingestor.run_once()
    [(from_addr, to, raw)] = sender.sent
    ack = message_from_bytes(raw)
    assert from_addr == "help@acme.example" and to == ("customer@example.net",)
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert ack["X-Loop"] == "help@acme.example"  # our loop mark: mail coming back with it is never answered
    assert ack["In-Reply-To"] == "<m1@example.net>"
    assert ack["References"] == "<older@example.net> <m1@example.net>"
    assert ack["Subject"] == "Re: Message 1"


@pytest.mark.parametrize("point", HOOK_POINTS)
@pytest.mark.parametrize("at", [0, 2, 4])
def test_resume_after_a_crash_at_every_step(make_ingestor: Make, box: Mailbox, point: str, at: int) -> None:
    """A crash at any step boundary, then a restart: no message lost, no work item created twice."""
    fill(box, 5)
    hook = CrashOnce(point, at)

    host = Host()
    sender = MemorySender()
    first, _, _ = make_ingestor(host=host, sender=sender, hook=hook)
    with pytest.raises(Crash):
        first.run_once()
    second, _, _ = make_ingestor(host=host, sender=sender)
    second.run_once()
    assert hook.fired
    assert len(host.items) == 5, "every message handed off"
    redelivered = len(host.calls) - len(set(host.calls))
    # Only the window between handler return and the ledger commit may call the handler again.
    assert redelivered <= (1 if point == "after_handler" else 0)
    # A resend carries the same Message-ID (its Date may differ by a second under load).
    duplicate_acks = len(sender.sent) - len({message_from_bytes(m)["Message-ID"] for _, _, m in sender.sent})
    assert len(sender.sent) - 5 == duplicate_acks <= (1 if point == "after_ack" else 0)
    assert box.unprocessed() == []


def test_quarantine_over_limit_keeps_bytes_and_marks(make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger) -> None:
    """An over-limit message is quarantined with its raw bytes, never routed, and marked on the server."""
    big = make_message(1, body="x" * 5000)
    box.deliver(big)
    box.deliver(make_message(2))
    router = FakeRouter()
    ingestor, host, _ = make_ingestor(router=router, limits=ParseLimits(max_message_bytes=2000))
    ingestor.run_once()
    [q] = ingestor.quarantined()
    assert "size" in (q.quarantine_reason or "")
    assert ledger.raw(q.id) == big
    assert len(host.items) == 1 and router.calls == 1
    assert box.unprocessed() == []


def test_reprocess_quarantined_after_raising_the_limit(make_ingestor: Make, box: Mailbox) -> None:
    """Reprocessing a quarantined message with a larger limit hands it off once."""
    box.deliver(make_message(1, body="x" * 5000))
    ingestor, host, _ = make_ingestor(limits=ParseLimits(max_message_bytes=2000))
    ingestor.run_once()
    [q] = ingestor.quarantined()
    again, _, _ = make_ingestor(host=host)
    again.reprocess([q.id])
    assert again.quarantined() == [] and len(host.items) == 1
    assert again.store.get(q.id).state is MessageState.MARKED


def test_routing_failure_quarantines(make_ingestor: Make, box: Mailbox) -> None:
    """An exception in the router quarantines the message with the reason rather than losing it."""
    box.deliver(make_message(1, subject="boom"))
    box.deliver(make_message(2))
    ingestor, host, _ = make_ingestor(router=FakeRouter(fail_on="boom"))
    ingestor.run_once()
    [q] = ingestor.quarantined()
    assert q.quarantine_reason is not None and "routing failed" in q.quarantine_reason
    assert len(host.items) == 1


def test_handler_permanent_failure_quarantines_and_reprocess_recovers(make_ingestor: Make, box: Mailbox) -> None:
    """A handler raising a non-retryable error quarantines; reprocess after the fix hands it off once."""
    box.deliver(make_message(1))
    failing = Host(fail=lambda item: ValueError("no such customer"))
    ingestor, _, _ = make_ingestor(host=failing)
    ingestor.run_once()
    [q] = ingestor.quarantined()
    assert "handler failed" in (q.quarantine_reason or "") and "no such customer" in (q.quarantine_reason or "")
    assert box.unprocessed() == []  # the ledger holds it; the server copy is done
    fixed = Host()
    again, _, _ = make_ingestor(host=fixed)
    again.reprocess([q.id])
    assert list(fixed.items) == failing.calls[:1] and again.quarantined() == []


def test_handler_retryable_failure_is_retried_then_quarantined(make_ingestor: Make, box: Mailbox) -> None:
    """A retryable handler failure leaves the message for the next pass, up to the attempt limit."""
    box.deliver(make_message(1))
    flaky = Host(fail=lambda item: HandlerError("database busy", retryable=True))
    ingestor, _, _ = make_ingestor(host=flaky, max_handler_attempts=3)
    for _ in range(2):
        ingestor.run_once()
        assert ingestor.quarantined() == [] and box.unprocessed() != []
    ingestor.run_once()
    assert len(ingestor.quarantined()) == 1 and len(flaky.calls) == 3


def test_unrouted_then_reprocessed_after_a_route_is_added(make_ingestor: Make, box: Mailbox) -> None:
    """Fallback-only messages are listed as unrouted; reprocessing with a new route creates new work once."""
    box.deliver(make_message(1, subject="please help"))
    ingestor, host, _ = make_ingestor(router=FakeRouter(routed_word="routed"))
    ingestor.run_once()
    [u] = ingestor.unrouted()
    # "A route is added": now "help" subjects match a route.
    again, _, _ = make_ingestor(host=host, router=FakeRouter(routed_word="help"))
    again.reprocess([u.id])
    again.reprocess([u.id])
    assert again.unrouted() == []
    assert len(host.items) == 2  # the fallback work item, and one for the new route
    assert [k for k in host.items if k.endswith(":g1")]
    # Still unrouted when the fallback still takes it: nothing new handed off.
    box.deliver(make_message(2, subject="other"))
    again.run_once()
    [u2] = again.unrouted()
    again.reprocess([u2.id])
    assert len(host.items) == 3 and len(again.unrouted()) == 1


def test_rate_limit_caps_acknowledgements_per_sender(make_ingestor: Make, box: Mailbox) -> None:
    """At most `acknowledgements_per_hour` acknowledgements go to one sender in an hour (docs/semantics.md §3.5)."""
    fill(box, 15)
    ingestor, host, sender = make_ingestor(acknowledgements_per_hour=10, batch_size=4)
    ingestor.run_once()
    assert len(host.items) == 15 and len(sender.sent) == 10


def test_rate_limit_slides_with_the_clock(make_ingestor: Make, box: Mailbox, tmp_path: Any) -> None:
    """After an hour the same sender may be acknowledged again."""
    now = [1_000_000.0]
    store = SQLiteLedger(tmp_path / "clocked.db", clock=lambda: now[0])
    fill(box, 3)
    ingestor, _, sender = make_ingestor(store=store, clock=lambda: now[0], acknowledgements_per_hour=2)
    ingestor.run_once()
    assert len(sender.sent) == 2
    now[0] += 3601
    box.deliver(make_message(99))
    ingestor.run_once()
    assert len(sender.sent) == 3
    store.close()


def test_lease_blocks_a_second_ingestor(make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger) -> None:
    """A second process on the same mailbox is refused while the first holds the lease."""
    ledger.acquire_lease("Support", "INBOX", "someone-else", ttl=60)
    db = sqlite3.connect(ledger.path)
    db.execute("UPDATE leases SET host = 'other-host'")
    db.commit()
    db.close()
    ingestor, _, _ = make_ingestor()
    with pytest.raises(LeaseHeldError):
        ingestor.run_once()


def test_uidvalidity_change_creates_no_new_work(make_ingestor: Make, box: Mailbox) -> None:
    """After a UIDVALIDITY change, already-ingested messages are recognised by content, not redone."""
    fill(box, 6)
    hook = CrashOnce("after_mark", 2)

    host = Host()
    first, _, sender = make_ingestor(host=host, hook=hook, batch_size=10)
    with pytest.raises(Crash):
        first.run_once()
    box.renumber(uidvalidity=77)  # restore from backup: every UID changes
    second, _, _ = make_ingestor(host=host, sender=sender)
    stats = second.run_once()
    assert stats.uidvalidity_changes >= 1
    assert len(host.items) == 6 and len(host.calls) == 6
    assert box.unprocessed() == []
    assert len(sender.sent) == 6


def test_bcc_duplicate_message_id_handled_once(make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger) -> None:
    """The same Message-ID reaching the mailbox twice (Bcc'd to two aliases) yields its work once."""
    box.deliver(make_message(1, extra={"Delivered-To": "help@acme.example"}))
    box.deliver(make_message(1, extra={"Delivered-To": "sales@acme.example"}))
    ingestor, host, sender = make_ingestor()
    stats = ingestor.run_once()
    assert len(host.calls) == 1 and stats.duplicates == 1
    assert len(sender.sent) == 1
    assert box.unprocessed() == [] and ledger.counts("Support")["marked"] == 2


def test_expunged_by_another_client_is_tolerated(make_ingestor: Make, box: Mailbox) -> None:
    """A message removed by another client between listing and fetching is skipped, the rest ingested."""
    fill(box, 3)

    class Racing(MemorySource):
        def fetch(self, ref: Any) -> bytes:
            if ref.uid == 2:
                del self.box.messages[2]
            return super().fetch(ref)

    ingestor, host, _ = make_ingestor(source=lambda: Racing(box))
    stats = ingestor.run_once()
    assert stats.gone == 1 and len(host.items) == 2


def test_spooled_message_expunged_before_marking_is_finished(make_ingestor: Make, box: Mailbox) -> None:
    """A message spooled before another client expunged it is still handed off from the spooled bytes."""
    fill(box, 2)
    hook = CrashOnce("after_spool", 1)

    first, host, _ = make_ingestor(hook=hook)
    with pytest.raises(Crash):
        first.run_once()
    box.messages.clear()
    second, _, _ = make_ingestor(host=host)
    second.run_once()
    assert len(host.items) == 2 and second.store.pending("Support", "INBOX") == []


def test_reconnects_with_backoff_and_jitter(make_ingestor: Make, box: Mailbox) -> None:
    """Dropped connections are retried with exponential backoff and jitter until drained."""
    fill(box, 10)
    counter = [0]
    sleeps: list[float] = []
    bounds: list[tuple[float, float]] = []

    def rng(low: float, high: float) -> float:
        bounds.append((low, high))
        return high / 2

    ingestor, host, _ = make_ingestor(
        source=lambda: MemorySource(box, fail_at={2, 3, 4, 9, 20, 33}, counter=counter),
        backoff=Backoff(base=0.5, cap=4.0, max_failures=10), sleep=sleeps.append, random=rng,
    )
    stats = ingestor.run_once()
    assert len(host.items) == 10 and len(host.calls) == 10 and box.unprocessed() == []
    assert stats.reconnects == len(sleeps) >= 5
    assert max(high for _, high in bounds) <= 4.0 and bounds[0] == (0.0, 0.5)
    assert [high for _, high in bounds[:3]] == [0.5, 1.0, 2.0]  # consecutive failures double


def test_gives_up_after_max_failures(make_ingestor: Make, box: Mailbox) -> None:
    """A connection that never works ends the run with the error after the configured failures."""
    fill(box, 1)

    def broken() -> MemorySource:
        raise ConnectError("connection refused", server="memory")

    ingestor, _, _ = make_ingestor(source=broken, backoff=Backoff(base=0, cap=0, max_failures=3))
    with pytest.raises(ConnectError):
        ingestor.run_once()


def test_non_retryable_transport_error_is_raised_at_once(make_ingestor: Make, box: Mailbox) -> None:
    """An authentication failure is not retried."""
    calls = []

    def refused() -> MemorySource:
        calls.append(1)
        raise AuthenticationError("refused", server="memory")

    ingestor, _, _ = make_ingestor(source=refused)
    with pytest.raises(AuthenticationError):
        ingestor.run_once()
    assert calls == [1]


def test_partial_downloads_are_discarded(make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger) -> None:
    """A download cut mid-message stores nothing; the retry stores the whole message."""
    messages = [make_message(i, body="line\n" * 200) for i in range(8)]
    for raw in messages:
        box.deliver(raw)
    counter = [0]
    ingestor, host, _ = make_ingestor(source=lambda: PartialFetchSource(box, 5, counter))
    ingestor.run_once()
    assert len(host.items) == 8
    stored = sorted(ledger.raw(r) for r in range(1, 9))
    assert stored == sorted(messages)


def test_poison_message_is_quarantined_after_repeated_crashes(make_ingestor: Make, box: Mailbox) -> None:
    """A message that crashes the process while parsing every time ends in quarantine, not a crash loop."""
    fill(box, 2)

    class CrashingRouter(FakeRouter):
        def route(self, envelope: Any, connector: str, **kwargs: Any) -> Any:
            if envelope.subject == "Message 0":
                raise Crash  # the process dies inside routing, every time
            return super().route(envelope, connector, **kwargs)

    host = Host()
    crashes = 0
    for _ in range(10):
        ingestor, _, _ = make_ingestor(host=host, router=CrashingRouter(), max_parse_attempts=3)
        try:
            ingestor.run_once()
            break
        except Crash:
            crashes += 1
    assert crashes == 4  # the first try and three counted attempts
    [q] = ingestor.quarantined()
    assert q.id == 1 and "crashed" in (q.quarantine_reason or "")
    assert len(host.items) == 1 and box.unprocessed() == []


def test_handler_receives_the_work_item(make_ingestor: Make, box: Mailbox) -> None:
    """The handler gets decision, key, envelope and raw bytes for the message."""
    raw = make_message(1, subject="routed please")
    box.deliver(raw)
    seen: list[WorkItem] = []
    ingestor, _, _ = make_ingestor(host=Host(fail=lambda item: seen.append(item)))  # type: ignore[func-returns-value]
    ingestor.run_once()
    [item] = seen
    assert item.raw == raw and item.envelope.message_id == "m1@example.net"
    assert item.decision.route == "Routed" and item.idempotency_key == item.decision.idempotency_key
    assert item.ref.startswith("imap:INBOX:1:")


# ----------------------------------------------------------------------------------------- group commit
ACK_ONLY = ("before_ack", "after_ack")  # step boundaries of messages with an acknowledgement only
GROUP_POINTS = [p for p in HOOK_POINTS if p not in ACK_ONLY]


def group_window(point: str, at: int) -> int:
    """Handler calls left uncommitted by a crash at ``point`` of message ``at`` (one batch)."""
    return at + 1 if point == "after_handler" else 0


@pytest.mark.parametrize("point", GROUP_POINTS)
@pytest.mark.parametrize("at", [0, 2, 4])
def test_group_commit_resume_after_a_crash_at_every_step(make_ingestor: Make, box: Mailbox, point: str,
                                                         at: int) -> None:
    """Without acknowledgements (group commit): a crash anywhere loses nothing and creates no second work
    item; exactly the hand-offs not yet group-committed are handed again."""
    fill(box, 5)
    hook = CrashOnce(point, at)

    host = Host()
    first, _, _ = make_ingestor(host=host, hook=hook, router=FakeRouter(acks=False))
    with pytest.raises(Crash):
        first.run_once()
    second, _, sender = make_ingestor(host=host, router=FakeRouter(acks=False))
    second.run_once()
    assert len(host.items) == 5 and box.unprocessed() == [] and sender.sent == []
    assert len(host.calls) - len(set(host.calls)) == group_window(point, at)


class CountingLedger(SQLiteLedger):
    """A ledger that counts write transactions of the hand-off kind."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed: list[int] = []

    def record_handed(self, connector: str, keys: Any, *, finish: Any = ()) -> set[int]:
        self.handed.append(len(keys))
        return super().record_handed(connector, keys, finish=finish)


def test_group_commit_is_one_transaction_per_batch(make_ingestor: Make, box: Mailbox, tmp_path: Any) -> None:
    """Work without acknowledgements is recorded once per batch, not once per item."""
    store = CountingLedger(tmp_path / "counting.db")
    fill(box, 23)
    ingestor, host, _ = make_ingestor(store=store, router=FakeRouter(acks=False), batch_size=10)
    ingestor.run_once()
    assert len(host.items) == 23 and box.unprocessed() == []
    assert store.handed == [10, 10, 3]
    assert store.counts("Support")["marked"] == 23
    store.close()


def test_marks_only_after_the_group_commit_is_durable(make_ingestor: Make, box: Mailbox, tmp_path: Any) -> None:
    """When a message is marked on the server, another connection already sees its hand-off committed."""
    path = tmp_path / "ledger-seen.db"
    store = SQLiteLedger(path)
    observer = SQLiteLedger(path)
    fill(box, 12)
    # Messages 0, 5 and 9 ask for an acknowledgement (the per-item path between group runs).
    seen: list[bool] = []

    class Checking(MemorySource):
        def mark_processed(self, ref: Any) -> None:
            [record] = observer.lookup_refs("Support", [ref.key]).values()
            work = observer.work_of(record.id)
            seen.append(bool(work) and all(w.handed_at is not None for w in work) and record.state.value == "done")
            super().mark_processed(ref)

    class SomeAcks(FakeRouter):
        def route(self, envelope: Any, connector: str, **kwargs: Any) -> Any:
            self.acks = envelope.subject in ("Message 0", "Message 5", "Message 9")
            return super().route(envelope, connector, **kwargs)

    ingestor, host, sender = make_ingestor(store=store, router=SomeAcks(), source=lambda: Checking(box))
    ingestor.run_once()
    assert len(host.items) == 12 and len(sender.sent) == 3
    assert seen == [True] * 12
    observer.close()
    store.close()


class SomeAcks(FakeRouter):
    """Acknowledges only messages 1 and 3 of ``fill``: per-item messages between group-committed ones."""

    def route(self, envelope: Any, connector: str, **kwargs: Any) -> Any:
        self.acks = envelope.subject in ("Message 1", "Message 3")
        return super().route(envelope, connector, **kwargs)


@pytest.mark.parametrize(("point", "at"), [(p, at) for p in HOOK_POINTS for at in range(5)
                                           if p not in ACK_ONLY or at in (1, 3)])
def test_mixed_batch_resume_after_a_crash_at_every_step(make_ingestor: Make, box: Mailbox, point: str,
                                                        at: int) -> None:
    """Group-committed and acknowledged messages interleaved: a crash anywhere, then a restart: nothing
    lost, no second work item, no acknowledgement twice except in the SMTP window, everything marked."""
    fill(box, 5)
    hook = CrashOnce(point, at)

    host = Host()
    sender = MemorySender()
    first, _, _ = make_ingestor(host=host, sender=sender, hook=hook, router=SomeAcks())
    with pytest.raises(Crash):
        first.run_once()
    second, _, _ = make_ingestor(host=host, sender=sender, router=SomeAcks())
    second.run_once()
    assert len(host.items) == 5 and box.unprocessed() == []
    assert second.store.counts("Support")["marked"] == 5
    # The group is committed before an acknowledged message is handed off, so a crash re-invokes at most
    # the group messages since the last commit (here one of 0, 2, 4) or the acknowledged one in its window.
    assert len(host.calls) - len(set(host.calls)) <= 2
    acks = [message_from_bytes(m)["Message-ID"] for _, _, m in sender.sent]
    assert len(set(acks)) == 2 and len(acks) - 2 <= (1 if point == "after_ack" else 0)
