"""One batch of ledger rows through parse, route, hand-off and mark, each from its recorded state."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from enate_routing._decision import Decision
from enate_routing._parse_limits import ParseLimits
from enate_routing.ingest._acknowledge import AckRateLimit, describe
from enate_routing.ingest._contract import IngestStats, RouterLike, StepHook
from enate_routing.ingest._handoff import Group, HandOff, OutputUnavailable
from enate_routing.ingest._inflight import InFlight, decision_to_record
from enate_routing.ingest._lease import LeaseLostError
from enate_routing.ingest._ledger import AckState, Ledger, MessageState, PlannedWork, RoutedMessage
from enate_routing.ingest._marking import Marker, Session

__all__ = ["Batch"]

_log = logging.getLogger("enate_routing.ingest")


@dataclass
class Batch:
    """Processes batches of messages of one folder (see :meth:`process`)."""

    store: Ledger
    connector: str
    router: RouterLike
    limits: ParseLimits
    rate_limit: AckRateLimit
    handoff: HandOff
    marker: Marker
    stats: IngestStats
    max_parse_attempts: int
    hook: StepHook | None
    stopping: Callable[[], bool]

    def process(self, session: Session | None, flights: Sequence[InFlight], *, resumed: bool,
                 generation_keys: bool = False) -> None:
        """Parse, route, hand off, acknowledge and mark a batch, each message from its recorded state."""
        routed: list[RoutedMessage] = []
        for flight in flights:
            if flight.state is not MessageState.SPOOLED:
                continue
            if resumed:
                # A message still SPOOLED at start-up may be what crashed the last run: count the attempt
                # before trying again, and quarantine it rather than crash forever.
                if flight.record.attempts >= self.max_parse_attempts:
                    self.quarantine(flight, f"processing crashed {flight.record.attempts} times before routing")
                    continue
                self.store.note_attempt([flight.id])
            self._route(flight, routed, generation_keys)
        self.stats.duplicates += self.store.record_routed(routed)
        self.stats.routed += len(routed)
        self.rate_limit.batch_recorded()
        for flight in flights:
            if flight.routed_now and self.hook is not None:
                self.hook("after_route", flight.index)

        group = Group()
        try:
            for flight in flights:
                if flight.ready:
                    continue
                if flight.routed_now or flight.state is MessageState.ROUTED:
                    if self.stopping():
                        break  # finish the message in hand, start no other
                    self.handoff.message(flight, group)
                elif flight.state in (MessageState.DONE, MessageState.MARKED):
                    flight.ready = True
        except (OutputUnavailable, LeaseLostError):
            self.handoff.commit(group)  # what was handed off before the stop is recorded
            raise
        self.handoff.commit(group)
        if session is not None:
            self.marker.mark(session, [f for f in flights if f.ready])

    def _route(self, flight: InFlight, routed: list[RoutedMessage], generation_keys: bool) -> None:
        envelope = flight.load(self.store, self.limits)
        if envelope.quarantine_reason is not None:
            self.quarantine(flight, envelope.quarantine_reason, envelope.message_id)
            return
        try:
            result = self.router.route(envelope, self.connector, acknowledgement_allowed=self.rate_limit,
                                       content_digest=flight.record.sha256)
        except Exception as exc:  # noqa: BLE001 — a routing bug must quarantine the message, not lose it
            self.quarantine(flight, f"routing failed: {describe(exc)}", envelope.message_id)
            return
        generation = flight.record.generation if generation_keys else 0
        chosen = list(result.decisions)
        fallback_only = bool(chosen) and all(d.fallback for d in chosen)
        if generation:
            chosen = [d for d in chosen if not d.fallback]  # reprocessing unrouted mail: only new routes
            fallback_only = not chosen
        # Reprocessing unrouted mail is an explicit request for new work: a new generation of keys.
        keys = [d.idempotency_key if not generation else f"{d.idempotency_key}:g{generation}" for d in chosen]
        work = [PlannedWork(key, AckState.PENDING if _wants_ack(d) else AckState.NONE, tuple(d.acknowledge))
                for d, key in zip(chosen, keys, strict=True)]
        ref = flight.ref_key
        routed.append(RoutedMessage(flight.id, envelope.message_id,
                                    [decision_to_record(d, k, ref) for d, k in zip(chosen, keys, strict=True)],
                                    work, fallback_only))
        flight.decisions = {k: (d, ref) for d, k in zip(chosen, keys, strict=True)}
        flight.routed_now = True

    def quarantine(self, flight: InFlight, reason: str, message_id: str | None = None) -> None:
        self.store.record_quarantine(flight.id, reason, message_id)
        self.stats.quarantined += 1
        flight.ready = True
        _log.warning("message quarantined", extra={"connector": self.connector, "ledger_id": flight.id,
                                                   "reason": reason})


def _wants_ack(decision: Decision) -> bool:
    return bool(decision.acknowledge) and decision.suppressed is None and decision.action in ("create", "link")
