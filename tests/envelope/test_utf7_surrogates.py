"""UTF-7 (and the escape codecs) decode to lone surrogates, which no text encoding can write: every decoded
fact has U+FFFD in their place, as undecodable bytes do (found by scripts/fuzz_corpus.py; docs/envelope.md)."""

from __future__ import annotations

import pytest

from corpus_files import unwritable_fact
from enate_routing._envelope import Envelope

HEAD = b"From: a@b.example\r\nTo: help@contoso.example\r\n"


@pytest.mark.parametrize(("raw", "fact", "expected"), [
    (HEAD + b"Subject: =?utf-7?q?+2AA-?= x\r\n\r\nbody\r\n", "subject", "\ufffd x"),
    (HEAD + b"Subject: =?unicode_escape?q?\\ud800?=\r\n\r\nbody\r\n", "subject", "\ufffd"),
    (b"From: =?utf-7?q?+2AA-?= <a@b.example>\r\nTo: help@contoso.example\r\n\r\nbody\r\n", "sender_name", "\ufffd"),
    (HEAD + b"Content-Type: text/plain; charset=utf-7\r\n\r\nA +2AA- B\r\n", "plain_text", "A \ufffd B\r\n"),
    (HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\n"
     b"Content-Disposition: attachment; filename*=utf-7''%2B2AA-.pdf\r\n\r\nx\r\n--b--\r\n",
     "attachments", ("\ufffd.pdf",)),
    (HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
     b"Content-Type: application/pdf; name=\"=?utf-7?q?+2AA-?=.pdf\"\r\n\r\nx\r\n--b--\r\n",
     "attachments", ("\ufffd.pdf",)),
])
def test_lone_surrogates_become_replacement_characters(raw: bytes, fact: str, expected: object) -> None:
    envelope = Envelope.from_bytes(raw)
    value = envelope.plain_text() if fact == "plain_text" else getattr(envelope, fact)
    assert value == expected
    assert unwritable_fact(envelope) is None


def test_utf7_without_surrogates_is_decoded_as_before() -> None:
    envelope = Envelope.from_bytes(HEAD + b"Subject: =?utf-7?q?Hi_+AKM-1?=\r\n\r\nbody\r\n")
    assert envelope.subject == "Hi £1"
