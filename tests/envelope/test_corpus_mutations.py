"""Real mail, mutated: corpus messages with header syntax inserted (once or repeated thousands of times), runs
copied, spans deleted and random bytes added are parsed, routed and explained without an exception and
without an internal error (the ``parser error: …`` quarantine that from_bytes' last-resort guard gives), and
every text fact can be written as UTF-8 (no lone surrogate: UTF-7 decodes to them).

Mutating the corpus found the quote that ``getaddresses`` skips after an address in angle brackets
(``<b@c" x: x: …``): a RecursionError that quarantined the whole message, and entries that the address limit
did not count (docs/envelope.md, Limits; their golden cases are in test_envelope_growth.py) — after about
40,000 random mutations, where 5,000 hypothesis examples of the test below found nothing. For long runs
there is ``python scripts/fuzz_corpus.py --seconds 600`` (the same edits, drawn at random).
"""

from __future__ import annotations

from importlib import resources

from hypothesis import example, given
from hypothesis import strategies as st

from corpus_files import COPIES, REPEATS, SYNTAX, Edit, corpus_messages, mutated, unwritable_fact
from enate_routing._envelope import Envelope
from enate_routing._loading import load_config
from enate_routing._router import Router

MESSAGES = [path.read_bytes() for path in corpus_messages()]
ROUTER = Router.compile(load_config(resources.files("enate_routing") / "data" / "demo.toml"))

EDITS = st.one_of(
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(SYNTAX), st.sampled_from(REPEATS)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 40), st.just(1)),
    st.tuples(st.just("copy"), st.floats(0, 1), st.integers(1, 200), st.sampled_from(COPIES)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=8), st.just(1)),
)


@given(st.integers(0, len(MESSAGES) - 1), st.lists(EDITS, min_size=1, max_size=12))
def test_mutated_corpus_mail_is_read_routed_and_explained(index: int, edits: list[Edit]) -> None:
    envelope = Envelope.from_bytes(mutated(MESSAGES[index], edits))
    assert not (envelope.quarantine_reason or "").startswith("parser error"), envelope.quarantine_reason
    assert unwritable_fact(envelope) is None
    for connector in ROUTER.connectors:
        result = ROUTER.route(envelope, connector)
        assert result.decisions and result == ROUTER.explain(envelope, connector).result


# Address header syntax, each piece once or repeated past what getaddresses recurses (hypothesis raises the
# recursion limit to about 2,000) or loops through cheaply.
PIECES = st.tuples(st.sampled_from(['"', "<", ">", "@", ":", ";", ",", "(", ")", "\\", " ", "[", "]", "a",
                                    "a@b.example", "<a@b.example>", '<a@b.example"', "x: ", "=?utf-8?q?=C3=A9?="]),
                   st.sampled_from([1, 1, 1, 2, 3, 5000]))


@given(st.sampled_from(["From", "To", "Cc", "Return-Path"]), st.lists(PIECES, min_size=1, max_size=10))
@example("From", [('<a@b.example"', 1), ("x: ", 5000)])  # the skipped quote: a RecursionError before
def test_any_address_header_is_read_or_limited(name: str, pieces: list[tuple[str, int]]) -> None:
    """Whatever the header, the envelope reads it or names the limit it exceeds; never an internal error."""
    value = "".join(piece * times for piece, times in pieces).encode()
    envelope = Envelope.from_bytes(b"Message-ID: <m@example.org>\r\nTo: help@contoso.example\r\n" + name.encode()
                                   + b": " + value + b"\r\n\r\nbody\r\n")
    assert not (envelope.quarantine_reason or "").startswith("parser error"), envelope.quarantine_reason
