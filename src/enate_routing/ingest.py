"""The ingestion loop (docs/semantics.md §8): list → spool → parse → route → hand off → acknowledge → record → mark.

One :class:`Ingestor` drains one mailbox of one connector. Every step is recorded in the ledger
(:mod:`enate_routing.store`) before the next one starts, and the message is marked processed on the server
only after its last step is recorded, so a crash, a dropped connection or a restart loses no email and
creates no duplicate work. See ``docs/ingestion.md`` for the whole picture; in short:

**Steps** (each has a ``before_<step>`` and ``after_<step>`` hook point, see :data:`HOOK_POINTS`):

=========  ============================================================================================
spool      fetch the raw bytes and store them durably (a batch per transaction); bytes already known by
           SHA-256 attach the new ref to the existing row (UIDVALIDITY change, a re-numbered POP3 UIDL)
parse      :meth:`Envelope.from_bytes` with the configured limits; over a limit → quarantine
route      ``router.route(...)``; the decisions and one work row per idempotency key are recorded (a key
           that another message already owns — the same Message-ID Bcc'd to two aliases — is not redone)
handler    the host's handler receives a :class:`WorkItem` (decision, idempotency key, envelope, raw)
ack        the acknowledgement, at most one per decision, through the sender and the hourly rate limit
commit     the work item is recorded as handed off (and acknowledged); the message becomes DONE. Work
           without an acknowledgement is **group-committed**: one transaction for the batch's hand-offs
           (or for those since the last commit, when a message with an acknowledgement comes next)
mark       ``source.mark_processed(ref)`` — only after the batch's commits; then the message is recorded
           MARKED (a batch per transaction)
=========  ============================================================================================

**The host's side of the contract.** The handler is called at most once per idempotency key *as recorded
by the ledger*: a key recorded as handed off is never handed again. A crash after the handler returned
and before its hand-off is committed (the only window) makes a restart call the handler again with the
same key — with group commit, for every hand-off of the batch not yet committed (up to ``batch_size``) —
so the handler must be idempotent on :attr:`WorkItem.idempotency_key` — e.g. create the work item under a
unique constraint on the key, or look the key up first, in the same transaction as the work item itself.
A handler that raises :class:`HandlerError` with ``retryable=True`` (or any
:class:`~enate_routing.errors.TransportError` that is retryable, or :class:`TimeoutError`) is retried on a
later pass, up to ``max_handler_attempts``; any other exception quarantines the message with the reason,
from where :meth:`Ingestor.reprocess` can try again.

**Acknowledgements** can be duplicated only in the SMTP window after the server accepted the final dot and
before the ledger recorded it: a restart then sends it again (the same Message-ID, so a mail client
shows one). They are built with :func:`build_acknowledgement` (``Auto-Submitted: auto-replied``,
``X-Auto-Response-Suppress: All``, ``In-Reply-To`` / ``References``, RFC 3834) and pass a per-recipient
limit of ``acknowledgements_per_hour`` over a sliding hour, counted in the ledger.

**Faults.** Every server operation is bounded by the transport's timeout; a retryable
:class:`~enate_routing.errors.TransportError` closes the connection and retries with exponential backoff
and full jitter (:class:`Backoff`; ``sleep`` and ``random`` are injectable); a UIDVALIDITY change lists
the folder again and de-duplicates by content; a message expunged by another client is skipped (nothing
was spooled for it) or, if it was spooled, finished from the spooled bytes; a download cut short raises in
the transport and nothing of it is stored.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random as _random
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal, Protocol

from enate_routing.decision import Decision, RoutingResult
from enate_routing.delivery import Delivery
from enate_routing.envelope import Envelope, ParseLimits
from enate_routing.errors import ConfigError, TransportError
from enate_routing.model import Config, Connector
from enate_routing.store import AckState, Ledger, MessageRecord, MessageState, PlannedWork, WorkRecord
from enate_routing.transports.base import MailSender, MailSource, MessageGoneError, MessageRef, UidValidityChangedError
from enate_routing.transports.factory import ConnectorAccess, open_sender, open_source

__all__ = [
    "HOOK_POINTS",
    "STEPS",
    "AckBuilder",
    "AckRoute",
    "Backoff",
    "Handler",
    "HandlerError",
    "IngestStats",
    "Ingestor",
    "RouterLike",
    "StepHook",
    "WorkItem",
    "build_acknowledgement",
    "sending_connector",
]

STEPS = ("spool", "parse", "route", "handler", "ack", "commit", "mark")
HOOK_POINTS = tuple(f"{when}_{step}" for step in STEPS for when in ("before", "after"))

StepHook = Callable[[str, int], None]
"""Called at every step boundary with the hook point (``"after_spool"``...) and the message's index in
this pass (0 = the first message listed). Used for fault injection: the crash matrix kills the process
from here."""


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
    """The host's hand-off: create (or link, ignore, reject) the work item; idempotent on the key."""

    def __call__(self, item: WorkItem, /) -> None: ...


