"""Hand-off: each work item of a routed message to the host's handler, recorded with a group commit.

Work without an acknowledgement is **group-committed**: one transaction records the hand-offs of a run of
messages (the batch, or those since the last commit), always before any of them is marked on the server.
A message with an acknowledgement takes the per-item path: the group is committed first, then each item
is recorded as handed off *before* its acknowledgement goes out, so an SMTP failure or a crash while
sending never hands the same work item to the host twice.

Handler failures are classified: a :class:`~enate_routing.errors.HandlerError` or
:class:`~enate_routing.errors.TransportError` marked retryable (or a TimeoutError / ConnectionError) is
retried on a later pass, up to ``max_attempts``, then quarantined; an ``OSError`` from the host's output
(disk full, read-only file system) stops the pass without quarantining (:class:`OutputUnavailable`);
anything else quarantines the message with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from enate_routing._decision import Decision
from enate_routing._parse_limits import ParseLimits
from enate_routing.errors import HandlerError, TransportError
from enate_routing.ingest._acknowledge import Acknowledger, describe, header_value
from enate_routing.ingest._contract import Handler, IngestStats, StepHook, WorkItem
from enate_routing.ingest._inflight import InFlight
from enate_routing.ingest._ledger import AckState, Ledger, MessageState, WorkRecord

__all__ = ["Group", "HandOff", "OutputUnavailable"]

_log = logging.getLogger("enate_routing.ingest")


class OutputUnavailable(Exception):
    """The handler's output failed with an OSError: stop the pass, quarantine nothing, retry later."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(describe(cause))
        self.cause = cause


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, HandlerError | TransportError):
        return bool(exc.retryable)
    return isinstance(exc, TimeoutError | ConnectionError)


@dataclass
class Group:
    """Hand-offs waiting for the group commit, and the messages they finish."""

    keys: list[str] = field(default_factory=list)
    finish: list[InFlight] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)


