"""Header blocks split into fields, for :mod:`enate_routing._mime` and the envelope (docs/semantics.md §3).

The rules are those of ``email.feedparser``, so that well-formed mail gives the same fields: the block ends
at the first blank line, or at the first line that is neither a field nor a continuation (a defect: no blank
line); a first line ``From ...`` is an mbox separator and is skipped; continuation lines start with space or
tab and are unfolded by removing the line endings (RFC 5322 §2.2.3). Never raises; problems are short defect
strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, KeysView, Set

__all__ = ["HeaderBlock", "forget_field_names", "split_header_block", "well_formed_fields"]

# Line endings as ints, for membership tests: ``b"\r" in data`` first tries the needle as an int, so CPython
# (3.11 to 3.13) builds and discards a TypeError on every such test with a bytes needle, 4–8× the cost of the
# memchr itself (about 1,800 instructions). An int needle is the memchr alone.
_CR = 13
_LF = 10

# What the fast path gives: names, values, each name's first value, the names that occur more than once.
_Columns = tuple[list[str], list[bytes], dict[str, bytes], set[str]]

# A blank line: one line ending immediately followed by another. ``\r(?!\n)`` keeps a CRLF from being read
# as two line endings; bare CR and bare LF count, as they do for ``email.feedparser`` (NLCRE).
_BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LEADING_EOL = re.compile(rb"\r\n|\r|\n")
# A header line: a field name of printable ASCII except ':' (feedparser's headerRE), then ':'. RFC 5322
# §4.5.3 (obsolete syntax) also allows white space before the colon, which we accept.
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]*)[ \t]*:")
# "From :" with obsolete white space is a field; any other line starting "From " is an mbox separator.
_FROM_FIELD = re.compile(rb"From[ \t]*:")
# A field name: printable ASCII except ':' (feedparser's headerRE, without the empty name).
_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
# A line that looks like a real header field (a letter, then letters, digits and hyphens, then ':').
_LIKELY_FIELD = re.compile(rb"[A-Za-z][A-Za-z0-9-]*[ \t]*:")


_NO_NAMES: frozenset[str] = frozenset()


class HeaderBlock:
    """The fields of one header block: lower-cased ``names`` and unfolded raw ``values``, in order.

    Looked up by name through a dict of each name's first value, built with the block: the envelope asks for
    ~30 names, and a block may hold 100,000 fields. ``first(name)`` is the raw value of the first field called
    ``name`` (lower-case), or None: that dict's own ``get``, so a lookup is one C call, not a Python frame.
    """

    __slots__ = ("_first", "_repeated", "body_start", "defects", "end", "end_seen", "first", "names", "over_limit",
                 "present", "values")
    first: Callable[[str], bytes | None]
    present: KeysView[str]  # the names of the block's fields: ``present.isdisjoint(names)`` is one C call

    def __init__(
        self,
        fields: list[tuple[str, bytes]],
        end: int,
        body_start: int,
        defects: list[str],
        over_limit: bool = False,
        end_seen: bool = True,
    ) -> None:
        self._fill([name for name, _ in fields], [value for _, value in fields], end, body_start, defects,
                   over_limit, end_seen)

    @classmethod
    def from_columns(
        cls,
        names: list[str],
        values: list[bytes],
        end: int,
        body_start: int,
        defects: list[str],
        *,
        over_limit: bool = False,
        end_seen: bool = True,
        first: dict[str, bytes] | None = None,
        repeated: Set[str] | None = None,
    ) -> HeaderBlock:
        """The block of these names and values (the splitters' constructor: no list of pairs to build).
        ``first`` (each name's first value) and ``repeated`` (the names that occur more than once), when the
        splitter noted them; else they are worked out here."""
        block = cls.__new__(cls)
        block._fill(names, values, end, body_start, defects, over_limit, end_seen, first, repeated)
        return block

    def _fill(self, names: list[str], values: list[bytes], end: int, body_start: int, defects: list[str],
              over_limit: bool, end_seen: bool, first: dict[str, bytes] | None = None,
              repeated: Set[str] | None = None) -> None:
        self.over_limit = over_limit
        self.end_seen = end_seen
        self.names = names
        self.values = values
        self.end = end  # offset just past the last header line (its line ending included)
        self.body_start = body_start  # offset of the first body byte
        self.defects = defects
        if first is None:
            # Built backwards, so that each name keeps its first value; at C speed.
            first = dict(zip(reversed(names), reversed(values), strict=True))
        self._first = first
        if repeated is None:  # any name may be repeated when some is (all() then counts)
            repeated = _NO_NAMES if len(first) == len(names) else frozenset(names)
        self._repeated = repeated
        self.first = first.get
        self.present = self._first.keys()

    def __repr__(self) -> str:
        return f"HeaderBlock({self.fields!r}, end={self.end}, body_start={self.body_start}, defects={self.defects!r})"

    @property
    def fields(self) -> list[tuple[str, bytes]]:
        """(lower-cased name, unfolded raw value) pairs, in order."""
        return list(zip(self.names, self.values, strict=True))

    def all(self, name: str) -> list[bytes]:
        """The raw values of every field called ``name`` (lower-case), in order."""
        value = self._first.get(name)
        if value is None:
            return []
        if name not in self._repeated:  # nearly always
            return [value]
        return [value for key, value in zip(self.names, self.values, strict=True) if key == name]


def split_header_block(raw: bytes, start: int, end: int, max_bytes: int) -> HeaderBlock:
    """Split the header block of the entity at ``raw[start:end]`` into fields (the rules above).

    Only ``max_bytes`` (+ a blank line) are ever searched; when the block is longer, ``over_limit`` is set and
    the fields read so far are returned.
    """
    if raw.startswith((b"\n", b"\r"), start, end):  # no header fields at all: the body starts after this line
        leading = _LEADING_EOL.match(raw, start, end)
        return HeaderBlock.from_columns([], [], start, leading.end() if leading else start + 1, [])
    window_end = min(end, start + max_bytes + 4)
    crlf_blank = raw.find(b"\r\n\r\n", start, min(window_end, start + 8192))
    if crlf_blank >= 0:
        # The usual CRLF mail: when every CR and LF before this blank line is part of a CRLF, it is the first
        # blank line, and the lines are already cut (one pass each: find, split, join, two finds: a find of one
        # byte is memchr, where a count of one byte walks it byte by byte, four times the work).
        lines = raw[start:crlf_blank].split(b"\r\n")
        joined = b"".join(lines)
        if _CR not in joined and _LF not in joined:
            columns = _fields(lines)
            if columns is not None:
                over = crlf_blank + 2 - start > max_bytes
                return _block(columns, crlf_blank + 2, crlf_blank + 4, over)
    blank = _blank_line(raw, start, window_end)
    if blank is None:
        return _walk_header_lines(raw, start, window_end, window_end, window_end == end, max_bytes, False)
    block_end = blank[0] + (2 if raw.startswith(b"\r\n", blank[0]) else 1)
    split = _split_well_formed(raw, start, block_end)
    if split is not None:
        return _block(split, block_end, blank[1], block_end - start > max_bytes)
    return _walk_header_lines(raw, start, block_end, blank[1], True, max_bytes, True)


def _block(columns: _Columns, end: int, body_start: int, over_limit: bool) -> HeaderBlock:
    names, values, first, repeated = columns
    return HeaderBlock.from_columns(names, values, end, body_start, [], over_limit=over_limit, first=first,
                                    repeated=repeated)


def _blank_line(raw: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(start, end) of the first ``_BLANK_LINE`` match in ``raw[start:end]``, or None.

    Two ``bytes.find`` calls (memchr speed) over the first 8 KB, then over windows twice as long until one
    holds a candidate, give it when the text before has no bare CR; otherwise, or when nothing is found
    that way, the regex decides, unless there is no bare CR (then there is no blank line). Unbounded, a find
    for the ending an LF message never has would read a whole 25 MB part; doubled, the finds read at most
    four times as far as the blank line. (The regex, 8× slower than find, took 0.18 ms for one 18 KB field:
    0.6 s for a report returning 999 header blocks that size.)
    """
    near = min(end, start + 8192)
    while True:
        found = raw.find(b"\n\r\n", start, near)  # CRLF mail: the usual
        lf_lf = raw.find(b"\n\n", start, found + 1 if found >= 0 else near)  # only an earlier one matters
        if found >= 0 or lf_lf >= 0 or near >= end:
            break
        near = min(end, start + 2 * (near - start))
    if found < 0 and lf_lf < 0 and raw.count(b"\r", start, end) == raw.count(b"\r\n", start, end):
        return None  # without a bare CR, every blank line holds one of the two searched for: there is none
    if lf_lf >= 0:
        found = lf_lf
    if found >= 0 and raw.count(b"\r", start, found) == raw.count(b"\r\n", start, found + 1):
        first = found - 1 if found > start and raw[found - 1] == _CR else found
        return first, found + (2 if found == lf_lf else 3)
    match = _BLANK_LINE.search(raw, start, end)
    return None if match is None else (match.start(), match.end())


def well_formed_fields(raw: bytes, start: int, block_end: int) -> list[tuple[str, bytes]] | None:
    """The (name, value) fields of ``raw[start:block_end]`` when every line is a field or a continuation,
    else None (:func:`split_header_block`'s fast path, as pairs)."""
    split = _split_well_formed(raw, start, block_end)
    return None if split is None else list(zip(split[0], split[1], strict=True))


def _split_well_formed(raw: bytes, start: int, block_end: int) -> _Columns | None:
    """The names and values of ``raw[start:block_end]`` when every line is a field or a continuation, else None.

    The fast path of :func:`split_header_block` (issue 15): CRLF or LF endings, no bare CR, no mbox line,
    no junk. ``bytes.split`` cuts the lines at C speed and a known field name is one dict probe, tried first
    (a continuation line never hits it: no known name starts with white space): about 3× faster than one
    regex pass over every byte, which tests/envelope/test_header_split.py keeps as the reference. (Unfolding
    the block first with ``bytes.replace`` measured slower, and loses the leading white space of a value
    that starts on a continuation line.) The line walk handles everything else.
    """
    block = raw[start:block_end]
    if _CR in block:
        crlf = block.count(b"\r\n")
        if block.count(b"\r") != crlf:
            return None  # a bare CR: the line walk's rules
        lines = block.split(b"\r\n") if block.count(b"\n") == crlf else block.replace(b"\r\n", b"\n").split(b"\n")
    else:
        lines = block.split(b"\n")
    if lines.pop():
        return None  # the block ends inside a line
    return _fields(lines)


def _fields(lines: list[bytes]) -> _Columns | None:
    """The names, values, first values and repeated names of these header lines (without line endings), or
    None unless every line is a field or a continuation of one.

    The first value of each name and the names seen twice are noted as the lines go by: cheaper than
    building them afterwards (a dict from the reversed columns, a count per lookup in ``all``)."""
    if lines[0][:1] in (b" ", b"\t"):
        return None  # the block starts with a continuation
    known = _FIELD_NAMES
    names: list[str] = []
    values: list[bytes] = []
    first: dict[str, bytes] = {}
    repeated: set[str] = set()
    folds: list[bytes] = []  # continuation lines of the last field, joined when the next field starts (linear)
    last_is_first = False  # whether the last field is its name's first (its joined value goes into ``first``)
    for line in lines:
        raw_name, colon, value = line.partition(b":")
        name = known.get(raw_name)
        if name is None or not colon:
            if line[:1] in (b" ", b"\t"):
                # A continuation: unfolding removes only the line ending (RFC 5322 §2.2.3).
                folds.append(line)
                continue
            stripped = raw_name.rstrip(b" \t")
            if not colon or _NAME.fullmatch(stripped) is None:
                return None
            name = stripped.decode("ascii").lower()
            if len(known) >= _MAX_FIELD_NAMES:
                known.clear()  # (a message of invented names must not keep the real ones out for good)
            known[raw_name] = name
        if folds:
            _unfold(names, values, first, folds, last_is_first)
            folds = []
        value = value.lstrip(b" \t")
        last_is_first = name not in first
        if last_is_first:
            first[name] = value
        else:
            repeated.add(name)
        names.append(name)
        values.append(value)
    if folds:
        _unfold(names, values, first, folds, last_is_first)
    return names, values, first, repeated


def _unfold(names: list[str], values: list[bytes], first: dict[str, bytes], folds: list[bytes],
            is_first: bool) -> None:
    """Join the last field's value with its continuation lines."""
    values[-1] = b"".join([values[-1], *folds])
    if is_first:
        first[names[-1]] = values[-1]


# Raw field name (as written before the colon) → its lower-cased text, for the names mail repeats in every
# message (bounded, and emptied when full: a hostile message's 100,000 invented names must neither grow it
# nor fill it for good, so the next message's names are remembered again).
_FIELD_NAMES: dict[bytes, str] = {}
_MAX_FIELD_NAMES = 512


def forget_field_names() -> None:
    """Empty the table of known field names (benchmarks that time cold runs)."""
    _FIELD_NAMES.clear()


def _walk_header_lines(
    raw: bytes, start: int, block_end: int, body_start: int, end_seen: bool, max_bytes: int, blank_seen: bool
) -> HeaderBlock:
    """split_header_block's line walk, for blocks the fast path does not take (feedparser's rules).

    Recovery beyond feedparser only when a blank line closes the block (so the lines that follow a stray
    line are headers, not a body that started without a blank line).
    """
    defects: list[str] = []
    names: list[str] = []
    values: list[bytes] = []
    current: list[bytes] | None = None
    current_name = ""
    offset = start
    lines = raw[start:block_end].splitlines(keepends=True)
    for index, line in enumerate(lines):
        content = line.rstrip(b"\r\n")
        if content[:1] in (b" ", b"\t"):
            if current is None:
                if index == 0:
                    defects.append("first header line is a continuation")
            else:
                current.append(content)
            offset += len(line)
            continue
        if content.startswith(b"From ") and not _FROM_FIELD.match(content):
            # mbox "From " line (first line) or a misplaced one; feedparser skips both.
            if index:
                defects.append("misplaced 'From ' line in the header block")
            offset += len(line)
            continue
        match = _FIELD_NAME.match(content)
        if match is None and blank_seen and index + 1 < len(lines) and _LIKELY_FIELD.match(lines[index + 1]):
            # Real-world recovery (issue 15): a stray line followed by a field is not the body starting.
            # Before any field it is junk ("---- Original email message ----"); after one it is a folded
            # line that lost its leading white space, joined to its field as the fold would have been.
            if current is None and not names:
                defects.append("junk line before the header block skipped")
            elif current is not None:
                defects.append("header line without leading white space joined to the field before it")
                current.append(b" " + content)
            offset += len(line)
            continue
        if match is None:
            # feedparser: a line that is not a header ends the block and starts the body.
            defects.append("no blank line after the header block")
            block_end = body_start = offset
            end_seen = True
            break
        if current is not None:
            names.append(current_name)
            values.append(b"".join(current))
        if not match.group(1):
            defects.append("header line without a name")
            current = None
        else:
            current_name = match.group(1).decode("ascii").lower()
            current = [content[match.end() :].lstrip(b" \t")]
        offset += len(line)
    if current is not None:
        names.append(current_name)
        values.append(b"".join(current))
    over = block_end - start > max_bytes
    return HeaderBlock.from_columns(names, values, block_end, body_start, defects, over_limit=over, end_seen=end_seen)
