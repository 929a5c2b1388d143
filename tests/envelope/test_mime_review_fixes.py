"""Review fixes in the MIME scanner: RFC 2231 boundaries beyond latin-1, RFC 2231 file names preferred over
plain ones, and characters split across adjacent encoded words. Each case failed before the fix."""

from __future__ import annotations

import base64
import email
import itertools
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enate_routing._envelope import Envelope
from enate_routing._mime import decode_encoded_words


def stdlib(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


# --- 1. An RFC 2231 boundary that decodes beyond latin-1 (it used to raise UnicodeEncodeError) ---

NOT_LATIN1_BOUNDARY = [
    b"From: a@example.com\r\nMessage-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary*=utf-8''%C4%80\r\n\r\n"
    b"--\xc4\x80\r\nContent-Disposition: attachment; filename=a.exe\r\n\r\nhi\r\n--\xc4\x80--\r\n",
    b"From: a@example.com\r\nMessage-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary*=utf-8''%ff\r\n\r\n"
    b"body\r\n",
]


@pytest.mark.parametrize("raw", NOT_LATIN1_BOUNDARY)
def test_boundary_beyond_latin1_is_never_found(raw: bytes) -> None:
    """No parser error: the facts are kept and the body is not split, as the standard library does."""
    envelope = Envelope.from_bytes(raw)
    assert envelope.quarantine_reason is None
    assert (envelope.sender, envelope.message_id) == ("a@example.com", "1@x")
    assert envelope.attachments == ()
    assert "no boundary delimiter found in multipart/mixed" in envelope.defects
    assert envelope.plain_text() == ""
    assert not stdlib(raw).is_multipart()  # StartBoundaryNotFoundDefect: the stdlib does not split it either


# --- 2. filename* (RFC 2231) wins over a plain filename, in either order (RFC 6266 §4.3) ---


def attachment(content_type: str, disposition: str | None) -> bytes:
    part = f"Content-Type: {content_type}\r\n"
    if disposition is not None:
        part += f"Content-Disposition: {disposition}\r\n"
    return (
        "From: a@example.com\r\nMessage-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n{part}\r\nxx\r\n--b--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("content_type", "disposition", "expected"),
    [
        ("application/octet-stream", "attachment; filename*=utf-8''invoice.exe; filename=\"invoice.txt\"",
         "invoice.exe"),
        ("application/octet-stream", "attachment; filename=\"invoice.txt\"; filename*=utf-8''invoice.exe",
         "invoice.exe"),
        ("application/octet-stream", "attachment; filename*0*=utf-8''invoice; filename*1=.exe; filename=a.txt",
         "invoice.exe"),
        ("application/pdf", "attachment; filename=\"Rechnung.pdf\"; filename*=utf-8''Rechnung%20M%C3%BCller.pdf",
         "Rechnung Müller.pdf"),
        ("application/octet-stream; name*=utf-8''a.exe; name=\"a.txt\"", None, "a.exe"),
        # Only when it says something: a blank RFC 2231 name leaves the plain one.
        ("application/octet-stream", "attachment; filename*=utf-8''; filename=\"x.exe\"", "x.exe"),
        # The plain Content-Disposition filename still beats the Content-Type name*, as before.
        ("application/octet-stream; name*=utf-8''a.exe", "attachment; filename=a.txt", "a.txt"),
    ],
)
def test_rfc2231_file_name_wins_over_plain(content_type: str, disposition: str | None, expected: str) -> None:
    """The name mail readers show; compat32 answers the plain one, policy.default the first written."""
    envelope = Envelope.from_bytes(attachment(content_type, disposition))
    assert envelope.attachments == (expected,)


def test_rfc2231_file_name_in_an_unusable_charset_still_wins() -> None:
    """idna refuses errors="replace" (the standard library raises here): read as UTF-8, with a defect."""
    envelope = Envelope.from_bytes(
        attachment("application/octet-stream", "attachment; filename*=idna''a.exe; filename=a.txt")
    )
    assert envelope.attachments == ("a.exe",)
    assert "undecodable charset in file name" in envelope.defects


# --- 3. A character split across adjacent encoded words (RFC 2047 §6.2) ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?UTF-8?B?5pel5pys6Kqe4w==?= =?UTF-8?B?ga7jg4bjgrnjg4g=?=", "日本語のテスト"),
        ("=?utf-8?q?M=C3?= =?utf-8?q?=BCller?=", "Müller"),
        ("=?utf-8?q?M=C3?=\r\n =?UTF-8?b?vA==?=ller", "Müller"),  # folded, Q then B, charset case differs
        ("=?utf-8*de?q?M=C3?==?utf-8?q?=BCller?=", "Müller"),  # RFC 2231 language; no white space between
        ("Re: =?utf-8?q?=E2=82?= =?utf-8?q?=AC_5?= ok", "Re: € 5 ok"),
        ("=?utf-8?q?M=C3?= =?utf-8?q?=C3?= =?utf-8?q?=BCller?=", "M\ufffdüller"),
        # Not joined: another charset, or text between the words.
        ("=?utf-8?q?M=C3?= =?iso-8859-1?q?=BCller?=", "M\ufffd¼ller"),
        ("=?utf-8?q?M=C3?= x =?utf-8?q?=BCller?=", "M\ufffd x \ufffdller"),
    ],
)
def test_adjacent_words_in_one_charset_are_decoded_together(value: str, expected: str) -> None:
    """As policy.default, whose Subject is compared here too."""
    raw = f"From: a@example.com\r\nSubject: {value}\r\n\r\nx".encode()
    assert Envelope.from_bytes(raw).subject == expected == str(stdlib(raw)["subject"])


def test_split_character_in_a_display_name() -> None:
    """policy.default leaves surrogates in an address header's display name; the envelope joins the words."""
    raw = b"From: =?utf-8?q?J=C3?= =?utf-8?q?=BCrgen?= <j@example.com>\r\n\r\nx"
    assert Envelope.from_bytes(raw).sender_name == "Jürgen"


def test_joined_words_keep_their_defects() -> None:
    """An unknown charset is reported once per header; a broken base64 word stays literal and ends the run."""
    assert decode_encoded_words("=?x-bogus?q?M=C3?= =?x-bogus?q?=BC?=") == ("Mü", ["undecodable charset 'x-bogus'"])
    assert decode_encoded_words("=?utf-8?q?M=C3?= =?utf-8?b?Q?= =?utf-8?q?=BC?=") == (
        "M\ufffd=?utf-8?b?Q?=\ufffd",
        ["undecodable base64 encoded word"],
    )


@given(st.text(max_size=12), st.lists(st.integers(min_value=0, max_value=48), max_size=6), st.booleans())
def test_text_split_anywhere_between_words_decodes_back(text: str, cuts: list[int], base64_words: bool) -> None:
    """UTF-8 bytes cut at any byte into adjacent Q or B words give the text back."""
    data = text.encode("utf-8")
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    if base64_words:
        words = [f"=?utf-8?b?{base64.b64encode(chunk).decode()}?=" for chunk in chunks]
    else:
        words = ["=?UTF-8?q?" + "".join(f"={byte:02X}" for byte in chunk) + "?=" for chunk in chunks]
    assert decode_encoded_words(" \t".join(words)) == (text, [])
