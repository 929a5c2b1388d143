"""Property tests: any bytes give an envelope, and well-formed mail gives the standard library's facts."""

from __future__ import annotations

import base64
import re
import string
import urllib.parse
from email import policy

from hypothesis import given
from hypothesis import strategies as st

from bench_envelope import envelope_facts, stdlib_facts
from enate_routing import _address_lists, _mime
from enate_routing._address_lists import parse_address_list, simple_addresses
from enate_routing._envelope import Envelope

# --- building blocks --------------------------------------------------------------------------------

ATOM = st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
TEXT = st.text(string.ascii_letters + string.digits + " -.!äöüßéçñ€", min_size=1, max_size=12)
DOMAIN = st.lists(ATOM, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "example"]))
ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}", ATOM, DOMAIN)


@st.composite
def encoded_word(draw: st.DrawFn, text: st.SearchStrategy[str] = TEXT) -> str:
    """One RFC 2047 encoded word of ``text``, in B or Q encoding and UTF-8 or latin-1 where it fits."""
    value = draw(text)
    charset = draw(st.sampled_from(["utf-8", "UTF-8", "iso-8859-1"]))
    try:
        data = value.encode(charset)
    except UnicodeEncodeError:
        charset, data = "utf-8", value.encode("utf-8")
    if draw(st.booleans()):
        return f"=?{charset}?{draw(st.sampled_from('bB'))}?{base64.b64encode(data).decode()}?="
    quoted = "".join(
        chr(b) if chr(b).isalnum() and b < 128 else "_" if b == 32 else f"={b:02X}" for b in data
    )
    return f"=?{charset}?{draw(st.sampled_from('qQ'))}?{quoted}?="


SUBJECT = st.lists(st.one_of(ATOM, encoded_word()), min_size=1, max_size=6).map(" ".join)


@st.composite
def mailbox(draw: st.DrawFn, address: st.SearchStrategy[str] = ADDRESS) -> str:
    """A mailbox: bare, <angle>, with a plain, quoted or encoded display name, or a trailing comment."""
    addr = draw(address)
    if draw(st.booleans()):
        addr = "".join(c.upper() if draw(st.booleans()) else c for c in addr[:4]) + addr[4:]
    form = draw(st.sampled_from(["bare", "angle", "name", "quoted", "encoded", "comment"]))
    if form == "bare":
        return addr
    if form == "angle":
        return f"<{addr}>"
    if form == "name":
        return f"{draw(ATOM)} {draw(ATOM)} <{addr}>"
    if form == "quoted":
        return f'"{draw(ATOM)}, {draw(ATOM)}" <{addr}>'
    if form == "encoded":
        return f"{draw(encoded_word())} <{addr}>"
    return f"{addr} ({draw(ATOM)})"


@st.composite
def address_list(draw: st.DrawFn) -> str:
    """A list of mailboxes, possibly inside a group (RFC 5322 §3.4)."""
    boxes = draw(st.lists(mailbox(), min_size=1, max_size=4))
    if draw(st.booleans()):
        return f"{draw(ATOM)}: {', '.join(boxes)};"
    return ", ".join(boxes)


FILENAME = st.builds(lambda stem, ext: f"{stem}.{ext}", TEXT.filter(lambda t: t.strip() == t), ATOM)


@st.composite
def filename_params(draw: st.DrawFn) -> str:
    """A file name as Content-Disposition / Content-Type parameters: quoted, RFC 2231, continued, RFC 2047."""
    name = draw(FILENAME)
    form = draw(st.sampled_from(["quoted", "2231", "continued", "name", "encoded-name"]))
    encoded = urllib.parse.quote(name.encode("utf-8"), safe="")
    if form == "quoted" and name.isascii():
        return f'application/octet-stream\r\nContent-Disposition: attachment; filename="{name}"'
    if form == "2231":
        return f"application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''{encoded}"
    if form == "continued":
        cut = draw(st.integers(1, max(1, len(encoded) - 1)))
        while "%" in encoded[max(0, cut - 2) : cut]:  # never split a %XX escape
            cut += 1
        first, second = encoded[:cut], encoded[cut:]
        tail = f";\r\n filename*1*={second}" if second else ""
        return f"application/octet-stream\r\nContent-Disposition: attachment;\r\n filename*0*=utf-8''{first}{tail}"
    if form == "name" and name.isascii():
        return f'application/pdf; name="{name}"'
    return f'application/pdf; name="{draw(encoded_word(st.just(name)))}"'


