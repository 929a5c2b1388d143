"""The ingestion loop (docs/semantics.md §8): list → spool → parse → route → hand off → acknowledge → record → mark.

One :class:`Ingestor` drains one folder of one connector. Every step is recorded in the ledger before the
next one starts, and a message is marked processed on the server only after its last step is recorded, so
a crash, a dropped connection or a restart loses no email and creates no duplicate work. See
``docs/ingestion.md`` for the whole picture and the host's side of the contract.
"""

from __future__ import annotations

import logging
import random as _random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from enate_routing._model import Config
from enate_routing._parse_limits import ParseLimits
from enate_routing.errors import (
    StoreError,
    TransportError,
    UidValidityChangedError,
)
from enate_routing.ingest._acknowledge import (
    AckBuilder,
    Acknowledger,
    AckRateLimit,
    AckRoute,
    AckWording,
    build_acknowledgement,
    describe,
    fixed_ack_route,
)
from enate_routing.ingest._batch import Batch
from enate_routing.ingest._configured import ingestor_options
from enate_routing.ingest._contract import Backoff, Handler, IngestStats, RouterLike, StepHook, retrying_may_fix
from enate_routing.ingest._fetching import Fetcher
from enate_routing.ingest._handoff import HandOff, OutputUnavailable
from enate_routing.ingest._housekeeping import KEEP_RAW_FOR, Housekeeping
from enate_routing.ingest._inflight import InFlight
from enate_routing.ingest._lease import Lease
from enate_routing.ingest._ledger import (
    Ledger,
    MessageRecord,
    MessageState,
    SpoolItem,
    content_digest,
)
from enate_routing.ingest._marking import MailWaiter, Marker, Session
from enate_routing.transports._base import (
    MailSender,
    MailSource,
    MessageRef,
)
from enate_routing.transports._factory import ConnectorAccess

__all__ = ["Ingestor"]

_log = logging.getLogger("enate_routing.ingest")
MAX_RETRY_AFTER = 900.0  # the longest Retry-After the loop honours: a broken server cannot park the worker


