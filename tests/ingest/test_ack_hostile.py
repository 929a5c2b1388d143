"""Acknowledgements of hostile or odd mail: built, readable, and only to addresses a mailbox can have.

Found by mutating corpus mail (scripts/fuzz_corpus.py builds an acknowledgement for every decision that
asks for one): the email package wrote a Cc like ``.x@example.org`` unquoted and then failed on its own
header; a subject quoting encoded-word syntax (``=?UTF-8Content-Disposition: …?B?…?=``) was decoded again
and could not be written; and a 1,000-character sender was acknowledged, which no mailbox can be.
"""

from __future__ import annotations

import base64
import email
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enate_routing._decision import Decision
from enate_routing._envelope import Envelope
from enate_routing._loading import parse_config
from enate_routing._patterns import fits_a_mailbox, header_address
from enate_routing._router import Router
from enate_routing.ingest import build_acknowledgement, render_acknowledgement

TARGET = {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}
ROUTER = Router.compile(parse_config({
    "connectors": [{
        "name": "Support", "service": "other", "username": "help@acme.example", "password": "pw",
        "primary_address": "help@acme.example", "use_for": "incoming",
        "incoming": {"protocol": "imap", "host": "127.0.0.1", "port": 1, "security": "ssl"},
    }],
    "fallbacks": [{"connector": "Support", "address": "help@acme.example", "target": TARGET,
                   "send_automated_emails": True}],
}))


def routed(sender: str = "ann@example.org", subject: str = "Hello", cc: str = "",
           message_id: str = "<m1@example.org>", references: str = "") -> tuple[Envelope, Decision]:
    raw = (f"From: {sender}\r\nTo: help@acme.example\r\n" + (f"Cc: {cc}\r\n" if cc else "")
           + f"Subject: {subject}\r\nMessage-ID: {message_id}\r\n"
           + (f"References: {references}\r\n" if references else "") + "\r\nbody\r\n").encode()
    envelope = Envelope.from_bytes(raw)
    [decision] = ROUTER.route(envelope).decisions
    return envelope, decision


def wire(envelope: Envelope, decision: Decision, recipients: tuple[str, ...]) -> bytes:
    return build_acknowledgement(envelope, decision, "help@acme.example", recipients).as_bytes()


