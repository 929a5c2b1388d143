"""Hand-written cases for Envelope.from_bytes, automatic_reason and plain_text (docs/semantics.md §3, §3.4, §3.5)."""

from __future__ import annotations

import base64

import pytest

from enate_routing._address_lists import parse_address_list, simple_addresses
from enate_routing._envelope import Envelope, Recipient


def parse(headers: str, body: str = "body\r\n", **kwargs: object) -> Envelope:
    """Build a message from header lines (LF in the source becomes CRLF) and a body, and parse it."""
    text = headers.strip("\n").replace("\n", "\r\n") + "\r\n\r\n" + body
    return Envelope.from_bytes(text.encode("utf-8"), **kwargs)  # type: ignore[arg-type]


def parse_mime(headers: str, entity: str) -> Envelope:
    """Parse header lines followed by an entity that brings its own Content-Type (see multipart)."""
    text = headers.strip("\n").replace("\n", "\r\n") + "\r\n" + entity
    return Envelope.from_bytes(text.encode("utf-8"))


def multipart(*parts: str, boundary: str = "BOUND", subtype: str = "mixed") -> str:
    """Header + body of a multipart entity whose parts are given as raw text (headers, blank, body)."""
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n{body}'


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("=?utf-8?B?UGFzc3dvcmQgcmVzZXQg4oCT?=", "Password reset –"),
        ("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", "Grüße aus Köln"),
        ("=?iso-8859-1?q?Caf=E9?= au lait", "Café au lait"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=  =?utf-8?q?c?=", "abc"),
        ("Re: =?utf-8?q?caf=C3=A9?= [REF:T-1]", "Re: café [REF:T-1]"),
        ("plain =?x?= text", "plain =?x?= text"),
    ],
)
def test_encoded_subjects(subject: str, expected: str) -> None:
    """RFC 2047 B and Q words in any known charset decode; white space between words is dropped."""
    envelope = parse(f"Subject: {subject}")
    assert envelope.subject == expected
    assert envelope.defects == ("missing Message-ID", "missing From")


def test_unknown_charset_subject_falls_back_with_defect() -> None:
    """An unknown charset decodes as UTF-8/latin-1 and records the charset and header."""
    envelope = parse("Subject: =?x-foo?q?abc?= ok")
    assert envelope.subject == "abc ok"
    assert "undecodable charset 'x-foo' in Subject" in envelope.defects


def test_bad_base64_word_keeps_text_and_records_defect() -> None:
    """A base64 word that cannot be decoded stays as written; other words still decode."""
    envelope = parse("Subject: =?utf-8?b?QQQQQ?= =?utf-8?q?ok?=")
    assert envelope.subject.endswith("ok")
    assert "undecodable base64 encoded word in Subject" in envelope.defects


def test_upper_case_addresses_are_case_folded() -> None:
    """Sender and recipients are case-folded (docs/semantics.md §3: matching is case-insensitive)."""
    envelope = parse("From: Alice <ALICE@Example.ORG>\nTo: Help@Contoso.Example")
    assert envelope.sender == "alice@example.org"
    assert envelope.sender_name == "Alice"
    assert envelope.recipients == (Recipient("help@contoso.example", "to"),)


def test_idna_sender_domain_is_punycode() -> None:
    """An internationalised sender domain is stored in its IDNA form (docs/semantics.md §3)."""
    envelope = parse("From: =?utf-8?q?J=C3=B6rg?= <jörg@Bücher.example>")
    assert envelope.sender == "jörg@xn--bcher-kva.example"
    assert envelope.sender_name == "Jörg"


def test_from_with_a_list_of_two_mailboxes_takes_the_first() -> None:
    """RFC 5322 §3.6.2: a From listing two mailboxes gives the first, with a defect (issue 15)."""
    envelope = parse('From: "Doe, Jane" <Jane@Example.org>, bob@example.org')
    assert (envelope.sender, envelope.sender_name) == ("jane@example.org", "Doe, Jane")
    assert "From has 2 addresses; the first is used" in envelope.defects


def test_from_with_two_addresses_gives_no_sender() -> None:
    """CVE-2023-27043: a From that splits into two addresses yields no sender and a defect."""
    envelope = parse("From: alice@example.org)<bob@example.org>")
    assert envelope.sender is None
    assert "From has 2 addresses; no sender taken" in envelope.defects


def test_from_without_address_gives_no_sender() -> None:
    """A From with no address records 'From has no valid address'."""
    envelope = parse("From: John Doe")
    assert envelope.sender is None
    assert "From has no valid address" in envelope.defects


