"""A bounded MIME skeleton scanner for :mod:`enate_routing._envelope` (docs/semantics.md §3, §3.1.1).

Routing needs the header block, the part headers (for file names) and where each part's body lies — never
a decoded payload. The standard library's ``BytesParser`` reads and decodes everything, recurses once per
nesting level (``RecursionError`` near 1,000 levels) and parses structured headers in quadratic time, so a
hostile message can take seconds. This module instead:

* splits header blocks itself (one regex search for the blank line, then a walk over the header lines
  only), following the rules of ``email.feedparser`` so that well-formed mail gives the same fields;
* finds part boundaries with ``bytes.find`` on the body, never splitting bodies into lines;
* walks the MIME tree with an explicit stack, checking the depth and part limits as it goes;
* parses parameters (``boundary``, ``filename``, ``name``, ``charset``; RFC 2231 continuations and
  charsets) with :mod:`enate_routing._mime_params`, which answers as compat32's ``Message`` does in one
  linear pass (the standard library's ``_parseparam`` is quadratic);
* decodes RFC 2047 encoded words itself, because ``email.header.decode_header`` raises on one bad base64
  word and ``make_header`` inserts spaces that ``policy.default`` does not (``foo=?utf-8?q?x?=bar``).

Everything here works on bytes offsets into the raw message and never raises for any input; problems are
returned as short defect strings. Tests in ``tests/envelope`` compare the results with ``BytesParser``.
"""

from __future__ import annotations

import binascii
import itertools
import re
from dataclasses import dataclass, field
from email.utils import collapse_rfc2231_value

from ._mime_params import PartHeaders

__all__ = [
    "Entity",
    "HeaderBlock",
    "Skeleton",
    "count_encoded_words",
    "decode_body",
    "decode_bytes",
    "decode_encoded_words",
    "is_plain_single_part",
    "scan",
    "split_header_block",
]

_CR, _LF, _SP, _HT = 13, 10, 32, 9

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
# Real-world mail also puts spaces inside the encoded text (``=?us-ascii?Q?ABC / 123?=``), which RFC 2047
# forbids and mail readers accept (issue 15); the text still cannot hold '?' or a line break, so a match
# never reaches past the next '?='.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\r\n]*)\?=")

_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
# Content types whose body is a whole message (RFC 2046 §5.2.1, RFC 6532 §3.7).
MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
# Transfer encodings under which an attached message's bytes are readable as-is (RFC 2046 §5.2.1 allows
# only these for message/rfc822); an encoded one is left opaque, as the standard library does.
_IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})


def decode_bytes(value: bytes) -> tuple[str, bool]:
    """Header bytes → text: ASCII or UTF-8 (RFC 6532), else latin-1. The flag says latin-1 was needed."""
    if value.isascii():
        return value.decode("ascii"), False
    try:
        return value.decode("utf-8"), False
    except UnicodeDecodeError:
        return value.decode("latin-1"), True


def _decode_charset(data: bytes, charset: str) -> tuple[str, bool]:
    """Decode ``data`` as ``charset``; the flag is False when the charset is unknown or unusable.

    Unknown charsets fall back to UTF-8, then latin-1. ``bytes.decode`` raises LookupError for unknown
    names and for non-text codecs (``base64``), UnicodeError for codecs that refuse ``errors="replace"``
    (``idna``) and ValueError for names with NUL bytes; all of these are "undecodable charset".
    """
    try:
        return data.decode(charset.strip(), "replace"), True
    except (LookupError, UnicodeError, ValueError):
        text, _ = decode_bytes(data)
        return text, False


def count_encoded_words(text: str) -> int:
    """The number of RFC 2047 encoded words in ``text`` (the docs/semantics.md §3.1.1 limit counts these)."""
    if text.count("=?") == 0:
        return 0
    return sum(1 for _ in _ENCODED_WORD.finditer(text))


