"""Linking patterns (docs/semantics.md §3.4): a safe regular-expression subset, searched in bounded text.

Python's backtracking ``re`` has no timeout, so a reference pattern must be safe by construction.
:func:`check_link_pattern` walks the parse tree ``re.compile`` itself builds (``re._parser``, guarded) and
refuses the shapes that make backtracking super-linear: backreferences and conditionals, a quantifier over
something that can match in several ways (``(a+)+``), two variable parts next to each other that can take
the same characters (``\\d+\\d+``, ``.*x.*``), and many overlapping alternatives. What remains still costs
O(n²) for an unanchored search (one quantifier tried from every start), so :meth:`LinkSearch.tokens`
searches a bounded version of the pattern — every unbounded quantifier limited to LINK_REPEAT_MAX, and
possessive where giving characters back cannot change the result — in a bounded prefix of the text.
A walker over the parser's tree is used rather than our own regex grammar so that what is checked is
exactly what runs.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from enate_routing._regex_compat import possessive_ok

__all__ = [
    "LINK_BODY_CHARS",
    "LINK_REPEAT_MAX",
    "LINK_SUBJECT_CHARS",
    "MAX_LINK_PATTERN_CHARS",
    "LinkSearch",
    "UnsafePatternError",
    "check_link_pattern",
    "link_search",
    "reference_group",
    "search_link_token",
]

LINK_SUBJECT_CHARS = 1000  # of the decoded subject (RFC 5322 §2.1.1 lines are at most 998 characters)
LINK_BODY_CHARS = 8 * 1024  # of the decoded plain-text body
LINK_REPEAT_MAX = 64  # repetitions of one quantifier: reference tokens are short
MAX_LINK_PATTERN_CHARS = 500
# Alternatives that can start with the same character multiply on a failed match; bound their product.
_MAX_AMBIGUOUS_ALTERNATIVES = 16



def _private(name: str, old_name: str) -> Any:
    """A private module of ``re`` (Python 3.11+ spelling), or its pre-3.11 name if it ever moves back."""
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - every supported Python has the re._ modules
        return importlib.import_module(old_name)


_sre = _private("re._constants", "sre_constants")
_sre_parse = _private("re._parser", "sre_parse")

# Characters standing in for the alphabet when asking "can these two parts match the same character":
# Latin-1 and Latin Extended in full, a letter, digit and space of other scripts, and (added per pattern)
# every literal and range end point of the pattern, so two ranges that overlap always share a sample.
_BASE_ALPHABET = tuple(chr(code) for code in range(0x250)) + tuple("αЖ中あ٣\u2028\u3000Ａ😀")
_CATEGORY_TEST = {
    _sre.CATEGORY_DIGIT: re.compile(r"\d"),
    _sre.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    _sre.CATEGORY_SPACE: re.compile(r"\s"),
    _sre.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    _sre.CATEGORY_WORD: re.compile(r"\w"),
    _sre.CATEGORY_NOT_WORD: re.compile(r"\W"),
}
_SINGLE_CHARACTER = (_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN, _sre.CATEGORY)
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)
_EMPTY: frozenset[str] = frozenset()


class UnsafePatternError(ValueError):
    """A linking pattern outside the safe subset; the message says which construct and why."""


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a piece of a pattern can match, as far as backtracking cost is concerned."""

    first: frozenset[str]  # characters it can start with
    chars: frozenset[str]  # characters it can consume anywhere
    nullable: bool  # can match ""
    length: int | None  # its fixed length, or None when it matches texts of different lengths
    tail: frozenset[str]  # characters a trailing quantifier could still take (empty when none)
    ambiguity: int  # product of the sizes of alternations whose alternatives overlap


@dataclass(frozen=True, slots=True)
class _Walk:
    """The context of a walk: case-insensitive or not, and the sample alphabet of this pattern."""

    ignore_case: bool
    alphabet: tuple[str, ...]

    def case(self, add_flags: int, del_flags: int) -> _Walk:
        ignore = (self.ignore_case or bool(add_flags & re.IGNORECASE)) and not del_flags & re.IGNORECASE
        return _Walk(ignore, self.alphabet)

    def char_set(self, op: object, av: Any) -> frozenset[str]:
        """The sample characters one LITERAL / NOT_LITERAL / ANY / IN / CATEGORY item matches."""
        if self.ignore_case:
            return frozenset(
                ch for ch in self.alphabet
                if any(_matches_char(op, av, v) for v in {ch, ch.lower(), ch.upper()} if len(v) == 1)
            )
        return frozenset(ch for ch in self.alphabet if _matches_char(op, av, ch))