@st.composite
def entity(draw: st.DrawFn, depth: int = 0) -> str:
    """A MIME entity (Content-Type line onwards): text, attachment, attached message or a multipart."""
    kinds = ["text", "attachment", "message"] + (["multipart"] * 2 if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "text":
        return f"Content-Type: text/plain; charset=utf-8\r\n\r\n{draw(TEXT)}"
    if kind == "attachment":
        return f"Content-Type: {draw(filename_params())}\r\n\r\nQUJD"
    if kind == "message":
        name = f'; name="{draw(ATOM)}.eml"' if draw(st.booleans()) else ""
        inner = draw(entity(depth + 1))
        return f"Content-Type: message/rfc822{name}\r\n\r\nFrom: inner@example.org\r\nSubject: inner\r\n{inner}"
    boundary = f"b{depth}_{draw(ATOM)}"
    children = draw(st.lists(entity(depth + 1), min_size=1, max_size=3))
    body = "".join(f"--{boundary}\r\n{child}\r\n" for child in children)
    subtype = draw(st.sampled_from(["mixed", "alternative", "related"]))
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\npreamble\r\n{body}--{boundary}--\r\n'


@st.composite
def message(draw: st.DrawFn) -> bytes:
    """A well-formed message: address headers, encoded subject, Message-ID, a MIME tree; CRLF or LF."""
    headers = [f"From: {draw(mailbox())}"]
    for name in draw(st.lists(st.sampled_from(["To", "Cc"]), max_size=3)):
        headers.append(f"{name}: {draw(address_list())}")
    if draw(st.booleans()):
        headers.append(f"Subject: {draw(SUBJECT)}")
    if draw(st.booleans()):
        headers.append(f"Message-ID: <{draw(ATOM)}.{draw(ATOM)}@{draw(DOMAIN)}>")
    headers = draw(st.permutations(headers))
    text = "\r\n".join(headers) + "\r\nMIME-Version: 1.0\r\n" + draw(entity())
    if draw(st.booleans()):
        text = text.replace("\r\n", "\n")
    return text.encode("utf-8")


# --- properties -------------------------------------------------------------------------------------


def assert_envelope(raw: bytes) -> Envelope:
    envelope = Envelope.from_bytes(raw)
    assert envelope.raw == raw
    assert envelope.size == len(raw)
    assert not any(defect.startswith("parser error") for defect in envelope.defects), envelope.defects
    assert isinstance(envelope.plain_text(), str)
    return envelope


@given(st.binary(max_size=2000))
def test_any_bytes_give_an_envelope(raw: bytes) -> None:
    """Arbitrary bytes never raise and never hit the last-resort guard."""
    assert_envelope(raw)


@given(message())
def test_well_formed_mail_agrees_with_the_standard_library(raw: bytes) -> None:
    """Subject, sender, To/Cc, Message-ID and attachment names equal BytesParser(policy.default)'s."""
    envelope = assert_envelope(raw)
    assert envelope.quarantine_reason is None
    assert envelope_facts(envelope) == stdlib_facts(raw)


@given(
    message(),
    st.lists(
        st.tuples(st.integers(0, 5000), st.sampled_from([b"\x00", b"\r", b"\n", b"\xff\xfe", b"\xc3", b"=?", b"--"])),
        max_size=6,
    ),
    st.integers(0, 5000),
    st.sampled_from([b"\r\n", b"\r", b"\n"]),
)
def test_damaged_mail_never_raises(raw: bytes, inserts: list[tuple[int, bytes]], cut: int, eol: bytes) -> None:
    """NUL, bare CR/LF, 8-bit bytes, stray markers, truncation: still an envelope, never an exception."""
    damaged = raw.replace(b"\r\n", b"\n").replace(b"\n", eol)
    for position, insert in inserts:
        position %= len(damaged) + 1
        damaged = damaged[:position] + insert + damaged[position:]
    assert_envelope(damaged[: max(1, cut)])
    assert_envelope(damaged)


@given(st.lists(st.one_of(ATOM, encoded_word(), st.just("=?x-unknown?q?a?="), st.just("=?utf-8?b?QQ?=")), max_size=8))
def test_encoded_word_decoding_agrees_with_policy_default(tokens: list[str]) -> None:
    """decode_encoded_words gives policy.default's unstructured value for white-space separated words."""
    text = " ".join(tokens)
    expected = str(policy.default.header_factory("subject", text))
    assert _mime.decode_encoded_words(text)[0] == expected


@given(st.lists(mailbox().filter(lambda box: "(" not in box), min_size=1, max_size=5))
def test_simple_address_fast_path_agrees_with_getaddresses(boxes: list[str]) -> None:
    """Whenever the fast path answers, it gives getaddresses' non-empty entries."""
    text = ", ".join(boxes)
    fast = simple_addresses(text)
    if fast is not None:
        assert [pair for pair in fast if any(pair)] == [pair for pair in parse_address_list([text]) if any(pair)]


ADDRESS_PIECES = st.sampled_from(['"', '"Doe, John"', '" spaced  name "', '""', "<", ">", ",", " ", "\t", "@", ".",
                                  "a", "Bob", "x@y.example", "<x@y.example>", "bad_1.example", "=?utf-8?q?a?="])


@given(st.lists(ADDRESS_PIECES, max_size=12).map("".join))
def test_fast_path_with_quoted_names_agrees_with_getaddresses(text: str) -> None:
    """Quoted display names, commas inside them, odd spacing and stray quotes: the fast path answers as
    getaddresses does, or leaves the text to it."""
    fast = simple_addresses(text)
    if fast is not None:
        assert [pair for pair in fast if any(pair)] == [pair for pair in parse_address_list([text]) if any(pair)]


# The regex walk that _split_entries replaced: one entry is anything but '"' and ',', or a whole quoted string.
QUOTED_LIST_ENTRY = re.compile(r'(?:"[^"\\\r\n]*"|[^",])*')


def regex_split_entries(text: str) -> list[str] | None:
    entries, position = [], 0
    while True:
        match = QUOTED_LIST_ENTRY.match(text, position)
        assert match is not None  # it matches the empty string
        entries.append(text[position : match.end()])
        if match.end() >= len(text):
            return entries
        if text[match.end()] != ",":
            return None
        position = match.end() + 1


ENTRY_PIECES = st.sampled_from(['"', ",", "a", " ", "\\", "\r\n", '"x, y"', "<b@c.example>"])


@given(st.lists(ENTRY_PIECES, max_size=12).map("".join))
def test_entry_split_agrees_with_the_regex_walk(text: str) -> None:
    """The C-speed split at commas outside quotes answers exactly as the regex walk it replaced."""
    assert _address_lists.split_entries(text) == regex_split_entries(text)


def test_not_simple_class_is_the_alternation_it_replaced() -> None:
    """``_NOT_SIMPLE`` (one negated class, for speed) flags exactly ( ) : ; [ \\ ] and non-ASCII."""
    alternation = re.compile(r"[()\\:;\[\]]|[^\x00-\x7f]")
    for code in [*range(0x800), 0xFFFD, 0x10FFFF]:
        char = chr(code)
        assert bool(_address_lists._NOT_SIMPLE.search(char)) == bool(alternation.search(char)), hex(code)