def _decode_word(match: re.Match[str]) -> tuple[str, str | None]:
    """One encoded word → (text, defect or None)."""
    charset = match.group(1).partition("*")[0]  # RFC 2231 §5: =?charset*language?...
    encoded = match.group(3).encode("utf-8")
    defect = None
    if match.group(2) in "qQ":
        # RFC 2047 §4.2: '_' is a space and =XX a byte; a2b_qp(header=True) does exactly that and keeps
        # malformed escapes literally, as policy.default does.
        data = binascii.a2b_qp(encoded, header=True)
    else:
        # RFC 2047 §4.1. Like email._encoded_words.decode_b: repair missing padding, then retry leniently.
        padded = encoded + b"=" * (-len(encoded) % 4)
        try:
            data = binascii.a2b_base64(padded, strict_mode=True)
        except binascii.Error:
            try:
                data = binascii.a2b_base64(encoded + b"==")
            except binascii.Error:
                return match.group(0), "undecodable base64 encoded word"
    text, known = _decode_charset(data, charset)
    if not known:
        defect = f"undecodable charset {charset[:40]!r}"
    return text, defect


def decode_encoded_words(text: str) -> tuple[str, list[str]]:
    """Decode the RFC 2047 encoded words in an unstructured header value.

    White space between two adjacent encoded words is dropped (RFC 2047 §6.2); everything else is kept as
    written. Encoded words not delimited by white space are decoded too, as ``policy.default`` does.
    Returns the text and the defects found (short strings without the header name).
    """
    if "=?" not in text:
        return text, []
    pieces: list[str] = []
    defects: list[str] = []
    last_end = 0
    previous_word_end = -1
    for match in _ENCODED_WORD.finditer(text):
        gap = text[last_end : match.start()]
        if not (previous_word_end == last_end and not gap.strip(" \t")):
            pieces.append(gap)
        decoded, defect = _decode_word(match)
        pieces.append(decoded)
        if defect is not None and defect not in defects:
            defects.append(defect)
        last_end = previous_word_end = match.end()
    pieces.append(text[last_end:])
    return "".join(pieces), defects


@dataclass(slots=True)
class HeaderBlock:
    """The fields of one header block; ``fields`` are (lower-cased name, unfolded raw value) pairs."""

    fields: list[tuple[str, bytes]]
    end: int  # offset just past the last header line (its line ending included)
    body_start: int  # offset of the first body byte
    defects: list[str]
    over_limit: bool = False
    end_seen: bool = True  # False when the search window ended before the block did

    _index: dict[str, list[bytes]] | None = field(default=None, repr=False, compare=False)

    def _by_name(self) -> dict[str, list[bytes]]:
        """Field values by name, built once: the envelope asks for ~30 names, a block may hold 100,000 fields."""
        if self._index is None:
            index: dict[str, list[bytes]] = {}
            for key, value in self.fields:
                index.setdefault(key, []).append(value)
            self._index = index
        return self._index

    def first(self, name: str) -> bytes | None:
        """The raw value of the first field called ``name`` (lower-case), or None."""
        values = (self._index if self._index is not None else self._by_name()).get(name)
        return values[0] if values else None

    def all(self, name: str) -> list[bytes]:
        """The raw values of every field called ``name`` (lower-case), in order."""
        return list((self._index if self._index is not None else self._by_name()).get(name, ()))