class RouterLike(Protocol):
    """What the loop needs of :class:`enate_routing.router.Router`."""

    def route(
        self,
        envelope: Envelope,
        connector: str,
        *,
        acknowledgement_allowed: Callable[[str], bool] | None = None,
    ) -> RoutingResult: ...


AckBuilder = Callable[[Envelope, Decision, str, Sequence[str]], EmailMessage]
"""Builds an acknowledgement: ``(envelope, decision, from_address, recipients) -> EmailMessage``."""


class HandlerError(Exception):
    """A handler may raise this to say whether trying again later may help (``retryable``)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: attempt *n* waits ``uniform(0, min(cap, base · 2ⁿ))``.

    ``max_failures`` consecutive failures without progress end the run with the last error.
    """

    base: float = 1.0
    cap: float = 60.0
    max_failures: int = 8

    def delay(self, attempt: int, rng: Callable[[float, float], float]) -> float:
        return rng(0.0, min(self.cap, self.base * (2 ** min(attempt, 30))))


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
    acks_rate_limited: int = 0
    acks_failed: int = 0
    marked: int = 0
    gone: int = 0
    reconnects: int = 0
    uidvalidity_changes: int = 0
    passes: int = 0
    errors: list[str] = field(default_factory=list)


def build_acknowledgement(
    envelope: Envelope, decision: Decision, from_address: str, recipients: Sequence[str]
) -> EmailMessage:
    """The default acknowledgement (RFC 3834): a short auto-reply that threads under the original.

    Its Message-ID is derived from the idempotency key, so a resend after a crash (the SMTP window)
    carries the same id and mail clients show it once.
    """
    msg = EmailMessage()
    msg["From"] = from_address
    msg["To"] = ", ".join(recipients)
    subject = envelope.subject or ""
    msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}".rstrip()
    msg["Date"] = formatdate(localtime=False)
    domain = from_address.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = f"<ack-{decision.idempotency_key}@{domain}>"
    if envelope.message_id:
        original = f"<{envelope.message_id.strip('<>')}>"
        msg["In-Reply-To"] = original
        chain = [f"<{r.strip('<>')}>" for r in envelope.references[-10:]]
        msg["References"] = " ".join([*chain, original])
    # RFC 3834 §5: this is an automatic response; Microsoft servers honour X-Auto-Response-Suppress.
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(
        "Thank you for your email. We have received it and will get back to you.\n\n"
        "This is an automatic reply; please keep the subject line when you write to us about this matter.\n"
    )
    return msg


def _outgoing_route_connector(config: Config, address: str) -> Connector | None:
    wanted = address.casefold()
    for route in config.outgoing_routes:
        if route.enabled and route.address.casefold() == wanted:
            with contextlib.suppress(KeyError):
                return config.connector(route.connector)
    return None


def sending_connector(config: Config, connector: Connector, address: str | None = None) -> Connector | None:
    """Which connector sends ``connector``'s acknowledgements from ``address`` (docs/semantics.md §3.2).

    ``address`` is the "from" address (one of the connector's own addresses; default: its primary
    address). In this order: the connector named by an enabled outgoing route for ``address``; else the
    connector itself when it is used for outgoing mail too; else the choice for the connector's primary
    address (an enabled outgoing route for it); else none (acknowledgements are then recorded as
    ``no-sender``). The chosen connector must also be enabled to send (:meth:`Ingestor.from_config`).
    """
    primary = connector.primary_address
    if address is not None and address.casefold() != primary.casefold():
        chosen = _outgoing_route_connector(config, address)
        if chosen is not None:
            return chosen
    else:
        chosen = _outgoing_route_connector(config, primary)
        if chosen is not None:
            return chosen
    if connector.uses_outgoing and connector.outgoing is not None:
        return connector
    return _outgoing_route_connector(config, primary)


@dataclass(frozen=True, slots=True)
class AckRoute:
    """How the acknowledgements of a decision's address go out.

    ``from_address`` is both the From header and the SMTP envelope sender; ``connector`` names the sending
    connector (senders are opened once per connector and reused); ``factory`` opens it — None when no
    enabled connector can send (the acknowledgement is then recorded as ``no-sender``).
    """

    from_address: str
    connector: str = ""
    factory: Callable[[], MailSender] | None = None


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


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, HandlerError | TransportError):
        return bool(exc.retryable)
    return isinstance(exc, TimeoutError | ConnectionError)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Session:
    """The current connection to the mailbox, opened on first use; :meth:`checkpoint` ends it cleanly.

    Ending a POP3 session (QUIT) is what commits its deletions (RFC 1939 §6), so marking POP3 mail goes
    in groups, each ended by a checkpoint before the ledger records the group as marked.
    """

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


