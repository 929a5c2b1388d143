"""A reference router written for obviousness, not speed: the oracle of the differential tests.

It reads docs/semantics.md §3.1–§3.5 top to bottom and checks every route's rules one by one, with nothing shared with
the compiled router but ``patterns.py`` normalisation and the value objects of ``decision.py`` (including
the idempotency key scheme, which is a convention, not matching). If the two routers ever disagree on an
email, one of them is wrong: ``tests/router/test_equivalence.py`` makes hypothesis look for such emails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from enate_routing._bounces import find_bounce
from enate_routing._decision import (
    MAILBOX_SCOPE,
    Decision,
    RoutingResult,
    idempotency_key,
    message_reference,
)
from enate_routing._directory import CompanyDirectory, ConfiguredCompanies, WorkItemLookup
from enate_routing._envelope import Envelope
from enate_routing._link_pattern import LINK_BODY_CHARS, LINK_SUBJECT_CHARS, link_search
from enate_routing._lookup_bound import LINK_TOKEN_LOOKUPS, MESSAGE_ID_LOOKUPS
from enate_routing._matcher import MatchCounters
from enate_routing._model import Config, Fallback, IncomingRoute, RoutingRules
from enate_routing._patterns import AddressPattern, caseless, file_name_matchable, subject_words
from enate_routing.errors import UnknownConnectorError

__all__ = ["PlainScan", "ReferenceCompanies", "ReferenceRouter", "ScanFacts"]


class ReferenceCompanies:
    """semantics.md §3.3 read literally: try every entry; an exact address beats a domain; the longest domain wins."""

    def __init__(self, companies: dict[str, tuple[str, ...]]) -> None:
        self.entries = [(name, AddressPattern.parse(p)) for name, patterns in companies.items() for p in patterns]

    def company_of(self, address: str) -> str | None:
        best: tuple[int, str] | None = None
        for name, pattern in self.entries:
            if not pattern.matches(address):
                continue
            score = 10_000 if not pattern.is_domain else len(pattern.value)
            if best is None or score > best[0]:  # ties: the first entry in the file wins
                best = (score, name)
        return None if best is None else best[1]


def _split_plus(address: str) -> tuple[str, str] | None:
    local, _, domain = address.rpartition("@")
    if "+" not in local:
        return None
    base, _, tag = local.partition("+")
    if not base or not tag:
        return None
    return base + "@" + domain, tag


def _link_tokens(pattern: re.Pattern[str], text: str, *, body: bool) -> list[re.Match[str]]:
    """semantics.md §3.4 tokens read literally: every match in the first LINK_*_CHARS characters, left to right,
    except one that reaches the cut (and all after it) and one that the bounded pattern (each quantifier at most
    LINK_REPEAT_MAX repetitions; used here only to tell which matches keep within it) does not match the same."""
    limit = LINK_BODY_CHARS if body else LINK_SUBJECT_CHARS
    cut = text[:limit]
    bounded = link_search(pattern).bounded
    found: list[re.Match[str]] = []
    for match in pattern.finditer(cut):
        if len(text) > limit and match.end() == len(cut):
            break
        within = bounded.match(cut, match.start())
        if within is not None and within.end() == match.end():
            found.append(match)
    return found


class ReferenceRouter:
    """Same ``route()`` signature and results as :class:`enate_routing._router.Router`, by linear scan."""

    def __init__(self, config: Config, *, companies: CompanyDirectory | None = None,
                 lookup: WorkItemLookup | None = None) -> None:
        self.config = config
        # ``is None``, not falsiness: a host's directory that is empty (``len() == 0``) is still the host's.
        self.companies: CompanyDirectory = (ReferenceCompanies(dict(config.companies)) if companies is None
                                            else companies)
        self.lookup = lookup
        self.full_rule_checks = 0

    @classmethod
    def compile(cls, config: Config, *, companies: CompanyDirectory | None = None,
                lookup: WorkItemLookup | None = None) -> ReferenceRouter:
        return cls(config, companies=companies, lookup=lookup)

    # --- rules, one by one (semantics.md §3 table) -----------------------------------------------------------------

    def rules_hold(self, rules: RoutingRules, envelope: Envelope) -> bool:
        self.full_rule_checks += 1
        if rules.important and not envelope.important:
            return False
        if rules.senders:
            if envelope.sender is None:
                return False
            if not any(AddressPattern.parse(p).matches(envelope.sender) for p in rules.senders):
                return False
        if rules.recipients:
            addresses = [r.address for r in envelope.recipients]
            if not any(AddressPattern.parse(p).matches(a) for p in rules.recipients for a in addresses):
                return False
        if rules.sender_companies:
            company = self.companies.company_of(envelope.sender) if envelope.sender else None
            if company is None or caseless(company) not in [caseless(c) for c in rules.sender_companies]:
                return False
        if rules.attachment_types:
            names = [name.strip().casefold() for name in envelope.attachments if file_name_matchable(name)]
            if not any(name.endswith("." + ext) for name in names for ext in rules.attachment_types):
                return False
        if rules.subject_keywords:
            words = list(subject_words(envelope.subject))
            if not any(self._has_phrase(words, list(subject_words(k))) for k in rules.subject_keywords):
                return False
        return True

    @staticmethod
    def _has_phrase(words: list[str], phrase: list[str]) -> bool:
        if not phrase:
            return False
        return any(words[i:i + len(phrase)] == phrase for i in range(len(words) - len(phrase) + 1))

    def blocked_action(self, address: str) -> str | None:
        best: tuple[int, str] | None = None
        for entry in self.config.blocked:
            pattern = AddressPattern.parse(entry.address)
            if pattern.matches(address):
                score = 10_000 if not pattern.is_domain else len(pattern.value)
                if best is None or score > best[0]:
                    best = (score, entry.action)
        return None if best is None else best[1]

    # --- the procedure (semantics.md §3.1, §3.4, §3.5) -------------------------------------------------------------

    def route(self, envelope: Envelope, connector: str | None = None, *,
              acknowledgement_allowed: Callable[[str], bool] | None = None, counters: MatchCounters | None = None,
              content_digest: str | None = None) -> RoutingResult:
        """``Router.route``'s signature: ``counters`` is told the email and every route checked one by one;
        ``content_digest`` (SHA-256 of the raw bytes, when the caller has it) names a message without an id."""
        checks_before = self.full_rule_checks
        result = self._route(envelope, connector, acknowledgement_allowed, content_digest)
        if counters is not None:
            counters.emails += 1
            counters.full_rule_checks += self.full_rule_checks - checks_before
        return result

    def _route(self, envelope: Envelope, connector: str | None, acknowledgement_allowed: Callable[[str], bool] | None,
               content_digest: str | None) -> RoutingResult:
        config = self.config
        incoming = [c.name for c in config.connectors if c.uses_incoming]
        if connector is None:
            if len(incoming) != 1:
                raise UnknownConnectorError.single(
                    f"name the connector to route for (incoming connectors: {_listed(incoming)})", field="connector")
            connector = incoming[0]
        if connector not in incoming:
            raise UnknownConnectorError.single(
                f"no incoming connector has this name (incoming connectors: {_listed(incoming)})", field="connector",
                item=connector)
        own = config.own_addresses(connector)
        primary = config.connector(connector).primary_address
        reference = message_reference(envelope.message_id, envelope.raw, digest=content_digest)
        mailbox_key = idempotency_key(connector, reference, MAILBOX_SCOPE)

        # Which of C's addresses the mail names (step 2): To/Cc first, else the other sources.
        def of_c(address: str) -> str | None:
            if address in own:
                return address
            split = _split_plus(address)
            if split is not None and split[0] in own:
                return split[0]
            return None

        header_addresses: list[str] = []
        other_addresses: list[str] = []
        for recipient in envelope.recipients:
            mine = of_c(recipient.address)
            if mine is None:
                continue
            bucket = header_addresses if recipient.source in ("to", "cc") else other_addresses
            if mine not in bucket:
                bucket.append(mine)
        via_headers = bool(header_addresses)
        addresses = header_addresses if via_headers else other_addresses
        mailbox = addresses[0] if addresses else primary

        def one(action: str, reason: str, link: str | None = None, address: str | None = None) -> RoutingResult:
            decision = Decision(connector=connector, action=action,  # type: ignore[arg-type]
                                address=address or mailbox, idempotency_key=mailbox_key, link=link, reason=reason)
            return RoutingResult(connector, envelope.message_id, (decision,))

        if envelope.quarantine_reason is not None:
            return one("ignore", f"quarantined: {envelope.quarantine_reason}")

        sender = envelope.sender
        if sender is not None:
            # Any address of an outgoing connector (primary, route addresses), any outgoing route's address.
            sending = {o.address for o in config.outgoing_routes}
            for c in config.connectors:
                if c.uses_outgoing:
                    sending |= config.own_addresses(c.name) if c.uses_incoming else {c.primary_address}
            split = _split_plus(sender)
            forms = {sender} if split is None else {sender, split[0]}
            if forms & own:
                return one("ignore", f"mail from the connector's own address {sender}")
            if forms & sending:
                return one("ignore", f"mail from an address the system sends from ({sender})")
            if self.blocked_action(sender) == "reject":
                return one("reject", "blocked")

        bounce = find_bounce(envelope, self.lookup, re.compile(config.linking.subject_pattern)
                             if config.linking.subject_pattern else None)
        if bounce is not None:
            return one("link", bounce.reason, link=bounce.work_item,
                       address=bounce.address if bounce.address in own else mailbox)
        found = self._follow_up(envelope, own, mailbox)
        if found is not None:
            work_item, address, reason, generated = found
            automatic = self._automatic(envelope)
            if generated and automatic is not None:
                return one("ignore", f"automatic reply to mail the system sent ({automatic})")
            return one("link", reason, link=work_item, address=address)

        routes = config.routes_of(connector)
        decisions: list[Decision] = []
        ack_cache: list[tuple[tuple[str, ...], str | None]] = []

        def create(route: IncomingRoute | Fallback, address: str, key: str, fallback: bool = False) -> Decision:
            if route.send_automated_emails:
                if not ack_cache:
                    ack_cache.append(self._acknowledgement(envelope, acknowledgement_allowed))
                acknowledge, suppressed = ack_cache[0]
            else:
                acknowledge, suppressed = (), None
            return Decision(connector=connector, action="create", address=address, idempotency_key=key,
                            route=route.name, fallback=fallback, delivery=route.delivery, acknowledge=acknowledge,
                            suppressed=suppressed)

        for address in addresses:
            for route in routes:
                if route.enabled and route.address == address and self.rules_hold(route.rules, envelope):
                    key = idempotency_key(connector, reference, address if via_headers else MAILBOX_SCOPE)
                    decisions.append(create(route, address, key))
                    break
            if decisions and not via_headers:
                break
        if not decisions:
            for route in routes:
                if route.enabled and route.is_wildcard and self.rules_hold(route.rules, envelope):
                    decisions.append(create(route, mailbox, mailbox_key))
                    break
        if not decisions:
            decisions.append(create(config.fallback_of(connector), primary, mailbox_key, fallback=True))
        return RoutingResult(connector, envelope.message_id, tuple(decisions))

    def _follow_up(self, envelope: Envelope, own: frozenset[str],
                   mailbox: str) -> tuple[str, str, str, bool] | None:
        mode = self.config.linking.plus_addressing
        recipients = [r.address for r in envelope.recipients]
        if mode != "plus-only" and self.lookup is not None:
            ids = [("In-Reply-To", i) for i in envelope.in_reply_to]
            ids += [("References", i) for i in envelope.references[::-1]]
            asked: list[str] = []
            for header, message_id in ids:
                if message_id in asked:
                    continue
                if len(asked) == MESSAGE_ID_LOOKUPS:
                    break
                asked.append(message_id)
                known = self.lookup.find_message(message_id)
                if known is not None and known.address in recipients:
                    return (known.work_item, known.address, f"{header} <{message_id}> is work item "
                            f"{known.work_item}", known.generated)
        if mode in ("mixed", "plus-only"):
            tags: list[str] = []
            for address in recipients:
                split = _split_plus(address)
                if split is None or split[0] not in own or split[1] in tags:
                    continue
                if len(tags) == LINK_TOKEN_LOOKUPS:
                    break
                tags.append(split[1])
                if self._exists(split[1]):
                    return split[1], split[0], f"plus address {address}", True
        pattern = self.config.linking.subject_pattern
        if mode != "plus-only" and pattern:
            texts = [("subject", envelope.subject)]
            if self.config.linking.search_body:
                texts.append(("body", envelope.plain_text()))
            looked_up: list[str] = []
            for where, text in texts:
                for match in _link_tokens(re.compile(pattern), text, body=where == "body"):
                    token = match.group("ref") if "ref" in match.re.groupindex else match.group(1)
                    if not token or token in looked_up:
                        continue
                    if len(looked_up) == LINK_TOKEN_LOOKUPS:
                        return None
                    looked_up.append(token)
                    if self._exists(token):
                        return token, mailbox, f"{where} token {match.group(0)}", True
        return None

    def _exists(self, reference: str) -> bool:
        return self.lookup is None or self.lookup.work_item_exists(reference)

    def _system(self) -> set[str]:
        """Every address of the system: connectors' primary addresses, outgoing routes, incoming addresses."""
        config = self.config
        system = {c.primary_address for c in config.connectors}
        system |= {o.address for o in config.outgoing_routes}
        for c in config.connectors:
            if c.uses_incoming:
                system |= config.own_addresses(c.name)
        return system

    def _automatic(self, envelope: Envelope) -> str | None:
        """The envelope's own automatic reason, else the first X-Loop naming the system (plus forms by base)."""
        if envelope.automatic_reason is not None:
            return envelope.automatic_reason
        system = self._system()
        for value in envelope.x_loop:
            split = _split_plus(value)
            if value in system or (split is not None and split[0] in system):
                return f"x-loop: {value}"
        return None

    def _acknowledgement(self, envelope: Envelope,
                         allowed: Callable[[str], bool] | None) -> tuple[tuple[str, ...], str | None]:
        automatic = self._automatic(envelope)
        if automatic is not None:
            return (), automatic
        system = self._system()
        wanted = ([envelope.sender] if envelope.sender else []) + [
            r.address for r in envelope.recipients if r.source == "cc"]
        chosen: list[str] = []
        sender_blocked = False
        for address in wanted:
            split = _split_plus(address)
            if address in system or (split is not None and split[0] in system) or address in chosen:
                continue
            if len(address.encode("utf-8", "surrogatepass")) > 254 or any(
                    ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in address):
                continue  # no mailbox has it: more than 254 octets (RFC 5321), a control character
            if self.blocked_action(address) is not None:
                if address == envelope.sender:
                    sender_blocked = True
                continue
            chosen.append(address)
        if not chosen:
            return (), ("blocked" if sender_blocked else "no recipient")
        if envelope.sender is not None and allowed is not None and not allowed(envelope.sender):
            return (), "rate limit"
        return tuple(chosen), None


