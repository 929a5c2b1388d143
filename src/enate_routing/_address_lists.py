"""Address lists for :mod:`enate_routing._envelope`: ``getaddresses`` for plain lists 20× cheaper, and the
entry counts its limits are checked with before ``getaddresses`` sees a list.

The fast path reads plain entries only; anything else returns None and the envelope hands the text to
``getaddresses``. Tests (tests/envelope/test_properties.py) prove the results equal on generated lists.
"""

from __future__ import annotations

import inspect
import operator
import re
from email.utils import getaddresses

from enate_routing._regex_compat import POSSESSIVE

# Python 3.13 (and security releases of 3.11 / 3.12) parse address lists strictly by default
# (CVE-2023-27043). The envelope makes its own safety checks (a From that splits into two addresses gives no
# sender), so it asks for the same lenient parse on every version: the facts do not depend on the interpreter.
_LENIENT = {"strict": False} if "strict" in inspect.signature(getaddresses).parameters else {}


def parse_address_list(values: list[str]) -> list[tuple[str, str]]:
    """``email.utils.getaddresses(values)`` with the lenient parse of every Python version."""
    return getaddresses(values, **_LENIENT)

__all__ = ["ADDRESS", "address_count", "most_addresses", "simple_addresses", "split_entries",
           "without_quotes_or_comments"]

# Fast path for address lists of plain entries: "local@domain" or "Display Name <local@domain>" with
# ASCII atoms only (dot-atoms on both sides of the '@': an invalid domain such as "bad_1.example" is read
# here and rejected by normalize_address, as getaddresses' result would be). No quotes, comments, groups,
# backslashes or dots in names, so splitting on commas is exactly what getaddresses does; tests prove the
# results equal on generated lists. getaddresses costs ~20 µs per address, which dominates a small message.
# Possessive (Python 3.11+): what follows an atom ('.', '@', white space, '>') is never atom text, so no
# match changes, and a failed try ("=?utf-8?q?…?= <a@b>" as a bare address) fails without backtracking.
_ATEXT = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~-]+{POSSESSIVE}"
ADDRESS = rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*"
# A display name of atoms and the white space before its '<': white space only *between* atoms and after the
# last, so a run of spaces has one reading (written as "(atom space)* atom?", it had one per split of the run:
# cubic on "a", 4,000 spaces, "b"; with the white space before '<' outside it, an empty name let that and the
# entry's leading white space share a run: quadratic on 18,000 spaces before junk, found by fuzz_corpus.py).
_DISPLAY = rf"(?:{_ATEXT}(?:[ \t]+{_ATEXT})*[ \t]*)?"
_SIMPLE_ENTRY = re.compile(rf"[ \t]*(?:({ADDRESS})|({_DISPLAY})<({ADDRESS})>)[ \t]*")
# One character class (not an alternation, which the regex engine tries at every position): any of
# ( ) : ; [ \ ] or a non-ASCII character.
_NOT_SIMPLE = re.compile(r"[^\x00-\x27\x2a-\x39\x3c-\x5a\x5e-\x7f]")
# A quoted display name without backslashes or line breaks: getaddresses gives its content as written.
_QUOTED_ENTRY = re.compile(rf'[ \t]*"([^"\\\r\n]*)"[ \t]*<({ADDRESS})>[ \t]*')
# The three entry forms above in one pattern, each entry ending at a comma or the end: a list whose entries
# follow one another from its start to its end is read by one match per entry (see simple_addresses).
_NEXT_ENTRY = re.compile(
    rf'[ \t]*(?:"([^"\\\r\n]*)"[ \t]*<({ADDRESS})>|({ADDRESS})|({_DISPLAY})<({ADDRESS})>)'
    r"[ \t]*(?:,(?!\Z)|\Z)"
)


def split_entries(text: str) -> list[str] | None:
    """``text`` split at the commas outside quoted strings; None when a quote is not closed (or holds a
    backslash or line break: getaddresses decides those). ``str.split`` on quotes, then on commas outside
    them, at C speed: the odd pieces are the quoted strings (tests compare with the regex walk this replaced)."""
    if '"' not in text:
        return text.split(",")
    pieces = text.split('"')
    if len(pieces) % 2 == 0:
        return None  # an odd number of quotes: one is not closed
    entries = [""]
    for index, piece in enumerate(pieces):
        if index % 2:
            if "\\" in piece or "\r" in piece or "\n" in piece:
                return None
            entries[-1] += f'"{piece}"'
        else:
            first, *rest = piece.split(",")
            entries[-1] += first
            entries.extend(rest)
    return entries


