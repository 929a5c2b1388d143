"""The connection to the mailbox during a pass, marking DONE messages processed on the server, and waiting
for new mail between passes (IMAP IDLE)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Sequence

from enate_routing.errors import MessageGoneError, TransportError
from enate_routing.ingest._acknowledge import describe
from enate_routing.ingest._contract import Backoff, IngestStats, StepHook
from enate_routing.ingest._inflight import InFlight
from enate_routing.ingest._ledger import WorkLedger
from enate_routing.transports._base import MailSource, WaitsForMail

__all__ = ["MailWaiter", "Marker", "Session"]

_log = logging.getLogger("enate_routing.ingest")


class Session:
    """The current connection to the mailbox, opened on first use; :meth:`checkpoint` ends it cleanly."""

    def __init__(self, factory: Callable[[], MailSource]) -> None:
        self.factory = factory
        self._source: MailSource | None = None

    @property
    def source(self) -> MailSource:
        if self._source is None:
            self._source = self.factory()
        return self._source

    def checkpoint(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.close()

    def discard(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            with contextlib.suppress(TransportError, OSError):
                source.close()


class MailWaiter:
    """Waits between passes for new mail on a fresh connection with IDLE (RFC 2177), where the source offers it.

    A wait that fails (the server restarted, a gateway ended the idle connection) may have missed new mail,
    so the next pass comes after a backoff that grows while waits keep failing at once — a server that ends
    every IDLE is not polled in a loop — and never later than the interval. A wait that failed after lasting
    longer than the longest backoff (an autologout after half an hour) starts it over.
    """

    def __init__(self, factory: Callable[[], MailSource], connector: str, backoff: Backoff,
                 random: Callable[[float, float], float], sleep: Callable[[float], None],
                 stopping: Callable[[], bool]) -> None:
        self.factory = factory
        self.connector = connector
        self.backoff = backoff
        self.random = random
        self.sleep = sleep  # the ingestor's wait: a stop ends it
        self.stopping = stopping
        self._failed = 0  # waits that failed at once, in a row

    def wait(self, timeout: float, known: Collection[str]) -> None:
        """Up to ``timeout`` s: until a message not among ``known`` ref keys is there, with IDLE; else sleep."""
        started = time.monotonic()
        session = Session(self.factory)
        woke: bool | None = None  # None: no wait (the source cannot, or the wait failed)
        try:
            source = session.source
            if isinstance(source, WaitsForMail) and source.can_wait:
                woke = source.wait_for_new(timeout, known, self.stopping)
        except TransportError as exc:
            self._failed = self._failed + 1 if time.monotonic() - started < self.backoff.cap else 1
            delay = min(timeout, self.backoff.delay(self._failed - 1, self.random))
            _log.info("the wait for new mail ended: %s; checking the mailbox in %.1f s", describe(exc), delay,
                      extra={"connector": self.connector, "delay": round(delay, 3), "reason": describe(exc)})
            timeout = delay
        finally:
            session.discard()
        if woke is None:
            self.sleep(timeout)  # polling, or the backoff after a failed wait (the connection closed first)
            return
        self._failed = 0
        _log.debug("idle ended", extra={"connector": self.connector, "new_mail": woke,
                                        "waited": round(time.monotonic() - started, 3)})


class Marker:
    """Marks messages processed on the server, then records them MARKED — never the other way round.

    A source whose marks are committed only by ending the session (POP3) is marked in groups, each ended by
    a checkpoint before the ledger records it. The group shrinks by half after a failure (down to one
    message per session) and grows back after a commit, so a connection that keeps dropping still gets
    its deletions committed.
    """

    def __init__(self, store: WorkLedger, stats: IngestStats, batch_size: int, hook: StepHook | None) -> None:
        self.store = store
        self.stats = stats
        self.batch_size = batch_size
        self.hook = hook
        self._group = batch_size

    def _hook(self, point: str, index: int) -> None:
        if self.hook is not None:
            self.hook(point, index)

    def mark(self, session: Session, flights: Sequence[InFlight]) -> None:
        pending = [f for f in flights if f.ref is not None]
        if not pending:
            return
        if session.source.marks_committed_on_close:
            self._mark_in_sessions(session, pending)
            return
        marked: list[int] = []
        try:
            for flight in pending:
                assert flight.ref is not None
                try:
                    session.source.mark_processed(flight.ref)
                except MessageGoneError:
                    self.stats.gone += 1  # another client removed it: nothing left to mark
                self._hook("after_mark", flight.index)
                marked.append(flight.id)
        finally:
            self.store.record_marked(marked)
            self.stats.marked += len(marked)

    def _mark_in_sessions(self, session: Session, flights: list[InFlight]) -> None:
        while flights:
            group, flights = flights[: self._group], flights[self._group:]
            try:
                for flight in group:
                    assert flight.ref is not None
                    session.source.mark_processed(flight.ref)
                session.checkpoint()
            except TransportError:
                self._group = max(1, self._group // 2)
                raise
            self._group = min(self.batch_size, self._group * 2)
            for flight in group:
                self._hook("after_mark", flight.index)
            self.store.record_marked([f.id for f in group])
            self.stats.marked += len(group)
