"""Mistakes found when configuring, not when mail arrives (docs/semantics.md §5 ``check``).

* :func:`find_shadowed` — routes that can never fire because an earlier enabled route of the same connector,
  address and tier holds whenever they hold (werkzeug reports duplicate rules when they are added).
* :func:`find_loops` — an address the system sends from that another connector routes as incoming mail.
* :func:`may_overlap` — whether some email could satisfy two rule sets at once.

All three reason about the rules as written and are **sound but not complete**: a reported shadowing is
certain; cross-rule implications (a sender list that happens to lie inside a company) are not searched.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from enate_routing._model import Config, IncomingRoute, RoutingRules
from enate_routing._patterns import MAX_DOMAIN_LABELS, AddressPattern, caseless, subject_words

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


def rules_cover(first: RoutingRules, later: RoutingRules) -> bool:
    """True when ``first`` holds for every email for which ``later`` holds (so ``later`` is shadowed)."""
    if first.important and not later.important:
        return False
    if first.senders and not (later.senders and _patterns_cover(first.senders, later.senders)):
        return False
    if first.recipients and not (later.recipients and _patterns_cover(first.recipients, later.recipients)):
        return False
    if first.sender_companies:
        wide = {caseless(c) for c in first.sender_companies}
        if not later.sender_companies or not {caseless(c) for c in later.sender_companies} <= wide:
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
        wide_phrases = {phrase for phrase in _phrases(first.subject_keywords) if phrase}
        lengths = sorted({len(phrase) for phrase in wide_phrases})
        # A later keyword without words never matches, so it needs no cover; one with words needs a wide phrase
        # among its runs of words (set probes: two lists of 4,000 keywords were 16 million comparisons).
        if not all(not p or any(p[i:i + n] in wide_phrases for n in lengths for i in range(len(p) - n + 1))
                   for p in _phrases(later.subject_keywords)):
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
        mine = {caseless(c) for c in one.sender_companies}
        if mine.isdisjoint(caseless(c) for c in other.sender_companies):
            return False
    return True


def find_shadowed(config: Config) -> list[Shadowing]:
    """Every enabled route that an earlier enabled route of its connector, address and tier always beats.

    For each shadowed route the *first* earlier route that covers it is named. Near-linear in the routes of
    a group: see :class:`_CoverIndex` (10,000 routes on one address are checked in well under a second).
    """
    found: list[Shadowing] = []
    for connector in config.connectors:
        if not connector.uses_incoming:
            continue
        groups: dict[str, list[tuple[int, IncomingRoute]]] = {}
        for order, route in enumerate(config.routes_of(connector.name)):
            if route.enabled:
                groups.setdefault(route.address, []).append((order, route))
        shadowed: list[tuple[int, Shadowing]] = []
        for address, members in groups.items():
            routes = [route for _, route in members]
            keyed = [_keyed(route.rules) for route in routes]
            index = _CoverIndex(keyed)
            for position, (order, route) in enumerate(members):
                if _never_holds(route.rules):
                    continue  # it can never fire anyway, and covers nothing (_never_holds)
                for candidate in index.candidates(keyed[position], route.rules.important):
                    if rules_cover(routes[candidate].rules, route.rules):
                        by = routes[candidate].name
                        shadowed.append((order, Shadowing(connector.name, route.name, by, address)))
                        break
                index.add(position, keyed[position], route.rules.important)
        found.extend(shadowing for _, shadowing in sorted(shadowed, key=lambda item: item[0]))
    return found


_ADDRESS_KINDS = ("senders", "recipients")
_KINDS = ("senders", "recipients", "sender_companies", "attachment_types", "subject_keywords")


Keyed = list[tuple[str, list[str]]]


def _keyed(rules: RoutingRules) -> Keyed:
    """The index keys of each rule a route uses, as written (patterns and extensions are normalised already)."""
    found: Keyed = []
    for kind in _KINDS:
        values: tuple[str, ...] = getattr(rules, kind)
        if not values:
            continue
        if kind == "sender_companies":
            keys = [caseless(v) for v in values]
        elif kind == "subject_keywords":
            keys = [" ".join(words) for words in _phrases(values) if words]
        else:
            keys = list(values)
        if keys:
            found.append((kind, keys))
    return found


def _suffixes(text: str, separator: str, limit: int) -> list[str]:
    """``text``, then what follows each of the last ``limit`` ``separator``s in it (bounded work, no quadratic copy)."""
    positions: list[int] = []
    start = text.rfind(separator)
    while start >= 0 and len(positions) < limit:
        positions.append(start)
        start = text.rfind(separator, 0, start)
    return [text] + [text[position + 1 :] for position in reversed(positions)]


class _CoverIndex:
    """The earlier routes of one group, indexed so that only routes that *can* cover a later one are compared.

    ``rules_cover(first, later)`` needs every rule ``first`` uses to be used by ``later`` too, with each of
    ``later``'s values covered by one of ``first``'s. So each earlier route is filed under the keys of one of
    its rules (its *anchor*: the rule whose keys are rarest in the group), and a later route looks up, for
    each rule it uses, the keys that could cover its first value of that rule — an address's own key and
    its parent domains, an extension and its dotted suffixes, a company, the word runs of a phrase. Every
    route that covers it is among the candidates, so the first earlier route that covers it is found, as a
    pairwise comparison would. Routes without keyed rules cover everything (or every important email): only
    the first of each kind can be the first to cover.
    """

    def __init__(self, keyed: list[Keyed]) -> None:
        self.frequency: dict[tuple[str, str], int] = {}
        for rules in keyed:
            for kind, keys in rules:
                for key in keys:
                    self.frequency[(kind, key)] = self.frequency.get((kind, key), 0) + 1
        self.index: dict[tuple[str, str], list[int]] = {}
        self.catch_all: int | None = None  # the first route without keyed rules, not important
        self.catch_important: int | None = None  # the first one with only the important rule
        self.longest_phrase = 0

    def add(self, position: int, keyed: Keyed, important: bool) -> None:
        if not keyed:
            if important:
                self.catch_important = position if self.catch_important is None else self.catch_important
            else:
                self.catch_all = position if self.catch_all is None else self.catch_all
            return
        kind, keys = min(keyed, key=lambda item: sum(self.frequency[(item[0], key)] for key in item[1]))
        for key in keys:
            self.index.setdefault((kind, key), []).append(position)
        if kind == "subject_keywords":
            self.longest_phrase = max(self.longest_phrase, *(key.count(" ") + 1 for key in keys))

    def candidates(self, later: Keyed, important: bool) -> Iterator[int]:
        """The earlier routes that may cover a later route with these keys, in priority order, lazily.

        Each posting list is already in priority order, so they are merged as they are read: the caller
        stops at the first route that covers, without collecting a popular key's whole list (a key such as
        one of a dozen attachment types can be listed by a tenth of all routes).
        """
        postings: list[list[int]] = []
        if self.catch_all is not None:
            postings.append([self.catch_all])
        if self.catch_important is not None and important:
            postings.append([self.catch_important])
        index = self.index
        for kind, keys in later:
            # A route that covers this one covers each of its values of the kind: the value whose coverers are
            # filed least often gives all of them (the first value could be shared by every route: quadratic).
            found = min(([posting for key in self._coverers(kind, value) if (posting := index.get((kind, key)))]
                         for value in keys), key=lambda lists: sum(map(len, lists)))
            postings.extend(found)
        previous = -1
        for position in heapq.merge(*postings):
            if position != previous:  # a route filed under two of the keys looked up
                previous = position
                yield position

    def _coverers(self, kind: str, key: str) -> list[str]:
        """The keys of every value that could cover ``key`` (a superset: ``rules_cover`` decides)."""
        if kind in _ADDRESS_KINDS:
            _local, at, domain = key.removeprefix("*").rpartition("@")
            parents = _suffixes(domain, ".", MAX_DOMAIN_LABELS)
            return ([key] if at else []) + ["*" + parent for parent in parents]
        if kind == "attachment_types":
            return _suffixes(key, ".", MAX_DOMAIN_LABELS)
        if kind == "subject_keywords":
            words = key.split(" ")
            longest = min(len(words), self.longest_phrase)
            return [" ".join(words[i:i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1)]
        return [key]


def find_loops(config: Config) -> list[Loop]:
    """Addresses the system sends from that a *different* incoming connector routes.

    A connector that both sends and receives on its own address (``use_for = "both"``, or an outgoing route
    through it for one of its own addresses) is the normal set-up — replies come back to it, and docs/semantics.md §3.1
    step 1 ignores its own mail — so only an address routed by another connector is reported.
    """
    sending = config.sending_addresses()
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
