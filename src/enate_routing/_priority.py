"""Which header fields flag a mail ``important`` (docs/semantics.md §3): Importance high, X-Priority 1–2,
X-MSMail-Priority high, Priority urgent."""

from __future__ import annotations

import re

__all__ = ["PRIORITY_FIELDS", "PRIORITY_NAMES", "says_important"]

# ASCII values give the same answer in any order (any one of them decides); the walk keeps document order.
PRIORITY_FIELDS = ("importance", "x-msmail-priority", "priority", "x-priority")
PRIORITY_NAMES = frozenset(PRIORITY_FIELDS)
# X-Priority "1 (Highest)" or "2 (High)": its leading number.
_LEADING_NUMBER = re.compile(r"\s*(\d+)")


def says_important(name: str, text: str) -> bool:
    """Whether one priority field (a name of ``PRIORITY_FIELDS``) with this text flags the mail important."""
    if name == "x-priority":
        match = _LEADING_NUMBER.match(text)
        return match is not None and match.group(1).lstrip("0") in ("1", "2")
    return text.strip().casefold() == ("urgent" if name == "priority" else "high")
