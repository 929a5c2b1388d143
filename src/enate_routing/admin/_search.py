"""Start-with search over the routes grid of an admin screen (docs/semantics.md §7).

A grid row is an incoming route or a fallback (:class:`RouteRow`). Rows are in **priority order**: by
connector (in configuration order), then tier (address routes, wildcard routes, the fallback — docs/semantics.md §3.1),
then priority within the tier. Every search result keeps that order.

Matching, per column: the cell's text, Unicode-case-folded, **starts with** the case-folded query text (not
"contains"). Boolean cells read ``"Yes"`` / ``"No"`` as a grid shows them, so ``"y"`` finds the true ones;
an empty cell (no ticket category, no for-attention) is ``""`` and only an empty query matches it. An
empty query sets no condition; several columns must all match (AND). :func:`linear_search` is that
definition written as a plain filter; :class:`RouteIndex` answers the same questions from sorted indexes.

:class:`RouteIndex` is built once per configuration version (the admin caches it): per column, the distinct
case-folded cell texts sorted, each with the ascending row numbers that carry it. A prefix is a contiguous
range of those keys (two ``bisect`` calls); the filter whose range holds the fewest rows supplies the
candidates and the others are checked on those candidates only. The connector filter is a slice, because a
connector's rows are contiguous.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain
from typing import Literal, get_args

from enate_routing._delivery import Delivery
from enate_routing._model import Config, Fallback, IncomingRoute

Column = Literal[
    "name", "address", "process", "ticket_category", "for_attention", "send_automated_emails", "test_mode", "enabled"
]
COLUMNS: tuple[Column, ...] = get_args(Column)
Tier = Literal["address", "wildcard", "fallback"]

_MAX_CHAR = chr(0x10FFFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRow:
    """One row of the routes grid. ``priority`` is 1-based within the row's connector and tier."""

    connector: str
    name: str
    tier: Tier
    priority: int
    address: str
    delivery: Delivery
    enabled: bool

    @property
    def is_fallback(self) -> bool:
        return self.tier == "fallback"

    def text(self, column: Column) -> str:
        """The cell as the grid shows it: booleans as "Yes" / "No", a missing value as ""."""
        value: str | bool | None
        if column == "process":
            value = self.delivery.target.process
        elif column in ("name", "address", "enabled"):
            value = getattr(self, column)
        else:
            value = getattr(self.delivery, column)
        if isinstance(value, bool):
            return "Yes" if value else "No"
        return value or ""


def _row(route: IncomingRoute | Fallback, tier: Tier, priority: int) -> RouteRow:
    return RouteRow(connector=route.connector, name=route.name, tier=tier, priority=priority, address=route.address,
                    delivery=route.delivery, enabled=route.enabled)


def route_rows(config: Config) -> tuple[RouteRow, ...]:
    """Every incoming route and fallback of ``config`` as grid rows, in priority order (docs/semantics.md §3.1)."""
    address: dict[str, list[IncomingRoute]] = {c.name: [] for c in config.connectors}
    wildcard: dict[str, list[IncomingRoute]] = {c.name: [] for c in config.connectors}
    for route in config.routes:  # one pass; file order is priority order within a connector's tier
        (wildcard if route.is_wildcard else address)[route.connector].append(route)
    fallbacks = {f.connector: f for f in config.fallbacks}
    rows: list[RouteRow] = []
    for connector in config.connectors:
        rows.extend(_row(r, "address", i) for i, r in enumerate(address[connector.name], 1))
        rows.extend(_row(r, "wildcard", i) for i, r in enumerate(wildcard[connector.name], 1))
        if connector.name in fallbacks:
            rows.append(_row(fallbacks[connector.name], "fallback", 1))
    return tuple(rows)


