"""The Router (docs/semantics.md §3.1–§3.5, §4): compile a configuration once, then route each email in microseconds.

``Router.compile(config)`` builds an immutable object; an edit of the configuration builds a new router that
the host swaps in. ``route()`` and ``explain()`` are the same run — ``explain`` passes a recorder, ``route``
does not — so the explanation can never drift from the decision.

The procedure for an email fetched through connector C (docs/routing.md has the whole story):

1. a quarantined envelope is ignored (it must not be routed, docs/semantics.md §3.1.1); mail from one of C's own
   addresses, or from an address the system sends from, is ignored (§3.1 step 1); a sender blocked with
   ``action = "reject"`` is rejected (§3.5);
2. follow-ups (§3.4): In-Reply-To then References, a plus address, a subject token, a body token;
3. C's addresses in To/Cc, else its Delivered-To / X-Original-To / envelope addresses (§3.1 step 2);
4. the wildcard tier, 5. the fallback — with acknowledgements decided for each ``create`` (§3.5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from enate_routing._bounces import from_daemon, is_bounce
from enate_routing._decision import (
    MAILBOX_SCOPE,
    Action,
    AddressTrace,
    ConnectorKeys,
    Decision,
    RouteCheck,
    RoutingResult,
    Trace,
    message_reference,
)
from enate_routing._delivery import Delivery
from enate_routing._directory import CompanyDirectory, ConfiguredCompanies, WorkItemLookup
from enate_routing._email_keys import COMPANIES, SENDERS, EmailFacts, KeyTables, company_keys, keys_of_address
from enate_routing._envelope import Envelope
from enate_routing._followups import FollowUps, plus_base
from enate_routing._matcher import CompiledRoute, MatchCounters, RouteGroup, compile_group, compiled_route, listed_keys
from enate_routing._model import Config
from enate_routing._patterns import MAX_ADDRESS_OCTETS, AddressPattern, fits_a_mailbox
from enate_routing.errors import UnknownConnectorError

__all__ = ["AcknowledgementAllowed", "Router", "plus_base"]

AcknowledgementAllowed = Callable[[str], bool]
"""Per-sender rate limit (semantics.md §3.5): called with the sender, False suppresses the acknowledgement."""

_TO_CC = frozenset({"to", "cc"})


@dataclass(frozen=True, slots=True)
class _Connector:
    """One incoming connector, compiled: its addresses and route groups in tier order (docs/semantics.md §3.1)."""

    name: str
    primary: str
    addresses: frozenset[str]
    quiet: dict[str, str]  # sender → why its mail is ignored: "own" (C's address) or "system" (§3.1 step 1)
    groups: dict[str, RouteGroup]
    wildcard: RouteGroup | None
    fallback: CompiledRoute
    keys: ConnectorKeys  # its decisions' idempotency keys


# What the router remembers of a sender (_sender_facts): whether ``[[blocked]]`` rejects it, whether it is a
# mailer daemon (bounces.from_daemon), its keys (address, then domains) and its company keys as the matcher
# takes them (KeyTables.listed_only; company keys None with a host's own directory, which may change: asked
# per email), and why it is never acknowledged (_refusal).
# Router-wide, emptied when full: a flood of new senders cannot grow it.
_SenderFacts = tuple[bool, bool, tuple[str, ...], tuple[str, ...] | None, str | None]
_REMEMBERED_SENDERS = 4096


class _Recorder:
    """Collects the steps of one run for ``explain``; absent (None) on the ``route`` path."""

    __slots__ = ("addresses", "steps")

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.addresses: list[AddressTrace] = []


def _listed(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names) or "none"


class Router:
    """A compiled configuration. Build it with :meth:`compile`; it never changes afterwards.

    Counting the work done is opt-in: pass a :class:`~enate_routing.testing.MatchCounters` to :meth:`route`.
    """

    __slots__ = (
        "_blocked",
        "_connectors",
        "_default",
        "_follow_ups",
        "_senders",
        "_system_addresses",
        "_tables",
        "config",
    )
    config: Config
    _blocked: dict[str, str]
    _connectors: dict[str, _Connector]
    _default: _Connector | None
    _follow_ups: FollowUps
    _senders: dict[str, _SenderFacts]
    _system_addresses: frozenset[str]
    _tables: KeyTables

    def __init__(self) -> None:
        raise TypeError("use Router.compile(config)")

    @classmethod
    def compile(
        cls,
        config: Config,
        *,
        companies: CompanyDirectory | None = None,
        lookup: WorkItemLookup | None = None,
    ) -> Router:
        """Compile ``config``; ``companies`` replaces the built-in ``[companies]`` directory (semantics.md §3.3)."""
        self = object.__new__(cls)
        self.config = config
        deliveries: dict[Delivery, Delivery] = {}
        connectors: dict[str, _Connector] = {}
        sending = {address for address, _, _ in config.sending_addresses()}
        for connector in config.connectors:
            if not connector.uses_incoming:
                continue
            routes = config.routes_of(connector.name)
            compiled = [compiled_route(route, priority, deliveries) for priority, route in enumerate(routes, 1)]
            by_address: dict[str, list[CompiledRoute]] = {}
            wildcard: list[CompiledRoute] = []
            for route, built in zip(routes, compiled, strict=True):
                (wildcard if route.is_wildcard else by_address.setdefault(route.address, [])).append(built)
            fallback = config.fallback_of(connector.name)
            own = config.own_addresses(connector.name)
            connectors[connector.name] = _Connector(
                name=connector.name,
                primary=connector.primary_address,
                addresses=own,
                quiet={**dict.fromkeys(sending, "system"), **dict.fromkeys(own, "own")},
                groups={address: compile_group(group) for address, group in by_address.items()},
                wildcard=compile_group(wildcard) if wildcard else None,
                fallback=compiled_route(fallback, len(routes) + 1, deliveries),
                keys=ConnectorKeys(connector.name),
            )
        self._default = next(iter(connectors.values())) if len(connectors) == 1 else None
        directory = companies if companies is not None else ConfiguredCompanies(config.companies)
        longest = max((len(e) for r in config.routes for e in r.rules.attachment_types), default=0)
        groups = [g for c in connectors.values() for g in (*c.groups.values(), c.wildcard) if g is not None]
        self._connectors = connectors
        # docs/semantics.md §3.5: never acknowledge any address of the system itself, whichever connector owns it.
        system = set(sending)
        for c in config.connectors:
            system.add(c.primary_address)
        for name in connectors:
            system.update(config.own_addresses(name))
        self._system_addresses = frozenset(system)
        self._tables = KeyTables(listed_keys(groups), directory, longest, self._system_addresses)

        # Keyed like the matcher's sender index (``a@b``, ``*domain``), so an address's keys, most specific
        # first, find the entry that wins (docs/semantics.md §3.5 with the §3.3 precedence; the first entry on a tie).
        blocked: dict[str, str] = {}
        for entry in config.blocked:
            blocked.setdefault(str(AddressPattern.parse(entry.address)), entry.action)
        self._blocked = blocked

        self._follow_ups = FollowUps(config.linking, lookup)
        self._senders = {}
        return self

    # --- public API ---------------------------------------------------------------------------------------

    @property
    def connectors(self) -> tuple[str, ...]:
        """The names of the incoming connectors this router routes for."""
        return tuple(self._connectors)

    def route(
        self,
        envelope: Envelope,
        connector: str | None = None,
        *,
        acknowledgement_allowed: AcknowledgementAllowed | None = None,
        counters: MatchCounters | None = None,
        content_digest: str | None = None,
    ) -> RoutingResult:
        """Decide what ``envelope``, fetched through ``connector``, creates or joins (docs/semantics.md §3.1, §4).

        ``connector`` may be left out when the configuration has exactly one incoming connector. Never
        raises for any envelope: "no route held" is the fallback decision. ``counters``, when given, is told
        how much matching work the email cost (instrumentation for tests and benchmarks). ``content_digest``,
        the SHA-256 hex digest of ``envelope.raw`` when the caller has it already, spares hashing the bytes again.
        """
        return self._run(envelope, connector, acknowledgement_allowed, None, counters, content_digest)

    def explain(
        self,
        envelope: Envelope,
        connector: str | None = None,
        *,
        acknowledgement_allowed: AcknowledgementAllowed | None = None,
    ) -> Trace:
        """The same run as :meth:`route`, recording every step and every route considered (docs/semantics.md §4)."""
        recorder = _Recorder()
        result = self._run(envelope, connector, acknowledgement_allowed, recorder, None)
        return Trace(result.connector, envelope.message_id, tuple(recorder.steps), tuple(recorder.addresses),
                     result)

    def blocked_action(self, address: str, keys: tuple[str, ...] | None = None) -> str | None:
        """The ``[[blocked]]`` action for ``address``: the exact entry, else the most specific domain (§3.5)."""
        blocked = self._blocked
        if not blocked:
            return None
        if keys is None:
            keys = keys_of_address(address)
        if blocked.keys().isdisjoint(keys):  # one C-level test for the usual answer
            return None
        for key in keys:
            action = blocked.get(key)
            if action is not None:
                return action
        return None

    # --- the procedure ------------------------------------------------------------------------------------

    def _resolve(self, name: str | None) -> _Connector:
        if name is None:
            if self._default is None:
                raise UnknownConnectorError.single(
                    f"name the connector to route for (incoming connectors: {_listed(self._connectors)})",
                    field="connector")
            return self._default
        found = self._connectors.get(name)
        if found is None:
            raise UnknownConnectorError.single(f"no incoming connector has this name (incoming connectors: "
                                               f"{_listed(self._connectors)})", field="connector", item=name)
        return found

    def _run(
        self,
        envelope: Envelope,
        connector: str | None,
        allowed: AcknowledgementAllowed | None,
        trace: _Recorder | None,
        counters: MatchCounters | None,
        content_digest: str | None = None,
    ) -> RoutingResult:
        cc = self._connectors.get(connector) if connector is not None else self._default
        if cc is None:
            cc = self._resolve(connector)  # raises UnknownConnectorError, naming what is wrong
        if counters is not None:
            counters.emails += 1
        # (the digest positionally: CPython 3.11 runs a call with keyword arguments on its slower, generic path)
        reference = message_reference(envelope.message_id, envelope.raw, content_digest)
        addresses, headers_path = self._addresses_of(cc, envelope)
        mailbox = addresses[0][0] if addresses else cc.primary

        if envelope.quarantine_reason is not None:  # docs/semantics.md §3.1.1: quarantined mail is never routed
            reason = f"quarantined: {envelope.quarantine_reason}"
            return _single(cc, envelope, reference, trace, "ignore", reason, mailbox)
        sender = envelope.sender
        if sender is not None:
            quiet = cc.quiet
            why = quiet.get(sender)
            if why != "own" and "+" in sender and (unplussed := plus_base(sender)) is not None:
                why = quiet.get(unplussed[0]) or why  # its base address counts too
            if why == "own":  # docs/semantics.md §3.1 step 1
                reason = f"mail from the connector's own address {sender}"
                return _single(cc, envelope, reference, trace, "ignore", reason, mailbox)
            if why is not None:
                reason = f"mail from an address the system sends from ({sender})"
                return _single(cc, envelope, reference, trace, "ignore", reason, mailbox)
            known = self._senders.get(sender)
            rejected, daemon, keys, companies, refusal = _sender_facts(self, sender) if known is None else known
            if rejected:  # docs/semantics.md §3.5
                return _single(cc, envelope, reference, trace, "reject", "blocked", mailbox)
            if trace is not None:
                trace.steps.append(f"sender {sender} is not the system's own and not rejected")
            facts = EmailFacts(envelope, self._tables, keys, companies)
        else:
            if trace is not None:
                trace.steps.append("the mail has no From address")
            daemon = False
            refusal = None  # (no sender to acknowledge)
            facts = EmailFacts(envelope, self._tables, (), ())

        # A bounce joins the work item of the mail that bounced (only mail that looks like one is parsed again).
        bounce = self._follow_ups.bounce(envelope) if is_bounce(envelope, daemon) else None
        if bounce is not None:
            address = bounce.address if bounce.address in cc.addresses else mailbox
            return _single(cc, envelope, reference, trace, "link", bounce.reason, address, bounce.work_item)
        steps = None if trace is None else trace.steps
        link = self._follow_ups.find(envelope, cc.addresses, mailbox, steps)  # docs/semantics.md §3.4, first
        if link is not None:
            automatic = _automatic_reason(envelope, self._system_addresses) if link.generated else None
            if automatic is not None:
                reason = f"automatic reply to mail the system sent ({automatic})"
                return _single(cc, envelope, reference, trace, "ignore", reason, mailbox)
            return _single(cc, envelope, reference, trace, "link", link.reason, link.address, link.work_item)

        # (route, address, idempotency scope): one per routed To/Cc address, else one per mailbox.
        chosen: list[tuple[CompiledRoute, str, str]] = []
        if trace is not None:
            listed = ", ".join(a for a, _ in addresses) or "none"
            trace.steps.append(f"addresses of {cc.name!r} in To/Cc: {listed}" if headers_path else
                               f"no address of {cc.name!r} in To/Cc; Delivered-To, X-Original-To, envelope: {listed}")
        groups = cc.groups
        # Each group's compiled matcher on the route path; the plain loop when counting or explaining.
        for address, source in addresses:  # docs/semantics.md §3.1 step 2
            group = groups.get(address)
            if trace is not None:
                record: list[RouteCheck] = []
                route = None if group is None else group.first_match(facts, counters, record)
                trace.addresses.append(_address_trace(address, source, record, route))
            elif group is None:
                continue
            else:
                route = group.match(facts) if counters is None else group.first_match(facts, counters)
            if route is None:
                continue
            chosen.append((route, address, address if headers_path else MAILBOX_SCOPE))
            if not headers_path:
                break  # a Bcc delivery is one delivery to the mailbox: one decision (docs/routing.md)
        wildcard = cc.wildcard
        if not chosen and wildcard is not None:  # docs/semantics.md §3.1 step 3
            if trace is not None:
                checks: list[RouteCheck] = []
                route = wildcard.first_match(facts, counters, checks)
                trace.addresses.append(_address_trace("*", "wildcard", checks, route))
            else:
                route = wildcard.match(facts) if counters is None else wildcard.first_match(facts, counters)
            if route is not None:
                chosen.append((route, mailbox, MAILBOX_SCOPE))
        if not chosen:  # docs/semantics.md §3.1 step 4: "no route held" is the fallback, never an exception
            if trace is not None:
                trace.steps.append(f"no route held: the fallback of {cc.name!r} takes it")
            chosen.append((cc.fallback, cc.primary, MAILBOX_SCOPE))

        # docs/semantics.md §3.5: who is acknowledged is decided once per email, and only when some chosen
        # route sends automated emails (the host's rate limit is asked at most once).
        acknowledgement: tuple[tuple[str, ...], str | None] | None = None
        name = cc.name
        decisions: list[Decision] = []
        for route, address, scope in chosen:
            acknowledge, suppressed = _NO_ACKNOWLEDGEMENT
            if route.delivery.send_automated_emails:
                if acknowledgement is None:
                    acknowledgement = _acknowledgement(self, envelope, allowed, refusal)
                acknowledge, suppressed = acknowledgement
            key = cc.keys.key(reference, scope)
            decisions.append(Decision._make(name, "create", address, key, route.name, route is cc.fallback,
                                            route.delivery, acknowledge, suppressed, None, None))
        return RoutingResult._make(name, envelope.message_id, tuple(decisions))

    def _addresses_of(self, cc: _Connector, envelope: Envelope) -> tuple[list[tuple[str, str]], bool]:
        """C's addresses in To/Cc in order of first appearance, else in the other sources (semantics.md §3.1 step 2).

        A plus address (``help+x@``) counts as its base address when only the base is C's. Returns the
        (address, source) pairs and whether they came from To/Cc.
        """
        own = cc.addresses
        recipients = envelope.recipients
        if len(recipients) == 1 and recipients[0].address in own:  # the common case: one of C's addresses
            only = recipients[0]
            return [(only.address, only.source)], only.source in _TO_CC
        headers: dict[str, str] = {}
        others: dict[str, str] = {}
        for recipient in recipients:
            address = recipient.address
            if address not in own:
                if "+" not in address:
                    continue
                unplussed = plus_base(address)
                if unplussed is None or unplussed[0] not in own:
                    continue
                address = unplussed[0]
            table = headers if recipient.source in _TO_CC else others
            table.setdefault(address, recipient.source)
        if headers:
            return list(headers.items()), True
        return list(others.items()), False


def _sender_facts(router: Router, sender: str) -> _SenderFacts:
    """Whether ``[[blocked]]`` rejects ``sender`` (docs/semantics.md §3.5), its keys, and why it is never
    acknowledged (None: it may be); remembered by the router."""
    keys = keys_of_address(sender)
    tables = router._tables
    companies = (tables.listed_only(COMPANIES, company_keys(sender, keys, tables))
                 if tables.company_by_key is not None else None)
    blocked = router.blocked_action(sender, keys)
    found = (blocked == "reject", from_daemon(sender), tables.listed_only(SENDERS, keys), companies,
             _refusal(router, sender, blocked))
    if len(sender) <= MAX_ADDRESS_OCTETS:  # only what fits a mailbox is remembered: entries stay small
        remembered = router._senders
        if len(remembered) >= _REMEMBERED_SENDERS:
            remembered.clear()
        remembered[sender] = found
    return found


# Why an address is never acknowledged (docs/semantics.md §3.5), as _refusal says: None when it may be.
_SYSTEM, _NOT_A_MAILBOX, _BLOCKED = "system", "not a mailbox", "blocked"


def _refusal(router: Router, address: str, blocked: str | None) -> str | None:
    """Why ``address`` is never acknowledged — an address of the system, one no mailbox can have, one with a
    ``[[blocked]]`` entry (``reject`` or ``no-automated-emails``) — or None; ``blocked``: its
    :meth:`Router.blocked_action`, which the caller has already asked for."""
    if _is_system(address, router._system_addresses):
        return _SYSTEM
    if not fits_a_mailbox(address):
        return _NOT_A_MAILBOX
    if blocked is not None:
        return _BLOCKED
    return None


def _acknowledgement(router: Router, envelope: Envelope, allowed: AcknowledgementAllowed | None,
                     sender_refusal: str | None) -> tuple[tuple[str, ...], str | None]:
    """Who is acknowledged (the sender, then Cc), or why nobody is (docs/semantics.md §3.5).

    ``sender_refusal`` is :func:`_refusal` of the sender (remembered with its other facts).
    """
    automatic = _automatic_reason(envelope, router._system_addresses)
    if automatic is not None:
        return (), automatic
    sender = envelope.sender
    chosen: dict[str, None] = {}
    if sender is not None and sender_refusal is None:
        chosen[sender] = None
    for recipient in envelope.recipients:
        address = recipient.address
        if recipient.source == "cc" and address not in chosen and address != sender \
                and _refusal(router, address, router.blocked_action(address)) is None:
            chosen[address] = None
    if not chosen:
        return (), "blocked" if sender is not None and sender_refusal == _BLOCKED else "no recipient"
    if sender is not None and allowed is not None and not allowed(sender):
        return (), "rate limit"
    return tuple(chosen), None


_NO_ACKNOWLEDGEMENT: tuple[tuple[str, ...], str | None] = ((), None)


def _single(cc: _Connector, envelope: Envelope, reference: str, trace: _Recorder | None, action: Action,
            reason: str, address: str, link: str | None = None) -> RoutingResult:
    """The one decision of an email that is ignored, rejected or linked (keyed once per message, §4)."""
    if trace is not None:
        trace.steps.append(f"→ {action}: {reason}")
    key = cc.keys.key(reference, MAILBOX_SCOPE)
    decision = Decision._make(cc.name, action, address, key, None, False, None, (), None, link, reason)
    return RoutingResult._make(cc.name, envelope.message_id, (decision,))


def _address_trace(address: str, source: str, record: list[RouteCheck], route: CompiledRoute | None) -> AddressTrace:
    return AddressTrace(address, source, tuple(record), None if route is None else route.name)


def _automatic_reason(envelope: Envelope, system: frozenset[str]) -> str | None:
    """Why ``envelope`` is automatic (docs/semantics.md §3.5): its own signals (RFC 3834 and friends) first,
    then an X-Loop naming an address of the system — mail that already passed through one of our
    auto-responders is processed but never answered automatically, as helpdesks do with their own X-Loop."""
    automatic = envelope.automatic_reason
    if automatic is None and envelope.x_loop:  # most mail has no X-Loop: one truthiness test
        for value in envelope.x_loop:
            if _is_system(value, system):
                return f"x-loop: {value}"
    return automatic


def _is_system(address: str, system: frozenset[str]) -> bool:
    if address in system:
        return True
    if "+" not in address:
        return False
    unplussed = plus_base(address)
    return unplussed is not None and unplussed[0] in system