@dataclass
class _Group:
    """Hand-offs waiting for the group commit: their keys, the messages to finish (with their hook index),
    and messages already known DONE (from an earlier commit of this group)."""

    keys: list[str] = field(default_factory=list)
    finish: list[tuple[int, int]] = field(default_factory=list)
    done: list[int] = field(default_factory=list)


class Ingestor:
    """Drains one mailbox of one connector into the host's handler, exactly once per work item.

    ``source_factory`` opens a fresh :class:`MailSource` (called again after a dropped connection);
    ``sender_factory`` a :class:`MailSender` for acknowledgements (None: acknowledgements are recorded
    as ``no-sender``). ``mailbox`` names the folder for the ledger and the lease (the source's folder).
    ``ack_from`` is the From address of acknowledgements when a decision's address is not one.
    ``ack_routes`` (``decision.address -> AckRoute``), when given, replaces ``sender_factory`` and
    ``ack_from``: it chooses the From address and the sending connector per decision address
    (:meth:`from_config` builds it from the outgoing routes, docs/semantics.md §3.2).
    """

    def __init__(
        self,
        *,
        connector: str,
        mailbox: str,
        source_factory: Callable[[], MailSource],
        router: RouterLike,
        store: Ledger,
        handler: Handler,
        sender_factory: Callable[[], MailSender] | None = None,
        ack_from: str | None = None,
        ack_routes: Callable[[str], AckRoute] | None = None,
        limits: ParseLimits | None = None,
        acknowledgements_per_hour: int = 10,
        ack_builder: AckBuilder = build_acknowledgement,
        batch_size: int = 50,
        backoff: Backoff | None = None,
        max_handler_attempts: int = 5,
        max_ack_attempts: int = 5,
        max_parse_attempts: int = 3,
        lease_ttl: float = 300.0,
        hook: StepHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[float, float], float] = _random.uniform,
        clock: Callable[[], float] = time.time,
        progress: Callable[[IngestStats], None] | None = None,
    ) -> None:
        self.connector = connector
        self.mailbox = mailbox
        self.source_factory = source_factory
        self.router = router
        self.store = store
        self.handler = handler
        self.sender_factory = sender_factory
        self.ack_from = ack_from
        self.ack_routes = ack_routes
        self.limits = limits or ParseLimits()
        self.acknowledgements_per_hour = acknowledgements_per_hour
        self.ack_builder = ack_builder
        self.batch_size = max(1, batch_size)
        self.backoff = backoff or Backoff()
        self.max_handler_attempts = max_handler_attempts
        self.max_ack_attempts = max_ack_attempts
        self.max_parse_attempts = max_parse_attempts
        self.lease_ttl = lease_ttl
        self.hook = hook
        self.sleep = sleep
        self.random = random
        self.clock = clock
        self.progress = progress
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._senders: dict[str, MailSender] = {}
        self._reserved: dict[str, int] = {}
        self._reprocessing = False
        self._pop3_group = self.batch_size
        self._stats = IngestStats()

    @classmethod
    def from_config(
        cls,
        config: Config,
        connector: str,
        *,
        router: RouterLike,
        store: Ledger,
        handler: Handler,
        access: ConnectorAccess | None = None,
        mailbox: Literal["primary", "additional"] = "primary",
        **options: Any,
    ) -> Ingestor:
        """An ingestor for a configured connector: its source, its senders, its parse limits and its
        acknowledgement rate limit. ``options`` go to the constructor.

        An acknowledgement goes out from the address the mail was routed for (``decision.address``) when it
        is one of the connector's own addresses, else from its primary address (or ``ack_from``), through
        the connector :func:`sending_connector` chooses for that address; the SMTP envelope sender is
        the From address. A chosen connector that is disabled sends nothing (``no-sender``).

        Raises :class:`~enate_routing.errors.ConfigError` for a connector that does not exist, reads no
        mail, or is disabled (docs/semantics.md §2: only an enabled connector is polled).
        """
        try:
            settings = config.connector(connector)
        except KeyError:
            raise ConfigError.single("no connector has this name", item=connector) from None
        where = f"connector {connector!r}"
        if settings.incoming is None:
            raise ConfigError.single(f"connector is used for {settings.use_for} only; it reads no mail",
                                     where=where, field="use_for")
        if not settings.enabled:
            raise ConfigError.single(
                "connector is disabled; enable it (after a successful connection test) before polling it",
                where=where, field="enabled",
            )
        access = access or ConnectorAccess()
        folder = settings.incoming.folder if settings.incoming.protocol == "imap" else "INBOX"
        if mailbox == "additional":
            folder = f"{settings.additional_mailbox}/{folder}"
        options.setdefault("limits", config.limits.parse_limits())
        options.setdefault("acknowledgements_per_hour", config.limits.acknowledgements_per_hour)
        options.setdefault("ack_from", settings.primary_address)
        default_from = str(options["ack_from"] or settings.primary_address)
        own = {a.casefold() for a in config.own_addresses(settings.name)}
        chosen: dict[str, AckRoute] = {}

        def ack_route(address: str) -> AckRoute:
            from_address = address.casefold() if address.casefold() in own else default_from
            route = chosen.get(from_address)
            if route is None:
                outgoing = sending_connector(config, settings, from_address)
                factory: Callable[[], MailSender] | None = None
                if outgoing is not None and outgoing.enabled:
                    factory = functools.partial(open_sender, outgoing, access)
                route = chosen[from_address] = AckRoute(from_address, outgoing.name if outgoing else "", factory)
            return route

        return cls(
            connector=connector, mailbox=folder, source_factory=lambda: open_source(settings, access, mailbox=mailbox),
            router=router, store=store, handler=handler, ack_routes=ack_route, **options,
        )

    # ------------------------------------------------------------------------------------------- running
    def run_once(self) -> IngestStats:
        """Drain the mailbox: resume what the ledger holds, ingest what is new, until nothing is left.

        Retries retryable transport errors with backoff; raises the error when it is not retryable or
        after ``backoff.max_failures`` consecutive failures without progress.
        """
        self._stats = stats = IngestStats()
        self.store.acquire_lease(self.connector, self.mailbox, self.owner, self.lease_ttl)
        try:
            failures = 0
            while True:
                progress_before = self._progress_marker()
                session = _Session(self.source_factory)
                try:
                    self._pass(session)
                    session.checkpoint()  # LOGOUT / QUIT (which commits POP3 deletions)
                    return stats
                except UidValidityChangedError as exc:
                    # The folder was re-created or restored: every UID is void; list again (by content).
                    stats.uidvalidity_changes += 1
                    stats.errors.append(_describe(exc))
                    error: TransportError = exc
                except TransportError as exc:
                    if not exc.retryable:
                        raise
                    stats.errors.append(_describe(exc))
                    error = exc
                finally:
                    session.discard()
                    self._close_sender()
                stats.reconnects += 1
                # Consecutive failures without progress; a pass that got something done starts over.
                failures = 1 if self._progress_marker() != progress_before else failures + 1
                if failures >= self.backoff.max_failures:
                    raise error
                self.sleep(self.backoff.delay(failures - 1, self.random))
                self.store.acquire_lease(self.connector, self.mailbox, self.owner, self.lease_ttl)
        finally:
            self._close_sender()
            self.store.release_lease(self.connector, self.mailbox, self.owner)

    def run_forever(self, interval: float = 60.0, stop: Callable[[], bool] = lambda: False) -> None:
        """Poll every ``interval`` seconds until ``stop()`` is true (checked between polls)."""
        while not stop():
            self.run_once()
            deadline = time.monotonic() + interval
            while not stop() and time.monotonic() < deadline:
                self.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _progress_marker(self) -> tuple[int, ...]:
        s = self._stats
        return (s.spooled, s.routed, s.quarantined, s.handed, s.marked, s.acks_sent, s.gone)

    def _hook(self, point: str, index: int) -> None:
        if self.hook is not None:
            self.hook(point, index)

    # ------------------------------------------------------------------------------------------- one pass
    def _pass(self, session: _Session) -> None:
        stats = self._stats
        stats.passes += 1
        refs = session.source.list_new()
        stats.listed = len(refs)
        uidvalidities = {r.uidvalidity for r in refs if r.uidvalidity is not None}
        for value in uidvalidities:
            if self.store.observe_uidvalidity(self.connector, self.mailbox, value) is not None:
                stats.uidvalidity_changes += 1
        known = self.store.lookup_refs(self.connector, [r.key for r in refs])
        listed: dict[int, MessageRef] = {}
        index_of: dict[int, int] = {}
        fresh: list[tuple[int, MessageRef]] = []
        for index, ref in enumerate(refs):
            record = known.get(ref.key)
            if record is None:
                fresh.append((index, ref))
            else:
                listed[record.id] = ref
                index_of.setdefault(record.id, index)

        # 1. Resume what the ledger holds for this mailbox (a crash, or a failure in the last pass).
        pending = self.store.pending(self.connector, self.mailbox)
        for record in pending:
            index_of.setdefault(record.id, len(refs) + record.id)
        stats.resumed += len(pending)
        for start in range(0, len(pending), self.batch_size):
            self._process(session, pending[start:start + self.batch_size], listed, index_of, resumed=True)
        # A message marked in the ledger but listed again lost its mark (a POP3 DELE dies without QUIT).
        again = [(record.id, listed[record.id]) for record in known.values()
                 if record.state is MessageState.MARKED and record.id in listed]
        self._mark(session, again, index_of)

        # 2. What is new on the server, a batch at a time.
        for start in range(0, len(fresh), self.batch_size):
            batch = fresh[start:start + self.batch_size]
            fetched: list[tuple[int, MessageRef, bytes]] = []
            try:
                for index, ref in batch:
                    self._hook("before_spool", index)
                    try:
                        raw = session.source.fetch(ref)
                    except MessageGoneError:
                        stats.gone += 1  # expunged by another client before we read it: nothing to lose
                        continue
                    fetched.append((index, ref, raw))
            except TransportError:
                # Keep what arrived whole before the connection dropped (a cut download raised and
                # returned nothing), so a flaky connection still makes progress.
                self._spool(fetched, listed, index_of)
                raise
            raws: dict[int, bytes] = {}
            records = self._spool(fetched, listed, index_of, raws)
            self._process(session, records, listed, index_of, resumed=False, raws=raws)
            self.store.acquire_lease(self.connector, self.mailbox, self.owner, self.lease_ttl)
            if self.progress is not None:
                self.progress(stats)

        # 3. DONE messages with no ref in this listing are no longer waiting on the server (moved, flagged
        # or expunged — by us before a crash, or by another client): nothing is left to mark.
        leftover = [r.id for r in self.store.pending(self.connector, self.mailbox)
                    if r.state is MessageState.DONE and r.id not in listed]
        self.store.record_marked(leftover)
        stats.marked += len(leftover)
        if self.progress is not None:
            self.progress(stats)

    def _spool(
        self, fetched: list[tuple[int, MessageRef, bytes]], listed: dict[int, MessageRef], index_of: dict[int, int],
        raws: dict[int, bytes] | None = None,
    ) -> list[MessageRecord]:
        if not fetched:
            return []
        records = self.store.spool(self.connector, self.mailbox, [(ref.key, raw) for _, ref, raw in fetched])
        self._stats.spooled += len(records)
        for (index, ref, raw), record in zip(fetched, records, strict=True):
            listed[record.id] = ref
            index_of[record.id] = index
            if raws is not None:
                raws[record.id] = raw  # the very bytes just stored: parsing need not read them back
            self._hook("after_spool", index)
        return records

    def _process(
        self,
        session: _Session | None,
        records: Sequence[MessageRecord],
        listed: dict[int, MessageRef],
        index_of: dict[int, int],
        *,
        resumed: bool,
        generation_keys: bool = False,
        raws: dict[int, bytes] | None = None,
    ) -> None:
        """Parse, route, hand off, acknowledge and mark a batch of ledger rows, from each one's state."""
        envelopes: dict[int, Envelope] = {}
        decided: dict[int, dict[str, tuple[Decision, str]]] = {}
        quarantined: set[int] = set()
        spooled = [r for r in records if r.state is MessageState.SPOOLED]
        routed_rows: list[tuple[int, str | None, Sequence[dict[str, Any]], Sequence[PlannedWork], bool]] = []
        for record in spooled:
            index = index_of.get(record.id, record.id)
            if resumed:
                # A message still SPOOLED at start-up may be what crashed the last run: count the attempt
                # before trying again, and quarantine it rather than crash forever.
                if record.attempts >= self.max_parse_attempts:
                    self._quarantine(record.id, f"processing crashed {record.attempts} times before routing")
                    quarantined.add(record.id)
                    continue
                self.store.note_attempt([record.id])
            self._hook("before_parse", index)
            raw = raws.pop(record.id, None) if raws is not None else None
            envelope = Envelope.from_bytes(raw if raw is not None else self.store.raw(record.id), limits=self.limits)
            self._hook("after_parse", index)
            envelopes[record.id] = envelope
            if envelope.quarantine_reason is not None:
                self._quarantine(record.id, envelope.quarantine_reason, envelope.message_id)
                quarantined.add(record.id)
                continue
            self._hook("before_route", index)
            try:
                result = self.router.route(
                    envelope, self.connector, acknowledgement_allowed=self._ack_allowed
                )
            except Exception as exc:  # noqa: BLE001 — a routing bug must quarantine the message, not lose it
                self._quarantine(record.id, f"routing failed: {_describe(exc)}", envelope.message_id)
                quarantined.add(record.id)
                continue
            self._hook("after_route", index)
            chosen = list(result.decisions)
            if generation_keys and record.generation:
                chosen = [d for d in chosen if not d.fallback]  # reprocessing unrouted mail: only new routes
            ref = listed[record.id].key if record.id in listed else record.ref_key
            keys = [self._work_key(d, record.generation if generation_keys else 0) for d in chosen]
            work = [
                PlannedWork(key, AckState.PENDING if self._wants_ack(d) else AckState.NONE, tuple(d.acknowledge))
                for d, key in zip(chosen, keys, strict=True)
            ]
            fallback_only = bool(result.decisions) and all(d.fallback for d in result.decisions)
            if generation_keys and record.generation:
                fallback_only = not chosen
            routed_rows.append((
                record.id, envelope.message_id,
                [decision_to_record(d, k, ref) for d, k in zip(chosen, keys, strict=True)], work, fallback_only,
            ))
            decided[record.id] = {k: (d, ref) for d, k in zip(chosen, keys, strict=True)}
        self._stats.duplicates += self.store.record_routed(routed_rows)
        self._stats.routed += len(routed_rows)
        self._reserved.clear()

        # Hand off, acknowledge, commit — from each message's state, known here without reading it back.
        # Work without an acknowledgement is group-committed: one transaction for the batch (see _commit_group).
        group = _Group()
        done: list[int] = []
        for record in records:
            index = index_of.get(record.id, record.id)
            if record.id in quarantined:
                done.append(record.id)
            elif record.id in decided or record.state is MessageState.ROUTED:
                state = self._hand_off(
                    record, envelopes.get(record.id), index, decided.get(record.id), group,
                    routed_now=record.id in decided,
                )
                if state is MessageState.DONE:
                    done.append(record.id)
            elif record.state in (MessageState.DONE, MessageState.MARKED):
                done.append(record.id)
        done.extend(self._commit_group(group))

        if session is not None:
            done_set = set(done)
            self._mark(session, [(r.id, listed[r.id]) for r in records if r.id in done_set and r.id in listed],
                       index_of)

    def _work_key(self, decision: Decision, generation: int) -> str:
        # Reprocessing unrouted mail is an explicit request for new work: a new generation of keys.
        return decision.idempotency_key if generation == 0 else f"{decision.idempotency_key}:g{generation}"

    @staticmethod
    def _wants_ack(decision: Decision) -> bool:
        return bool(decision.acknowledge) and decision.suppressed is None and decision.action in ("create", "link")

    def _quarantine(self, message: int, reason: str, message_id: str | None = None) -> None:
        self.store.record_quarantine(message, reason, message_id)
        self._stats.quarantined += 1

    def _hand_off(
        self,
        record: MessageRecord,
        envelope: Envelope | None,
        index: int,
        decided: dict[str, tuple[Decision, str]] | None,
        group: _Group,
        *,
        routed_now: bool,
    ) -> MessageState | None:
        """Hand every unhanded work item of a ROUTED message to the host.

        A message without a pending acknowledgement joins ``group`` (its hand-offs are recorded by the
        group commit; None is returned). A message with one takes the per-item path: the group is
        committed first, then each item is recorded as handed off before its acknowledgement is sent.
        Returns the message's state when it is known now.
        """
        work = self.store.work_of(record.id)
        if routed_now and all(item.handed_at is not None for item in work):
            return MessageState.DONE  # record_routed found no work of its own left to do: DONE already
        if decided is None:
            decided = {
                d.get("work_key", d["idempotency_key"]): (decision_from_record(d), d.get("message") or record.ref_key)
                for d in record.decisions
            }
        # Work rows of an earlier generation of keys (reprocessed unrouted mail) are not this routing's.
        work = [w for w in work if w.key in decided]
        open_work = [w for w in work if w.handed_at is None or w.ack_state is AckState.PENDING]
        if open_work and envelope is None:
            envelope = Envelope.from_bytes(self.store.raw(record.id), limits=self.limits)
        if any(w.ack_state is AckState.PENDING for w in work):
            committed = self._commit_group(group)  # (it replaces group.done: extend after the call)
            group.done.extend(committed)
            return self._hand_off_one_by_one(record, envelope, index, decided, work)

        handed: list[str] = []
        state: MessageState | None = None
        for item in open_work:
            assert envelope is not None
            decision, ref = decided[item.key]
            self._hook("before_handler", index)
            failure = self._call_handler(record, envelope, decision, ref, item)
            if failure is not None:
                state = failure
                break
            self._hook("after_handler", index)
            self._stats.handed += 1
            handed.append(item.key)
            self._hook("before_ack", index)  # no acknowledgement to send
            self._hook("after_ack", index)
        group.keys.extend(handed)
        if state is None:
            group.finish.append((record.id, index))
        return state

    def _call_handler(
        self, record: MessageRecord, envelope: Envelope, decision: Decision, ref: str, item: WorkRecord
    ) -> MessageState | None:
        """Call the host's handler; None when it returned, else the message's state after the failure."""
        try:
            self.handler(WorkItem(
                idempotency_key=item.key, decision=decision, envelope=envelope, connector=self.connector,
                mailbox=self.mailbox, ref=ref, message=record.id, reprocessed=self._reprocessing,
            ))
        except Exception as exc:  # noqa: BLE001 — the host's failure decides retry or quarantine
            attempts = self.store.note_work_failure(self.connector, item.key)
            if _retryable(exc) and attempts < self.max_handler_attempts:
                self._stats.deferred += 1
                self._stats.errors.append(_describe(exc))
                return MessageState.ROUTED
            self._quarantine(record.id, f"handler failed ({attempts} attempts): {_describe(exc)}", record.message_id)
            return MessageState.DONE
        return None

    def _commit_group(self, group: _Group) -> list[int]:
        """The group commit: every hand-off of the group recorded, and its messages finished, in one
        transaction — before any of them is marked on the server. Returns the messages now DONE."""
        done, group.done = group.done, []
        if not group.keys and not group.finish:
            return done
        keys, finish = group.keys, group.finish
        group.keys, group.finish = [], []
        for _, index in finish:
            self._hook("before_commit", index)
        record_many = getattr(self.store, "record_handed_many", None)
        if record_many is not None:
            finished: set[int] = record_many(self.connector, keys, finish=[m for m, _ in finish])
        else:  # a host's Ledger from before group commit: one transaction per key
            for key in keys:
                self.store.record_handed(self.connector, key)
            finished = {m for m, _ in finish if self.store.finish(m)}
        for _, index in finish:
            self._hook("after_commit", index)
        return done + [m for m, _ in finish if m in finished]

    def _hand_off_one_by_one(
        self,
        record: MessageRecord,
        envelope: Envelope | None,
        index: int,
        decided: dict[str, tuple[Decision, str]],
        work: list[WorkRecord],
    ) -> MessageState:
        """The per-item path of a message with an acknowledgement: handler → record handed → ack → record."""
        for position, item in enumerate(work):
            last = position == len(work) - 1
            decision, ref = decided[item.key]
            if item.handed_at is None:
                assert envelope is not None
                self._hook("before_handler", index)
                failure = self._call_handler(record, envelope, decision, ref, item)
                if failure is not None:
                    return failure
                self._hook("after_handler", index)
                self._stats.handed += 1
                if item.ack_state is AckState.PENDING:
                    # Recorded before the acknowledgement goes out, so an SMTP failure or a crash while
                    # sending never hands the same work item to the host again.
                    self.store.record_handed(self.connector, item.key)
            if item.ack_state is AckState.PENDING:
                assert envelope is not None
                self._hook("before_ack", index)
                state, recipients = self._acknowledge(envelope, decision, item)
                self._hook("after_ack", index)
                self._hook("before_commit", index)
                self.store.record_ack(
                    self.connector, item.key, state, recipients, attempt=state is AckState.PENDING,
                    finish=record.id if last else None,
                )
                self._hook("after_commit", index)
                if state is AckState.PENDING:
                    return MessageState.ROUTED
            else:
                self._hook("before_ack", index)
                self._hook("after_ack", index)
                self._hook("before_commit", index)
                self.store.record_handed(self.connector, item.key, finish=record.id if last else None)
                self._hook("after_commit", index)
        return self.store.get(record.id).state

    # ------------------------------------------------------------------------------------------- acks
    def _ack_allowed(self, recipient: str) -> bool:
        """The router's view of the rate limit (docs/semantics.md §3.5): the ledger's count plus this batch's plans."""
        key = recipient.casefold()
        since = self.clock() - 3600.0
        used = self.store.ack_count(key, since) + self._reserved.get(key, 0)
        if used >= self.acknowledgements_per_hour:
            return False
        self._reserved[key] = self._reserved.get(key, 0) + 1
        return True

    def _acknowledge(self, envelope: Envelope, decision: Decision, item: WorkRecord) -> tuple[AckState, list[str]]:
        since = self.clock() - 3600.0
        recipients = [
            r for r in item.ack_recipients
            if self.store.ack_count(r, since) < self.acknowledgements_per_hour
        ]
        if not recipients:
            self._stats.acks_rate_limited += 1
            return AckState.RATE_LIMITED, list(item.ack_recipients)
        route = self._ack_route(decision)
        if route.factory is None:
            return AckState.NO_SENDER, recipients
        from_address = route.from_address
        message = self.ack_builder(envelope, decision, from_address, recipients)
        try:
            sender = self._senders.get(route.connector)
            if sender is None:
                sender = self._senders[route.connector] = route.factory()
            # The envelope sender is the From address (some relays refuse the null reverse path).
            sender.send(from_address, recipients, message.as_bytes())
        except TransportError as exc:
            self._close_sender(route.connector)
            self._stats.errors.append(_describe(exc))
            if exc.retryable and item.attempts + 1 < self.max_ack_attempts:
                return AckState.PENDING, list(item.ack_recipients)
            self._stats.acks_failed += 1
            return AckState.FAILED, recipients
        self._stats.acks_sent += 1
        return AckState.SENT, recipients

    def _ack_route(self, decision: Decision) -> AckRoute:
        if self.ack_routes is not None:
            return self.ack_routes(decision.address)
        from_address = decision.address if "@" in decision.address else (self.ack_from or decision.address)
        return AckRoute(from_address, "", self.sender_factory)

    def _close_sender(self, connector: str | None = None) -> None:
        """Close the sender of ``connector`` (after a failure), or every open sender."""
        names = list(self._senders) if connector is None else [connector]
        for name in names:
            sender = self._senders.pop(name, None)
            if sender is not None:
                with contextlib.suppress(TransportError, OSError):
                    sender.close()

    # ------------------------------------------------------------------------------------------- marking
    def _mark(self, session: _Session, items: Iterable[tuple[int, MessageRef]], index_of: dict[int, int]) -> None:
        pending = list(items)
        if pending and pending[0][1].protocol == "pop3":
            self._mark_pop3(session, pending, index_of)
            return
        marked: list[int] = []
        try:
            for message, ref in pending:
                index = index_of.get(message, message)
                self._hook("before_mark", index)
                try:
                    session.source.mark_processed(ref)
                except MessageGoneError:
                    self._stats.gone += 1  # another client removed it: nothing left to mark
                self._hook("after_mark", index)
                marked.append(message)
        finally:
            self.store.record_marked(marked)
            self._stats.marked += len(marked)

    def _mark_pop3(self, session: _Session, items: list[tuple[int, MessageRef]], index_of: dict[int, int]) -> None:
        """DELE in groups, each committed by QUIT before the ledger says MARKED.

        The group shrinks by half after a failure (down to one message per session) and grows back after
        a commit, so a connection that keeps dropping still gets deletions committed.
        """
        while items:
            group, items = items[: self._pop3_group], items[self._pop3_group:]
            try:
                for message, ref in group:
                    index = index_of.get(message, message)
                    self._hook("before_mark", index)
                    session.source.mark_processed(ref)
                    self._hook("after_mark", index)
                session.checkpoint()
            except TransportError:
                self._pop3_group = max(1, self._pop3_group // 2)
                raise
            self._pop3_group = min(self.batch_size, self._pop3_group * 2)
            self.store.record_marked([message for message, _ in group])
            self._stats.marked += len(group)

    # ------------------------------------------------------------------------------------------- admin
    def quarantined(self) -> list[MessageRecord]:
        """Quarantined messages of this connector: raw bytes kept, reason given."""
        return [r for r in self.store.quarantined(self.connector) if r.mailbox == self.mailbox]

    def unrouted(self) -> list[MessageRecord]:
        """Messages of this connector that no route took (every decision came from the fallback)."""
        return [r for r in self.store.unrouted(self.connector) if r.mailbox == self.mailbox]

    def reprocess(self, messages: Sequence[int]) -> IngestStats:
        """Route quarantined or unrouted messages again (after a route was added or a limit raised).

        A quarantined message continues where it stopped: keys already handed off are not handed again.
        An unrouted message gets a new generation of keys for the decisions that now come from a route
        (fallback decisions are not repeated); it stays unrouted if the fallback still takes it.
        """
        self._stats = stats = IngestStats()
        self.store.acquire_lease(self.connector, self.mailbox, self.owner, self.lease_ttl)
        try:
            was_marked: list[int] = []
            records: list[MessageRecord] = []
            for message in messages:
                before = self.store.get(message)
                unrouted = not before.quarantined and before.fallback_only
                if before.state is MessageState.MARKED:
                    was_marked.append(message)
                records.append(self.store.reopen(message, new_generation=unrouted))
            index_of = {r.id: i for i, r in enumerate(records)}
            self._reprocessing = True
            try:
                self._process(None, records, {}, index_of, resumed=False, generation_keys=True)
            finally:
                self._reprocessing = False
            # The server copy was already marked before; only the ledger needs to say so again.
            finished = [m for m in was_marked if self.store.get(m).state is MessageState.DONE]
            self.store.record_marked(finished)
        finally:
            self._close_sender()
            self.store.release_lease(self.connector, self.mailbox, self.owner)
        return stats