def simple_addresses(text: str) -> list[tuple[str, str]] | None:
    """``getaddresses([text])`` for lists of plain entries, or None when ``text`` needs the real parser.

    Plain entries: ``local@domain``, ``Name <local@domain>`` with atoms, ``"Any, Name" <local@domain>``.
    """
    quoted_text = '"' in text
    if quoted_text and _NOT_SIMPLE.search(text):
        return None
    # One pass when the entries follow one another from start to end (no empty entry); else entry by entry.
    # Outside quotes the pattern admits no character _NOT_SIMPLE finds, so unquoted text needs no search first.
    # Each entry is matched where the last one ended: a search (finditer) would try every later position of
    # a text that does not match, which is quadratic.
    pairs: list[tuple[str, str]] = []
    position = 0
    length = len(text)
    while position < length:
        entry_match = _NEXT_ENTRY.match(text, position)
        if entry_match is None:
            break
        position = entry_match.end()
        quoted, address, bare, display, named = entry_match.groups()
        if bare is not None:
            pairs.append(("", bare))
        elif quoted is not None:
            pairs.append((quoted, address))
        else:
            pairs.append((" ".join(display.split()), named))
    else:
        if pairs:
            return pairs
    if not quoted_text and _NOT_SIMPLE.search(text):
        return None
    entries = split_entries(text)
    if entries is None:
        return None
    pairs = []
    for entry in entries:
        if not entry.strip(" \t"):
            pairs.append(("", ""))
            continue
        if '"' in entry:
            quoted = _QUOTED_ENTRY.fullmatch(entry)
            if quoted is None:
                return None
            pairs.append((quoted.group(1), quoted.group(2)))
            continue
        match = _SIMPLE_ENTRY.fullmatch(entry)
        if match is None:
            return None
        if match.group(1) is not None:
            pairs.append(("", match.group(1)))
        else:
            display = entry[: entry.index("<")]
            pairs.append((" ".join(display.split()), match.group(3)))
    return pairs


# An address header's entries are separated by commas outside quoted strings and comments. A quote or comment
# never closed runs to the end (as getaddresses reads it), a comment also to a nested '(': so every '"' and '('
# starts a match. A start that could fail scanned to the end, and was tried again at each escaped quote or
# parenthesis ('\", \", ...', '\(, \(, ...'): quadratic, seconds for a 16 kB To.
# (Group 1 is a quoted string's opening quote: ``sub(r"\1", ...)`` keeps one '"' for it and drops a comment.)
_QUOTED_OR_COMMENT = re.compile(r'(")(?:[^"\\]|\\.)*(?:"|\\?\Z)|\((?:[^()\\]|\\.)*(?:\)|\\?\Z|(?=\())', re.DOTALL)
# Besides a comma, getaddresses ends an entry at a ';' (a group's end, or a list typed with semicolons), at a
# '>', ')' or ']' left over outside an angle address, comment or domain literal, and at a '[' that opens no
# domain literal (not after '@'). In a group ("G: ...;") it copies the group's list for each entry: "To:
# G:a]a]..." was quadratic (7 s at 64 kB), and "a;a;..." cost 0.7 s for 240 kB, while a count of the commas saw
# one entry. So the address limit counts these ends too (From's author count does not).
_ENTRY_ENDS = re.compile(r"[,;>)\]]|(?<!@)\[")
_ENTRY_END_CHARACTERS = ",;>)[]"
_ANGLES = operator.methodcaller("count", "<")


def without_quotes_or_comments(text: str) -> str:
    """``text`` without its quoted strings and comments (each runs to the end when never closed)."""
    return _QUOTED_OR_COMMENT.sub("", text)


def most_addresses(text: str) -> int:
    """An upper bound of :func:`address_count` (either way), counted at C speed."""
    return sum(map(text.count, _ENTRY_END_CHARACTERS)) + text.count("<") + 1


def address_count(text: str, *, entries_as_getaddresses_ends_them: bool = False) -> int:
    """Entries in an address list: comma-separated outside quotes and comments; each <...> counts.

    With ``entries_as_getaddresses_ends_them`` (the address limit), entries end where getaddresses ends them,
    and a quoted string is an entry's text (a comment is not: getaddresses keeps it aside): ``"x"["x"[...``
    is as many entries as quoted strings.
    """
    if not entries_as_getaddresses_ends_them:
        bare = _QUOTED_OR_COMMENT.sub("", text)
        return sum(max(1, entry.count("<")) for entry in bare.split(",") if entry.strip())
    bare = _QUOTED_OR_COMMENT.sub(r"\1", text)
    # The same sum at C speed (a hostile header has ~100,000 entries): every '<', plus one per entry without.
    entries = list(filter(str.strip, _ENTRY_ENDS.split(bare)))
    return bare.count("<") + len(entries) - sum(map(bool, map(_ANGLES, entries)))