class Ingestor:
    """Drains one folder of one connector into the host's handler, exactly once per work item.

    ``source_factory`` opens a fresh :class:`MailSource` (called again after a dropped connection); ``sender_factory`` a
    :class:`MailSender` for acknowledgements, sent from ``ack_from`` when a decision's address is not an address;
    ``ack_wording`` (templates, reference token; default: the default template and ``[REF:{ref}]``) words them;
    ``ack_routes`` (``decision.address -> AckRoute``), when given, replaces both (:meth:`from_config` builds it from the
    outgoing routes, docs/semantics.md §3.2). ``sleep`` waits between retries (default: an interruptible wait that
    :meth:`stop` ends early). ``keep_raw_for``: seconds raw bytes of marked mail are kept (docs/ingestion.md).
    """

    def __init__(
        self, *, connector: str, mailbox: str, source_factory: Callable[[], MailSource], router: RouterLike,
        store: Ledger, handler: Handler, sender_factory: Callable[[], MailSender] | None = None,
        ack_from: str | None = None, ack_routes: Callable[[str], AckRoute] | None = None,
        limits: ParseLimits | None = None, acknowledgements_per_hour: int = 10, max_parse_attempts: int = 3,
        ack_builder: AckBuilder = build_acknowledgement, batch_size: int = 50, backoff: Backoff | None = None,
        max_handler_attempts: int = 5, max_ack_attempts: int = 5, keep_raw_for: float | None = KEEP_RAW_FOR,
        lease_ttl: float = 60.0, hook: StepHook | None = None, sleep: Callable[[float], None] | None = None,
        random: Callable[[float, float], float] = _random.uniform, clock: Callable[[], float] = time.time,
        progress: Callable[[IngestStats], None] | None = None, ack_wording: AckWording | None = None,
    ) -> None:
        self.connector = connector
        self.mailbox = mailbox
        self.source_factory = source_factory
        self.router = router
        self.store = store
        self.limits = limits or ParseLimits()
        self.batch_size = max(1, batch_size)
        self.backoff = backoff or Backoff()
        self.hook = hook
        self.random = random
        self.progress = progress
        self._sleep = sleep
        self._stop = threading.Event()
        self._waiter = MailWaiter(source_factory, connector, self.backoff, random, self.wait, lambda: self.stopping)
        self.lease = Lease(store, connector, mailbox, lease_ttl)
        self.rate_limit = AckRateLimit(store.ack_count, acknowledgements_per_hour, clock)
        self.housekeeping = Housekeeping(store, connector, self.rate_limit, keep_raw_for, clock)
        self.acknowledger = Acknowledger(ack_routes or fixed_ack_route(sender_factory, ack_from), ack_builder,
                                         max_ack_attempts, ack_wording)
        self.run_stats = IngestStats()  # the current or last run_once, so far (also when it raised)
        self._handoff = HandOff(store, connector, mailbox, handler, self.acknowledger, self.limits, self.run_stats,
                                max_handler_attempts, hook, self.lease.check)
        self._marker = Marker(store, self.run_stats, self.batch_size, hook)
        self._batch = Batch(store, connector, router, self.limits, self.rate_limit, self._handoff, self._marker,
                            self.run_stats, max_parse_attempts, hook, lambda: self.stopping)
        self._where: dict[int, tuple[int, MessageRef]] = {}
        self._last_listed: frozenset[str] = frozenset()
        self._fetcher = Fetcher(connector, self.limits.max_message_bytes)

    @classmethod
    def from_config(
        cls, config: Config, connector: str, *, router: RouterLike, store: Ledger, handler: Handler,
        access: ConnectorAccess | None = None, mailbox: Literal["primary", "additional"] = "primary",
        **options: Any,
    ) -> Ingestor:
        """An ingestor for a configured connector (its source, senders, limits); ``options``: ``ingestor_options``."""
        return cls(router=router, store=store, handler=handler,
                   **ingestor_options(config, connector, access, mailbox, options))

    # ------------------------------------------------------------------------------------------- running
    def stop(self) -> None:
        """Ask the loop to stop (from a signal handler or another thread): the current message is finished,
        what is done is recorded and marked, the lease is released, and the run returns."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> None:
        """Wait ``seconds``, or less when :meth:`stop` is called."""
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stop.wait(seconds)

    def _new_run(self) -> IngestStats:
        self.run_stats = self._handoff.stats = self._marker.stats = self._batch.stats = IngestStats()
        return self.run_stats

    def run_once(self, *, give_up_after: float | None = None) -> IngestStats:
        """Drain the folder: resume what the ledger holds, ingest what is new, until nothing is left.

        Retries retryable transport errors with backoff; raises the error when it is not retryable, after
        ``backoff.max_failures`` consecutive failures without progress, or when failures without progress
        have lasted ``give_up_after`` seconds. An ``OSError`` from the handler's output (disk full) ends
        the run at once, nothing quarantined: run again when it is fixed.
        """
        stats = self._new_run()
        self.lease.hold()
        self.housekeeping.run()
        _log.debug("pass started", extra={"connector": self.connector, "folder": self.mailbox})
        try:
            failures = 0
            spent = 0.0  # seconds of failed attempts and waits since the last progress
            while True:
                before = stats.progress_marker()
                attempt_started = time.monotonic()
                session = Session(self.source_factory)
                try:
                    self._pass(session)
                    session.checkpoint()  # LOGOUT / QUIT (which commits POP3 deletions)
                    break
                except UidValidityChangedError as exc:
                    # The folder was re-created or restored: every UID is void; list again (by content).
                    stats.uidvalidity_changes += 1
                    error: TransportError = exc
                except TransportError as exc:
                    if not exc.retryable:
                        raise
                    error = exc
                except OutputUnavailable as exc:
                    _log.error("handler output failed; stopping", extra={"connector": self.connector,
                                                                           "reason": describe(exc.cause)})
                    raise exc.cause from None
                finally:
                    session.discard()
                    self.acknowledger.close()
                stats.errors.append(describe(error))
                stats.reconnects += 1
                # Consecutive failures without progress; a pass that got something done starts over.
                failures = 1 if stats.progress_marker() != before else failures + 1
                spent = (0.0 if failures == 1 else spent) + time.monotonic() - attempt_started
                # Not before the server said (Graph's Retry-After on the answer that ended the call's retries).
                delay = max(self.backoff.delay(failures - 1, self.random), min(error.retry_after or 0, MAX_RETRY_AFTER))
                if failures >= self.backoff.max_failures or (
                        give_up_after is not None and spent + delay > give_up_after):
                    raise error
                spent += delay
                _log.warning("waiting for the mail server: %s; retrying in %.1f s", describe(error), delay,
                             extra={"connector": self.connector, "attempt": failures, "delay": round(delay, 3)})
                self.wait(delay)
                if self.stopping:
                    break
                self.lease.renew()
        finally:
            self.acknowledger.close()
            self.lease.release()
        _log_pass_finished(self.connector, self.mailbox, stats)
        return stats

    def run_forever(self, interval: float = 60.0, stop: Callable[[], bool] = lambda: False, *,
                    idle: bool = True) -> None:
        """Poll every ``interval`` seconds until ``stop()`` is true or :meth:`stop` is called.

        With ``idle`` (the default), a source that can be told about new mail (IMAP IDLE, RFC 2177) is
        asked to wait instead: a new message starts the next pass at once; polling is the fallback.

        Never gives up on an outage: a retryable failure (server down, ledger busy, lease held by another
        poller, output full) waits with capped exponential backoff and jitter and tries again, forever.
        A failure that retrying cannot fix (refused credentials, a bad configuration) is raised.
        """
        failures = 0
        while not (stop() or self.stopping):
            try:
                self.run_once()
            except (OSError, StoreError) as exc:
                if not retrying_may_fix(exc):
                    raise
                failures += 1
                delay = self.backoff.delay(failures - 1, self.random)
                _log.warning("poll failed; retrying", extra={"connector": self.connector, "attempt": failures,
                                                             "delay": round(delay, 3), "reason": describe(exc)})
                self.wait(delay)
                continue
            failures = 0
            if idle:
                self.wait_for_mail(interval)
            else:
                self.wait(interval)

    def wait_for_mail(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for new mail: with IDLE where the source offers it (``MailWaiter``)."""
        if self._sleep is None and not self.stopping:
            return self._waiter.wait(timeout, self._last_listed)
        self.wait(timeout)

    # ------------------------------------------------------------------------------------------- one pass
    def _flight(self, record: MessageRecord, unlisted_index: int) -> InFlight:
        index, ref = self._where.get(record.id, (unlisted_index + record.id, None))
        return InFlight(record, index, ref)

    def _pass(self, session: Session) -> None:
        stats = self.run_stats
        stats.passes += 1
        refs = session.source.list_new()
        stats.listed = len(refs)
        self._last_listed = frozenset(r.key for r in refs)
        for value in {r.uidvalidity for r in refs if r.uidvalidity is not None}:
            if self.store.observe_uidvalidity(self.connector, self.mailbox, value) is not None:
                stats.uidvalidity_changes += 1
        known = self.store.lookup_refs(self.connector, [r.key for r in refs])
        self._where = {}
        fresh: list[tuple[int, MessageRef]] = []
        for index, ref in enumerate(refs):
            record = known.get(ref.key)
            if record is None:
                fresh.append((index, ref))
            else:  # the first index (what hooks are told), the last ref (where it is now)
                self._where[record.id] = (self._where.get(record.id, (index, ref))[0], ref)

        # 1. Resume what the ledger holds for this folder (a crash, or a failure in the last pass).
        pending = self.store.pending(self.connector, self.mailbox)
        stats.resumed += len(pending)
        for start in range(0, len(pending), self.batch_size):
            if self.stopping:
                return
            self._batch.process(session, [self._flight(r, len(refs)) for r in pending[start:start + self.batch_size]],
                          resumed=True)
        # A message marked in the ledger but listed again lost its mark (a POP3 DELE dies without QUIT).
        again = {r.id: r for r in known.values() if r.state is MessageState.MARKED}
        self._marker.mark(session, [self._flight(r, len(refs)) for r in again.values()])

        # 2. What is new on the server, a batch at a time (no single message holds up the others).
        delivered = 0
        fresh = self._fetcher.order(fresh, self._last_listed)
        start = 0
        while start < len(fresh):  # batch_size messages, or fewer when large ones fill the batch's bytes
            if self.stopping:
                return
            self.lease.renew()
            fetched: list[tuple[int, MessageRef, bytes]] = []
            try:
                start += self._fetcher.fetch(session.source, fresh[start:start + self.batch_size], fetched, stats)
                delivered += len(fetched)
            except TransportError:
                # Keep what arrived whole before the connection dropped, so a flaky connection still
                # makes progress (a download cut short raised in the transport and returned nothing).
                self._spool(fetched)
                raise
            self._batch.process(session, _not_another_folders(self._spool(fetched), self.mailbox), resumed=False)
            if self.progress is not None:
                self.progress(stats)

        # 3. DONE messages with no ref in this listing are no longer waiting on the server (moved, flagged
        # or expunged — by us before a crash, or by another client): nothing is left to mark.
        leftover = [r.id for r in self.store.pending(self.connector, self.mailbox)
                    if r.state is MessageState.DONE and r.id not in self._where]
        self.store.record_marked(leftover)
        stats.marked += len(leftover)
        if self.progress is not None:
            self.progress(stats)
        if self._fetcher.refused is not None and not delivered:
            raise self._fetcher.refused  # nothing new could be fetched: a failed pass (backoff, then reported)

    def _spool(self, fetched: list[tuple[int, MessageRef, bytes]]) -> list[InFlight]:
        """Store fetched bytes durably (one transaction); the digest is computed here, once per message."""
        if not fetched:
            return []
        items = [SpoolItem(ref.key, raw, content_digest(raw)) for _, ref, raw in fetched]
        records = self.store.spool(self.connector, self.mailbox, items)
        self.run_stats.spooled += len(records)
        flights = []
        for (index, ref, raw), record in zip(fetched, records, strict=True):
            self._where[record.id] = (index, ref)
            flights.append(InFlight(record, index, ref, raw=raw))
            if self.hook is not None:
                self.hook("after_spool", index)
        return flights

    # ------------------------------------------------------------------------------------------- admin
    def quarantined(self) -> list[MessageRecord]:
        """Quarantined messages of this folder: raw bytes kept, reason given."""
        return [r for r in self.store.quarantined(self.connector) if r.mailbox == self.mailbox]

    def unrouted(self) -> list[MessageRecord]:
        """Messages of this folder that no route took (every decision came from the fallback)."""
        return [r for r in self.store.unrouted(self.connector) if r.mailbox == self.mailbox]

    def reprocess(self, messages: Sequence[int]) -> IngestStats:
        """Route quarantined or unrouted messages again (after a route was added or a limit raised).

        A quarantined message continues where it stopped: keys already handed off are not handed again.
        An unrouted message gets a new generation of keys for the decisions that now come from a route
        (fallback decisions are not repeated); it stays unrouted if the fallback still takes it.
        """
        stats = self._new_run()
        self.lease.hold()
        try:
            was_marked: list[int] = []
            flights: list[InFlight] = []
            for index, message in enumerate(messages):
                before = _reprocessable(self.store, message)
                if before.state is MessageState.MARKED:
                    was_marked.append(message)
                unrouted = not before.quarantined and before.fallback_only
                flights.append(InFlight(self.store.reopen(message, new_generation=unrouted), index))
            self._handoff.reprocessing = True
            try:
                self._batch.process(None, flights, resumed=False, generation_keys=True)
            finally:
                self._handoff.reprocessing = False
            # The server copy was already marked before; only the ledger needs to say so again.
            self.store.record_marked([m for m in was_marked if self.store.get(m).state is MessageState.DONE])
        finally:
            self.acknowledger.close()
            self.lease.release()
        return stats


