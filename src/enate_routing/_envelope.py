"""Raw bytes → a frozen :class:`Envelope` of the facts routing needs (docs/semantics.md §3, §3.1, §3.1.1, §3.4, §3.5).

The envelope is parsed once; every address in it is already normalised (``patterns.normalize_address``),
so the routers only compare strings. The raw bytes stay the source of truth.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from . import _mime
from ._address_lists import (
    ADDRESS,
    address_count,
    most_addresses,
    parse_address_list,
    simple_addresses,
    without_quotes_or_comments,
)
from ._charset_guess import guess_undeclared, likely_charset
from ._frozen import direct_init
from ._parse_limits import ParseLimits
from ._patterns import LONGEST_REMEMBERED_LIST, MAX_ADDRESS_OCTETS, normalize_address
from ._priority import PRIORITY_FIELDS, PRIORITY_NAMES, says_important

__all__ = ["Envelope", "Recipient", "RecipientSource", "returned_ids", "scan_again"]

_DEFAULT_LIMITS = ParseLimits()  # frozen, so one shared default is safe
RecipientSource = Literal["to", "cc", "delivered-to", "x-original-to", "envelope"]


@direct_init
@dataclass(frozen=True, slots=True)
class Recipient:
    """A normalised recipient address and the first header (or the envelope) it was seen in.

    Sources are ranked To, Cc, Delivered-To, X-Original-To, envelope; an address seen in several keeps
    the first of these.
    """

    address: str
    source: RecipientSource
    _make: ClassVar[Callable[[str, RecipientSource], Recipient]]  # set by direct_init


@direct_init
@dataclass(frozen=True, slots=True)
class Envelope:
    """The routing facts of one email. Build it with :meth:`from_bytes`; tests may build it directly."""

    message_id: str | None = None
    sender: str | None = None
    sender_name: str = ""
    recipients: tuple[Recipient, ...] = ()
    subject: str = ""
    attachments: tuple[str, ...] = ()
    important: bool = False
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    auto_submitted: str | None = None
    precedence: str | None = None
    x_autoreply: bool = False
    x_auto_response_suppress: str | None = None
    list_id: str | None = None
    return_path: str | None = None
    x_loop: tuple[str, ...] = ()
    is_delivery_report: bool = False
    size: int = 0
    defects: tuple[str, ...] = ()
    quarantine_reason: str | None = None
    raw: bytes = field(default=b"", repr=False)
    # What from_bytes learnt of the body text, so plain_text need not split or scan again: where the MIME scan
    # found it (_mime.TextSpan), or, when single-part mail skipped the scan, what the scan reads of the header
    # (_mime.RootFields); None for an envelope built directly (plain_text scans).
    _text: _mime.TextSpan | _mime.RootFields | None = field(default=None, repr=False, compare=False)
    _make: ClassVar[Callable[..., Envelope]]  # set by direct_init: every field, positional

    @classmethod
    def from_bytes(
        cls, raw: bytes, *, envelope_recipients: Iterable[str] = (), limits: ParseLimits = _DEFAULT_LIMITS
    ) -> Envelope:
        """Parse ``raw`` into its routing facts. Never raises, for any bytes (docs/semantics.md §3.1.1).

        ``envelope_recipients`` are the SMTP ``RCPT TO`` addresses when the transport knows them. A message
        past one of ``limits`` comes back with ``quarantine_reason`` set, its raw bytes, and the facts
        that could be read safely; anything malformed but within limits is recorded in ``defects``.
        """
        data = bytes(raw)
        try:
            return _read(data, envelope_recipients, limits)
        except Exception as exc:  # noqa: BLE001 — the contract is "never raises"; quarantine, never route
            reason = f"parser error: {type(exc).__name__}"
            return cls(size=len(data), raw=data, defects=(reason,), quarantine_reason=reason)

    def plain_text(self) -> str:
        """The decoded text/plain body (semantics.md §3.4 reference tokens), or "" when there is none. Never raises.

        The first text/plain leaf that is not an attachment and not inside an attached message; decoded on each
        call, because routing itself reads bodies only for ``[linking] search_body`` (docs/semantics.md §3.4).
        Where from_bytes scanned the MIME tree, the leaf is where that scan found it; otherwise it is found now.
        """
        if self.quarantine_reason is not None or not self.raw:
            return ""
        try:
            text = self._text
            if text is None:
                return _plain_text(self.raw)
            if len(text) == 2:  # RootFields
                return _plain_text(self.raw, _mime.root_from_fields(text))
            return _mime.decode_span(self.raw, text)
        except Exception:  # noqa: BLE001 — a body that cannot be decoded simply has no text to search
            return ""

    @property
    def automatic_reason(self) -> str | None:
        """Why this mail is automatic, so that no acknowledgement is sent to it (docs/semantics.md §3.5), or None.

        Checked in this order: ``Auto-Submitted`` other than ``no`` (RFC 3834 §5), ``Precedence``
        bulk/junk/list, ``X-Autoreply``, ``X-Auto-Response-Suppress``, ``List-Id`` (RFC 2919), a null return
        path ``<>`` (RFC 5321 §4.5.5), a delivery report (multipart/report, RFC 6522), a sender local part
        such as ``mailer-daemon`` or ``no-reply``.
        """
        if self.auto_submitted is not None:
            # RFC 3834 §5: the keyword, before any parameters or comment ("auto-generated (timeout)").
            match = _KEYWORD.match(self.auto_submitted)
            keyword = match.group() if match else ""
            if keyword and keyword != "no":
                return f"auto-submitted: {keyword}"
        if self.precedence is not None:
            keyword = self.precedence.partition(";")[0].strip()
            if keyword in _BULK_PRECEDENCE:
                return f"precedence: {keyword}"
        if self.x_autoreply:
            return "x-autoreply"
        if self.x_auto_response_suppress is not None:
            return "x-auto-response-suppress"
        if self.list_id is not None:
            return "list-id"
        if self.return_path == "":
            return "null return path"
        if self.is_delivery_report:
            return "delivery report"
        if self.sender is not None:
            local = self.sender.rpartition("@")[0].partition("+")[0]
            if local in _AUTOMATIC_LOCAL_PARTS:
                return f"sender {local}"
        return None


_KEYWORD = re.compile(r"[^\s;(]+")
_EMPTY_ENTRY = ("", "")
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
# The fields automatic_reason reads (besides Return-Path): absent from most mail.
_AUTOMATIC_FIELDS = frozenset({"auto-submitted", "precedence", "x-autoreply", "x-auto-response-suppress", "list-id"})
# docs/semantics.md §3.5: mailer-daemon, postmaster, no-reply (and its usual spellings).
_AUTOMATIC_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "postmaster", "no-reply", "noreply", "donotreply", "do-not-reply"}
)
_MESSAGE_ID = re.compile(r"<([^<>]*)>")
_PARENTHESES = re.compile(r"[()]")
# getaddresses recurses once per nested comment level; far below the interpreter's recursion limit.
_MAX_COMMENT_NESTING = 32
_MAX_GROUPS = 32  # ':' outside quotes and comments; a real list has one or two groups
# Defects kept per message: each is a short line for a person; thousands say nothing more than their count.
_MAX_DEFECTS = 100
# Longest address header handed to getaddresses, per allowed address: longer means padding, not addresses.
_CHARS_PER_ADDRESS = 256
# Entry ends (',', '<', ... quoted or not) per allowed address: getaddresses skips the character after an address
# in angle brackets, so in ``<a@b" <<<…`` the quote opens nothing (docs/envelope.md, Limits).
_ENDS_PER_ADDRESS = 8


_RECIPIENT_SOURCES: tuple[RecipientSource, ...] = ("to", "cc", "delivered-to", "x-original-to")
# Recipients recur mail after mail (the mailbox, its customers): one shared object each (they are frozen), a
# cache hit costing a third of building one. Only deliverable lengths and lists: the table stays small.
_SHARED_RECIPIENT_CHARS = 2 * MAX_ADDRESS_OCTETS
_shared_recipient = functools.lru_cache(maxsize=16384)(Recipient._make)

# Two or more bare addresses separated by white space only (no commas, names or brackets).
_SPACE_SEPARATED = re.compile(rf"[ \t]*{ADDRESS}(?:[ \t]+{ADDRESS})+[ \t]*")
# A Return-Path of one bracketed plain address (bytes: checked before any decoding).
_BRACKETED_ADDRESS = re.compile(rb"[ \t]*<(" + ADDRESS.encode("ascii") + rb")>[ \t]*")

@functools.lru_cache(maxsize=64)
def _label(name: str) -> str:
    """``x-original-to`` → ``X-Original-To``, for defect messages."""
    return "-".join(word.capitalize() for word in name.split("-"))


def _short(text: str) -> str:
    """A value quoted in a defect message, cut to keep defects short."""
    return repr(text if len(text) <= 60 else text[:57] + "...")


class _Reader:
    """Turns header values into facts, collecting defects and the first limit exceeded."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self._defects: dict[str, None] = {}  # an ordered set: 70,000 distinct defects stay linear
        self.reason: str | None = None
        self.block: _mime.HeaderBlock | None = None  # the message's header block, once split
        self._charset: str | None = None

    @property
    def defects(self) -> tuple[str, ...]:
        """The defects found, in order, each once; past _MAX_DEFECTS only their count is kept."""
        if len(self._defects) <= _MAX_DEFECTS:
            return tuple(self._defects)
        kept = list(itertools.islice(self._defects, _MAX_DEFECTS))
        return (*kept, f"{len(self._defects) - _MAX_DEFECTS} more defects not listed")

    def defect(self, text: str) -> None:
        self._defects[text] = None

    def quarantine(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def text(self, name: str, value: bytes) -> str:
        """Unfolded header bytes → text: UTF-8, else a likely charset (Shift-JIS, GB2312, Windows-1252,
        latin-1; ``_charset_guess``) with a defect naming it."""
        if value.isascii():  # nearly every header: skip the call
            return value.decode("ascii")
        text, latin = _mime.decode_bytes(value)
        if latin:
            text, charset = guess_undeclared(value, self._message_charset())
            self.defect(f"8-bit bytes in {_label(name)} are not UTF-8; read as {charset}")
        return text

    def _message_charset(self) -> str | None:
        """The likely charset of all undeclared 8-bit header bytes of the message, found once."""
        if self._charset is None and self.block is not None:
            undeclared = [v for _, v in self.block.fields if not v.isascii() and _mime.decode_bytes(v)[1]]
            self._charset = likely_charset(b"\n".join(undeclared)) if undeclared else ""
        return self._charset or None

    def within_word_limit(self, name: str, text: str) -> bool:
        """False (and quarantine) past the encoded-words-per-header limit (docs/semantics.md §3.1.1)."""
        limit = self.limits.max_encoded_words_per_header
        if text.count("=?") <= limit:
            return True
        count = _mime.count_encoded_words(text)
        if count <= limit:
            return True
        self.quarantine(f"encoded-word count in {_label(name)} {count} exceeds the limit of {limit}")
        return False

    def unstructured(self, name: str, value: bytes) -> str:
        """An unstructured header (Subject), RFC 2047 decoded; "" when over a limit."""
        text = self.text(name, value)
        if not self.within_word_limit(name, text):
            return ""
        decoded, defects = _mime.decode_encoded_words(text)
        for defect in defects:
            self.defect(f"{defect} in {_label(name)}")
        return decoded

    def within_address_limits(self, name: str, texts: list[str]) -> bool:
        """False (and quarantine) past the address limits: of one address header, or of every field of one
        name together (``texts``; each counted as ``getaddresses`` reads it alone; docs/envelope.md, Limits)."""
        limit = self.limits.max_addresses_per_header
        length = sum(map(len, texts))
        text = texts[0] if len(texts) == 1 else " ".join(texts)  # for the counts that no field's end can change
        if length < limit and text.count("=?") <= self.limits.max_encoded_words_per_header:
            return True  # shorter than the limit, words within theirs: no check below can fail
        label = _label(name)
        if length > limit * _CHARS_PER_ADDRESS:
            self.quarantine(f"{label} header length {length} exceeds the limit of {limit * _CHARS_PER_ADDRESS}"
                            f" ({_CHARS_PER_ADDRESS} per address)")
            return False
        ends = sum(map(most_addresses, texts))
        if ends > limit:
            count = sum(address_count(text, entries_as_getaddresses_ends_them=True) for text in texts)
            if count > limit:
                self.quarantine(f"address count in {label} {count} exceeds the limit of {limit}")
                return False
            if ends > _ENDS_PER_ADDRESS * limit:  # quoted ends that getaddresses may read after all
                self.quarantine(f"entry ends in {label} {ends} exceed the limit of {_ENDS_PER_ADDRESS * limit} "
                                f"({_ENDS_PER_ADDRESS} per address, quoted or not)")
                return False
        if text.count("@") > 2 * limit:  # in a group, getaddresses is quadratic in these ("G:@@@@...")
            self.quarantine(f"'@' count in {label} {text.count('@')} exceeds the limit of {2 * limit} "
                            "(two per address)")
            return False
        return self.within_word_limit(name, text)

    def _safe_for_getaddresses(self, name: str, text: str) -> bool:
        """Check the limits before ``getaddresses`` sees ``text`` (its cost grows with all of these), when the
        quick test in :meth:`_entries` could not tell."""
        if not self.within_address_limits(name, [text]):
            return False
        label = _label(name)
        if text.count(":") > _MAX_GROUPS and without_quotes_or_comments(text).count(":") > _MAX_GROUPS:
            # getaddresses reads each ':' as a group inside the last one, one recursion level each.
            self.defect(f"{label} has more than {_MAX_GROUPS} groups (':'); not read")
            return False
        if text.count("(") > _MAX_COMMENT_NESTING:
            depth = deepest = 0
            for match in _PARENTHESES.finditer(text):
                depth = depth + 1 if match.group() == "(" else max(0, depth - 1)
                deepest = max(deepest, depth)
            if deepest > _MAX_COMMENT_NESTING:
                self.defect(f"{label} has comments nested {deepest} deep; not read")
                return False
        return True

    def addresses(self, name: str, value: bytes) -> list[tuple[str, str]]:
        """An address header → (display name, normalised address) pairs; invalid entries are defects."""
        return self._normalised(name, self._entries(name, value))

    def _entries(self, name: str, value: bytes) -> list[tuple[str, str]]:
        """The non-empty (display name, address) entries of an address header, within the limits.

        ``getaddresses`` (Python 3.11, without the strict mode of CVE-2023-27043) may split one malformed
        entry into several; callers that need exactly one address (From) check the count themselves.
        """
        text = self.text(name, value)
        limits = self.limits
        # Shorter than the limit, no comment, words within theirs (most lists): no check of the limits can fail.
        if not (len(text) < limits.max_addresses_per_header and "(" not in text and text.count(":") <= _MAX_GROUPS
                and text.count("=?") <= limits.max_encoded_words_per_header) \
                and not self._safe_for_getaddresses(name, text):
            return []
        pairs = simple_addresses(text)
        if pairs is None:
            spaced = _SPACE_SEPARATED.fullmatch(text)
            if spaced is not None:  # "a@x b@y": a list that lost its commas (real-world recovery, issue 15)
                self.defect(f"addresses in {_label(name)} separated by spaces, not commas")
                pairs = [("", address) for address in text.split()]
            else:
                try:
                    pairs = parse_address_list([text])
                except RecursionError:  # groups behind a quote getaddresses skips (docs/envelope.md, Limits)
                    self.defect(f"{_label(name)} has more than {_MAX_GROUPS} groups (':'); not read")
                    return []
        # Empty entries and empty groups ("undisclosed-recipients:;") carry nothing (a C-speed test first).
        return [pair for pair in pairs if pair != _EMPTY_ENTRY] if _EMPTY_ENTRY in pairs else pairs

    def _normalised(self, name: str, entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
        result = []
        remember = len(entries) <= LONGEST_REMEMBERED_LIST  # a long list would push out the addresses that recur
        for display, address in entries:
            normal = normalize_address(address, remember=remember) if address else None
            if normal is None:
                self.defect(f"invalid address {_short(address or display)} in {_label(name)}")
                continue
            if "=?" in display:
                display, defects = _mime.decode_encoded_words(display)
                for defect in defects:
                    self.defect(f"{defect} in {_label(name)}")
            result.append((display, normal))
        return result

    def sender(self, block: _mime.HeaderBlock) -> tuple[str | None, str]:
        """The From address and display name.

        A real list of mailboxes (``a@x, b@y``: as many comma-separated entries as addresses, all valid)
        gives its first, with a defect — RFC 5322 §3.6.2 allows several authors, with Sender naming the
        one who sent (issue 15). Anything else that yields several addresses gives no sender (issue 3):
        picking "the valid one" out of ``alice@example.org)<bob@example.org>``, which ``getaddresses``
        splits in two (CVE-2023-27043), would let a crafted From impersonate a trusted sender.
        """
        values = block.all("from")
        if not values:
            self.defect("missing From")
            return None, ""
        if len(values) > 1:
            self.defect(f"{len(values)} From headers; the first is used")
        entries = self._entries("from", values[0])
        if len(entries) > 1:
            text = self.text("from", values[0])
            listed = len(text.split()) if _SPACE_SEPARATED.fullmatch(text) else address_count(text)
            authors = self._normalised("from", entries)
            if listed != len(entries) or len(authors) != len(entries):
                self.defect(f"From has {len(entries)} addresses; no sender taken")
                return None, ""
            self.defect(f"From has {len(entries)} addresses; the first is used")
            return authors[0][1], authors[0][0]
        pairs = self._normalised("from", entries)
        if len(pairs) != 1:
            self.defect("From has no valid address")
            return None, ""
        return pairs[0][1], pairs[0][0]

    def message_id(self, block: _mime.HeaderBlock) -> str | None:
        """The first Message-ID without its angle brackets (RFC 5322 §3.6.4)."""
        value = block.first("message-id")
        text = self.text("message-id", value).strip() if value is not None else ""
        match = _MESSAGE_ID.search(text)
        ident = match.group(1).strip() if match else (text.split()[0] if text else "")
        if not ident:
            self.defect("missing Message-ID")
            return None
        return ident

    def id_list(self, name: str, block: _mime.HeaderBlock) -> tuple[str, ...]:
        """In-Reply-To / References: the bracketed ids; bare tokens with '@' when nothing is bracketed.

        More than ``max_ids_per_header`` ids in one field quarantines the message, like the address limit.
        """
        limit = self.limits.max_ids_per_header
        ids: dict[str, None] | None = None  # (an ordered set; one field, the usual, gives it whole)
        for value in block.all(name):
            text = self.text(name, value)
            found = _MESSAGE_ID.findall(text)
            if not found:
                found = [token for token in text.split() if "@" in token]
            if len(found) > limit:
                self.quarantine(f"id count in {_label(name)} {len(found)} exceeds the limit of {limit}")
                return ()
            listed = dict.fromkeys(map(str.strip, found))
            if ids is None:
                ids = listed
            else:  # in place: 100,000 References fields stay linear
                ids.update(listed)
        if ids is None:
            return ()
        ids.pop("", None)  # "<>" names no message
        return tuple(ids)

    def return_path(self, block: _mime.HeaderBlock) -> str | None:
        """The first Return-Path: its address, "" for the null path ``<>`` (RFC 5321 §4.5.5), or None."""
        value = block.first("return-path")
        if value is None:
            return None
        # The usual "<local@domain>": the address itself, as addresses() below would read it (tests compare).
        bracketed = _BRACKETED_ADDRESS.fullmatch(value)
        if bracketed is not None and (normal := normalize_address(bracketed.group(1).decode("ascii"))):
            return normal
        text = self.text("return-path", value)
        if "".join(text.split()) == "<>":
            return ""
        pairs = self.addresses("return-path", value)
        return pairs[0][1] if pairs else None

    def important(self, block: _mime.HeaderBlock) -> bool:
        """semantics.md §3 ``important``: Importance high, X-Priority 1–2, X-MSMail-Priority high, Priority urgent."""
        named = block.present & PRIORITY_NAMES  # most mail has none of them: one C call instead of a walk
        if not named:
            return False
        if len(named) == 1:  # the usual: one of them, once, in ASCII
            (name,) = named
            values = block.all(name)
            if len(values) == 1 and values[0].isascii():
                return says_important(name, values[0].decode("ascii"))
        fields = [(name, value) for name in PRIORITY_FIELDS if name in named for value in block.all(name)]
        if not all(value.isascii() for _, value in fields):
            fields = block.fields  # reading 8-bit values may add defects: in document order, up to the answer
        return any(name in PRIORITY_NAMES and says_important(name, self.text(name, value)) for name, value in fields)

    def optional(self, block: _mime.HeaderBlock, name: str, *, lower: bool = False) -> str | None:
        """The first ``name`` header, stripped (and lower-cased), or None when absent."""
        value = block.first(name)
        if value is None:
            return None
        text = self.text(name, value).strip()
        return text.lower() if lower else text

    def x_loop(self, block: _mime.HeaderBlock) -> tuple[str, ...]:
        """Every X-Loop value: the normalised address when it is one, else the stripped text."""
        if "x-loop" not in block.present:
            return ()
        values = []
        for value in block.all("x-loop"):
            text = self.text("x-loop", value).strip()
            values.append(normalize_address(text.strip("<>")) or text)
        return tuple(values)


def _recipients(
    reader: _Reader, block: _mime.HeaderBlock, envelope_recipients: Iterable[str]
) -> tuple[Recipient, ...]:
    """Recipients in the semantics.md §3.1 order To, Cc, Delivered-To, X-Original-To, envelope; each address once."""
    seen: dict[str, Recipient] = {}
    present = block.present
    for source in _RECIPIENT_SOURCES:
        if source not in present:
            continue
        values = block.all(source)
        # The limits hold for all fields of one name together: 500 To fields of 1,000 group entries each cost
        # seconds in getaddresses, each within the limit on its own.
        if len(values) > 1 and not reader.within_address_limits(source, [reader.text(source, v) for v in values]):
            continue
        for value in values:
            entries = reader._entries(source, value)
            share = len(entries) <= LONGEST_REMEMBERED_LIST  # (see _shared_recipient)
            for _display, address in reader._normalised(source, entries):
                if address not in seen:
                    seen[address] = (_shared_recipient if share and len(address) <= _SHARED_RECIPIENT_CHARS
                                     else Recipient._make)(address, source)
    for given in envelope_recipients:
        normal = normalize_address(str(given).strip().strip("<>"))
        if normal is None:
            reader.defect(f"invalid envelope recipient {_short(str(given))}")
        elif normal not in seen:
            seen[normal] = Recipient(normal, "envelope")
    return tuple(seen.values())


def _read(raw: bytes, envelope_recipients: Iterable[str], limits: ParseLimits) -> Envelope:
    """Envelope.from_bytes without the last-resort guard."""
    reader = _Reader(limits)
    if len(raw) > limits.max_message_bytes:
        reader.quarantine(f"message size {len(raw)} exceeds the limit of {limits.max_message_bytes}")
    block = reader.block = _mime.split_header_block(raw, 0, len(raw), limits.max_header_bytes)
    for defect in block.defects:
        reader.defect(defect)
    message_id = reader.message_id(block)
    sender, sender_name = reader.sender(block)
    if block.over_limit:
        size = f"{block.end}" if block.end_seen else f"{limits.max_header_bytes + 4}+"
        reader.quarantine(f"header block size {size} exceeds the limit of {limits.max_header_bytes}")
        return Envelope(message_id=message_id, sender=sender, sender_name=sender_name, size=len(raw),
                        defects=reader.defects, quarantine_reason=reader.reason, raw=raw)
    subject_value = block.first("subject")
    subject = reader.unstructured("subject", subject_value) if subject_value is not None else ""
    recipients = _recipients(reader, block, envelope_recipients)
    in_reply_to, references = reader.id_list("in-reply-to", block), reader.id_list("references", block)
    attachments: tuple[str, ...] = ()
    is_report = False
    text: _mime.TextSpan | _mime.RootFields | None = None
    # A single-part message without file names: the scan would find nothing (tests prove it on the corpora).
    if reader.reason is None and limits.max_mime_depth >= 1 and _mime.is_plain_single_part(block):
        text = _mime.root_fields(block)
    elif reader.reason is None:
        skeleton = _mime.scan(
            raw,
            root=block,
            max_header_bytes=limits.max_header_bytes,
            max_depth=limits.max_mime_depth,
            max_parts=limits.max_mime_parts,
        )
        for defect in skeleton.defects:
            reader.defect(defect)
        if skeleton.quarantine_reason is not None:
            reader.quarantine(skeleton.quarantine_reason)
        else:
            attachments = tuple(skeleton.attachments)
            leaf = _mime.first_text_leaf(skeleton)
            text = _mime.NO_TEXT if leaf is None else _mime.text_span(leaf)
        is_report = skeleton.root_content_type == "multipart/report"
    important = reader.important(block)
    # Read in field order: defects keep it.
    auto_submitted = precedence = x_auto_response_suppress = list_id = None
    x_autoreply = False
    if not block.present.isdisjoint(_AUTOMATIC_FIELDS):  # most mail has none of them: one test for five lookups
        auto_submitted = reader.optional(block, "auto-submitted", lower=True)
        precedence = reader.optional(block, "precedence", lower=True)
        x_autoreply = block.first("x-autoreply") is not None
        x_auto_response_suppress = reader.optional(block, "x-auto-response-suppress")
        list_id = reader.optional(block, "list-id")
    return_path = reader.return_path(block)
    x_loop = reader.x_loop(block)
    # Positional, in field order (each name is its field's): matching 22 keywords costs more than building.
    return Envelope._make(message_id, sender, sender_name, recipients, subject, attachments, important, in_reply_to,
                          references, auto_submitted, precedence, x_autoreply, x_auto_response_suppress, list_id,
                          return_path, x_loop, is_report, len(raw), reader.defects, reader.reason, raw, text)


def returned_ids(raw: bytes, *, ids: bool = True, subject: bool = True) -> Envelope:
    """What ``Envelope.from_bytes(raw)`` reads of the Message-ID, In-Reply-To and References (unless ``ids``
    is false) and Subject (unless ``subject`` is false), and nothing else: all a bounce needs of a message it
    returns (``_bounces``). A report may return 999 header blocks of 1,000 Cc addresses each, which whole
    parses took 2.9 s to read. Never raises."""
    try:
        reader = _Reader(ParseLimits())
        block = reader.block = _mime.split_header_block(raw, 0, len(raw), reader.limits.max_header_bytes)
        message_id = reader.message_id(block)
        if block.over_limit:  # from_bytes stops here too
            return Envelope(message_id=message_id)
        value = block.first("subject") if subject else None
        text = reader.unstructured("subject", value) if value is not None else ""
        if not ids:
            return Envelope(message_id=message_id, subject=text)
        answered = reader.id_list("in-reply-to", block), reader.id_list("references", block)
        return Envelope(message_id=message_id, subject=text, in_reply_to=answered[0], references=answered[1])
    except Exception:  # noqa: BLE001 — as from_bytes: any failure reads as no facts
        return Envelope()


def scan_again(raw: bytes, root: _mime.HeaderBlock | None = None) -> _mime.Skeleton:
    """The MIME scan of a message that an envelope has read within its limits (the host's may be wider than
    the defaults), for a second look (body text, bounces): not limited again, since the scan is iterative and
    linear, and the message's size bounds its parts and depth. ``root``: the message's header block, when known."""
    return _mime.scan(raw, root=root, max_header_bytes=len(raw), max_depth=len(raw) + 1, max_parts=len(raw) + 1)


def _plain_text(raw: bytes, root: _mime.HeaderBlock | None = None) -> str:
    """The first inline text/plain leaf of the message (not inside an attached message), decoded; ``root``:
    the message's header block (or what the scan reads of it) when known."""
    leaf = _mime.first_text_leaf(scan_again(raw, root))
    return "" if leaf is None else _mime.decode_body(raw, leaf)
