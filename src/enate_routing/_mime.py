"""A bounded MIME skeleton scanner for :mod:`enate_routing._envelope` (docs/semantics.md §3, §3.1.1).

Routing needs the header block, the part headers (for file names) and where each part's body lies — never
a decoded payload. The standard library's ``BytesParser`` reads and decodes everything, recurses once per
nesting level (``RecursionError`` near 1,000 levels) and parses structured headers in quadratic time, so a
hostile message can take seconds. This module instead:

* splits header blocks itself (:mod:`enate_routing._header_block`: a search for the blank line, then the
  header lines only), following the rules of ``email.feedparser`` so that well-formed mail gives the same
  fields;
* finds part boundaries with ``bytes.find`` on the body, never splitting bodies into lines;
* walks the MIME tree with an explicit stack, checking the depth and part limits as it goes;
* parses parameters (``boundary``, ``filename``, ``name``, ``charset``; RFC 2231 continuations and
  charsets) with :mod:`enate_routing._mime_params`, which answers as compat32's ``Message`` does in one
  linear pass (the standard library's ``_parseparam`` is quadratic), except that a file name given both
  ways is read from its RFC 2231 form, as mail readers show it;
* decodes RFC 2047 encoded words itself, because ``email.header.decode_header`` raises on one bad base64
  word and ``make_header`` inserts spaces that ``policy.default`` does not (``foo=?utf-8?q?x?=bar``);
  adjacent words in one charset are decoded together, as ``policy.default`` does for UTF-8.

Everything here works on bytes offsets into the raw message and never raises for any input; problems are
returned as short defect strings. Tests in ``tests/envelope`` compare the results with ``BytesParser``.
"""

from __future__ import annotations

import binascii
import itertools
import re
from dataclasses import dataclass, field
from email.utils import collapse_rfc2231_value

from ._header_block import HeaderBlock, split_header_block
from ._mime_params import PartHeaders

__all__ = [
    "NO_TEXT",
    "Entity",
    "HeaderBlock",
    "RootFields",
    "Skeleton",
    "TextSpan",
    "count_encoded_words",
    "decode_body",
    "decode_bytes",
    "decode_encoded_words",
    "decode_span",
    "first_text_leaf",
    "is_plain_single_part",
    "root_fields",
    "root_from_fields",
    "scan",
    "split_header_block",
    "text_span",
]

_CR, _LF, _SP, _HT = 13, 10, 32, 9

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


def _decode_charset(data: bytes, charset: str, defects: list[str] | None = None) -> str:
    """Decode ``data`` as ``charset``; an unknown or unusable one adds a defect to ``defects``, if given.

    Unknown charsets fall back to UTF-8, then latin-1. ``bytes.decode`` raises LookupError for unknown
    names and for non-text codecs (``base64``), UnicodeError for codecs that refuse ``errors="replace"``
    (``idna``) and ValueError for names with NUL bytes; all of these are "undecodable charset".
    """
    try:
        return _without_surrogates(data.decode(charset.strip(), "replace"))
    except (LookupError, UnicodeError, ValueError):
        if defects is not None:
            _add(defects, f"undecodable charset {charset[:40]!r}")
        return decode_bytes(data)[0]


# UTF-7 (``+2AA-``) and the escape codecs decode to lone surrogates, which no text encoding can write: a
# host's database, JSON file or terminal would refuse the subject. They become U+FFFD, as undecodable bytes do.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(text: str) -> str:
    return text if text.isascii() or _SURROGATE.search(text) is None else _SURROGATE.sub("\ufffd", text)


def _add(defects: list[str], defect: str) -> None:
    if defect not in defects:
        defects.append(defect)


def count_encoded_words(text: str) -> int:
    """The number of RFC 2047 encoded words in ``text`` (the docs/semantics.md §3.1.1 limit counts these)."""
    if text.count("=?") == 0:
        return 0
    return sum(1 for _ in _ENCODED_WORD.finditer(text))