def _matches_char(op: object, av: Any, ch: str) -> bool:
    if op is _sre.LITERAL:
        return ch == chr(av)
    if op is _sre.NOT_LITERAL:
        return ch != chr(av)
    if op is _sre.ANY:
        return True  # also "\n": an over-approximation only makes the walker stricter
    if op is _sre.CATEGORY:
        return bool(_CATEGORY_TEST[av].match(ch))
    negate = found = False
    for item_op, item_av in av:
        if item_op is _sre.NEGATE:
            negate = True
        elif item_op is _sre.LITERAL:
            found = found or ch == chr(item_av)
        elif item_op is _sre.RANGE:
            found = found or item_av[0] <= ord(ch) <= item_av[1]
        elif item_op is _sre.CATEGORY:
            found = found or bool(_CATEGORY_TEST[item_av].match(ch))
        else:
            found = True  # an item this walker does not know: assume it may match anything
    return found != negate


def _end_points(tree: Any, found: set[str]) -> None:
    """Every literal character and range end point in ``tree``, added to ``found``."""
    for op, av in tree.data if hasattr(tree, "data") else tree:
        if op in (_sre.LITERAL, _sre.NOT_LITERAL):
            found.add(chr(av))
        elif op is _sre.IN:
            for item_op, item_av in av:
                if item_op is _sre.LITERAL:
                    found.add(chr(item_av))
                elif item_op is _sre.RANGE:
                    found.update((chr(item_av[0]), chr(item_av[1])))
        elif op is _sre.SUBPATTERN:
            _end_points(av[3], found)
        elif op in _REPEATS:
            _end_points(av[2], found)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            _end_points(av[1], found)
        elif op is _sre.ATOMIC_GROUP:
            _end_points(av, found)
        elif op is _sre.BRANCH:
            for branch in av[1]:
                _end_points(branch, found)


def _parse(pattern: str, flags: int = 0) -> tuple[Any, _Walk]:
    tree = _sre_parse.parse(pattern, flags)
    points: set[str] = set()
    _end_points(tree, points)
    alphabet = _BASE_ALPHABET + tuple(sorted(points.difference(_BASE_ALPHABET)))
    return tree, _Walk(bool(tree.state.flags & re.IGNORECASE), alphabet)


# --- the safety check -------------------------------------------------------------------------------------


def _sequence(items: Any, walk: _Walk) -> _Shape:
    """The shape of a concatenation; raises UnsafePatternError on adjacent overlapping variable parts."""
    first: set[str] = set()
    chars: set[str] = set()
    nullable, ambiguity = True, 1
    length: int | None = 0
    open_chars: frozenset[str] = _EMPTY  # what the quantifiers before this point could still take
    for op, av in items:
        shape = _item(op, av, walk)
        if shape.length is None and open_chars & shape.first:
            raise UnsafePatternError(
                "two quantified parts next to each other can match the same characters (as in '\\d+\\d+' "
                "or '.*x.*'); the search time would grow with a power of the text length"
            )
        if nullable:
            first |= shape.first
        chars |= shape.chars
        nullable = nullable and shape.nullable
        length = None if length is None or shape.length is None else length + shape.length
        ambiguity *= shape.ambiguity
        open_chars = open_chars | shape.tail if shape.nullable or open_chars & shape.first else shape.tail
    return _Shape(frozenset(first), frozenset(chars), nullable, length, open_chars, ambiguity)


def _item(op: object, av: Any, walk: _Walk) -> _Shape:
    if op in _SINGLE_CHARACTER:
        chars = walk.char_set(op, av)
        return _Shape(chars, chars, False, 1, _EMPTY, 1)
    if op is _sre.AT:
        return _Shape(_EMPTY, _EMPTY, True, 0, _EMPTY, 1)
    if op is _sre.SUBPATTERN:
        return _sequence(av[3], walk.case(av[1], av[2]))
    if op is _sre.ATOMIC_GROUP:
        return _sequence(av, walk)
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        inner = _sequence(av[1], walk)  # checked on its own; it consumes nothing
        return _Shape(_EMPTY, _EMPTY, True, 0, _EMPTY, inner.ambiguity)
    if op is _sre.BRANCH:
        return _branch([_sequence(branch, walk) for branch in av[1]])
    if op in _REPEATS:
        low, high, body = av
        inner = _sequence(body, walk)
        if (high is _sre.MAXREPEAT or high > 1) and (inner.length is None or inner.ambiguity > 1):
            raise UnsafePatternError(
                "a quantifier over a part that can itself match in several ways (as in '(a+)+' or "
                "'([A-Z0-9]+-?)+') backtracks exponentially; quantify a single character class instead"
            )
        fixed = inner.length * low if low == high and inner.length is not None else None
        tail = inner.chars if fixed is None else inner.tail
        return _Shape(inner.first, inner.chars, low == 0 or inner.nullable, fixed, tail, inner.ambiguity)
    if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
        raise UnsafePatternError("backreferences and conditional groups are not allowed")
    raise UnsafePatternError(f"unsupported construct {str(op).lower()}")