def test_rfc2231_filename_with_continuation_and_charset() -> None:
    """RFC 2231 continuations and charsets in filename* decode to one name."""
    part = (
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment;\r\n"
        " filename*0*=utf-8''Rechnung%20M%C3%A4rz;\r\n"
        " filename*1*=%202024.pdf\r\n\r\nJVBERi0=\r\n"
    )
    envelope = parse_mime("From: a@example.org", multipart("Content-Type: text/plain\r\n\r\nhi", part))
    assert envelope.attachments == ("Rechnung März 2024.pdf",)


def test_content_type_name_and_rfc2047_name() -> None:
    """Content-Type name counts when there is no Content-Disposition filename; RFC 2047 names decode."""
    first = 'Content-Type: image/png; name="a.png"\r\n\r\nx'
    second = 'Content-Type: text/plain; name="=?UTF-8?B?w6TDtsO8LnR4dA==?="\r\n\r\nx'
    envelope = parse_mime("From: a@example.org", multipart(first, second))
    assert envelope.attachments == ("a.png", "äöü.txt")


def test_attached_message_counts_once() -> None:
    """A message/rfc822 part is one attachment; the parts inside it are never listed (docs/semantics.md §3)."""
    inner = multipart('Content-Type: application/pdf; name="inner.pdf"\r\n\r\nx', boundary="IN")
    forwarded = (
        'Content-Type: message/rfc822; name="fwd.eml"\r\n\r\n'
        f"From: b@example.org\r\nSubject: inner\r\n{inner}"
    )
    nameless = "Content-Type: message/rfc822\r\n\r\nFrom: c@example.org\r\n\r\nhello"
    envelope = parse_mime("From: a@example.org", multipart("Content-Type: text/plain\r\n\r\nhi", forwarded, nameless))
    assert envelope.attachments == ("fwd.eml", "")
    assert envelope.sender == "a@example.org"


@pytest.mark.parametrize(
    ("header", "important"),
    [
        ("X-Priority: 1 (Highest)", True),
        ("X-Priority: 2", True),
        ("X-Priority: 3 (Normal)", False),
        ("X-Priority: 12", False),
        ("Priority: urgent", True),
        ("Priority: Urgent", True),
        ("Priority: normal", False),
        ("Importance: HIGH", True),
        ("Importance: low", False),
        ("X-MSMail-Priority: High", True),
    ],
)
def test_important_flag(header: str, important: bool) -> None:
    """docs/semantics.md §3 important: Importance high, X-Priority 1 or 2, X-MSMail-Priority high, Priority urgent."""
    assert parse(f"From: a@example.org\n{header}").important is important


@pytest.mark.parametrize(
    ("headers", "important"),
    [
        ("X-Priority: 3\nImportance: high", True),  # several priority fields: any one flags the mail
        ("Importance: high\nX-Priority: 5", True),
        ("X-Priority: 5\nX-MSMail-Priority: Normal\nPriority: normal", False),
        ("Importance: low\nImportance: high", True),  # one name twice: every value is read
        ("Importance: low\nImportance: normal", False),
        ("X-Priority: 01", True),
        ("Importance: \x1chigh\x1c", True),  # str.strip() strips the information separators (bytes.strip does not)
    ],
)
def test_important_from_several_fields(headers: str, important: bool) -> None:
    """One priority field read on its own, and several (or one repeated) read together, give the same rule."""
    assert parse(f"From: a@example.org\n{headers}").important is important


def test_important_reads_8bit_priority_fields_in_document_order() -> None:
    """With 8-bit bytes in a priority field, fields are read in document order up to the answer: a field
    before the one that decides is read (its defect kept), one after it is not."""
    before = Envelope.from_bytes(b"From: a@example.org\r\nImportance: h\xe9gh\r\nX-Priority: 1\r\n\r\nbody")
    assert before.important is True
    assert any("Importance" in defect and "not UTF-8" in defect for defect in before.defects)
    after = Envelope.from_bytes(b"From: a@example.org\r\nX-Priority: 1\r\nImportance: h\xe9gh\r\n\r\nbody")
    assert after.important is True
    assert not any("Importance" in defect for defect in after.defects)


def test_null_return_path() -> None:
    """Return-Path <> is the null path "" and makes the mail automatic (docs/semantics.md §3.5)."""
    envelope = parse("Return-Path: < >\nFrom: a@example.org")
    assert envelope.return_path == ""
    assert envelope.automatic_reason == "null return path"


def test_return_path_address_is_normalised() -> None:
    """A Return-Path address is normalised like every other address."""
    assert parse("Return-Path: <Bounce@Example.ORG>").return_path == "bounce@example.org"
    assert parse("From: a@example.org").return_path is None


