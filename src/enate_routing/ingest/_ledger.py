"""The ingestion ledger as the loop sees it (docs/semantics.md §3.5, §8): typed rows and small role protocols.

A host that keeps the ledger in its own database implements :class:`Ledger` — the union of four roles,
each a handful of methods, every method one atomic transaction:

- :class:`LeaseLedger` — one poller per (connector, folder) at a time;
- :class:`SpoolLedger` — raw bytes stored durably and found again by ref or by content;
- :class:`WorkLedger` — routing results, hand-offs, acknowledgements, marks;
- :class:`QuarantineLedger` — what could not be routed, kept for reprocessing.

Per message (one row, keyed by the server's stable id *and* by its content)::

    (listed) ──fetch──▶ SPOOLED ──parse+route──▶ ROUTED ──every decision handed off──▶ DONE ──mark──▶ MARKED
                           │                        │   (and its acknowledgement sent,      ▲
                           │                        │    suppressed or refused)             │
                           └──over limit / unparseable──┴──handler failed permanently──▶ DONE (quarantined)

:class:`~enate_routing.ingest.SQLiteLedger` is the default implementation.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "AckState",
    "LeaseLedger",
    "Ledger",
    "MessageRecord",
    "MessageState",
    "PlannedWork",
    "QuarantineLedger",
    "RoutedMessage",
    "SpoolItem",
    "SpoolLedger",
    "WorkLedger",
    "WorkRecord",
    "content_digest",
]


def content_digest(raw: bytes) -> str:
    """The SHA-256 hex digest of a message's raw bytes: the ledger's content key (computed once per message)."""
    return hashlib.sha256(raw).hexdigest()


class MessageState(enum.StrEnum):
    """Where a message is in the ingestion pipeline (see the module docstring)."""

    SPOOLED = "spooled"
    ROUTED = "routed"
    DONE = "done"
    MARKED = "marked"


class AckState(enum.StrEnum):
    """What became of a work item's acknowledgement (at most one per decision, docs/semantics.md §3.5)."""

    NONE = "none"  # the decision asks for no acknowledgement (or it was suppressed by the router)
    PENDING = "pending"  # to be sent
    SENT = "sent"
    RATE_LIMITED = "rate-limited"  # kept for ledgers written before the router alone decided the limit
    NO_SENDER = "no-sender"  # no outgoing connector can send it
    FAILED = "failed"  # it could not be built, or the sender refused it permanently (or too many attempts)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One ledger row (without its raw bytes; :meth:`SpoolLedger.raw` reads them)."""

    id: int
    connector: str
    mailbox: str
    ref_key: str
    sha256: str
    message_id: str | None
    size: int
    state: MessageState
    quarantine_reason: str | None
    fallback_only: bool
    decisions: tuple[dict[str, Any], ...]
    generation: int
    attempts: int
    created_at: float
    updated_at: float

    @property
    def quarantined(self) -> bool:
        return self.quarantine_reason is not None


@dataclass(frozen=True, slots=True)
class WorkRecord:
    """One work item: a decision's idempotency key, owned by the message that first routed it.

    ``ack_reason`` says why an acknowledgement was not sent (failed to build, refused by the server);
    ``reference`` is the work item's reference the host's handler returned (None when it returned nothing),
    recorded with the hand-off; the acknowledgement is built from it.
    """

    connector: str
    key: str
    message: int
    handed_at: float | None
    ack_state: AckState
    ack_recipients: tuple[str, ...]
    attempts: int
    ack_reason: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedWork:
    """A work item as routing planned it: its key, and whether (and to whom) to acknowledge."""

    key: str
    ack_state: AckState
    ack_recipients: tuple[str, ...] = ()


class SpoolItem(NamedTuple):
    """What :meth:`SpoolLedger.spool` stores for one fetched message; ``sha256`` is :func:`content_digest`."""

    ref_key: str
    raw: bytes
    sha256: str


class RoutedMessage(NamedTuple):
    """The parse + route result of one message, as :meth:`WorkLedger.record_routed` records it."""

    message: int
    message_id: str | None
    decisions: Sequence[dict[str, Any]]
    work: Sequence[PlannedWork]
    fallback_only: bool


