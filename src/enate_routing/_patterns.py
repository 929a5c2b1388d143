"""Normalisation shared by the configuration, the envelope and both routers (docs/semantics.md §3).

Everything that compares text for routing goes through here, so the compiled router, the reference
router and the envelope agree by construction: addresses are case-folded with their domain in IDNA
(punycode) form, lists are semicolon-separated, extensions lose their leading dot, and subject words are
the maximal runs of letters and digits (with the combining marks written on them), canonically composed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

__all__ = [
    "LONGEST_REMEMBERED_LIST",
    "MAX_ADDRESS_OCTETS",
    "MAX_DOMAIN_LABELS",
    "MAX_FILE_NAME_CHARS",
    "AddressPattern",
    "caseless",
    "domain_and_parents",
    "domain_matchable",
    "file_name_matchable",
    "fits_a_mailbox",
    "forget_normalised",
    "header_address",
    "needs_smtputf8",
    "normalize_address",
    "normalize_domain",
    "normalize_extension",
    "split_list",
    "subject_words",
]

# Routing keys are bounded (docs/routing.md "Bounded keys"): RFC 5321 §4.5.3.1.3 allows a path of 256 octets
# with its angle brackets, so no deliverable address is longer than 254; DNS names have at most 127 labels;
# file systems cap a file name at 255 characters. Longer values are defects: never matched by a ``*domain``
# pattern or an attachment type, so deriving keys from them can never cost more than a bounded amount.
MAX_ADDRESS_OCTETS = 254
MAX_DOMAIN_LABELS = 127
MAX_FILE_NAME_CHARS = 255

# A hostname label after IDNA encoding: letters, digits, hyphens; not starting or ending with a hyphen.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 5322 dot-atom-ish local part, loosened: anything printable except whitespace, '<', '>', '@', ',', ';'.
_LOCAL = re.compile(r"^[^\s<>@,;\"()\[\]\\]+$")
# RFC 5322 §3.2.3 dot-atom (with the UTF-8 of RFC 6532): atoms joined by single dots.
_DOT_ATOM = re.compile(r'[^\x00-\x20\x7f()<>\[\]:;@\\,."]+(?:\.[^\x00-\x20\x7f()<>\[\]:;@\\,."]+)*')
# C0 controls, DEL and C1 controls: no mailbox has them (RFC 5321 §4.1.2; RFC 6531 §3.3 for UTF-8 addresses).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def normalize_domain(domain: str) -> str | None:
    """Case-fold ``domain`` and return its IDNA (punycode) form, or None when it is not a hostname.

    The standard library's ``idna`` codec (IDNA 2003) is used; it also applies nameprep, so full-width
    and upper-case letters fold the way a mail server would.
    """
    if len(domain) <= _REMEMBERED_CHARS:
        return _remembered_domain(domain)
    return _normalize_domain(domain)


# RFC 1035 §2.3.4: 253 characters in ASCII form, which is never shorter than the Unicode form. (Longer ASCII
# domains stay valid: the standard library reads them, and the router never domain-matches them.)
_MAX_DOMAIN = 253


def _normalize_domain(domain: str) -> str | None:
    domain = domain.strip().rstrip(".")
    if not domain:
        return None
    folded = domain.casefold()
    if folded.isascii():
        ascii_domain = folded
    elif len(domain) > _MAX_DOMAIN:  # no IDNA work (~6 µs a character) for what cannot be a domain
        return None
    else:
        try:
            ascii_domain = folded.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = ascii_domain.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    return ascii_domain


def normalize_address(address: str, *, remember: bool = True) -> str | None:
    """``Local@Domain`` → ``local@domain`` (case-folded, IDNA domain), or None when not an address.

    ``remember=False``: the same result, with neither the address nor its domain remembered (the addresses of
    a list too long to recur, which would push out the ones that do).
    """
    if not remember:
        return _normalize_address(address, _normalize_domain)
    if len(address) <= _REMEMBERED_CHARS:
        return _remembered_address(address)
    return _normalize_address(address)


def _normalize_address(address: str, domain_of: Callable[[str], str | None] = normalize_domain) -> str | None:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not _LOCAL.match(local):
        return None
    ascii_domain = domain_of(domain)
    if ascii_domain is None:
        return None
    return f"{local.casefold()}@{ascii_domain}"


# The same addresses recur in mail after mail (the mailbox, its customers), so results are remembered — but
# only for texts of deliverable length: a hostile message's megabyte-long "address" is normalised and
# forgotten, so the tables never hold more than 16,384 entries of at most 2 × 254 characters each.
_REMEMBERED_CHARS = 2 * MAX_ADDRESS_OCTETS
# Nor are the entries of a list longer than this (a distribution list, hostile mail of thousands of addresses),
# here or in the envelope's and the router's tables: they seldom recur, and would push out the ones that do.
LONGEST_REMEMBERED_LIST = 64
_remembered_domain = lru_cache(maxsize=16384)(_normalize_domain)
_remembered_address = lru_cache(maxsize=16384)(_normalize_address)


def forget_normalised() -> None:
    """Empty the tables of remembered addresses and domains (benchmarks that time cold runs)."""
    _remembered_domain.cache_clear()
    _remembered_address.cache_clear()


def domain_and_parents(domain: str) -> Iterator[str]:
    """``eu.example.com`` → ``eu.example.com``, ``example.com``, ``com``: label boundaries only."""
    while True:
        yield domain
        dot = domain.find(".")
        if dot < 0:
            return
        domain = domain[dot + 1 :]


def domain_matchable(address: str) -> bool:
    """False when ``address`` is too long for any mailbox (see the limits above): no ``*domain`` matches it."""
    return _within_octets(address) and address.count(".", address.rfind("@") + 1) < MAX_DOMAIN_LABELS


def fits_a_mailbox(address: str) -> bool:
    """Whether some mailbox could have ``address``: at most 254 octets and no control character (see above).
    Acknowledgements go only to such addresses (docs/routing.md, acknowledgements)."""
    if address.isascii():  # the usual: one C call says "no control character" (a regex search costs 10×)
        return len(address) <= MAX_ADDRESS_OCTETS and address.isprintable()
    return _within_octets(address) and _CONTROL.search(address) is None


def _within_octets(address: str) -> bool:
    # Characters ≤ octets: the cheap test first, no copy of a long string; ASCII has one octet per character.
    if len(address) > MAX_ADDRESS_OCTETS:
        return False
    return address.isascii() or len(address.encode("utf-8", "surrogatepass")) <= MAX_ADDRESS_OCTETS


def needs_smtputf8(sender: str, recipients: Sequence[str]) -> bool:
    """Whether mail between these addresses needs SMTPUTF8 (RFC 6531) and UTF-8 headers (RFC 6532): a local
    part that is not ASCII (domains are kept in their ASCII form, IDNA)."""
    return not (sender.isascii() and all(address.isascii() for address in recipients))


def header_address(address: str) -> str:
    """``address`` as an RFC 5322 addr-spec for a header we write: its local part quoted unless it is a
    dot-atom (``.x@example.org`` → ``".x"@example.org``). Mail servers accept such addresses, and the email
    package writes them unquoted — then fails on the header it wrote (a ``TypeError`` in ``get_name_addr`` for
    ``a@example.org, .x@example.org``)."""
    local, at, domain = address.rpartition("@")
    if not at or _DOT_ATOM.fullmatch(local):
        return address
    escaped = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"@{domain}'


def file_name_matchable(name: str) -> bool:
    """False when the attachment ``name`` is longer than any file system allows: no attachment type matches it."""
    return len(name) <= MAX_FILE_NAME_CHARS


def split_list(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"a; b;; c "`` or ``["a", " b"]`` → ``("a", "b", "c")``: items stripped, empty items dropped."""
    items = value.split(";") if isinstance(value, str) else value
    return tuple(stripped for item in items if (stripped := item.strip()))


