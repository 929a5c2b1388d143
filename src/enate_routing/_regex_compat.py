"""Possessive quantifiers only where the regular-expression engine runs them correctly.

Python 3.11 added possessive quantifiers (``*+``, ``++``); before 3.11.5 a possessive repeat inside another
repeat could loop without end and eat memory (CPython gh-106052; Debian 12 ships 3.11.2). Every pattern that
uses one here gives the same matches without it — the possessive form only spares backtracking — so on those
versions the plain greedy quantifier is used.
"""

from __future__ import annotations

import sys

__all__ = ["POSSESSIVE", "possessive_ok"]

possessive_ok = sys.version_info >= (3, 11, 5)
POSSESSIVE = "+" if possessive_ok else ""
"""Append to a quantifier (``rf"[a-z]+{POSSESSIVE}"``): possessive where that is safe, greedy elsewhere."""