def split_header_block(raw: bytes, start: int, end: int, max_bytes: int) -> HeaderBlock:
    """Split the header block of the entity at ``raw[start:end]`` into fields.

    Follows ``email.feedparser``: the block ends at the first blank line, or at the first line that is
    neither a field nor a continuation (a defect: no blank line); a first line ``From ...`` is an mbox
    separator and is skipped; continuation lines start with space or tab and are unfolded by removing the
    line endings (RFC 5322 §2.2.3). Only ``max_bytes`` (+ a blank line) are ever searched; when the block
    is longer, ``over_limit`` is set and the fields read so far are returned.
    """
    defects: list[str] = []
    leading = _LEADING_EOL.match(raw, start, end)
    if leading is not None:  # no header fields at all: the body starts after this blank line
        return HeaderBlock([], start, leading.end(), defects)
    window_end = min(end, start + max_bytes + 4)
    blank = _blank_line(raw, start, window_end)
    if blank is not None:
        block_end = blank[0] + (2 if raw.startswith(b"\r\n", blank[0]) else 1)
        body_start = blank[1]
    else:
        block_end = body_start = window_end
    end_seen = blank is not None or window_end == end
    fields = well_formed_fields(raw, start, block_end) if blank is not None else None
    if fields is not None:
        return HeaderBlock(fields, block_end, body_start, defects, over_limit=block_end - start > max_bytes)
    return _walk_header_lines(raw, start, block_end, body_start, end_seen, max_bytes, blank is not None)