@dataclass(frozen=True, slots=True)
class ScanFacts:
    """What :class:`PlainScan` needs of one email, extracted once before any scan is timed."""

    addresses: tuple[str, ...]  # the connector's addresses the email names, in routing order
    per_address: bool  # True: one decision per address (To/Cc); False: the first that routes (Bcc)
    sender: str | None
    company: str | None  # case-folded
    recipients: tuple[str, ...]
    extensions_of: tuple[str, ...]  # attachment names, stripped and case-folded (matchable ones only)
    words: tuple[str, ...]
    important: bool


@dataclass(frozen=True, slots=True)
class _ScanRoute:
    name: str
    address: str
    senders: tuple[AddressPattern, ...]
    recipients: tuple[AddressPattern, ...]
    companies: frozenset[str]
    extensions: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...]
    rules: RoutingRules


class PlainScan:
    """The honest baseline of the benchmarks: every route of the connector, in order, over pre-extracted facts.

    Rules are parsed once; an email's facts once (:meth:`facts`, outside the timing). :meth:`chosen` then scans
    the routes one by one for each address, the wildcard routes, and names the fallback — the matching part of
    routing only (no follow-ups, no idempotency keys, no decisions), so a speed-up over it is conservative.
    """

    def __init__(self, config: Config, connector: str) -> None:
        self.config = config
        self.connector = connector
        self.routes = [
            _ScanRoute(route.name, route.address, tuple(map(AddressPattern.parse, route.rules.senders)),
                       tuple(map(AddressPattern.parse, route.rules.recipients)),
                       frozenset(caseless(c) for c in route.rules.sender_companies), route.rules.attachment_types,
                       tuple(subject_words(k) for k in route.rules.subject_keywords), route.rules)
            for route in config.routes_of(connector) if route.enabled
        ]
        self.fallback = config.fallback_of(connector)
        self.own = config.own_addresses(connector)
        self.companies = ConfiguredCompanies(config.companies)  # fast, same answers as ReferenceCompanies

    def facts(self, envelope: Envelope) -> ScanFacts:
        """The facts of ``envelope`` (slow, obvious; never timed)."""
        own = self.own
        headers: list[str] = []
        others: list[str] = []
        for recipient in envelope.recipients:
            split = _split_plus(recipient.address)
            mine = recipient.address if recipient.address in own else (
                split[0] if split is not None and split[0] in own else None)
            bucket = headers if recipient.source in ("to", "cc") else others
            if mine is not None and mine not in bucket:
                bucket.append(mine)
        sender = envelope.sender
        company = self.companies.company_of(sender) if sender else None
        return ScanFacts(
            addresses=tuple(headers or others), per_address=bool(headers), sender=sender,
            company=caseless(company) if company else None,
            recipients=tuple(r.address for r in envelope.recipients),
            extensions_of=tuple(n.strip().casefold() for n in envelope.attachments if file_name_matchable(n)),
            words=subject_words(envelope.subject), important=envelope.important,
        )

    def _holds(self, route: _ScanRoute, facts: ScanFacts) -> bool:
        if route.rules.important and not facts.important:
            return False
        if route.senders and (facts.sender is None or not any(p.matches(facts.sender) for p in route.senders)):
            return False
        if route.recipients and not any(p.matches(a) for p in route.recipients for a in facts.recipients):
            return False
        if route.companies and facts.company not in route.companies:
            return False
        if route.extensions and not any(n.endswith("." + e) for n in facts.extensions_of for e in route.extensions):
            return False
        words = facts.words
        return not route.phrases or any(
            phrase and any(words[i:i + len(phrase)] == phrase for i in range(len(words) - len(phrase) + 1))
            for phrase in route.phrases)

    def chosen(self, facts: ScanFacts) -> list[tuple[str, str]]:
        """(address, route name) of each create decision, the fallback included, as the routers decide."""
        found: list[tuple[str, str]] = []
        for address in facts.addresses:
            for route in self.routes:
                if route.address == address and self._holds(route, facts):
                    found.append((address, route.name))
                    break
            if found and not facts.per_address:
                break
        if not found:
            mailbox = facts.addresses[0] if facts.addresses else self.fallback.address
            for route in self.routes:
                if route.address == "*" and self._holds(route, facts):
                    return [(mailbox, route.name)]
            found.append((self.fallback.address, self.fallback.name))
        return found


def _listed(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names) or "none"
