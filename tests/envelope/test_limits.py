"""docs/semantics.md §3.1.1 parsing limits: each at −1, exactly and +1 (quarantined only at +1), and hostile mail."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from enate_routing._envelope import Envelope
from enate_routing._parse_limits import ParseLimits

LIMITS = ParseLimits()
HEAD = "Message-ID: <q@example.org>\r\nFrom: Alice@Example.org\r\n"


def padded_message(size: int) -> bytes:
    """A text/plain message of exactly ``size`` bytes."""
    head = (HEAD + "\r\n").encode()
    return head + b"x" * (size - len(head))


def header_block(size: int) -> bytes:
    """A message whose header block (header lines with their CRLFs, not the blank line) is ``size`` bytes."""
    head = HEAD.encode() + b"X-Pad: "
    return head + b"a" * (size - len(head) - 2) + b"\r\n\r\nbody\r\n"


def nested(depth: int) -> bytes:
    """``depth`` nested multipart levels (the message itself is level 1), with a text leaf inside."""
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n' for level in range(depth)
    )
    closing = "".join(f"\r\n--b{level}--" for level in reversed(range(depth)))
    return (HEAD + opening + "Content-Type: text/plain\r\n\r\nleaf" + closing + "\r\n").encode()


def parts(count: int) -> bytes:
    """One multipart with ``count`` body parts."""
    body = "".join(f"--B\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(count))
    return (HEAD + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + body + "--B--\r\n").encode()


def addresses(count: int) -> bytes:
    """A To header with ``count`` addresses."""
    to = ", ".join(f"user{n}@example.org" for n in range(count))
    return (HEAD + f"To: {to}\r\n\r\nbody\r\n").encode()


def encoded_words(count: int) -> bytes:
    """A Subject with ``count`` encoded words."""
    subject = " ".join(f"=?utf-8?q?w{n}?=" for n in range(count))
    return (HEAD + f"Subject: {subject}\r\n\r\nbody\r\n").encode()


CASES: list[tuple[str, Callable[[int], bytes], int, str]] = [
    ("message size", padded_message, LIMITS.max_message_bytes, "message size {} exceeds the limit of {}"),
    ("header block", header_block, LIMITS.max_header_bytes, "header block size {} exceeds the limit of {}"),
    ("MIME depth", nested, LIMITS.max_mime_depth, "MIME depth {} exceeds the limit of {}"),
    ("MIME parts", parts, LIMITS.max_mime_parts, "MIME part count {} exceeds the limit of {}"),
    ("addresses", addresses, LIMITS.max_addresses_per_header, "address count in To {} exceeds the limit of {}"),
    (
        "encoded words",
        encoded_words,
        LIMITS.max_encoded_words_per_header,
        "encoded-word count in Subject {} exceeds the limit of {}",
    ),
]


@pytest.mark.parametrize(("name", "build", "limit", "reason"), CASES, ids=[case[0] for case in CASES])
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_limit_boundaries(
    name: str, build: Callable[[int], bytes], limit: int, reason: str, delta: int
) -> None:
    """Up to the limit a message parses; one past it is quarantined with a reason naming value and limit."""
    raw = build(limit + delta)
    envelope = Envelope.from_bytes(raw)
    if delta <= 0:
        assert envelope.quarantine_reason is None, name
    else:
        assert envelope.quarantine_reason == reason.format(limit + 1, limit)
    # A quarantined envelope still carries the raw bytes and the cheap facts (docs/semantics.md §3.1.1).
    assert envelope.raw == raw
    assert envelope.message_id == "q@example.org"
    assert envelope.sender == "alice@example.org"


def test_within_limits_facts_are_complete() -> None:
    """At the limits, the facts are all read: 1000 recipients, 2000 decoded encoded words."""
    assert len(Envelope.from_bytes(addresses(LIMITS.max_addresses_per_header)).recipients) == 1000
    assert Envelope.from_bytes(encoded_words(2000)).subject == "".join(f"w{n}" for n in range(2000))


def test_limits_are_configurable() -> None:
    """Smaller ParseLimits quarantine sooner; every limit is honoured as given."""
    small = ParseLimits(max_mime_depth=2, max_mime_parts=3, max_addresses_per_header=2)
    assert Envelope.from_bytes(nested(2), limits=small).quarantine_reason is None
    assert Envelope.from_bytes(nested(3), limits=small).quarantine_reason == "MIME depth 3 exceeds the limit of 2"
    assert Envelope.from_bytes(parts(4), limits=small).quarantine_reason == (
        "MIME part count 4 exceeds the limit of 3"
    )
    assert Envelope.from_bytes(addresses(3), limits=small).quarantine_reason == (
        "address count in To 3 exceeds the limit of 2"
    )


def test_attached_message_nesting_counts_towards_depth() -> None:
    """An attached message is a container level: its inner multiparts count towards the depth limit."""
    inner = nested(2).decode()
    raw = (
        HEAD + 'Content-Type: multipart/mixed; boundary="OUT"\r\n\r\n--OUT\r\n'
        "Content-Type: message/rfc822\r\n\r\n" + inner + "\r\n--OUT--\r\n"
    ).encode()
    # message (1) > attached message (2) > its two multipart levels (3, 4)
    assert Envelope.from_bytes(raw, limits=ParseLimits(max_mime_depth=4)).quarantine_reason is None
    assert Envelope.from_bytes(raw, limits=ParseLimits(max_mime_depth=3)).quarantine_reason == (
        "MIME depth 4 exceeds the limit of 3"
    )


def test_thousand_deep_nesting_is_quarantined() -> None:
    """1000 nested multiparts (RecursionError in the stdlib) stop at depth 33 (timed in bench_envelope.py)."""
    envelope = Envelope.from_bytes(nested(1000))
    assert envelope.quarantine_reason == "MIME depth 33 exceeds the limit of 32"


def test_huge_encoded_subject_is_quarantined() -> None:
    """A 200 KB subject of encoded words is counted, not decoded, and quarantined (timed in bench_envelope.py)."""
    raw = encoded_words(16000)
    assert len(raw) > 200_000
    envelope = Envelope.from_bytes(raw)
    assert envelope.quarantine_reason == "encoded-word count in Subject 16000 exceeds the limit of 2000"
    assert envelope.subject == ""


def test_huge_single_encoded_word_is_fine() -> None:
    """One 200 KB encoded word is a single word: decoded, not quarantined (its growth: bench_growth.py)."""
    raw = (HEAD + "Subject: =?utf-8?q?" + "a" * 200_000 + "?=\r\n\r\n").encode()
    envelope = Envelope.from_bytes(raw)
    assert envelope.quarantine_reason is None
    assert envelope.subject == "a" * 200_000


def test_eight_thousand_address_to_is_quarantined() -> None:
    """8000 addresses in To never reach getaddresses; the count is the reason (timed in bench_envelope.py)."""
    envelope = Envelope.from_bytes(addresses(8000))
    assert envelope.recipients == ()
    assert envelope.quarantine_reason == "address count in To 8000 exceeds the limit of 1000"


def test_the_address_limits_hold_for_all_fields_of_one_name_together() -> None:
    """To twice is still one header for the limits: 500 To fields of 1,000 group entries each took 7.5 s in
    getaddresses, each field within the limit on its own (found by fuzzing). Each field is counted as
    getaddresses reads it alone, so a first field's unclosed quote does not hide the fields after it."""
    def to_fields(*values: bytes) -> bytes:
        return HEAD.encode() + b"".join(b"To: " + value + b"\r\n" for value in values) + b"\r\nbody\r\n"

    plain = b", ".join(b"u%d@example.org" % n for n in range(600))
    envelope = Envelope.from_bytes(to_fields(plain, plain.replace(b"@", b"x@")))
    assert envelope.quarantine_reason == "address count in To 1200 exceeds the limit of 1000"
    assert envelope.recipients == () and envelope.sender == "alice@example.org"
    envelope = Envelope.from_bytes(to_fields(b'"unclosed', *[b"G:" + b"a]" * 100] * 10))
    assert envelope.quarantine_reason == "address count in To 1001 exceeds the limit of 1000"
    envelope = Envelope.from_bytes(to_fields(b"G:" + b"a]" * 1000, b"G:" + b"a]" * 1000))
    assert envelope.quarantine_reason == "address count in To 2000 exceeds the limit of 1000"
    envelope = Envelope.from_bytes(to_fields(b"G:" + b"@" * 1500, b"G:" + b"@" * 1500))
    assert envelope.quarantine_reason == "'@' count in To 3000 exceeds the limit of 2000 (two per address)"
    # Within the limit together, every field is read, in order.
    envelope = Envelope.from_bytes(to_fields(plain, b"last@example.org"))
    assert envelope.quarantine_reason is None
    assert [r.address for r in envelope.recipients][-2:] == ["u599@example.org", "last@example.org"]
    delivered = b"".join(b"Delivered-To: d%d@example.org\r\n" % n for n in range(5))
    envelope = Envelope.from_bytes(HEAD.encode() + delivered + b"\r\nbody\r\n")
    assert [r.address for r in envelope.recipients] == [f"d{n}@example.org" for n in range(5)]


