"""Mistakes found when configuring, not when mail arrives (docs/semantics.md §5 ``check``).

* :func:`find_shadowed` — routes that can never fire because an earlier enabled route of the same connector,
  address and tier holds whenever they hold (werkzeug reports duplicate rules when they are added).
* :func:`find_loops` — an address the system sends from that another connector routes as incoming mail.
* :func:`may_overlap` — whether some email could satisfy two rule sets at once.

All three reason about the rules as written and are **sound but not complete**: a reported shadowing is
certain; cross-rule implications (a sender list that happens to lie inside a company) are not searched.
"""

from __future__ import annotations

from dataclasses import dataclass

from enate_routing.model import Config, IncomingRoute, RoutingRules
from enate_routing.patterns import AddressPattern, subject_words

__all__ = ["Loop", "Shadowing", "find_loops", "find_shadowed", "may_overlap", "rules_cover"]


@dataclass(frozen=True, slots=True)
class Shadowing:
    """Route ``route`` of ``connector`` never fires: ``by``, earlier on the same ``address``, always wins."""

    connector: str
    route: str
    by: str
    address: str

    def __str__(self) -> str:
        where = "the wildcard tier" if self.address == "*" else f"address {self.address}"
        return (f"route {self.route!r} of connector {self.connector!r} is shadowed by route {self.by!r} "
                f"(same {where}; {self.by!r} holds whenever {self.route!r} holds, so it can never fire)")


@dataclass(frozen=True, slots=True)
class Loop:
    """``address`` is sent from (``sender``) and also routed as incoming mail by ``connector``."""

    address: str
    sender: str
    connector: str

    def __str__(self) -> str:
        return (f"mail loop: {self.address} is an outgoing address ({self.sender}) and also a routed incoming "
                f"address of connector {self.connector!r}")


def _phrases(keywords: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [subject_words(k) for k in keywords]


def _never_holds(rules: RoutingRules) -> bool:
    """A keyword rule whose every keyword has no word can never hold (docs/semantics.md §3: words are letter runs)."""
    return bool(rules.subject_keywords) and not any(_phrases(rules.subject_keywords))


def _pattern_covers(wide: AddressPattern, narrow: AddressPattern) -> bool:
    """Every address ``narrow`` matches, ``wide`` matches too."""
    if not wide.is_domain:
        return not narrow.is_domain and narrow.value == wide.value
    if not narrow.is_domain:
        return wide.matches(narrow.value)
    return narrow.value == wide.value or narrow.value.endswith("." + wide.value)


def _patterns_cover(wide: tuple[str, ...], narrow: tuple[str, ...]) -> bool:
    wides = [AddressPattern.parse(p) for p in wide]
    return all(any(_pattern_covers(w, AddressPattern.parse(n)) for w in wides) for n in narrow)


def _contains_run(words: tuple[str, ...], run: tuple[str, ...]) -> bool:
    return bool(run) and any(words[i:i + len(run)] == run for i in range(len(words) - len(run) + 1))


def rules_cover(first: RoutingRules, later: RoutingRules) -> bool:
    """True when ``first`` holds for every email for which ``later`` holds (so ``later`` is shadowed)."""
    if first.important and not later.important:
        return False
    if first.senders and not (later.senders and _patterns_cover(first.senders, later.senders)):
        return False
    if first.recipients and not (later.recipients and _patterns_cover(first.recipients, later.recipients)):
        return False
    if first.sender_companies:
        wide = {c.casefold() for c in first.sender_companies}
        if not later.sender_companies or not {c.casefold() for c in later.sender_companies} <= wide:
            return False
    if first.attachment_types:
        if not later.attachment_types:
            return False
        # A name ending in ".tar.gz" also ends in ".gz": "gz" covers "tar.gz".
        if not all(any(e == f or e.endswith("." + f) for f in first.attachment_types)
                   for e in later.attachment_types):
            return False
    if first.subject_keywords:
        if not later.subject_keywords:
            return False
        wide_phrases = _phrases(first.subject_keywords)
        # A later keyword without words never matches, so it needs no cover.
        if not all(not p or any(_contains_run(p, w) for w in wide_phrases) for p in _phrases(later.subject_keywords)):
            return False
    return True


def _patterns_overlap(one: tuple[str, ...], other: tuple[str, ...]) -> bool:
    return any(_pattern_covers(a, b) or _pattern_covers(b, a)
               for a in map(AddressPattern.parse, one) for b in map(AddressPattern.parse, other))


def may_overlap(one: RoutingRules, other: RoutingRules) -> bool:
    """False only when no email can satisfy both rule sets: the single sender (or its single company)
    cannot match both, or one of them can never hold. Recipients, attachments and keywords never exclude
    each other: an email can have several of each."""
    if _never_holds(one) or _never_holds(other):
        return False
    if one.senders and other.senders and not _patterns_overlap(one.senders, other.senders):
        return False
    if one.sender_companies and other.sender_companies:
        mine = {c.casefold() for c in one.sender_companies}
        if mine.isdisjoint(c.casefold() for c in other.sender_companies):
            return False
    return True


def find_shadowed(config: Config) -> list[Shadowing]:
    """Every enabled route that an earlier enabled route of its connector, address and tier always beats."""
    found: list[Shadowing] = []
    for connector in config.connectors:
        if not connector.uses_incoming:
            continue
        earlier: dict[str, list[IncomingRoute]] = {}
        for route in config.routes_of(connector.name):
            if not route.enabled:
                continue
            group = earlier.setdefault(route.address, [])
            if not _never_holds(route.rules):
                for first in group:
                    if rules_cover(first.rules, route.rules):
                        found.append(Shadowing(connector.name, route.name, first.name, route.address))
                        break
            group.append(route)
    return found


def find_loops(config: Config) -> list[Loop]:
    """Addresses the system sends from that a *different* incoming connector routes.

    A connector that both sends and receives on its own address (``use_for = "both"``, or an outgoing route
    through it for one of its own addresses) is the normal set-up — replies come back to it, and docs/semantics.md §3.1
    step 1 ignores its own mail — so only an address routed by another connector is reported.
    """
    sending: list[tuple[str, str, str]] = []  # (address, description, sending connector)
    for connector in config.connectors:
        if connector.uses_outgoing:
            sending.append((connector.primary_address, f"connector {connector.name!r}", connector.name))
    for out in config.outgoing_routes:
        sending.append((out.address, f"outgoing route {out.name!r}", out.connector))
    found: list[Loop] = []
    seen: set[tuple[str, str]] = set()
    for connector in config.connectors:
        if not connector.uses_incoming:
            continue
        routed = config.own_addresses(connector.name)
        for address, description, sender in sending:
            if address in routed and sender != connector.name and (address, connector.name) not in seen:
                seen.add((address, connector.name))
                found.append(Loop(address, description, connector.name))
    return found
