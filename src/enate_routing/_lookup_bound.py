"""How often routing one email may ask the host (docs/semantics.md §3.4): each key once, at most N keys.

A link is found by asking the host's :class:`~enate_routing._directory.WorkItemLookup` about message ids,
plus tags and reference tokens, which one email may carry by the thousand. One rule bounds them all, for
follow-ups and for bounces alike: a key already asked about is skipped, and after the bound the walk stops,
so a hostile email costs a few database calls, not one per key it carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["LINK_TOKEN_LOOKUPS", "MESSAGE_ID_LOOKUPS", "at_most", "bound_reached"]

# Message ids asked about per email: In-Reply-To, then References from the most recent back. A real thread's
# References is far shorter (mail clients trim it); 2,000 hostile ids must not become 2,000 database calls.
MESSAGE_ID_LOOKUPS = 100
# Reference tokens asked about per email, subject and body together (and plus tags, separately).
LINK_TOKEN_LOOKUPS = 10

T = TypeVar("T")


def bound_reached(asked: set[str], limit: int) -> bool:
    """Whether the walks sharing ``asked`` may ask about no further key."""
    return len(asked) >= limit


def at_most(items: Iterable[tuple[str, T]], limit: int, *, seen: set[str] | None = None,
            stopped: Callable[[], object] | None = None) -> Iterator[tuple[str, T]]:
    """The ``(key, item)`` pairs whose key was not asked about before, up to ``limit`` distinct keys.

    ``seen`` carries the keys asked about across several walks (a bounce's returned messages share one bound);
    ``stopped`` is called when a further key is left unasked. Lazy: a caller that finds what it looks for stops
    the walk, and ``items`` is read no further.
    """
    asked = set() if seen is None else seen
    for key, item in items:
        if key in asked:
            continue
        if bound_reached(asked, limit):
            if stopped is not None:
                stopped()
            return
        asked.add(key)
        yield key, item