def _word_bytes(match: re.Match[str]) -> tuple[str, bytes | None]:
    """One encoded word → (charset, its bytes); None bytes when its base64 cannot be decoded."""
    charset, kind, text = match.groups()
    if "*" in charset:
        charset = charset.partition("*")[0]  # RFC 2231 §5: =?charset*language?...
    encoded = text.encode("utf-8")
    if kind in "qQ":
        # RFC 2047 §4.2: '_' is a space and =XX a byte; a2b_qp(header=True) does exactly that and keeps
        # malformed escapes literally, as policy.default does.
        return charset, binascii.a2b_qp(encoded, header=True)
    # RFC 2047 §4.1. Like email._encoded_words.decode_b: repair missing padding, then retry leniently.
    padded = encoded + b"=" * (-len(encoded) % 4)
    try:
        return charset, binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        try:
            return charset, binascii.a2b_base64(encoded + b"==")
        except binascii.Error:
            return charset, None


_BAD_BASE64 = "undecodable base64 encoded word"


def decode_encoded_words(text: str) -> tuple[str, list[str]]:
    """Decode the RFC 2047 encoded words in an unstructured header value.

    White space between two adjacent encoded words is dropped (RFC 2047 §6.2); everything else is kept as
    written. Encoded words not delimited by white space are decoded too, as ``policy.default`` does.
    Adjacent words in one charset are decoded together: mailers split long text between words without
    regard to characters, so one word may end inside a UTF-8 sequence that the next one completes.
    Returns the text and the defects found (short strings without the header name).
    """
    if "=?" not in text:
        return text, []
    if text.count("=?") == 1:  # one word at most (most subjects and display names): no gaps to weigh, no runs
        word = _ENCODED_WORD.search(text)
        if word is None:
            return text, []
        charset, data = _word_bytes(word)
        if data is None:
            return text, [_BAD_BASE64]
        defects: list[str] = []
        return f"{text[: word.start()]}{_decode_charset(data, charset, defects)}{text[word.end() :]}", defects
    pieces: list[str] = []
    defects = []
    run: list[bytes] = []  # the bytes of the adjacent words so far, all in run_charset
    run_charset = ""
    last_end = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[last_end : match.start()]
        adjacent = last_end > 0 and not gap.strip(" \t")  # last_end > 0: a word came before
        charset, data = _word_bytes(match)
        if run and not (adjacent and data is not None and charset.lower() == run_charset.lower()):
            pieces.append(_decode_charset(b"".join(run), run_charset, defects))
            run = []
        if not adjacent:
            pieces.append(gap)
        if data is None:
            pieces.append(match.group(0))
            _add(defects, _BAD_BASE64)
        else:
            run.append(data)
            run_charset = charset
        last_end = match.end()
    if run:
        pieces.append(_decode_charset(b"".join(run), run_charset, defects))
    pieces.append(text[last_end:])
    return "".join(pieces), defects


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
    messages: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each attached message read


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
        raw_value = params.filename_param()
        defects.append("undecodable charset in file name")
        if isinstance(raw_value, tuple):
            name = collapse_rfc2231_value(("utf-8", raw_value[1], raw_value[2])).strip()
        else:
            name = None
    if not name:
        return None
    name = _without_surrogates(name)  # RFC 2231 charsets are decoded by the standard library
    if "=?" in name:
        name, word_defects = decode_encoded_words(name)
        defects.extend(f"{defect} in file name" for defect in word_defects)
    return name


# After this many '-' that start no delimiter, search for the whole delimiter until the next one is found.
_MAX_DASH_MISSES = 32