def test_recipient_order_and_deduplication() -> None:
    """Recipients: To, then Cc, Delivered-To, X-Original-To, envelope; each address once, first source."""
    envelope = parse(
        "Delivered-To: help@contoso.example\n"
        "X-Original-To: alias@contoso.example\n"
        "Cc: Billing@contoso.example, help@contoso.example\n"
        "To: Help <HELP@contoso.example>, other@example.org\n"
        "To: second-to@example.org",
        envelope_recipients=["alias@contoso.example", "<rcpt@contoso.example>", "BILLING@contoso.example"],
    )
    assert envelope.recipients == (
        Recipient("help@contoso.example", "to"),
        Recipient("other@example.org", "to"),
        Recipient("second-to@example.org", "to"),
        Recipient("billing@contoso.example", "cc"),
        Recipient("alias@contoso.example", "x-original-to"),
        Recipient("rcpt@contoso.example", "envelope"),
    )


def test_invalid_envelope_recipient_is_a_defect() -> None:
    """An envelope recipient that is not an address is skipped with a defect."""
    envelope = parse("From: a@example.org", envelope_recipients=["not an address"])
    assert envelope.recipients == ()
    assert "invalid envelope recipient 'not an address'" in envelope.defects


def test_message_ids_and_threading() -> None:
    """Message-ID, In-Reply-To and References lose their angle brackets; a missing id is a defect."""
    envelope = parse(
        "Message-ID:  <abc.1@Example.org>\nIn-Reply-To: <p@x>\nReferences: <r1@x>\n <r2@x> <p@x>"
    )
    assert envelope.message_id == "abc.1@Example.org"
    assert envelope.in_reply_to == ("p@x",)
    assert envelope.references == ("r1@x", "r2@x", "p@x")
    assert "missing Message-ID" not in envelope.defects
    assert "missing Message-ID" in parse("From: a@example.org").defects
    assert parse("From: a@example.org").message_id is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-replied", "auto-submitted: auto-replied"),
        ("Auto-Submitted: Auto-Generated (timeout)", "auto-submitted: auto-generated"),
        ("Auto-Submitted: no", None),
        ("Precedence: Bulk", "precedence: bulk"),
        ("Precedence: junk", "precedence: junk"),
        ("Precedence: list", "precedence: list"),
        ("Precedence: first-class", None),
        ("X-Autoreply: yes", "x-autoreply"),
        ("X-Auto-Response-Suppress: All", "x-auto-response-suppress"),
        ("List-Id: <dev.lists.example.org>", "list-id"),
        ("Return-Path: <>", "null return path"),
        ("X-Mailer: something", None),
    ],
)
def test_automatic_reason_headers(header: str, reason: str | None) -> None:
    """docs/semantics.md §3.5: each automatic-mail signal gives its short, stable reason."""
    assert parse(f"From: a@example.org\n{header}").automatic_reason == reason


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("MAILER-DAEMON@example.org", "sender mailer-daemon"),
        ("postmaster@example.org", "sender postmaster"),
        ("no-reply@example.org", "sender no-reply"),
        ("noreply+news@example.org", "sender noreply"),
        ("DoNotReply@example.org", "sender donotreply"),
        ("reply@example.org", None),
    ],
)
def test_automatic_reason_sender(sender: str, reason: str | None) -> None:
    """docs/semantics.md §3.5: mail from mailer-daemon, postmaster or a no-reply address is automatic."""
    assert parse(f"From: {sender}").automatic_reason == reason


def test_delivery_report_is_automatic() -> None:
    """A top-level multipart/report is a delivery report (RFC 6522) and automatic."""
    body = multipart("Content-Type: text/plain\r\n\r\nfailed", "Content-Type: message/delivery-status\r\n\r\nx")
    envelope = parse_mime("From: a@example.org", body.replace("multipart/mixed", "multipart/report"))
    assert envelope.is_delivery_report
    assert envelope.automatic_reason == "delivery report"


def test_automatic_fields_are_recorded() -> None:
    """The RFC 3834 signals are stored: values stripped, precedence lower-cased, X-Loop normalised."""
    envelope = parse(
        "Auto-Submitted: Auto-Replied\nPrecedence:  BULK \nX-Loop: Help@Contoso.example\nX-Loop: loop-1"
    )
    assert envelope.auto_submitted == "auto-replied"
    assert envelope.precedence == "bulk"
    assert envelope.x_loop == ("help@contoso.example", "loop-1")
    assert not envelope.x_autoreply


def test_plain_text_quoted_printable() -> None:
    """plain_text undoes quoted-printable and the charset."""
    headers = "From: a@example.org\nContent-Type: text/plain; charset=iso-8859-1\n"
    envelope = parse(headers + "Content-Transfer-Encoding: quoted-printable", "Gr=FC=DFe=\r\n [REF:T-1]\r\n")
    assert envelope.plain_text() == "Grüße [REF:T-1]\r\n"