def _blank_line(raw: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(start, end) of the first ``_BLANK_LINE`` match in ``raw[start:end]``, or None.

    Two ``bytes.find`` calls (memchr speed) over the first 8 KB give it when the text before has no bare
    CR; otherwise, or when nothing is found that way, the regex decides. (Unbounded, a find for the
    ending a CRLF message never has would read a whole 25 MB part.)
    """
    near = min(end, start + 8192)
    lf_lf, lf_crlf = raw.find(b"\n\n", start, near), raw.find(b"\n\r\n", start, near)
    found = min(i for i in (lf_lf, lf_crlf) if i >= 0) if lf_lf >= 0 or lf_crlf >= 0 else -1
    if found >= 0 and raw.count(b"\r", start, found) == raw.count(b"\r\n", start, found + 1):
        first = found - 1 if found > start and raw[found - 1] == _CR else found
        return first, found + (2 if found == lf_lf else 3)
    match = _BLANK_LINE.search(raw, start, end)
    return None if match is None else (match.start(), match.end())


def well_formed_fields(raw: bytes, start: int, block_end: int) -> list[tuple[str, bytes]] | None:
    """The fields of ``raw[start:block_end]`` when every line is a field or a continuation, else None.

    The fast path of :func:`split_header_block` (issue 15): CRLF or LF endings, no bare CR, no mbox line,
    no junk. ``bytes.split`` cuts the lines at C speed and a known field name is one dict probe: about 3×
    faster than one regex pass over every byte, which tests/envelope/test_header_split.py keeps as the
    reference. The line walk handles everything else.
    """
    block = raw[start:block_end]
    if b"\r" in block:
        if block.count(b"\r") != block.count(b"\r\n"):
            return None  # a bare CR: the line walk's rules
        block = block.replace(b"\r\n", b"\n")
    lines = block.split(b"\n")
    if lines.pop() or lines[0][:1] in (b" ", b"\t"):
        return None  # the block ends inside a line, or starts with a continuation
    names = _FIELD_NAMES
    fields: list[tuple[str, bytes]] = []
    name = ""
    parts: list[bytes] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            parts.append(line)  # a continuation: unfolding removes only the line ending (RFC 5322 §2.2.3)
            continue
        if parts:
            fields.append((name, parts[0] if len(parts) == 1 else b"".join(parts)))
        raw_name, colon, value = line.partition(b":")
        if not colon:
            return None
        raw_name = raw_name.rstrip(b" \t")
        known = names.get(raw_name)
        if known is None:
            if _NAME.fullmatch(raw_name) is None:
                return None
            known = _field_name(raw_name)
        name = known
        parts = [value.lstrip(b" \t")]
    if parts:
        fields.append((name, parts[0] if len(parts) == 1 else b"".join(parts)))
    return fields


# Raw field name → its lower-cased text, for the names mail repeats in every message (bounded: a hostile
# message's 100,000 invented names must not grow it).
_FIELD_NAMES: dict[bytes, str] = {}
_MAX_FIELD_NAMES = 512


def _field_name(raw_name: bytes) -> str:
    name = raw_name.decode("ascii").lower()
    if len(_FIELD_NAMES) < _MAX_FIELD_NAMES:
        _FIELD_NAMES[raw_name] = name
    return name


def _walk_header_lines(
    raw: bytes, start: int, block_end: int, body_start: int, end_seen: bool, max_bytes: int, blank_seen: bool
) -> HeaderBlock:
    """split_header_block's line walk, for blocks the fast path does not take (feedparser's rules).

    Recovery beyond feedparser only when a blank line closes the block (so the lines that follow a stray
    line are headers, not a body that started without a blank line).
    """
    defects: list[str] = []
    fields: list[tuple[str, bytes]] = []
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
            if current is None and not fields:
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
            fields.append((current_name, b"".join(current)))
        if not match.group(1):
            defects.append("header line without a name")
            current = None
        else:
            current_name = match.group(1).decode("ascii").lower()
            current = [content[match.end() :].lstrip(b" \t")]
        offset += len(line)
    if current is not None:
        fields.append((current_name, b"".join(current)))
    over = block_end - start > max_bytes
    return HeaderBlock(fields, block_end, body_start, defects, over_limit=over, end_seen=end_seen)


@dataclass(slots=True)
class Entity:
    """One MIME entity: its headers, where its body lies, and how it sits in the tree."""

    headers: HeaderBlock
    params: PartHeaders  # Content-Type / -Disposition / -Transfer-Encoding, read like compat32's Message
    content_type: str
    body_start: int
    body_end: int
    in_attached_message: bool
    filename: str | None


@dataclass(slots=True)
class Skeleton:
    """The result of :func:`scan`: the root entity, the leaves in document order, limits, defects."""

    root: HeaderBlock
    root_content_type: str
    attachments: list[str] = field(default_factory=list)
    leaves: list[Entity] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    quarantine_reason: str | None = None
    header_over_limit: bool = False


_PARAM_HEADERS = ("content-type", "content-disposition", "content-transfer-encoding")


def _params(block: HeaderBlock, default_type: str, codec: str) -> PartHeaders:
    """The first of each MIME header of ``block``, decoded with ``codec``, for parameter parsing."""
    values = {}
    for name in _PARAM_HEADERS:
        value = block.first(name)
        if value is not None:
            values[name] = value.decode(codec, "replace")
    return PartHeaders(values, default_type)


def _filename(block: HeaderBlock, latin: PartHeaders, default_type: str, defects: list[str]) -> str | None:
    """The part's file name: Content-Disposition ``filename``, else Content-Type ``name`` (docs/semantics.md §3).

    RFC 2231 (continuations, charsets) is decoded as ``Message.get_filename`` does; RFC 2047 encoded words,
    which many mailers put in quoted names, are decoded afterwards as ``policy.default`` does.
    """
    params = latin
    if any(not (block.first(name) or b"").isascii() for name in _PARAM_HEADERS[:2]):
        # Raw 8-bit file names: read UTF-8 first (RFC 6532), latin-1 only if that fails.
        params = _params(block, default_type, "utf-8")
        if any(
            decode_bytes(block.first(name) or b"")[1] for name in _PARAM_HEADERS[:2]
        ):  # not UTF-8 after all
            params = latin
            defects.append("8-bit file name is not UTF-8; read as latin-1")
    try:
        name = params.get_filename()
    except (LookupError, UnicodeError, ValueError):
        # collapse_rfc2231_value lets codec errors through for codecs such as idna; retry as UTF-8.
        raw_value = params.get_param("filename", "content-disposition")
        if raw_value is None:
            raw_value = params.get_param("name")
        defects.append("undecodable charset in file name")
        if isinstance(raw_value, tuple):
            name = collapse_rfc2231_value(("utf-8", raw_value[1], raw_value[2])).strip()
        else:
            name = None
    if not name:
        return None
    if "=?" in name:
        name, word_defects = decode_encoded_words(name)
        defects.extend(f"{defect} in file name" for defect in word_defects)
    return name


# After this many '-' that start no delimiter, search for the whole delimiter until the next one is found.
_MAX_DASH_MISSES = 32


def _delimiters(raw: bytes, boundary: bytes, start: int, end: int) -> tuple[list[tuple[int, int]], bool]:
    """The parts between the delimiter lines of ``boundary`` in ``raw[start:end]`` (RFC 2046 §5.1.1).

    A delimiter line starts at a line start with ``--boundary``, may end with ``--`` (the close
    delimiter), then optional space/tab and a line ending — the same test as feedparser's boundaryre. The
    line ending before a delimiter belongs to it. Returns the part ranges and whether the close delimiter
    was seen.
    """
    needle = b"--" + boundary
    found: list[tuple[int, int]] = []  # (start of the delimiter incl. its preceding EOL, end of its line)
    closed = False
    position = start
    misses = 0
    while True:
        if misses < _MAX_DASH_MISSES:
            # Jump from '-' to '-' (memchr; base64 bodies have none), ~10x faster than the two-way search
            # of bytes.find for the whole needle, which text full of hyphens would need instead.
            index = raw.find(b"-", position, end)
            if index >= 0 and not raw.startswith(needle, index, end):
                misses += 1
                position = index + 1
                continue
        else:
            index = raw.find(needle, position, end)
        if index < 0:
            break
        position = index + 1
        if index != start and raw[index - 1] not in (_CR, _LF):
            continue
        cursor = index + len(needle)
        is_close = raw.startswith(b"--", cursor, end)
        if is_close:
            cursor += 2
        while cursor < end and raw[cursor] in (_SP, _HT):
            cursor += 1
        if cursor < end and raw[cursor] not in (_CR, _LF):
            continue  # text after the boundary: not a delimiter line
        if raw.startswith(b"\r\n", cursor, end):
            cursor += 2
        elif cursor < end:
            cursor += 1
        before = index
        if index > start and raw[index - 1] == _LF and index - 1 > start and raw[index - 2] == _CR:
            before = index - 2
        elif index > start:
            before = index - 1
        found.append((before, cursor))
        position = cursor
        misses = 0
        if is_close:
            closed = True
            break
    parts = []
    for (_, part_start), (next_before, _) in itertools.pairwise(found):
        parts.append((part_start, max(part_start, next_before)))
    if found and not closed:
        parts.append((found[-1][1], end))
    return parts, closed


def is_plain_single_part(block: HeaderBlock) -> bool:
    """True when :func:`scan` with this root block would find no attachment and no defect (issue 15): an
    ASCII Content-Type neither multipart nor message (or none), an ASCII Content-Disposition, neither
    mentioning ``name``. Most small mail; the envelope then skips the scan. Any doubt says False."""
    content_type = block.first("content-type")
    disposition = block.first("content-disposition")
    for value in (content_type, disposition):
        if value is not None and (not value.isascii() or b"name" in value.lower()):
            return False
    if content_type is None:
        return True
    main_type = content_type.partition(b";")[0].strip().lower()
    return not (main_type.startswith(b"multipart") or main_type.startswith(b"message"))


def scan(
    raw: bytes, *, root: HeaderBlock | None = None, max_header_bytes: int, max_depth: int, max_parts: int
) -> Skeleton:
    """Walk the MIME tree of ``raw`` without recursion, stopping at the first limit exceeded.

    Depth (docs/semantics.md §3.1.1): the message is depth 1 and each nested container — a multipart, or an attached
    message — adds one. Parts: every body part between boundaries, attached messages included. Attachments
    (docs/semantics.md §3): leaves with a file name, and each attached message once (its file name, or ``""``); parts
    inside an attached message are walked for the limits but never listed. ``root`` is the message's
    header block when the caller has already split it; the root block's own defects are the caller's to
    report.
    """
    if root is None:
        root = split_header_block(raw, 0, len(raw), max_header_bytes)
    skeleton = Skeleton(root=root, root_content_type="text/plain", header_over_limit=root.over_limit)
    if root.over_limit:
        size = f"{root.end}" if root.end_seen else f"{max_header_bytes + 4}+"
        skeleton.quarantine_reason = f"header block size {size} exceeds the limit of {max_header_bytes}"
        return skeleton
    parts_seen = 0
    # (header block or None to split, start, end, container level, inside attached message, default type)
    stack: list[tuple[HeaderBlock | None, int, int, int, bool, str]] = [
        (root, 0, len(raw), 0, False, "text/plain")
    ]
    while stack:
        block, start, end, level, attached, default_type = stack.pop()
        if block is None:
            block = split_header_block(raw, start, end, max_header_bytes)
            skeleton.defects.extend(block.defects)
        latin = _params(block, default_type, "latin-1")
        content_type = latin.get_content_type()
        is_root = block is root
        if is_root:
            skeleton.root_content_type = content_type
        body_start, body_end = min(block.body_start, end), end
        is_message = content_type in MESSAGE_TYPES
        is_multipart = content_type.startswith("multipart/")
        if is_root or is_message or is_multipart:
            level += 1
            if level > max_depth:
                skeleton.quarantine_reason = f"MIME depth {level} exceeds the limit of {max_depth}"
                return skeleton
        if is_multipart:
            boundary = latin.get_boundary()
            if not boundary:
                skeleton.defects.append(f"{content_type} without a boundary")
                continue
            parts, closed = _delimiters(raw, boundary.encode("latin-1"), body_start, body_end)
            if not parts:
                skeleton.defects.append(f"no boundary delimiter found in {content_type}")
            elif not closed:
                skeleton.defects.append(f"missing closing boundary in {content_type}")
            parts_seen += len(parts)
            if parts_seen > max_parts:
                skeleton.quarantine_reason = f"MIME part count {parts_seen} exceeds the limit of {max_parts}"
                return skeleton
            # RFC 2046 §5.1.5: in a digest, a part without Content-Type is a message/rfc822.
            child_default = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
            for part_start, part_end in reversed(parts):
                stack.append((None, part_start, part_end, level, attached, child_default))
            continue
        name = _filename(block, latin, default_type, skeleton.defects)
        if is_message:
            if not attached:
                skeleton.attachments.append(name or "")
            encoding = str(latin.get("content-transfer-encoding", "")).strip().lower()
            if encoding in _IDENTITY_ENCODINGS:
                stack.append((None, body_start, body_end, level, True, "text/plain"))
            continue
        if name and not attached:
            skeleton.attachments.append(name)
        skeleton.leaves.append(
            Entity(block, latin, content_type, body_start, body_end, attached, name)
        )
    return skeleton


def decode_body(raw: bytes, entity: Entity) -> str:
    """The decoded text of a leaf: transfer encoding undone (RFC 2045 §6), then its charset.

    Base64 and quoted-printable are decoded leniently (junk characters skipped, as mail readers do); an
    unknown charset falls back to UTF-8, then latin-1.
    """
    data = raw[entity.body_start : entity.body_end]
    encoding = str(entity.params.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        try:
            data = binascii.a2b_base64(data)
        except binascii.Error:
            # A truncated last group: keep the complete 4-character groups of the base64 alphabet.
            alphabet = _NOT_BASE64.sub(b"", data)
            data = binascii.a2b_base64(alphabet[: len(alphabet) - len(alphabet) % 4])
    elif encoding == "quoted-printable":
        data = binascii.a2b_qp(data)
    charset = entity.params.get_content_charset() or "us-ascii"
    if charset in ("us-ascii", "ascii"):
        return decode_bytes(data)[0]
    return _decode_charset(data, charset)[0]