def normalize_extension(extension: str) -> str:
    """``.PDF`` and ``pdf`` both → ``pdf``; ``.tar.gz`` → ``tar.gz``."""
    return extension.strip().lstrip(".").casefold()


def caseless(text: str) -> str:
    """``text`` in canonical caseless form (Unicode §3.13: NFD, case folding, then composed again), so a name
    typed with "é" as one character or as "e" and an accent compares equal: company names, subject words."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def subject_words(text: str) -> tuple[str, ...]:
    """The case-folded words of ``text`` (docs/semantics.md §3: runs of letters and digits).

    A combining mark belongs to the word it is written on: the vowel signs of Devanagari or Thai, an accent
    that a mail client sent decomposed (NFD), the dot that case folding leaves on ``İ``. Text is compared in
    canonically composed form, so "résumé" typed either way is one word and the same word.
    """
    if text.isascii():
        # Every subject is split for keyword rules: in ASCII a word character is a letter or digit and case
        # folding is lower-casing, so one table that lower-cases letters and turns every other byte into a
        # space, then a split at C speed, give the regex's words, 2× faster (tests/router/test_hot_path.py
        # compares the two on generated text).
        return tuple(text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split())
    folded = caseless(text)
    marks = _combining_marks()
    if marks.isdisjoint(folded):  # most text, once composed: one pass of set probes
        return tuple(_WORD.findall(folded))
    return tuple(_word_with_marks(marks).findall(folded))


# docs/semantics.md §3: words are the maximal runs of letters and digits; '_' separates words, so \w alone is wrong.
_WORD = re.compile(r"[^\W_]+")
# Where Unicode has combining marks (category M): up to plane 1, and the variation selectors of plane 14.
_MARK_PLANES = (range(0x300, 0x20000), range(0xE0000, 0xE1000))


@cache
def _combining_marks() -> frozenset[str]:
    """Every combining mark of the running Python's Unicode database (about 2,400). Found on first use (a
    non-ASCII subject or keyword) in ~30 ms — too long to spend at every import."""
    return frozenset(char for plane in _MARK_PLANES for code in plane
                     if unicodedata.category(char := chr(code))[0] == "M")


@cache
def _word_with_marks(marks: frozenset[str]) -> re.Pattern[str]:
    """A word: letters and digits (``[^\\W_]``) and combining marks, one or more (a class of ~300 ranges,
    which the regex engine tests range by range: used only for text that has a mark)."""
    ranges: list[tuple[int, int]] = []
    for code in sorted(map(ord, marks)):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    marks_class = "".join(f"{re.escape(chr(low))}-{re.escape(chr(high))}" for low, high in ranges)
    return re.compile(f"(?:[^\\W_]|[{marks_class}])+")


_ASCII_SEPARATORS = bytes(code for code in range(128) if not chr(code).isalnum())
_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_WORDS = bytes.maketrans(_ASCII_SEPARATORS + _ASCII_UPPER, b" " * len(_ASCII_SEPARATORS) + _ASCII_UPPER.lower())


@dataclass(frozen=True, slots=True)
class AddressPattern:
    """An address pattern of docs/semantics.md §3: an exact address, or ``*domain`` covering its subdomains.

    ``value`` is the normalised address or domain; ``is_domain`` tells which.
    """

    value: str
    is_domain: bool

    @classmethod
    def parse(cls, text: str) -> AddressPattern:
        """Parse ``a@b.example``, ``*b.example``, ``*@b.example`` or ``*.b.example``.

        Raises ValueError with a short reason (the caller adds route, rule and item).
        """
        raw = text.strip()
        if raw.startswith("*"):
            domain = raw[1:]
            if domain.startswith("@") or domain.startswith("."):
                domain = domain[1:]
            if not domain:
                raise ValueError("a bare '*' matches everyone; name a domain such as '*example.com'")
            normal = normalize_domain(domain)
            if normal is None or "." not in normal:
                raise ValueError("not a domain pattern such as '*example.com'")
            return cls(normal, True)
        normal = normalize_address(raw)
        if normal is None:
            raise ValueError("not an email address or a '*domain' pattern")
        return cls(normal, False)

    def matches(self, address: str) -> bool:
        """True when the normalised ``address`` is this address, or at this domain or a subdomain."""
        if not self.is_domain:
            return address == self.value
        if not domain_matchable(address):
            return False
        domain = address.rpartition("@")[2]
        return domain == self.value or domain.endswith("." + self.value)

    def __str__(self) -> str:
        return f"*{self.value}" if self.is_domain else self.value