class LeaseLedger(Protocol):
    """One poller per (connector, folder): a lease with an owner token and an expiry."""

    def acquire_lease(self, connector: str, mailbox: str, owner: str, ttl: float) -> None:
        """Take or renew the lease; :class:`~enate_routing.errors.LeaseHeldError` when another owner holds it."""
        ...

    def release_lease(self, connector: str, mailbox: str, owner: str) -> None: ...


class SpoolLedger(Protocol):
    """Raw bytes stored durably, found again by server ref (aliases included) or by content digest."""

    def observe_uidvalidity(self, connector: str, mailbox: str, uidvalidity: int) -> int | None:
        """Remember the folder's UIDVALIDITY; return the previous value when it changed, else None."""
        ...

    def lookup_refs(self, connector: str, ref_keys: Sequence[str]) -> dict[str, MessageRecord]:
        """The known messages among ``ref_keys`` (by ref key, aliases included)."""
        ...

    def spool(self, connector: str, mailbox: str, items: Sequence[SpoolItem]) -> list[MessageRecord]:
        """Store each item durably (state SPOOLED), in order, in one transaction.

        Bytes already known by digest are not stored again: the ref becomes an alias of that row, which
        is returned as it is (UIDVALIDITY change, renumbered UIDLs).
        """
        ...

    def pending(self, connector: str, mailbox: str) -> list[MessageRecord]:
        """Messages of this folder not yet MARKED, oldest first."""
        ...

    def get(self, message: int) -> MessageRecord: ...

    def raw(self, message: int) -> bytes: ...

    def note_attempt(self, messages: Sequence[int]) -> None:
        """Count one more processing attempt of each message (a message that keeps crashing the loop)."""
        ...


class WorkLedger(Protocol):
    """Routing results, hand-offs, acknowledgements and server marks."""

    def record_routed(self, routed: Sequence[RoutedMessage]) -> int:
        """Record parse + route results. Work rows whose key already exists (the same message reached the
        connector twice) are left to their owner; their number is returned. State becomes ROUTED, or DONE
        when the message owns no unhanded work."""
        ...

    def record_quarantine(self, message: int, reason: str, message_id: str | None = None) -> None:
        """Quarantine: keep raw bytes and reason; state DONE so the server copy can be marked."""
        ...

    def work_of(self, message: int) -> list[WorkRecord]:
        """The work rows this message owns, in decision order."""
        ...

    def record_handed(
        self, connector: str, keys: Sequence[str], *, finish: Sequence[int] = (),
        references: Mapping[str, str] | None = None,
    ) -> set[int]:
        """Record every key as handed off and finish each message of ``finish`` (DONE when it has no open
        work left), in one transaction: the group commit. Returns the messages of ``finish`` now DONE.

        ``references`` (key → the work item's reference the handler returned) are recorded with their
        hand-off; the loop passes it only when a handler returned one (a ledger written before it existed
        keeps working for hosts whose handler returns nothing)."""
        ...

    def record_ack(
        self, connector: str, key: str, state: AckState, recipients: Sequence[str], *,
        attempt: bool = False, reason: str | None = None, finish: int | None = None,
    ) -> None:
        """Record the acknowledgement's outcome (and why it was not sent); SENT counts every recipient
        against the rate limit."""
        ...

    def note_work_failure(self, connector: str, key: str) -> int:
        """Count a failed hand-off attempt; return the attempts so far."""
        ...

    def record_marked(self, messages: Sequence[int]) -> None: ...

    def ack_count(self, recipient: str, since: float) -> int:
        """Acknowledgements sent to ``recipient`` at or after ``since`` (epoch seconds), plus those planned
        for it and still pending (they go out when the mail server answers again)."""
        ...


class QuarantineLedger(Protocol):
    """What could not be routed (or only by the fallback), kept with its raw bytes for reprocessing."""

    def quarantined(self, connector: str | None = None) -> list[MessageRecord]: ...

    def unrouted(self, connector: str | None = None) -> list[MessageRecord]:
        """Messages whose every decision came from the fallback route (no route held)."""
        ...

    def reopen(self, message: int, *, new_generation: bool) -> MessageRecord:
        """Put a message back to SPOOLED for reprocessing (quarantine cleared; its raw bytes kept)."""
        ...


@runtime_checkable
class Ledger(LeaseLedger, SpoolLedger, WorkLedger, QuarantineLedger, Protocol):
    """Everything the ingestion loop needs from a durable store."""

    def close(self) -> None: ...