def test_plain_text_base64_in_multipart_skips_attachments() -> None:
    """plain_text reads the first inline text/plain part, skipping text attachments and HTML."""
    encoded = base64.b64encode("Grüße [REF:T-2]".encode()).decode()
    body = multipart(
        'Content-Type: text/plain; name="notes.txt"\r\n\r\nnot this',
        "Content-Type: text/html\r\n\r\n<p>no</p>",
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}",
    )
    assert parse_mime("From: a@example.org", body).plain_text() == "Grüße [REF:T-2]"


def test_plain_text_bad_charset_and_broken_base64_never_raise() -> None:
    """A bad charset falls back to UTF-8/latin-1; a broken body gives text or "", never an exception."""
    envelope = parse("Content-Type: text/plain; charset=x-unknown", "caf\xe9\r\n")
    assert envelope.plain_text() == "caf\xe9\r\n"
    broken = parse("Content-Type: text/plain; charset=idna\nContent-Transfer-Encoding: base64", "QUJD\r\nR")
    assert broken.plain_text() == "ABC"
    assert Envelope().plain_text() == ""


def test_8bit_headers_utf8_then_latin1() -> None:
    """Raw 8-bit headers read as UTF-8; bytes that are not UTF-8 read as latin-1 with a defect."""
    utf8 = Envelope.from_bytes("Subject: Grüße\r\n\r\n".encode())
    assert utf8.subject == "Grüße"
    assert not any("8-bit" in defect for defect in utf8.defects)
    latin = Envelope.from_bytes(b"Subject: Gr\xfc\xdfe\r\n\r\n")
    assert latin.subject == "Grüße"
    assert "8-bit bytes in Subject are not UTF-8; read as latin-1" in latin.defects


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x00\x00",
        b"Subject: a\rFrom: b@example.org\r\rbody",
        b"Subject: a\nFrom: b@example.org\n\nbody",
        b"Subject: truncat",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/pl",
        b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\nno boundary",
        b"\r\n\r\nonly a body",
        b"not a header line\r\nSubject: x\r\n\r\n",
    ],
)
def test_broken_input_never_raises(raw: bytes) -> None:
    """Broken, truncated, NUL-filled or bare-CR/LF input gives an envelope, not an exception."""
    envelope = Envelope.from_bytes(raw)
    assert envelope.raw == raw
    assert envelope.size == len(raw)
    assert envelope.quarantine_reason is None
    assert not any(defect.startswith("parser error") for defect in envelope.defects)


def test_bare_cr_and_lf_line_endings_read_the_same_headers() -> None:
    """CRLF, bare LF and bare CR line endings give the same facts."""
    text = "From: a@example.org\nTo: b@example.org\nSubject: s\n folded\n\nbody\n"
    envelopes = [Envelope.from_bytes(text.replace("\n", eol).encode()) for eol in ("\r\n", "\n", "\r")]
    facts = {(e.sender, e.recipients, e.subject) for e in envelopes}
    assert facts == {("a@example.org", (Recipient("b@example.org", "to"),), "s folded")}


def test_header_without_blank_line_ends_at_first_non_header_line() -> None:
    """A line that is not a header ends the header block (feedparser rule) and is recorded."""
    envelope = Envelope.from_bytes(b"From: a@example.org\r\nthis is body\r\nSubject: not a header\r\n")
    assert envelope.subject == ""
    assert "no blank line after the header block" in envelope.defects


def test_deeply_nested_comments_in_address_do_not_reach_getaddresses() -> None:
    """Comments nested past 32 levels (getaddresses would recurse) are skipped with a defect."""
    envelope = Envelope.from_bytes(b"To: " + b"(" * 5000 + b"a@example.org\r\n\r\n")
    assert envelope.recipients == ()
    assert "To has comments nested 5000 deep; not read" in envelope.defects


@pytest.mark.parametrize(
    "text",
    [
        "a@b.org",
        "Help Desk <help@x.org>, b@c.example",
        "=?utf-8?q?Alice?= <Alice@Example.org>",
        "a@b.example, , c@d.example",
        "x  y\t<a@b.example>",
        "<a@b.example>",
        "a.b@c.example,",
    ],
)
def test_simple_address_fast_path_matches_getaddresses(text: str) -> None:
    """The plain-list fast path gives getaddresses' non-empty entries exactly."""

    fast = simple_addresses(text)
    assert fast is not None
    assert [pair for pair in fast if any(pair)] == [pair for pair in parse_address_list([text]) if any(pair)]


@pytest.mark.parametrize(
    "text", ['"Doe, \\"J\\"" <j@x.example>', '"Doe <j@x.example>', "a@b (c)", "team: a@b.example;", "John Doe"]
)
def test_simple_address_fast_path_declines_the_rest(text: str) -> None:
    """Escaped or unclosed quotes, comments, groups and bare phrases go to getaddresses."""
    assert simple_addresses(text) is None
