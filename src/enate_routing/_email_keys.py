"""The keys of an email, per rule kind: what the compiled matcher (``_matcher.py``) looks up in a group's indexes.

An email's keys are its sender and the sender's domain walked label by label from the right, its recipients
likewise, its company, each suffix of each attachment name after a ``.``, each run of subject words that is a
known keyword phrase (docs/semantics.md §3). :class:`EmailFacts` derives each kind once per email, on first
use, and every group evaluated shares them; :class:`KeyTables` holds what the router-wide derivation needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from enate_routing._directory import CompanyDirectory, ConfiguredCompanies
from enate_routing._envelope import Envelope
from enate_routing._patterns import (
    LONGEST_REMEMBERED_LIST,
    MAX_ADDRESS_OCTETS,
    caseless,
    domain_matchable,
    file_name_matchable,
    subject_words,
)

__all__ = [
    "ATTACHMENTS", "COMPANIES", "IMPORTANT", "KEYED", "KEYS_OF", "KEYWORDS", "KIND_NAMES", "RECIPIENTS", "SENDERS",
    "EmailFacts", "KeyTables", "address_keys", "company_keys", "keys_of_address", "phrase_key",
]

# Rule kinds, as positions in the per-group and per-email tuples. The keyed kinds are evaluated in this order:
# the cheapest keys first, so that an email no route can match stops before its subject is split into words.
IMPORTANT, SENDERS, RECIPIENTS, COMPANIES, ATTACHMENTS, KEYWORDS = range(6)
KIND_NAMES = ("important", "senders", "recipients", "sender_companies", "attachment_types", "subject_keywords")
KEYED = (SENDERS, RECIPIENTS, COMPANIES, ATTACHMENTS, KEYWORDS)


def phrase_key(text: str) -> str:
    """A keyword as an index key: its words (docs/semantics.md §3), joined by one space; "" when it has no words."""
    return " ".join(subject_words(text))


class KeyTables:
    """Router-wide facts about the keys, used to turn an email into keys once for every group.

    ``listed`` holds, per rule kind, every key some group's index lists (``_matcher.listed_keys``). An email
    none of whose sender, company or recipient keys is listed gets no keys of that kind, so no group probes its
    indexes for keys that can find nothing (most senders of a big configuration; the mailbox's own address):
    the same result, as a key no index lists finds no posting (tests/router/test_hot_path.py).

    The keyword phrases (the listed keys of that kind) are split into ``single`` words (found by one set
    intersection with the subject's words) and multi-word phrases in a trie of words under their first word
    (``multi``: walked only where that word occurs, one step per word that continues some phrase, so a subject
    that repeats a first word shared by 10,000 phrases costs one probe per repetition); ``starts`` holds the
    first word of every phrase: most subjects share none, and one ``isdisjoint`` says so. ``longest_extension``
    bounds the attachment-name suffixes worth making into keys. ``company_by_key`` is set when the directory is
    the built-in one: the sender's keys, most specific first, then find the case-folded company with no second
    walk over its domain (docs/semantics.md §3.3). ``recipient_keys`` holds, for each of the system's own
    ``addresses``, its recipient keys already narrowed to the listed ones: most mail is addressed to the
    mailbox alone, and one probe then replaces the derivation and the ``isdisjoint``.
    """

    __slots__ = ("company_by_key", "directory", "listed", "longest_extension", "multi", "recipient_keys",
                 "single", "starts")

    def __init__(self, listed: Sequence[Iterable[str]], directory: CompanyDirectory, longest_extension: int = 0,
                 addresses: Iterable[str] = ()) -> None:
        self.listed = tuple(map(frozenset, listed))
        self.longest_extension = longest_extension
        # (_derive_keys, not keys_of_address: thousands of addresses at compile time would fill and empty the
        # bounded table of addresses that recur in mail; the same keys.)
        self.recipient_keys = {a: self.listed_only(RECIPIENTS, _derive_keys(a)) for a in addresses}
        single: set[str] = set()
        multi: dict[str, _PhraseNode] = {}
        for phrase in self.listed[KEYWORDS] - {""}:  # ("": a keyword without words, which no subject has)
            first, *rest = phrase.split(" ")
            if not rest:
                single.add(phrase)
                continue
            node = multi.setdefault(first, _PhraseNode())
            for word in rest:
                node = node.next.setdefault(word, _PhraseNode())
            node.phrase = phrase
        self.single = frozenset(single)
        self.multi = multi
        self.starts = self.single.union(multi)
        self.directory = directory
        self.company_by_key = ({key: caseless(name) for key, name in directory.companies_by_key().items()}
                               if isinstance(directory, ConfiguredCompanies) else None)

    def listed_only(self, kind: int, keys: tuple[str, ...]) -> tuple[str, ...]:
        """``keys`` when some index lists one of them, else none (see above): one C call, order kept."""
        return () if self.listed[kind].isdisjoint(keys) else keys


class _PhraseNode:
    """A node of the keyword trie: the phrase that ends here, if any, and the words that continue one."""

    __slots__ = ("next", "phrase")

    def __init__(self) -> None:
        self.phrase: str | None = None
        self.next: dict[str, _PhraseNode] = {}


def address_keys(addresses: Sequence[str]) -> tuple[str, ...]:
    """Each address, then ``*`` + its domain and every parent domain with a dot (docs/semantics.md §3 patterns).

    Most specific first: the order in which an exact entry beats a domain entry and a longer domain beats
    a shorter one (docs/semantics.md §3.3 — the router's blocked list relies on it). An address too long for
    any mailbox (``patterns.domain_matchable``) keeps only its exact key, so the keys of one address never
    exceed 127 strings of 254 characters however long the address is.
    """
    keys: dict[str, None] = {}
    derive = keys_of_address if len(addresses) <= LONGEST_REMEMBERED_LIST else _derive_keys  # (the same keys)
    for address in addresses:
        keys.update(dict.fromkeys(derive(address)))
    return tuple(keys)


def keys_of_address(address: str) -> tuple[str, ...]:
    """:func:`address_keys` of one address (the hot path: a sender, a recipient).

    Remembered in a bounded table: the same few addresses — the mailbox, its regular customers — come back
    in mail after mail, and one dict probe is a fraction of the derivation. Only short results of addresses
    within the octet bound are kept, and the table is emptied when full, so hostile mail cannot grow it.
    """
    keys = _REMEMBERED_KEYS.get(address)
    if keys is None:
        keys = _derive_keys(address)
        if len(keys) <= _REMEMBER_KEYS_UP_TO and len(address) <= MAX_ADDRESS_OCTETS:
            if len(_REMEMBERED_KEYS) >= _REMEMBERED_ADDRESSES:
                _REMEMBERED_KEYS.clear()
            _REMEMBERED_KEYS[address] = keys
    return keys


_REMEMBERED_KEYS: dict[str, tuple[str, ...]] = {}
_REMEMBERED_ADDRESSES = 4096  # at most 4,096 × 4 keys of ≤ 254 characters: about 5 MB in the worst case
_REMEMBER_KEYS_UP_TO = 4


def _derive_keys(address: str) -> tuple[str, ...]:
    if not (len(address) <= MAX_ADDRESS_OCTETS and address.isascii()) and not domain_matchable(address):
        return (address,)  # (an ASCII address within the octet bound has fewer than 127 labels too)
    domain = address[address.rfind("@") + 1 :]
    dot = domain.find(".")
    if dot < 0:
        return (address,)
    parent = domain[dot + 1 :]
    if "." not in parent:  # the common case, ``user@example.com``: one domain key
        return (address, "*" + domain)
    keys = [address, "*" + domain]
    domain, dot = parent, parent.find(".")
    while dot >= 0:  # a *domain pattern needs a dot (patterns.AddressPattern.parse): stop at the TLD
        keys.append("*" + domain)
        domain = domain[dot + 1 :]
        dot = domain.find(".")
    return tuple(keys)


def _extension_keys(names: Iterable[str], longest: int) -> tuple[str, ...]:
    """Every suffix of every file name that follows a ``.``: ``x.tar.gz`` → ``tar.gz``, ``gz`` (semantics.md §3).

    Only suffixes of at most ``longest`` characters (the longest configured extension) can be keys, so only
    those are made: linear in the names' length. Names longer than any file system allows are defects and
    give no keys (``patterns.file_name_matchable``).
    """
    keys: dict[str, None] = {}
    for name in names:
        if not file_name_matchable(name):
            continue
        folded = name.strip().casefold()
        dot = folded.find(".", max(0, len(folded) - longest - 1))
        while dot >= 0:
            suffix = folded[dot + 1 :]
            if suffix:
                keys[suffix] = None
            dot = folded.find(".", dot + 1)
    return tuple(keys)


class EmailFacts:
    """The keys of one email, per rule kind, computed on first use and shared by every group evaluated.

    ``sender_keys`` and ``companies`` are the sender's :func:`keys_of_address` and :func:`company_keys`, each
    passed through ``tables.listed_only``, when the caller has them already (the router remembers them per
    sender); None: derived on first use.
    """

    __slots__ = ("cached", "envelope", "important", "tables")

    def __init__(self, envelope: Envelope, tables: KeyTables, sender_keys: tuple[str, ...] | None = None,
                 companies: tuple[str, ...] | None = None) -> None:
        self.envelope = envelope
        self.tables = tables
        self.important = envelope.important
        self.cached: list[tuple[str, ...] | None] = [None, sender_keys, None, companies, None, None]

    def keys(self, kind: int) -> tuple[str, ...]:
        """The keys of one kind, derived on first use (a group's matcher reads ``cached`` itself)."""
        found = self.cached[kind]
        if found is None:
            found = self.cached[kind] = KEYS_OF[kind](self)
        return found


def _no_keys(facts: EmailFacts) -> tuple[str, ...]:
    return ()


def company_keys(sender: str, keys: tuple[str, ...], tables: KeyTables) -> tuple[str, ...]:
    """The sender's company as a key (case-folded), or none; ``keys`` are the sender's (:func:`keys_of_address`)."""
    by_key = tables.company_by_key
    if by_key is None:
        company = tables.directory.company_of(sender)
        return (caseless(company),) if company else ()
    for key in keys:  # most specific first: the entry that wins (docs/semantics.md §3.3)
        found = by_key.get(key)
        if found is not None:
            return (found,)
    return ()


def _sender_keys(facts: EmailFacts) -> tuple[str, ...]:
    sender = facts.envelope.sender
    return facts.tables.listed_only(SENDERS, keys_of_address(sender)) if sender else ()


def _company_keys(facts: EmailFacts) -> tuple[str, ...]:
    sender = facts.envelope.sender
    if not sender:
        return ()
    tables = facts.tables
    return tables.listed_only(COMPANIES, company_keys(sender, keys_of_address(sender), tables))


def _recipient_keys(facts: EmailFacts) -> tuple[str, ...]:
    recipients = facts.envelope.recipients
    tables = facts.tables
    if len(recipients) == 1:
        address = recipients[0].address
        known = tables.recipient_keys.get(address)
        if known is not None:
            return known
        keys = keys_of_address(address)
    else:
        keys = address_keys([r.address for r in recipients])
    return tables.listed_only(RECIPIENTS, keys)


def _attachment_keys(facts: EmailFacts) -> tuple[str, ...]:
    names = facts.envelope.attachments
    return _extension_keys(names, facts.tables.longest_extension) if names else ()


def _keyword_keys(facts: EmailFacts) -> tuple[str, ...]:
    """The known phrases that occur in the subject as runs of whole words (docs/semantics.md §3)."""
    words = subject_words(facts.envelope.subject)
    tables = facts.tables
    if tables.starts.isdisjoint(words):  # most subjects (and every empty one): one C call
        return ()
    found = tables.single.intersection(words)
    multi = tables.multi
    if multi and not multi.keys().isdisjoint(words):
        runs = []
        count = len(words)
        for start, word in enumerate(words):
            node = multi.get(word)
            position = start + 1
            while node is not None:
                if node.phrase is not None:
                    runs.append(node.phrase)
                if position == count:
                    break
                node = node.next.get(words[position])
                position += 1
        return tuple(found.union(runs))
    return tuple(found)


# The key derivation of each rule kind, by position (IMPORTANT has no keys).
KEYS_OF: tuple[Callable[[EmailFacts], tuple[str, ...]], ...] = (
    _no_keys, _sender_keys, _recipient_keys, _company_keys, _attachment_keys, _keyword_keys)