@dataclass
class HandOff:
    """Hands the work of routed messages to the host and records it (see the module docstring)."""

    store: Ledger
    connector: str
    mailbox: str
    handler: Handler
    acknowledger: Acknowledger
    limits: ParseLimits
    stats: IngestStats
    max_attempts: int = 5
    hook: StepHook | None = None
    before_each: Callable[[], None] = lambda: None
    reprocessing: bool = False

    def _hook(self, point: str, index: int) -> None:
        if self.hook is not None:
            self.hook(point, index)

    def message(self, flight: InFlight, group: Group) -> None:
        """Hand every unhanded work item of a ROUTED message to the host; sets ``flight.ready`` when DONE.

        A message without a pending acknowledgement joins ``group`` (the group commit finishes it).
        """
        work = self.store.work_of(flight.id)
        if flight.routed_now and all(item.handed_at is not None for item in work):
            flight.ready = True  # routing found no work of its own left to do: DONE already
            return
        decided = flight.recorded_decisions()
        # Work rows of an earlier generation of keys (reprocessed unrouted mail) are not this routing's.
        work = [w for w in work if w.key in decided]
        if any(w.ack_state is AckState.PENDING for w in work):
            self.commit(group)
            self._one_by_one(flight, decided, work)
            return
        handed: list[str] = []
        for item in work:
            if item.handed_at is not None:
                continue
            decision, ref = decided[item.key]
            returned, reference = self._call(flight, decision, ref, item)
            if not returned:
                group.keys.extend(handed)
                return
            handed.append(item.key)
            if reference is not None:
                group.references[item.key] = reference
        group.keys.extend(handed)
        group.finish.append(flight)

    def commit(self, group: Group) -> None:
        """The group commit: every hand-off of the group recorded, and its messages finished, in one
        transaction — before any of them is marked on the server."""
        if not group.keys and not group.finish:
            return
        keys, finish, references = group.keys, group.finish, group.references
        group.keys, group.finish, group.references = [], [], {}
        done = self._record_handed(keys, [f.id for f in finish], references)
        for flight in finish:
            flight.ready = flight.id in done
            self._hook("after_commit", flight.index)

    def _one_by_one(self, flight: InFlight, decided: dict[str, tuple[Decision, str]], work: list[WorkRecord]) -> None:
        """The per-item path of a message with an acknowledgement: handler → record handed → ack → record."""
        for position, item in enumerate(work):
            finish = flight.id if position == len(work) - 1 else None
            decision, ref = decided[item.key]
            reference = item.reference  # recorded with an earlier hand-off (a resumed acknowledgement)
            if item.handed_at is None:
                returned, reference = self._call(flight, decision, ref, item)
                if not returned:
                    return
                references = {} if reference is None else {item.key: reference}
                if item.ack_state is not AckState.PENDING:
                    done = self._record_handed([item.key], [] if finish is None else [finish], references)
                    flight.ready = flight.id in done
                    self._hook("after_commit", flight.index)
                    continue
                self._record_handed([item.key], [], references)
            elif item.ack_state is not AckState.PENDING:
                continue
            self._hook("before_ack", flight.index)
            # Built after the hand-off is recorded, from the recorded reference (docs/ingestion.md).
            outcome = self.acknowledger.send(flight.load(self.store, self.limits), decision, item, reference)
            self._hook("after_ack", flight.index)
            self.store.record_ack(self.connector, item.key, outcome.state, outcome.recipients,
                                  attempt=outcome.state is AckState.PENDING, reason=outcome.reason, finish=finish)
            self._hook("after_commit", flight.index)
            if outcome.state is AckState.SENT:
                self.stats.acks_sent += 1
            elif outcome.state is AckState.PENDING:
                self.stats.errors.append(outcome.reason or "acknowledgement deferred")
                return
            else:
                self.stats.acks_failed += 1
        flight.ready = self.store.get(flight.id).state in (MessageState.DONE, MessageState.MARKED)

    def _record_handed(self, keys: list[str], finish: list[int], references: dict[str, str]) -> set[int]:
        # ``references`` only when there are some: a host's ledger from before them keeps working.
        if references:
            return self.store.record_handed(self.connector, keys, finish=finish, references=references)
        return self.store.record_handed(self.connector, keys, finish=finish)

    def _call(self, flight: InFlight, decision: Decision, ref: str, item: WorkRecord) -> tuple[bool, str | None]:
        """Call the host's handler: (True, the reference it returned) when it returned, else (False, None).
        A failure defers or quarantines the message."""
        self.before_each()
        envelope = flight.load(self.store, self.limits)
        try:
            returned = self.handler(WorkItem(
                idempotency_key=item.key, decision=decision, envelope=envelope, connector=self.connector,
                mailbox=self.mailbox, ref=ref, message=flight.id, reprocessed=self.reprocessing,
            ))
        except OSError as exc:
            if isinstance(exc, TransportError) or retryable(exc):
                return self._failed(flight, item, exc), None
            raise OutputUnavailable(exc) from exc
        except Exception as exc:  # noqa: BLE001 — the host's failure decides retry or quarantine
            return self._failed(flight, item, exc), None
        self._hook("after_handler", flight.index)
        self.stats.handed += 1
        return True, _reference(returned, item.key)

    def _failed(self, flight: InFlight, item: WorkRecord, exc: Exception) -> bool:
        attempts = self.store.note_work_failure(self.connector, item.key)
        if retryable(exc) and attempts < self.max_attempts:
            self.stats.deferred += 1
            self.stats.errors.append(describe(exc))
            _log.info("hand-off deferred", extra={"ledger_id": flight.id, "key": item.key, "attempts": attempts,
                                                  "reason": describe(exc)})
            return False
        reason = f"handler failed ({attempts} attempts): {describe(exc)}"
        message_id = flight.envelope.message_id if flight.envelope is not None else flight.record.message_id
        self.store.record_quarantine(flight.id, reason, message_id)
        self.stats.quarantined += 1
        flight.ready = True
        _log.warning("message quarantined", extra={"ledger_id": flight.id, "reason": reason})
        return False


def _reference(returned: object, key: str) -> str | None:
    """The work item's reference from what the handler returned: a non-empty string, sanitised for a header
    line and at most 200 characters; anything else is no reference (logged when it is not None)."""
    if isinstance(returned, str):
        return header_value(returned, 200) or None
    if returned is not None:
        _log.warning("handler returned neither a reference (str) nor None; ignored",
                     extra={"key": key, "returned_type": type(returned).__name__})
    return None