def _delimiters(raw: bytes, boundary: str, start: int, end: int) -> tuple[list[tuple[int, int]], bool]:
    """The parts between the delimiter lines of ``boundary`` in ``raw[start:end]`` (RFC 2046 §5.1.1).

    A delimiter line starts at a line start with ``--boundary``, may end with ``--`` (the close
    delimiter), then optional space/tab and a line ending — the same test as feedparser's boundaryre. The
    line ending before a delimiter belongs to it. Returns the part ranges and whether the close delimiter
    was seen.
    """
    try:
        needle = b"--" + boundary.encode("latin-1")  # the bytes of the header, which was read as latin-1
    except UnicodeEncodeError:
        # RFC 2231 decoded it beyond latin-1: no bytes of the body spell it, as no text of the standard
        # library's (surrogate-escaped) body does — never found.
        return [], False
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
    disposition = block.first("content-disposition")
    # (find, not ``in``: a bytes needle makes ``in`` build and discard a TypeError first; _header_block._CR)
    if disposition is not None and (not disposition.isascii() or disposition.lower().find(b"name") >= 0):
        return False
    content_type = block.first("content-type")
    if content_type is None:
        return True
    if not content_type.isascii():
        return False
    lowered = content_type.lower()
    return lowered.find(b"name") < 0 and not lowered.partition(b";")[0].strip().startswith((b"multipart", b"message"))


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
            parts, closed = _delimiters(raw, boundary, body_start, body_end)
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
                skeleton.messages.append((body_start, body_end))
            continue
        if name and not attached:
            skeleton.attachments.append(name)
        skeleton.leaves.append(
            Entity(block, latin, content_type, body_start, body_end, attached, name)
        )
    return skeleton


def first_text_leaf(skeleton: Skeleton) -> Entity | None:
    """The body reference tokens are searched in (docs/routing.md): the first text/plain leaf that is not an
    attachment (no file name, no ``Content-Disposition: attachment``) and not inside an attached message."""
    for leaf in skeleton.leaves:
        if leaf.content_type != "text/plain" or leaf.in_attached_message or leaf.filename:
            continue
        disposition = str(leaf.params.get("content-disposition", "")).partition(";")[0].strip().lower()
        if disposition != "attachment":
            return leaf
    return None


# Where a leaf's text lies and how to decode it: body start, body end, transfer encoding, charset.
TextSpan = tuple[int, int, str, str]
NO_TEXT: TextSpan = (0, 0, "", "us-ascii")  # decodes to ""
# What :func:`scan` reads of a message's own header block: where its body starts, and the first value of each
# of _PARAM_HEADERS (None: absent). Kept instead of the block, whose size grows with the header.
RootFields = tuple[int, tuple[bytes | None, ...]]


def root_fields(block: HeaderBlock) -> RootFields:
    """The :data:`RootFields` of ``block``."""
    first = block.first
    return block.body_start, (first("content-type"), first("content-disposition"), first("content-transfer-encoding"))


def root_from_fields(fields: RootFields) -> HeaderBlock:
    """A header block that :func:`scan` reads as it reads the block ``fields`` came from."""
    body_start, values = fields
    present = [(name, value) for name, value in zip(_PARAM_HEADERS, values, strict=True) if value is not None]
    return HeaderBlock.from_columns([n for n, _ in present], [v for _, v in present], body_start, body_start, [])


def text_span(entity: Entity) -> TextSpan:
    """What :func:`decode_span` needs of ``entity``: a few values, where the entity holds its whole header block."""
    encoding = str(entity.params.get("content-transfer-encoding", "")).strip().lower()
    return entity.body_start, entity.body_end, encoding, entity.params.get_content_charset() or "us-ascii"


def decode_body(raw: bytes, entity: Entity) -> str:
    """The decoded text of a leaf (:func:`decode_span` of its :func:`text_span`)."""
    return decode_span(raw, text_span(entity))


def decode_span(raw: bytes, span: TextSpan) -> str:
    """The decoded text of a leaf: transfer encoding undone (RFC 2045 §6), then its charset.

    Base64 and quoted-printable are decoded leniently (junk characters skipped, as mail readers do); an
    unknown charset falls back to UTF-8, then latin-1.
    """
    start, end, encoding, charset = span
    data = raw[start:end]
    if encoding == "base64":
        try:
            data = binascii.a2b_base64(data)
        except binascii.Error:
            # A truncated last group: keep the complete 4-character groups of the base64 alphabet.
            alphabet = _NOT_BASE64.sub(b"", data)
            data = binascii.a2b_base64(alphabet[: len(alphabet) - len(alphabet) % 4])
    elif encoding == "quoted-printable":
        data = binascii.a2b_qp(data)
    if charset in ("us-ascii", "ascii"):
        return decode_bytes(data)[0]
    return _decode_charset(data, charset)
