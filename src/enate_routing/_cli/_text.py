"""Plain-text output helpers shared by the commands: plural forms and terminal column widths."""

from __future__ import annotations

import unicodedata

__all__ = ["display_width", "fit", "plural"]


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 connector``, ``2 connectors``, ``0 connectors``."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    # East Asian wide and fullwidth characters take two terminal columns (Unicode UAX #11).
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """The number of terminal columns ``text`` takes."""
    return sum(_char_width(c) for c in text)


def fit(text: str, width: int) -> str:
    """``text`` on one line, cut with an ellipsis to at most ``width`` columns and padded to exactly ``width``."""
    text = " ".join(text.split())
    if display_width(text) > width:
        kept, used = [], 0
        for char in text:
            size = _char_width(char)
            if used + size > width - 1:
                break
            kept.append(char)
            used += size
        text = "".join(kept) + "…"
    return text + " " * (width - display_width(text))