def _branch(alternatives: list[_Shape]) -> _Shape:
    overlapping = any(
        a.first & b.first or (a.nullable and b.nullable)
        for index, a in enumerate(alternatives)
        for b in alternatives[index + 1 :]
    )
    ambiguity = len(alternatives) if overlapping else 1
    for alternative in alternatives:
        ambiguity *= alternative.ambiguity
    lengths = {a.length for a in alternatives}
    return _Shape(
        frozenset().union(*(a.first for a in alternatives)),
        frozenset().union(*(a.chars for a in alternatives)),
        any(a.nullable for a in alternatives),
        lengths.pop() if len(lengths) == 1 else None,
        frozenset().union(*(a.tail for a in alternatives)),
        ambiguity,
    )


def check_link_pattern(pattern: str) -> None:
    """Raise UnsafePatternError when ``pattern`` is outside the safe subset (docs/routing.md, linking).

    Raises ``re.error`` when it does not compile. The configuration model calls this, so ``check`` refuses
    a dangerous pattern and it never reaches the router.
    """
    if len(pattern) > MAX_LINK_PATTERN_CHARS:
        raise UnsafePatternError(f"longer than {MAX_LINK_PATTERN_CHARS} characters")
    re.compile(pattern)
    try:
        tree, walk = _parse(pattern)
        shape = _sequence(tree.data, walk)
    except RecursionError:
        raise UnsafePatternError("groups nested too deeply") from None
    if shape.ambiguity > _MAX_AMBIGUOUS_ALTERNATIVES:
        raise UnsafePatternError(
            f"too many alternatives that can start with the same character ({shape.ambiguity} combinations "
            f"to try on a failed search; at most {_MAX_AMBIGUOUS_ALTERNATIVES})"
        )


# --- the bounded search -----------------------------------------------------------------------------------


def search_link_token(pattern: re.Pattern[str], text: str, *, body: bool = False) -> re.Match[str] | None:
    """The first reference token in the bounded part of a subject (or, with ``body``, of a plain-text body).

    :meth:`LinkSearch.tokens` says which matches count as tokens; this is the first of them.
    """
    return link_search(pattern).search(text, body=body)


@dataclass(frozen=True, slots=True)
class LinkSearch:
    """One linking pattern, ready for :meth:`tokens`: its bounded form and its literal prefix.

    ``prefix`` is the text every match starts with (``[REF:`` for ``\\[REF:(?P<ref>…)\\]``): a substring
    test rules out most subjects before the regex engine runs. The router keeps one per configuration.
    """

    pattern: re.Pattern[str]  # as configured (its groups name the reference)
    bounded: re.Pattern[str]
    prefix: str

    def references(self, text: str, *, body: bool = False) -> Iterator[tuple[str, re.Match[str]]]:
        """(reference, token) for each of :meth:`tokens` whose reference group matched something."""
        group = reference_group(self.pattern)
        for match in self.tokens(text, body=body):
            if reference := match.group(group):
                yield reference, match

    def search(self, text: str, *, body: bool = False) -> re.Match[str] | None:
        """The first of :meth:`tokens`, or None."""
        return next(self.tokens(text, body=body), None)

    def tokens(self, text: str, *, body: bool = False) -> Iterator[re.Match[str]]:
        """The reference tokens of a subject (or, with ``body``, of a plain-text body), left to right.

        Searched: the first LINK_SUBJECT_CHARS of the subject or LINK_BODY_CHARS of the body, with every
        unbounded quantifier limited to LINK_REPEAT_MAX repetitions; each search goes on where the previous
        match ended (``finditer``: an empty match advances), so the whole walk is linear in that prefix.
        Dropped, because the token might go on and a truncated token could name another work item: a match
        reaching the cut (it ends the walk), and a match that the configured pattern would extend past a
        repetition bound (the walk resumes after the configured pattern's longer match, so no tail of an
        over-long token is read as a token of its own).
        """
        if not self.may_hold(text, body=body):
            return iter(())
        limit = LINK_BODY_CHARS if body else LINK_SUBJECT_CHARS
        return self._walk(text, min(limit, len(text)), len(text) > limit)

    def may_hold(self, text: str, body: bool = False) -> bool:
        """False when :meth:`tokens` of ``text`` is surely empty: the searched part lacks the literal prefix every
        match starts with (one substring test: most mail stops here, before any regex or generator)."""
        # (``find`` clamps an end past the text: no ``min``, a call fewer on every routed email. ``body`` is not
        # keyword-only: CPython 3.11 runs a call of a function with keyword-only parameters on its slower,
        # generic path, and the router calls this once per email.)
        return not self.prefix or text.find(self.prefix, 0, LINK_BODY_CHARS if body else LINK_SUBJECT_CHARS) >= 0

    def _walk(self, text: str, end: int, cut: bool) -> Iterator[re.Match[str]]:
        """:meth:`tokens` in ``text[:end]``; ``cut``: the text goes on past ``end``."""
        position: int | None = 0
        while position is not None:
            resume, position = position, None
            for match in self.bounded.finditer(text, resume, end):
                if cut and match.end() == end:
                    return
                configured_end = self._configured_end(text, match, end)
                if configured_end == match.end():
                    yield match
                elif configured_end > match.end():
                    position = configured_end  # past the over-long token; always forward, so still linear
                    break

    def _configured_end(self, text: str, match: re.Match[str], end: int) -> int:
        """Where the configured pattern's match at ``match``'s start ends (-1: none there).

        A bounded quantifier may have stopped at LINK_REPEAT_MAX: then the token goes on, and its first 64
        characters could name another work item. The configured pattern is matched once, anchored.
        """
        if self.bounded is self.pattern:
            return match.end()
        whole = self.pattern.match(text, match.start(), end)
        return -1 if whole is None else whole.end()


