"""The envelope's shortcuts (issue 15) answer exactly as the general code they skip, on every corpus message."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corpus_files import corpus_messages
from enate_routing import _envelope, _mime, _patterns
from enate_routing._parse_limits import ParseLimits
from enate_routing._patterns import _remembered_address, _remembered_domain

HERE = Path(__file__).parent
MESSAGES = corpus_messages() + sorted((HERE / "recovery").glob("*.eml"))
LIMITS = ParseLimits()


def _scan(raw: bytes, block: _mime.HeaderBlock) -> _mime.Skeleton:
    return _mime.scan(raw, root=block, max_header_bytes=LIMITS.max_header_bytes, max_depth=32, max_parts=1000)


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.name)
def test_skipped_scan_would_have_found_nothing(path: Path) -> None:
    """Where the envelope skips the MIME scan, the scan finds no attachment, defect or delivery report."""
    raw = path.read_bytes()
    block = _mime.split_header_block(raw, 0, len(raw), LIMITS.max_header_bytes)
    if not _mime.is_plain_single_part(block):
        return
    skeleton = _scan(raw, block)
    assert (skeleton.attachments, skeleton.defects, skeleton.quarantine_reason) == ([], [], None)
    assert not skeleton.root_content_type.startswith("multipart/")


def test_the_corpora_exercise_both_paths() -> None:
    """Some corpus messages take the shortcut and some the scan, so the test above checks something."""
    raw_messages = [path.read_bytes() for path in MESSAGES]
    plain = [_mime.is_plain_single_part(_mime.split_header_block(raw, 0, len(raw), 1 << 20)) for raw in raw_messages]
    assert any(plain) and not all(plain)


HEADER_VALUES = st.sampled_from([
    b"text/plain", b"text/plain; charset=utf-8", b'application/pdf; name="a.pdf"', b"multipart/mixed; boundary=x",
    b"message/rfc822", b"Multipart/Mixed", b"text/plain; NAME=x", b"text/plain; charset=\xe4", b"bogus",
    b"attachment", b'attachment; filename="r.pdf"', b"inline", b'inline; filename*=utf-8\'\'%C3%A4.txt',
])


@given(st.one_of(st.none(), HEADER_VALUES), st.one_of(st.none(), HEADER_VALUES))
def test_plain_single_part_means_an_empty_scan(content_type: bytes | None, disposition: bytes | None) -> None:
    head = b"From: a@example.org\r\n"
    if content_type is not None:
        head += b"Content-Type: " + content_type + b"\r\n"
    if disposition is not None:
        head += b"Content-Disposition: " + disposition + b"\r\n"
    raw = head + b"\r\nbody\r\n--x\r\nContent-Type: text/plain\r\n\r\ninner\r\n--x--\r\n"
    block = _mime.split_header_block(raw, 0, len(raw), LIMITS.max_header_bytes)
    if _mime.is_plain_single_part(block):
        skeleton = _scan(raw, block)
        assert (skeleton.attachments, skeleton.defects, skeleton.quarantine_reason) == ([], [], None)
        assert not skeleton.root_content_type.startswith("multipart/")


RETURN_PATHS = st.sampled_from(["<a@example.org>", " <Bob.X@Example.ORG> ", "<>", "< a@example.org >",
                                "<bad_1.example>", "<a@bad_1.example>", "a@example.org", "<a@b.example> x",
                                "<\u00e4@example.org>"])


@given(RETURN_PATHS)
def test_return_path_shortcut_agrees_with_the_address_parser(value: str) -> None:
    """Return-Path "<local@domain>" read directly gives what the general address reading gives."""
    raw = value.encode("utf-8")
    reader = _envelope._Reader(LIMITS)
    block = _mime.HeaderBlock([("return-path", raw)], 0, 0, [])
    general = _envelope._Reader(LIMITS)
    text = general.text("return-path", raw)
    addresses = [address for _, address in general.addresses("return-path", raw)]
    expected = "" if "".join(text.split()) == "<>" else next(iter(addresses), None)
    assert reader.return_path(block) == expected


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.name)
def test_remembered_body_text_is_the_text_a_second_scan_finds(path: Path) -> None:
    """``plain_text`` reads the body where ``from_bytes``'s scan found it; the answer is the second scan's."""
    raw = path.read_bytes()
    envelope = _envelope.Envelope.from_bytes(raw)
    if envelope.quarantine_reason is None:
        assert envelope.plain_text() == _envelope._plain_text(raw)


def test_the_corpora_exercise_the_remembered_body_text() -> None:
    """Each way of remembering the body occurs: a scanned message's span, with text and without (NO_TEXT),
    and the MIME fields of single-part mail, so the test above compares all three with a fresh scan."""
    envelopes = [_envelope.Envelope.from_bytes(path.read_bytes()) for path in MESSAGES]
    remembered = [e._text for e in envelopes if e.quarantine_reason is None]
    assert None not in remembered
    assert _mime.NO_TEXT in remembered
    assert any(text is not None and len(text) == 4 and text != _mime.NO_TEXT for text in remembered)
    assert any(text is not None and len(text) == 2 for text in remembered)


def test_plain_text_of_scanned_mail_does_not_scan_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A multipart message's body text comes from the span remembered at parse time (no second MIME scan)."""
    raw = (b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"R3LDvMOfZSBbUkVGOlQtMl0=\r\n--x\r\nContent-Type: application/pdf; name=a.pdf\r\n\r\n%PDF\r\n--x--\r\n")
    envelope = _envelope.Envelope.from_bytes(raw)

    def no_second_scan(raw: bytes) -> _mime.Skeleton:
        raise AssertionError("scanned again")

    monkeypatch.setattr(_envelope, "scan_again", no_second_scan)
    assert envelope.plain_text() == "Grüße [REF:T-2]"
    monkeypatch.undo()
    assert envelope == _envelope.Envelope(**{f.name: getattr(envelope, f.name) for f in dataclasses.fields(envelope)
                                             if f.name != "_text"})  # not part of equality


