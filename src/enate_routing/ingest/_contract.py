"""What the host sees of the ingestion loop: the work item, the handler, the router it needs, the figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from enate_routing._decision import Decision, RoutingResult
from enate_routing._envelope import Envelope
from enate_routing.errors import StoreError, TransportError

__all__ = ["HOOK_POINTS", "Backoff", "Handler", "IngestStats", "RouterLike", "StepHook", "WorkItem"]

HOOK_POINTS = (
    "after_spool",    # raw bytes durable; nothing routed
    "after_route",    # decisions and work rows recorded; nothing handed off
    "after_handler",  # the handler returned; its hand-off not yet recorded
    "before_ack",     # hand-off recorded; its acknowledgement not yet sent
    "after_ack",      # acknowledgement accepted by the server; not yet recorded
    "after_commit",   # hand-offs (and acknowledgements) recorded; the server copy not yet marked
    "after_mark",     # marked on the server; the ledger does not say so yet
)
"""The step boundaries where a crash leaves a distinct durable state (the crash matrix kills at each).
``before_ack`` and ``after_ack`` exist only for messages with an acknowledgement."""

StepHook = Callable[[str, int], None]
"""Called at every step boundary with the hook point and the message's index in this pass (0 = the first
message listed). For fault injection: the crash matrix kills the process from here."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """What the host's handler receives for one decision."""

    idempotency_key: str
    decision: Decision
    envelope: Envelope
    connector: str
    mailbox: str
    ref: str
    message: int
    reprocessed: bool = False

    @property
    def raw(self) -> bytes:
        return self.envelope.raw


class Handler(Protocol):
    """The host's hand-off: create (or link, ignore, reject) the work item; idempotent on the key.

    It may return the work item's reference (e.g. ``"T-000123"``): the reference is recorded with the
    hand-off and the acknowledgement, built afterwards, carries it in its subject's reference token.
    Returning None (a handler written before references) gives an acknowledgement without a reference.
    """

    def __call__(self, item: WorkItem, /) -> str | None: ...


class RouterLike(Protocol):
    """What the loop needs of :class:`enate_routing.Router`.

    ``content_digest`` is the SHA-256 of the raw bytes the ledger already computed, so routing a message
    without a Message-ID does not hash it again.
    """

    def route(
        self,
        envelope: Envelope,
        connector: str,
        *,
        acknowledgement_allowed: Callable[[str], bool] | None = None,
        content_digest: str | None = None,
    ) -> RoutingResult: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: attempt *n* waits ``uniform(0, min(cap, base · 2ⁿ))``.

    :meth:`Ingestor.run_once` gives up after ``max_failures`` consecutive failures without progress;
    :meth:`Ingestor.run_forever` never gives up on an outage.
    """

    base: float = 1.0
    cap: float = 60.0
    max_failures: int = 8

    def delay(self, attempt: int, rng: Callable[[float, float], float]) -> float:
        return rng(0.0, min(self.cap, self.base * (2 ** min(attempt, 30))))


def retrying_may_fix(exc: BaseException) -> bool:
    """Whether a failed run is worth running again later: the ledger's database or a mail server away
    (``OSError``, ``StoreError``), not refused credentials or a bad configuration (a transport error
    marked not retryable)."""
    if isinstance(exc, TransportError):  # a TransportError is an OSError
        return exc.retryable
    return isinstance(exc, (OSError, StoreError))


@dataclass
class IngestStats:
    """What one :meth:`Ingestor.run_once` did."""

    listed: int = 0
    spooled: int = 0
    resumed: int = 0
    routed: int = 0
    quarantined: int = 0
    handed: int = 0
    duplicates: int = 0
    deferred: int = 0
    acks_sent: int = 0
    acks_failed: int = 0
    marked: int = 0
    gone: int = 0
    reconnects: int = 0
    uidvalidity_changes: int = 0
    passes: int = 0
    errors: list[str] = field(default_factory=list)

    def progress_marker(self) -> tuple[int, ...]:
        """Changes whenever a pass got something done (consecutive failures without progress count)."""
        return (self.spooled, self.routed, self.quarantined, self.handed, self.marked, self.acks_sent, self.gone)