def reference_group(pattern: re.Pattern[str]) -> str | int:
    """The group of a linking pattern that holds the reference: ``ref``, else the only group (configuration
    checks that there is one of the two)."""
    return "ref" if "ref" in pattern.groupindex else 1


@lru_cache(maxsize=64)
def link_search(pattern: re.Pattern[str]) -> LinkSearch:
    """The :class:`LinkSearch` of ``pattern`` (built once per pattern)."""
    return LinkSearch(pattern, _bounded(pattern), _literal_prefix(pattern))


def _literal_prefix(pattern: re.Pattern[str]) -> str:
    """The literal text at the start of ``pattern``; "" when there is none or case is ignored."""
    try:
        tree = _sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # noqa: BLE001 — no prefix: the regex alone decides
        return ""
    if (pattern.flags | tree.state.flags) & re.IGNORECASE:
        return ""
    prefix = []
    for op, av in tree.data:
        if op is not _sre.LITERAL:
            break
        prefix.append(chr(av))
    return "".join(prefix)


def _bounded(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` with every quantifier bounded, and possessive where backtracking cannot change the result.

    ``+``, ``*`` and ``{n,}`` become ``{n,LINK_REPEAT_MAX}``, so one start costs O(1) and a search is
    linear. A quantified character class that nothing after it can start with (``[A-Z]+`` in
    ``[A-Z]+-\\d+``) becomes possessive: giving characters back could never let the rest match, so the
    result is the same, without retrying up to LINK_REPEAT_MAX shorter lengths at every start. Built from
    the parse tree with ``re._compiler`` (guarded: if that private API changes, or the pattern is outside
    the safe subset, the pattern is used as it is and only the text caps bound the cost).
    """
    try:
        compiler = _private("re._compiler", "sre_compile")
        tree, walk = _parse(pattern.pattern, pattern.flags)
        _tighten(tree, _EMPTY, walk)
        bounded: re.Pattern[str] = compiler.compile(tree, pattern.flags)
    except Exception:  # noqa: BLE001 — any failure falls back to the pattern itself
        return pattern
    return bounded


def _tighten(tree: Any, follow: frozenset[str] | None, walk: _Walk) -> None:
    """Bound the quantifiers of ``tree`` in place; ``follow`` is what can come after it (None: anything)."""
    items = tree.data
    after: list[frozenset[str] | None] = [follow] * len(items)
    following = follow
    for index in range(len(items) - 1, -1, -1):  # what can follow each item, from the right
        after[index] = following
        op, av = items[index]
        if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            following = None  # a zero-width test may depend on what was given back: never possessive
            continue
        shape = _item(op, av, walk)
        if not shape.nullable:
            following = shape.first
        elif following is not None:
            following = following | shape.first
    for index, (op, av) in enumerate(items):
        if op in _REPEATS:
            low, high, body = av
            _tighten(body, None, walk)
            high = max(low, LINK_REPEAT_MAX) if high is _sre.MAXREPEAT else high
            single = len(body.data) == 1 and body.data[0][0] in _SINGLE_CHARACTER
            next_chars = after[index]
            if (possessive_ok and op is _sre.MAX_REPEAT and single and next_chars is not None
                    and not walk.char_set(*body.data[0]) & next_chars):
                op = _sre.POSSESSIVE_REPEAT
            items[index] = (op, (low, high, body))
        elif op is _sre.SUBPATTERN:
            _tighten(av[3], after[index], walk.case(av[1], av[2]))
        elif op is _sre.ATOMIC_GROUP:
            _tighten(av, after[index], walk)
        elif op is _sre.BRANCH:
            for branch in av[1]:
                _tighten(branch, after[index], walk)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            _tighten(av[1], None, walk)
