"""returned_ids reads a returned message's ids and subject exactly as Envelope.from_bytes does (bounces)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from corpus_files import corpus_messages
from enate_routing._envelope import Envelope, returned_ids

RECOVERY = sorted((Path(__file__).parent / "recovery").glob("*.eml"))


def facts(envelope: Envelope) -> tuple[object, ...]:
    return envelope.message_id, envelope.in_reply_to, envelope.references, envelope.subject


def test_corpus_and_recovery_messages() -> None:
    """Every real message of the corpus and every damaged one of recovery/: the same four facts."""
    paths = [*corpus_messages(), *RECOVERY]
    assert len(paths) > 50
    for path in paths:
        raw = path.read_bytes()
        assert facts(returned_ids(raw)) == facts(Envelope.from_bytes(raw)), path.name


FIELD = st.sampled_from([
    "Message-ID: <a@b.example>", "Message-ID: bare@id", "Message-ID:", "In-Reply-To: <x@y> <z@w>",
    "In-Reply-To: tok@en other", "References: <r1@e> <r2@e> <r1@e>", "References: <>",
    "Subject: =?utf-8?q?caf=C3=A9?= [REF:T-1]", "Subject: \xe9t\xe9", "Subject: =?bogus?q?x?=",
    "To: a@b.example, c@d.example", "Cc: " + ", ".join(f"u{n}@e.example" for n in range(1001)),
    "References: " + " ".join(f"<i{n}@e>" for n in range(1001)),
    "Subject: " + "=?utf-8?q?a?= " * 2001, " folded continuation", "junk line without colon",
    "X-Big: " + "x" * 300_000,
])


@given(st.lists(FIELD, max_size=8), st.sampled_from(["\r\n", "\n"]), st.booleans(), st.booleans(), st.booleans())
def test_generated_header_blocks(fields: list[str], eol: str, body: bool, ids: bool, subject: bool) -> None:
    """Any mix of id, subject, address and over-limit fields (past the id, word, address and header-size
    limits): the same four facts, and no exception; the ids or the subject left out when not asked for."""
    raw = (eol.join(fields) + eol + (eol + "body" + eol if body else "")).encode("latin-1")
    whole = Envelope.from_bytes(raw)
    expected = (whole.message_id, whole.in_reply_to if ids else (), whole.references if ids else (),
                whole.subject if subject else "")
    assert facts(returned_ids(raw, ids=ids, subject=subject)) == expected