def test_plain_text_of_single_part_mail_does_not_split_the_header_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Single-part mail keeps the few MIME fields the scan reads; its header block is not split a second time."""
    raw = (b"From: a@example.org\r\nSubject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe [REF:T-3]\r\n")
    envelope = _envelope.Envelope.from_bytes(raw)

    def no_second_split(*args: object, **kwargs: object) -> _mime.HeaderBlock:
        raise AssertionError("split again")

    monkeypatch.setattr(_mime, "split_header_block", no_second_split)
    assert envelope.plain_text() == "Grüße [REF:T-3]\r\n"


def test_recipients_are_shared_between_messages_only_at_deliverable_length() -> None:
    """A recipient recurring in mail after mail is one shared (frozen) object; a megabyte-long address is
    built for its message alone, so the shared table stays small."""
    _envelope._shared_recipient.cache_clear()
    long_address = "a" * 100_000 + "@example.org"
    first, second = (_envelope.Envelope.from_bytes(
        f"From: a@example.org\r\nTo: Help <Help@Example.org>, {long_address}\r\nSubject: {n}\r\n\r\nbody\r\n".encode()
    ) for n in (1, 2))
    assert first.recipients == second.recipients
    assert [r.address for r in first.recipients] == ["help@example.org", long_address]
    assert first.recipients[0] is second.recipients[0] and first.recipients[1] is not second.recipients[1]
    assert _envelope._shared_recipient.cache_info().currsize == 1
    assert type(first.recipients[0]) is _envelope.Recipient
    with pytest.raises(AttributeError):
        first.recipients[0].address = "x@example.org"  # type: ignore[misc]


ADDRESSES = st.one_of(
    st.from_regex(r"[A-Za-z0-9._%+-]{1,12}@[A-Za-z0-9ÄÖÜäöü._-]{1,20}\.[A-Za-zé]{2,6}", fullmatch=True),
    st.text(max_size=40),
)


@given(ADDRESSES)
def test_an_address_normalised_without_remembering_is_normalised_the_same(address: str) -> None:
    """``remember=False`` skips only the tables of remembered addresses and domains, never changes the result."""
    _patterns.forget_normalised()
    once = _patterns.normalize_address(address, remember=False)
    assert (_remembered_address.cache_info().currsize, _remembered_domain.cache_info().currsize) == (0, 0)
    assert once == _patterns.normalize_address(address)


def _cc(count: int, prefix: str) -> bytes:
    listed = ", ".join(f"{prefix}{n}@Customer{n}.example" for n in range(count))
    return (f"From: alice@example.org\r\nTo: help@contoso.example\r\nCc: {listed}\r\nSubject: list\r\n\r\nbody\r\n"
            ).encode()


def test_a_long_list_of_addresses_pushes_no_remembered_one_out() -> None:
    """A Cc of a thousand addresses is read in full, but remembers none of them (nor their recipients): the
    addresses that recur stay remembered. A short list is remembered as before."""
    _patterns.forget_normalised()
    _envelope._shared_recipient.cache_clear()
    short = _envelope.Envelope.from_bytes(_cc(_patterns.LONGEST_REMEMBERED_LIST - 1, "few"))
    remembered = (_remembered_address.cache_info().currsize, _envelope._shared_recipient.cache_info().currsize)
    assert remembered >= (_patterns.LONGEST_REMEMBERED_LIST, _patterns.LONGEST_REMEMBERED_LIST)
    long = _envelope.Envelope.from_bytes(_cc(1000, "many"))
    assert [r.address for r in long.recipients] == ["help@contoso.example",
                                                    *(f"many{n}@customer{n}.example" for n in range(1000))]
    assert (_remembered_address.cache_info().currsize,
            _envelope._shared_recipient.cache_info().currsize) == remembered  # (its From and To were known)
    again = _envelope.Envelope.from_bytes(_cc(_patterns.LONGEST_REMEMBERED_LIST - 1, "few"))
    assert all(a is b for a, b in zip(again.recipients, short.recipients, strict=True))  # still shared
