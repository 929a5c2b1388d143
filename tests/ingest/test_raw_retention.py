"""Retention of raw bytes: a message handled and marked on the server loses its raw bytes after
``keep_raw_for``, an unrouted one (only the fallback took it) too, and then is no longer offered for reprocessing;
quarantined and unfinished messages keep theirs (docs/ingestion.md "Retention")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakes import FakeRouter, Host, Mailbox, MemorySender, make_message

from enate_routing.errors import ConfigError, HandlerError, StoreError
from enate_routing.ingest import Ingestor, MessageState, SQLiteLedger, WorkItem

Make = Callable[..., tuple[Ingestor, Host, MemorySender]]
YEAR = 365 * 86400.0


@pytest.fixture
def now() -> list[float]:
    return [1_000_000.0]


@pytest.fixture
def clocked(tmp_path: Path, now: list[float]) -> Iterator[SQLiteLedger]:
    store = SQLiteLedger(tmp_path / "clocked.db", clock=lambda: now[0])
    yield store
    store.close()


def busy_for(subject: str) -> Callable[[WorkItem], Exception | None]:
    """A handler that cannot take the message with this subject yet (retryable): it stays unfinished."""
    return lambda item: HandlerError("database busy", retryable=True) if subject in item.envelope.subject else None


def deliver_one_of_each(box: Mailbox) -> dict[str, bytes]:
    messages = {
        "handled": make_message(1, subject="routed handled"),
        "quarantined": make_message(2, subject="routed boom"),  # the router fails on it
        "unrouted": make_message(3, subject="no route takes this"),  # only the fallback takes it
        "unfinished": make_message(4, subject="routed busy"),
    }
    for raw in messages.values():
        box.deliver(raw)
    return messages


def raw_by_subject(store: SQLiteLedger, messages: dict[str, bytes]) -> dict[str, bytes]:
    ids = {store.lookup_refs("Support", [f"imap:INBOX:1:{uid}"])[f"imap:INBOX:1:{uid}"].id: name
           for uid, name in enumerate(messages, start=1)}
    return {name: store.raw(message) for message, name in ids.items()}


def test_only_handled_and_marked_messages_lose_their_bytes(make_ingestor: Make, box: Mailbox,
                                                           clocked: SQLiteLedger, now: list[float]) -> None:
    messages = deliver_one_of_each(box)
    host = Host(fail=busy_for("busy"))
    ingestor, _, _ = make_ingestor(store=clocked, clock=lambda: now[0], host=host, router=FakeRouter(fail_on="boom"),
                                   max_handler_attempts=1000)
    ingestor.run_once()
    assert ingestor.housekeeping.keep_raw_for == 30 * 86400  # the default
    assert raw_by_subject(clocked, messages) == messages  # nothing older than 30 days yet
    now[0] += 29 * 86400
    ingestor.run_once()
    assert raw_by_subject(clocked, messages) == messages
    [unrouted] = ingestor.unrouted()  # within the retention: can be routed again once a route is added
    now[0] += YEAR
    ingestor.run_once()
    kept = raw_by_subject(clocked, messages)
    assert kept == {**messages, "handled": b"", "unrouted": b""}
    assert ingestor.unrouted() == []  # nothing left to route again: no longer offered
    with pytest.raises(StoreError, match="dropped after the retention period"):
        ingestor.reprocess([unrouted.id])
    counts = clocked.counts("Support")
    assert counts["marked"] == 3 and counts["routed"] == 1 and counts["quarantined"] == 1

    # The emptied row still de-duplicates: the same bytes delivered again are marked, not handed off again.
    handed = len(host.items)
    box.deliver(messages["handled"])
    ingestor.run_once()
    assert len(host.items) == handed and box.unprocessed() == [4]  # the unfinished one only

    # The quarantined message, a year later, is still reprocessed from its bytes.
    fixed, fixed_host, _ = make_ingestor(store=clocked, clock=lambda: now[0], host=Host())
    [q] = fixed.quarantined()
    fixed.reprocess([q.id])
    assert fixed.quarantined() == [] and [i.envelope.subject for i in fixed_host.items.values()] == ["routed boom"]


def test_none_keeps_every_message_forever(make_ingestor: Make, box: Mailbox, clocked: SQLiteLedger,
                                          now: list[float]) -> None:
    raw = make_message(1, subject="routed")
    box.deliver(raw)
    ingestor, _, _ = make_ingestor(store=clocked, clock=lambda: now[0], keep_raw_for=None)
    ingestor.run_once()
    now[0] += 10 * YEAR
    ingestor.run_once()
    [record] = clocked.lookup_refs("Support", ["imap:INBOX:1:1"]).values()
    assert record.state is MessageState.MARKED and clocked.raw(record.id) == raw


def test_zero_drops_the_bytes_at_the_next_run_and_only_for_this_connector(
        make_ingestor: Make, box: Mailbox, clocked: SQLiteLedger, now: list[float]) -> None:
    box.deliver(make_message(1, subject="routed"))
    ingestor, _, _ = make_ingestor(store=clocked, clock=lambda: now[0], keep_raw_for=0)
    ingestor.run_once()
    [record] = clocked.lookup_refs("Support", ["imap:INBOX:1:1"]).values()
    assert clocked.raw(record.id) != b""  # marked during this run: dropped by the next one
    assert clocked.drop_raw("Sales", now[0] + 1) == 0  # another connector's retention does not touch it
    now[0] += 1
    ingestor.run_once()
    assert clocked.raw(record.id) == b"" and clocked.get(record.id).size > 0


def test_a_negative_retention_is_refused(make_ingestor: Make) -> None:
    with pytest.raises(ConfigError, match="keep_raw_for"):
        make_ingestor(keep_raw_for=-1.0)


def test_a_hosts_ledger_without_drop_raw_keeps_working(make_ingestor: Make, box: Mailbox,
                                                       ledger: SQLiteLedger) -> None:
    class OwnLedger:
        """A host's ledger from before retention: every Ledger method, no ``drop_raw``."""

        def __getattr__(self, name: str) -> object:
            if name == "drop_raw":
                raise AttributeError(name)
            return getattr(ledger, name)

    box.deliver(make_message(1, subject="routed"))
    ingestor, host, _ = make_ingestor(store=OwnLedger(), keep_raw_for=0)
    ingestor.run_once()
    ingestor.run_once()
    assert len(host.items) == 1 and ledger.raw(1) != b""