def _active(filters: Mapping[str, str] | None) -> list[tuple[Column, str]]:
    active: list[tuple[Column, str]] = []
    for column, query in (filters or {}).items():
        if column not in COLUMNS:
            raise ValueError(f"cannot search column {column!r}; searchable columns: {', '.join(COLUMNS)}")
        if query is not None and not isinstance(query, str):  # a filter posted as JSON: {"enabled": true}
            raise ValueError(f"the query for column {column!r} must be text (as the grid shows it), "
                             f"not {type(query).__name__}")
        if query:
            active.append((column, query.casefold()))  # `in COLUMNS` narrows column to Column
    return active


def linear_search(
    rows: Sequence[RouteRow], filters: Mapping[str, str] | None = None, *, connector: str | None = None
) -> tuple[RouteRow, ...]:
    """The definition of a search, as a plain filter over ``rows`` (the reference :class:`RouteIndex` meets)."""
    active = _active(filters)
    return tuple(
        row for row in rows
        if (connector is None or row.connector == connector)
        and all(row.text(column).casefold().startswith(query) for column, query in active)
    )


def _upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix``; None when there is none."""
    stripped = prefix.rstrip(_MAX_CHAR)
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


class _ColumnIndex:
    """Distinct case-folded cell texts, sorted, each with the ascending row numbers that carry it."""

    __slots__ = ("_counts", "folded", "keys", "postings")

    def __init__(self, folded: list[str]) -> None:
        self.folded = folded
        by_key: dict[str, list[int]] = {}
        for ordinal, key in enumerate(folded):
            by_key.setdefault(key, []).append(ordinal)
        self.keys = sorted(by_key)
        self.postings: list[tuple[int, ...]] = [tuple(by_key[k]) for k in self.keys]
        self._counts = [0, *accumulate(len(p) for p in self.postings)]

    def key_range(self, prefix: str) -> tuple[int, int]:
        lo = bisect_left(self.keys, prefix)
        upper = _upper_bound(prefix)
        hi = len(self.keys) if upper is None else bisect_left(self.keys, upper, lo)
        return lo, hi

    def count(self, span: tuple[int, int]) -> int:
        return self._counts[span[1]] - self._counts[span[0]]

    def ordinals(self, span: tuple[int, int]) -> Sequence[int]:
        lo, hi = span
        if hi - lo == 1:
            return self.postings[lo]
        # Each posting is sorted; Timsort merges the concatenated runs in close to linear time.
        return sorted(chain.from_iterable(self.postings[lo:hi]))


class RouteIndex:
    """The grid rows of one configuration version, indexed for start-with search. Immutable once built."""

    def __init__(self, config: Config) -> None:
        self.rows: tuple[RouteRow, ...] = route_rows(config)
        self._columns = {
            column: _ColumnIndex([row.text(column).casefold() for row in self.rows]) for column in COLUMNS
        }
        self._spans: dict[str, tuple[int, int]] = {}
        for ordinal, row in enumerate(self.rows):
            start, _ = self._spans.get(row.connector, (ordinal, ordinal))
            self._spans[row.connector] = (start, ordinal + 1)

    def search(
        self, filters: Mapping[str, str] | None = None, *, connector: str | None = None
    ) -> tuple[RouteRow, ...]:
        """Rows whose cells start with each query (case-insensitive), in priority order; see the module doc."""
        active = _active(filters)
        first, last = (0, len(self.rows)) if connector is None else self._spans.get(connector, (0, 0))
        if not active:
            return self.rows[first:last]
        spans = [(column, query, self._columns[column].key_range(query)) for column, query in active]
        spans.sort(key=lambda item: self._columns[item[0]].count(item[2]))
        column, _, span = spans[0]
        candidates: Sequence[int]
        if last - first <= self._columns[column].count(span):
            # The connector's rows are fewer than the best column's matches: check the slice instead.
            candidates, checks = range(first, last), spans
        else:
            candidates, checks = self._columns[column].ordinals(span), spans[1:]
            if connector is not None:
                candidates = candidates[bisect_left(candidates, first):bisect_left(candidates, last)]
        for other, query, _ in checks:
            folded = self._columns[other].folded
            candidates = [i for i in candidates if folded[i].startswith(query)]
        return tuple(self.rows[i] for i in candidates)
