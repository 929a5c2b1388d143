"""One message in flight through a pass: everything the loop knows of it, in one object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enate_routing._decision import Decision
from enate_routing._delivery import Delivery
from enate_routing._envelope import Envelope
from enate_routing._parse_limits import ParseLimits
from enate_routing.ingest._ledger import MessageRecord, MessageState, SpoolLedger
from enate_routing.transports._base import MessageRef

__all__ = ["InFlight", "decision_from_record", "decision_to_record"]


def decision_to_record(decision: Decision, key: str, ref: str) -> dict[str, Any]:
    """A decision as stored in the ledger: the docs/semantics.md §5 fields plus what rebuilding it needs."""
    data = decision.to_json(ref)
    for_attention = None if decision.delivery is None else decision.delivery.for_attention
    data.update(reason=decision.reason, for_attention=for_attention, work_key=key)
    return data


def decision_from_record(data: dict[str, Any]) -> Decision:
    """Rebuild a recorded decision (a resumed message is handed exactly what routing decided then)."""
    return Decision(
        connector=data["connector"],
        action=data["action"],
        address=data["address"],
        idempotency_key=data["idempotency_key"],
        route=data.get("route"),
        fallback=bool(data.get("fallback")),
        delivery=Delivery.from_json(data),
        acknowledge=tuple(data.get("acknowledge") or ()),
        suppressed=data.get("suppressed"),
        link=data.get("link"),
        reason=data.get("reason"),
    )


@dataclass(slots=True)
class InFlight:
    """A ledger row on its way: where it is on the server, its bytes and envelope once read, its decisions.

    ``index`` is the message's position in this pass's listing (what hooks are told); ``ref`` is None for
    a message not listed in this pass (moved away, or being reprocessed). ``decisions`` maps each work key
    to its decision and the ref shown to the handler; ``ready`` is set once the message is DONE (handed off
    or quarantined) and may be marked on the server.
    """

    record: MessageRecord
    index: int
    ref: MessageRef | None = None
    raw: bytes | None = None
    envelope: Envelope | None = None
    decisions: dict[str, tuple[Decision, str]] | None = None
    routed_now: bool = False
    ready: bool = False

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def ref_key(self) -> str:
        return self.ref.key if self.ref is not None else self.record.ref_key

    @property
    def state(self) -> MessageState:
        return self.record.state

    def load(self, store: SpoolLedger, limits: ParseLimits) -> Envelope:
        """The envelope, parsed once — from the bytes just fetched, else from the spool."""
        if self.envelope is None:
            raw = self.raw if self.raw is not None else store.raw(self.id)
            self.raw = None  # the envelope keeps the bytes
            self.envelope = Envelope.from_bytes(raw, limits=limits)
        return self.envelope

    def recorded_decisions(self) -> dict[str, tuple[Decision, str]]:
        """The decisions as routing recorded them (a resumed message is handed exactly those)."""
        if self.decisions is None:
            self.decisions = {
                d.get("work_key", d["idempotency_key"]): (decision_from_record(d), d.get("message") or self.ref_key)
                for d in self.record.decisions
            }
        return self.decisions