def test_address_header_padding_is_quarantined() -> None:
    """A To header far longer than its address count allows (300 KB of '"') is not handed to getaddresses
    (timed in bench_envelope.py)."""
    envelope = Envelope.from_bytes(HEAD.encode() + b"To: " + b'"' * 300_000 + b"\r\n\r\n")
    assert (envelope.sender, envelope.recipients) == ("alice@example.org", ())
    assert envelope.quarantine_reason == "To header length 300000 exceeds the limit of 256000 (256 per address)"


def test_endless_header_block_is_quarantined() -> None:
    """A header block with no end inside the limit is quarantined without reading past the window."""
    raw = HEAD.encode() + b"X-Pad: " + b"a" * (2 * LIMITS.max_header_bytes)
    envelope = Envelope.from_bytes(raw)
    assert envelope.quarantine_reason == "header block size 1048580+ exceeds the limit of 1048576"
    assert envelope.message_id == "q@example.org"


def test_the_body_text_of_mail_read_with_wider_limits_is_found() -> None:
    """1,500 parts pass max_mime_parts = 5,000: the body token in the first part is read (the body scan once
    used the default limits again, found 1,500 > 1,000 and gave "")."""
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(1, 1500))
    raw = ("From: a@example.org\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nSee [REF:T-000789]\r\n" + parts + "--b--\r\n").encode()
    envelope = Envelope.from_bytes(raw, limits=ParseLimits(max_mime_parts=5000))
    assert envelope.quarantine_reason is None
    assert envelope.plain_text() == "See [REF:T-000789]"
    assert Envelope.from_bytes(raw).quarantine_reason == "MIME part count 1500 exceeds the limit of 1000"