def _log_pass_finished(connector: str, mailbox: str, stats: IngestStats) -> None:
    """At info only when the pass did something: an idle pass every minute for months is noise there."""
    eventful = any(stats.progress_marker()) or stats.reconnects or stats.resumed or stats.uidvalidity_changes
    _log.log(logging.INFO if eventful else logging.DEBUG, "pass finished",
             extra={"connector": connector, "folder": mailbox, "listed": stats.listed, "handed": stats.handed,
                    "duplicates": stats.duplicates, "marked": stats.marked, "quarantined": stats.quarantined,
                    "reconnects": stats.reconnects})


def _reprocessable(store: Ledger, message: int) -> MessageRecord:
    """The ledger record of ``message``; refused when retention dropped its raw bytes (docs/ingestion.md)."""
    record = store.get(message)
    if record.size and not store.raw(message):
        raise StoreError(f"message {message}: its raw bytes were dropped after the retention period "
                         "(keep_raw_for, docs/ingestion.md); it cannot be routed again")
    return record


def _not_another_folders(flights: list[InFlight], mailbox: str) -> list[InFlight]:
    """Leave out the same bytes spooled first from another folder of this connector (an IMAP COPY, a label)
    and not yet handed off: that folder's poller, under its own lease, is handing them off, and doing it
    here too would hand them off twice. This copy is marked once that one is MARKED."""
    return [f for f in flights if f.record.mailbox == mailbox
            or f.state not in (MessageState.SPOOLED, MessageState.ROUTED)]
