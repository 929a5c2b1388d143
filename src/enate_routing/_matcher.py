"""The compiled matcher: indexes over ordered routes; the first route whose rules hold wins (semantics.md §3).

A **group** is the routes of one connector for one address (or its wildcard routes), in priority order;
route *i* of a group is bit *i* of a Python int. For every rule kind the group keeps

* ``unset[kind]``: the bit mask of the enabled routes that do not use that rule (it holds for them), and
* ``index[kind]``: a dict from a key to the routes whose rule lists that key — a full address or a
  ``*domain`` pattern as written (senders, recipients), a case-folded company name, an extension, a
  case-folded keyword phrase (its words joined by one space).

For an email, each kind's set of routes whose rule holds is ``unset | ∪ index[key]`` over the email's
keys of that kind (``_email_keys.py``). The routes that hold are the intersection over the kinds; the
winner is the lowest set bit — every candidate carries its priority as its bit position. The cost is a few
dict probes per key of the email plus a handful of big-int operations; it never loops over the routes, and no
route's rules are checked one by one (``MatchCounters.full_rule_checks`` stays 0; the reference router counts its own).

``explain`` runs this same code with a recorder: the per-kind masks computed for the decision are read
back, route by route up to the winner, to say which rule held or failed and why (werkzeug keeps rules as
written apart from its compiled state machine in the same way).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType, FunctionType
from typing import Any

from enate_routing._decision import RouteCheck, RuleCheck
from enate_routing._delivery import Delivery
from enate_routing._email_keys import (
    ATTACHMENTS,
    COMPANIES,
    IMPORTANT,
    KEYED,
    KEYS_OF,
    KEYWORDS,
    KIND_NAMES,
    RECIPIENTS,
    SENDERS,
    EmailFacts,
    phrase_key,
)
from enate_routing._model import Fallback, IncomingRoute, RoutingRules
from enate_routing._patterns import AddressPattern, caseless

__all__ = ["CompiledRoute", "MatchCounters", "RouteGroup", "compile_group", "compiled_route", "listed_keys"]


# A posting is the routes of a group listed under one key: a bit mask unless that is much the larger object,
# else a tuple of bit positions (a rare key of a big group: a mask with one high bit would cost a byte per
# eight routes of the group, per key). A mask is probed with one OR, a tuple with a Python loop, and a group
# whose every posting is a mask gets the matcher without the type test: a mask up to _MASK_SLACK bytes larger
# than its tuple is kept (every posting of a group of up to about 600 routes), which costs a few bytes per
# route and saves 6% of the bytecodes per routed message at 10,000 routes (benchmarks/bench_router.py).
Postings = int | tuple[int, ...]
_MASK_SLACK = 64

# A group's first match for an email, compiled per group (RouteGroup.match).
Matcher = Callable[[EmailFacts], "CompiledRoute | None"]


class MatchCounters:
    """Opt-in instrumentation: how much work routing did (not part of any result; off unless passed in).

    Pass one to ``Router.route(..., counters=...)``; the router itself holds no mutable state. ``emails``
    routed, route ``groups`` evaluated, index ``probes`` made, and ``full_rule_checks``: routes whose rules
    were checked one by one — never done by the compiled matcher, counted so that a change that introduces
    such a loop shows up in ``tests/router/test_design_guard.py`` and in the benchmark.
    """

    __slots__ = ("emails", "full_rule_checks", "groups", "probes")

    def __init__(self) -> None:
        self.emails = 0
        self.groups = 0
        self.probes = 0
        self.full_rule_checks = 0

    def reset(self) -> None:
        self.emails = self.groups = self.probes = self.full_rule_checks = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledRoute:
    """What a decision needs from a route (its delivery), plus the rules as written (for explanations only)."""

    name: str
    priority: int
    enabled: bool
    delivery: Delivery
    rules: RoutingRules


def compiled_route(route: IncomingRoute | Fallback, priority: int,
                   shared: dict[Delivery, Delivery] | None = None) -> CompiledRoute:
    """The hot-path view of a configured route; ``shared`` makes equal deliveries one object (memory)."""
    rules = route.rules if isinstance(route, IncomingRoute) else _NO_RULES
    delivery = route.delivery
    if shared is not None:
        delivery = shared.setdefault(delivery, delivery)
    return CompiledRoute(name=route.name, priority=priority, enabled=route.enabled, delivery=delivery, rules=rules)


_NO_RULES = RoutingRules()


def _rule_keys(rules: RoutingRules, kind: int) -> tuple[str, ...] | None:
    """The index keys of one rule of a route, or None when the route does not use that rule."""
    if kind == SENDERS:
        values = rules.senders
    elif kind == RECIPIENTS:
        values = rules.recipients
    elif kind == COMPANIES:
        return tuple(caseless(c) for c in rules.sender_companies) or None
    elif kind == ATTACHMENTS:
        return rules.attachment_types or None
    elif kind == KEYWORDS:
        # A keyword without any word can never match; the rule is still set (and so can never hold
        # through that keyword), which an empty key expresses: no email has the key "".
        return tuple(phrase_key(k) for k in rules.subject_keywords) or None
    else:
        raise ValueError(kind)
    # Values are normalised already (model.PatternList); parse anyway so a hand-built RoutingRules with a
    # non-canonical spelling still indexes under the canonical key.
    return tuple(str(AddressPattern.parse(v)) for v in values) or None


def _postings(positions: Sequence[int]) -> Postings:
    top = positions[-1]
    mask_bytes = 28 + 4 * (top // 30 + 1)  # CPython stores ints in 30-bit digits
    tuple_bytes = 40 + 8 * len(positions)
    if mask_bytes <= tuple_bytes + _MASK_SLACK:
        mask = 0
        for position in positions:
            mask |= 1 << position
        return mask
    return tuple(positions)


class RouteGroup:
    """The routes of one connector for one address (or its wildcard routes), compiled (module docstring)."""

    __slots__ = ("enabled", "indexes", "match", "routes", "unimportant", "unset")

    def __init__(self, routes: tuple[CompiledRoute, ...], enabled: int, unset: tuple[int, ...],
                 indexes: tuple[dict[str, Postings] | None, ...]) -> None:
        self.routes = routes
        self.enabled = enabled
        self.unset = unset
        self.indexes = indexes
        self.unimportant = enabled & unset[IMPORTANT]  # the candidates for an email not flagged important
        self.match = _fast_matcher(self)

    match: Matcher  # ``first_match(facts)`` without counters or a recorder, compiled (the route path)

    def first_match(self, facts: EmailFacts, counters: MatchCounters | None = None,
                    record: list[RouteCheck] | None = None) -> CompiledRoute | None:
        """The first enabled route whose rules all hold, or None; ``record`` collects the explanation."""
        candidates = self.enabled if facts.important else self.unimportant
        holds: list[int] | None = None if record is None else [0] * 6
        cached = facts.cached
        probes = 0
        for kind in KEYED:  # only the kinds some enabled route uses have an index
            index = self.indexes[kind]
            if index is None:
                continue
            unset = self.unset[kind]
            if not candidates & ~unset and holds is None:  # (``~unset & enabled``: the routes that use it)
                # No remaining candidate uses this rule, so it cannot remove any: skip even computing the
                # email's keys; with no candidate left at all, stop. (The explanation wants every rule's
                # verdict, so it never skips.)
                if not candidates:
                    break
                continue
            keys = cached[kind]
            if keys is None:
                keys = cached[kind] = KEYS_OF[kind](facts)
            probes += len(keys)
            hit = unset
            for key in keys:
                posting = index.get(key)
                if posting is not None:
                    hit |= posting if type(posting) is int else _mask(posting)  # type: ignore[arg-type]
            candidates &= hit
            if holds is not None:
                holds[kind] = hit
        if counters is not None:
            counters.groups += 1
            counters.probes += probes
        winner = (candidates & -candidates).bit_length() - 1 if candidates else -1
        if record is not None and holds is not None:
            self._record(facts, holds, winner, record)
        return self.routes[winner] if winner >= 0 else None

    # --- explanation (reads back the masks computed above; never decides anything) --------------------

    def _record(self, facts: EmailFacts, holds: list[int], winner: int, record: list[RouteCheck]) -> None:
        last = winner if winner >= 0 else len(self.routes) - 1
        for position in range(last + 1):
            route = self.routes[position]
            if not route.enabled:
                record.append(RouteCheck(route.name, route.priority, False, False, ()))
                continue
            checks: list[RuleCheck] = []
            if route.rules.important:
                checks.append(RuleCheck("important", facts.important, "the mail is flagged important"
                                        if facts.important else "the mail is not flagged important"))
            for kind in KEYED:
                if self.indexes[kind] is None or (self.unset[kind] >> position) & 1:
                    continue
                held = bool((holds[kind] >> position) & 1)
                checks.append(RuleCheck(KIND_NAMES[kind], held, self._why(facts, kind, position, held, route)))
            record.append(RouteCheck(route.name, route.priority, True, position == winner, tuple(checks)))

    def _why(self, facts: EmailFacts, kind: int, position: int, held: bool, route: CompiledRoute) -> str:
        index = self.indexes[kind]
        if index is None:  # _record only asks about kinds that have an index
            return ""
        matched = [key for key in facts.keys(kind) if _contains(index.get(key), position)]
        written = "; ".join(_written(route.rules, kind))
        envelope = facts.envelope
        if kind == SENDERS:
            subject = f"sender {envelope.sender or '(none)'}"
        elif kind == RECIPIENTS:
            subject = "recipients " + (", ".join(r.address for r in envelope.recipients) or "(none)")
        elif kind == COMPANIES:
            company = facts.tables.directory.company_of(envelope.sender) if envelope.sender else None
            subject = f"sender's company {company!r}" if company else "the sender belongs to no known company"
        elif kind == ATTACHMENTS:
            subject = "attachments " + (", ".join(repr(a) for a in envelope.attachments) or "(none)")
        else:
            subject = f"subject {envelope.subject!r}"
        if held:
            shown = [f".{k}" if kind == ATTACHMENTS else k for k in matched]
            return f"{subject} matches {', '.join(repr(k) for k in shown)}"
        return f"{subject} matches none of {written}"


def _fast_matcher(group: RouteGroup) -> Matcher:
    """``group.first_match`` for the route path, with the group's rule kinds unrolled into straight-line code.

    The loop of :meth:`RouteGroup.first_match` looks up five values and tests for a recorder and counters per
    kind; for a small group that bookkeeping costs as much as the probes. The same steps written out per kind
    (werkzeug compiles its rules into code the same way) do about half the work. The code depends only on the
    group's *shape* — which kinds it uses, and whether a kind's index holds postings stored as positions — so
    it is compiled once per shape; each group gets a function of that code with its own masks and lookups as
    default arguments (one tuple: no closure cells, a few hundred bytes per group). A *wide* group's masks do
    not fit one digit of a Python int (more than 30 routes), so every mask operation allocates a new int as
    long as the group: there the code tests no rule before deriving its keys and ORs only the postings a key
    finds — about half the mask operations of the narrow shape at 10,000 routes (−3,600 instructions per
    message; keeping the test and skipping only the misses saved 1,400), at the price of deriving the keys of
    a rule no remaining candidate uses, once per email (≤ 1 µs for a subject's phrases). Nor does it get the
    masks that test (each call copies every default, cold at 10,000 routes: −12 first-level misses per
    message). In both shapes a kind for which the email has no keys (most kinds of most emails: see
    ``KeyTables.listed``) is one AND with its mask, without a loop (−1,057 instructions per message at 10,000
    routes). Equal results: tests/router/test_hot_path.py compares it with ``first_match``, narrow and wide.
    """
    shape: list[tuple[int, bool]] = []
    values: list[object] = [group.enabled, group.unimportant, group.routes, _mask]
    wide = group.enabled.bit_length() > _DIGIT_BITS
    for kind in KEYED:
        index = group.indexes[kind]
        if index is not None:
            shape.append((kind, any(type(posting) is not int for posting in index.values())))
            values += [KEYS_OF[kind], index.get, group.unset[kind]]
            if not wide:
                values.append(group.enabled & ~group.unset[kind])
    code = _matcher_code(tuple(shape), wide)
    matcher: Matcher = FunctionType(code, _MATCHER_GLOBALS, "match", tuple(values))
    return matcher


# The globals of every generated matcher: the builtins only (``type``, ``int``), named rather than taken from
# whichever frame creates the function, and one dict for all groups; everything else comes as defaults.
_MATCHER_GLOBALS: dict[str, Any] = {"__builtins__": builtins}


# CPython stores ints in 30-bit digits; an int of one digit is combined without allocating a long result.
_DIGIT_BITS = 30


@lru_cache(maxsize=512)  # five keyed kinds, each absent, masks or positions (3**5), narrow or wide: 486
def _matcher_code(shape: tuple[tuple[int, bool], ...], wide: bool) -> CodeType:
    """Compile the matcher of one group shape (see :func:`_fast_matcher`); its values come as defaults."""
    parameters = ["facts", "enabled", "unimportant", "routes", "mask"]
    body = ["    candidates = enabled if facts.important else unimportant",
            "    cached = facts.cached"]
    for kind, positions in shape:
        derive, get, unset, used = (f"{name}_{kind}" for name in ("derive", "get", "unset", "used"))
        parameters += [derive, get, unset] if wide else [derive, get, unset, used]
        posting = "posting if type(posting) is int else mask(posting)" if positions else "posting"
        if wide:  # every lookup, then OR only what it found (see _fast_matcher)
            probe = [f"    posting = {get}(key)", "    if posting is not None:", f"        hit |= {posting}"]
        elif positions:  # a miss ORs 0, which costs less than the test on a one-digit int
            probe = [f"    posting = {get}(key, 0)", f"    hit |= {posting}"]
        else:
            probe = [f"    hit |= {get}(key, 0)"]
        steps = [f"keys = cached[{kind}]", "if keys is None:", f"    keys = cached[{kind}] = {derive}(facts)",
                 "if keys:", f"    hit = {unset}", "    for key in keys:", *(f"    {line}" for line in probe),
                 "    candidates &= hit", "else:  # (most kinds of most emails: no loop)", f"    candidates &= {unset}"]
        if wide:
            body += [*(f"    {step}" for step in steps), "    if not candidates:", "        return None"]
        else:  # skip a rule that no candidate uses: it cannot remove any
            body += [f"    if candidates & {used}:", *(f"        {step}" for step in steps),
                     "    elif not candidates:", "        return None"]
    body += ["    if candidates:",
             "        return routes[(candidates & -candidates).bit_length() - 1]",
             "    return None"]
    namespace: dict[str, Any] = {}
    source = f"def match({', '.join(parameters)}):\n" + "\n".join(body)
    exec(source, namespace)  # noqa: S102  # built above from kind numbers and fixed text only
    code: CodeType = namespace["match"].__code__
    return code


def _mask(positions: tuple[int, ...]) -> int:
    """The bit mask of a posting stored as positions."""
    mask = 0
    for position in positions:
        mask |= 1 << position
    return mask


def _contains(posting: Postings | None, position: int) -> bool:
    if posting is None:
        return False
    if type(posting) is int:
        return bool((posting >> position) & 1)
    return position in posting  # type: ignore[operator]  # the type() test above


def _written(rules: RoutingRules, kind: int) -> tuple[str, ...]:
    name = KIND_NAMES[kind]
    values: tuple[str, ...] = getattr(rules, name)
    return tuple(f".{v}" for v in values) if kind == ATTACHMENTS else values


def compile_group(routes: Sequence[CompiledRoute]) -> RouteGroup:
    """Build the indexes of one group."""
    lists: list[dict[str, list[int]] | None] = [None] * 6
    unset = [0] * 6
    enabled = 0
    for position, route in enumerate(routes):
        if not route.enabled:
            continue  # a disabled route is in no mask: it never holds (docs/semantics.md §3.1 "first enabled route")
        bit = 1 << position
        enabled |= bit
        if not route.rules.important:
            unset[IMPORTANT] |= bit
        for kind in KEYED:
            keys = _rule_keys(route.rules, kind)
            if keys is None:
                unset[kind] |= bit
                continue
            table = lists[kind]
            if table is None:
                table = lists[kind] = {}
            for key in keys:
                bucket = table.setdefault(key, [])
                if not bucket or bucket[-1] != position:
                    bucket.append(position)
    indexes = tuple(
        None if table is None else {key: _postings(positions) for key, positions in table.items()}
        for table in lists
    )
    return RouteGroup(tuple(routes), enabled, tuple(unset), indexes)


def listed_keys(groups: Iterable[RouteGroup]) -> tuple[frozenset[str], ...]:
    """Per rule kind, every key some group's index lists (the router's ``KeyTables``)."""
    listed: list[set[str]] = [set() for _ in KIND_NAMES]
    for group in groups:
        for kind in KEYED:
            index = group.indexes[kind]
            if index is not None:
                listed[kind].update(index)
    return tuple(map(frozenset, listed))