def written(envelope: Envelope, decision: Decision, recipients: tuple[str, ...]) -> EmailMessage:
    """The acknowledgement as bytes on the wire, read back by the email package."""
    message = email.message_from_bytes(wire(envelope, decision, recipients), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_cc_whose_local_part_is_no_dot_atom_is_acknowledged_quoted() -> None:
    envelope, decision = routed("ann@example.org", cc="bob@example.org, .cr@example.org, a..b@example.org")
    assert decision.acknowledge == ("ann@example.org", "bob@example.org", ".cr@example.org", "a..b@example.org")
    ack = written(envelope, decision, decision.acknowledge)
    assert [a.addr_spec for a in ack["To"].addresses] == list(decision.acknowledge)
    assert b'To: ann@example.org, bob@example.org, ".cr"@example.org, "a..b"@example.org\n' in wire(
        envelope, decision, decision.acknowledge)


@pytest.mark.parametrize("subject", [
    "Test: =?UTF-8Content-Disposition: attachment; filename=?B?Iua8ouWtlyI=?= tail",
    "=?bogus?q?abc?= and =?utf-8?q?=FF?=",
    "Grüße =?x?b?/w==?= " * 8,
])
def test_a_subject_quoting_encoded_words_reads_back_as_it_was(subject: str) -> None:
    raw_subject = "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
    envelope, decision = routed("ann@example.org", raw_subject)
    assert envelope.subject == subject
    ack = written(envelope, decision, decision.acknowledge)
    assert str(ack["Subject"]) == render_acknowledgement(envelope, decision).subject == f"Re: {subject.strip()}"


@pytest.mark.parametrize("sender", ["a" * 243 + "@example.org", "\u00ff" * 122 + "@example.org", "a\x04b@example.org"])
def test_an_address_no_mailbox_can_have_is_not_acknowledged(sender: str) -> None:
    """Longer than 254 octets (RFC 5321), or with a control character: read as the sender, never answered."""
    envelope, decision = routed(sender)
    assert envelope.sender == sender.casefold()
    assert (decision.acknowledge, decision.suppressed) == ((), "no recipient")
    envelope, decision = routed(sender, cc="bob@example.org")
    assert decision.acknowledge == ("bob@example.org",)


def test_the_longest_mailbox_is_acknowledged() -> None:
    for sender in ("a" * 242 + "@example.org", "\u00ff" * 121 + "@example.org"):  # 254 octets
        envelope, decision = routed(sender)
        assert decision.acknowledge == (sender.casefold(),)
        written(envelope, decision, decision.acknowledge)


# Local parts: atoms of characters mail allows, joined by runs of dots (empty atoms make non-dot-atoms).
# ASCII only: a UTF-8 address is written as UTF-8 (RFC 6532; the last test), which the email package's default
# policy does not read back as an address.
_ATEXT = st.sampled_from("abcxyz019!#$%&'*+/=?^_`{|}~-")
local_parts = st.lists(st.text(_ATEXT, max_size=6), min_size=1, max_size=5).map(".".join).filter(bool)


@given(locals_=st.lists(local_parts, min_size=1, max_size=4, unique=True),
       subject=st.lists(st.sampled_from(["=?", "?=", "?q?", "?b?", "utf-8", "x", " ", "ü", "=FF", "abc"]),
                        max_size=30).map("".join))
def test_any_mailbox_and_subject_are_written_and_read_back(locals_: list[str], subject: str) -> None:
    envelope, decision = routed("ann@example.org")
    recipients = tuple(f"{local}@example.org" for local in locals_)
    envelope = envelope.__class__(**{**{f: getattr(envelope, f) for f in envelope.__slots__}, "subject": subject})
    ack = written(envelope, decision, recipients)
    assert [a.addr_spec for a in ack["To"].addresses] == list(recipients)
    assert str(ack["Subject"]) == render_acknowledgement(envelope, decision).subject


def test_header_address_quotes_only_what_needs_it() -> None:
    assert header_address("ann@example.org") == "ann@example.org"
    assert header_address("a.b+c@example.org") == "a.b+c@example.org"
    assert header_address(".a@example.org") == '".a"@example.org'
    assert header_address("a.@example.org") == '"a."@example.org'
    assert header_address("no-at-sign") == "no-at-sign"


def test_fits_a_mailbox() -> None:
    assert fits_a_mailbox("a" * 242 + "@example.org") and not fits_a_mailbox("a" * 243 + "@example.org")
    assert fits_a_mailbox("ü" * 121 + "@example.org") and not fits_a_mailbox("ü" * 122 + "@example.org")
    assert not fits_a_mailbox("a\x7fb@example.org") and not fits_a_mailbox("a\x85b@example.org")


def test_a_utf8_recipient_is_written_as_utf8() -> None:
    """RFC 6532: the address as it is, in a UTF-8 header (the SMTP sender asks for SMTPUTF8), not an encoded
    word, which no server reads as an address."""
    envelope, decision = routed("jürgen@example.org")
    assert decision.acknowledge == ("jürgen@example.org",)
    assert "\r\nTo: jürgen@example.org\r\n".encode() in wire(envelope, decision, decision.acknowledge)


def test_ids_that_look_like_encoded_words_are_written_as_they_are() -> None:
    """The email package decoded them (UTF-7 to lone surrogates) and failed: found by scripts/fuzz_corpus.py."""
    envelope, decision = routed(message_id="<=?utf-7?q?+2AA-?=@example.org>", references="<=?bogus?q?x?=@example.org>")
    raw = wire(envelope, decision, decision.acknowledge)
    assert b"\nIn-Reply-To: <=?utf-7?q?+2AA-?=@example.org>\n" in raw
    assert b"\nReferences: <=?bogus?q?x?=@example.org> <=?utf-7?q?+2AA-?=@example.org>\n" in raw


def test_a_long_reference_chain_is_folded_between_ids() -> None:
    chain = [f"<{'r' * 50}.{n}@example.org>" for n in range(12)]
    envelope, decision = routed(references=" ".join(chain))
    ack = written(envelope, decision, decision.acknowledge)
    assert str(ack["References"]).split() == [*chain[-10:], "<m1@example.org>"]
    head = wire(envelope, decision, decision.acknowledge).split(b"\n\n")[0]
    assert max(map(len, head.split(b"\n"))) <= 78


def test_a_utf8_id_is_written_only_in_utf8_headers() -> None:
    """RFC 6532 allows a UTF-8 Message-ID; ASCII headers cannot carry one, so the acknowledgement of an ASCII
    sender does not thread (it is still sent); that of a UTF-8 sender carries it as UTF-8."""
    envelope, decision = routed(message_id="<jürgen.1@example.org>")
    assert b"In-Reply-To" not in wire(envelope, decision, decision.acknowledge)
    envelope, decision = routed("jürgen@example.org", message_id="<jürgen.1@example.org>")
    assert "\r\nIn-Reply-To: <jürgen.1@example.org>\r\n".encode() in wire(envelope, decision, decision.acknowledge)
