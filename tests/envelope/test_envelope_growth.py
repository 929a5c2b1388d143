"""Hostile input at 1×, 10× and 100× (issue 13): the 100× case finishes and is parsed or quarantined right.

The messages come from benchmarks/bench_growth.py, which times them; these tests never look at the clock.
Under the default limits the big cases are quarantined with the reason naming the limit; under wide limits
(bench_growth.WIDE) the same messages are parsed to the end, so the parsing path itself is exercised.
"""

from __future__ import annotations

import tomllib
import tracemalloc
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench_growth import (
    HEAD,
    WIDE,
    boundary_parameters_at_the_limit,
    bracket_entries_in_a_group,
    dots_in_an_address,
    escaped_parentheses_in_addresses,
    escaped_quotes_in_addresses,
    in_reply_to,
    invalid_cc,
    linking_router,
    long_unicode_domain,
    many_fields,
    part_parameters_at_the_limit,
    references,
    skipped_quotes_at_the_limit,
    spaces_before_junk,
    spaces_in_an_address,
    text_parameters_at_the_limit,
    unbalanced_filename,
    unbalanced_parameter,
)
from enate_routing._envelope import Envelope
from enate_routing._loading import parse_config
from enate_routing._model import LimitsSettings
from enate_routing._parse_limits import ParseLimits
from enate_routing._router import Router

SCALES = (1, 10, 100)


@pytest.mark.parametrize("scale", SCALES)
def test_references_ids(scale: int) -> None:
    """1,000 × scale ids: all read under wide limits; past 1,000 per field quarantined by default."""
    raw = references(scale)
    wide = Envelope.from_bytes(raw, limits=WIDE)
    assert wide.quarantine_reason is None
    assert len(wide.references) == 1000 * scale and wide.references[-1] == f"id{1000 * scale - 1}@example.org"
    default = Envelope.from_bytes(raw)
    if scale == 1:
        assert default.references == wide.references
    else:
        assert default.quarantine_reason is not None and default.references == ()
        assert default.quarantine_reason.startswith(("id count in References", "header block size"))


@pytest.mark.parametrize("scale", SCALES)
def test_in_reply_to_bare_ids(scale: int) -> None:
    """Bare ids (no brackets) count the same way, and duplicates are kept once."""
    raw = in_reply_to(scale)
    wide = Envelope.from_bytes(raw, limits=WIDE)
    assert len(wide.in_reply_to) == 1000 * scale
    doubled = raw.replace(b"In-Reply-To:", b"In-Reply-To: id0@example.org id0@example.org")
    assert len(Envelope.from_bytes(doubled, limits=WIDE).in_reply_to) == 1000 * scale


def test_id_limit_is_configurable_and_exact() -> None:
    """max_ids_per_header: at the limit parsed, one more quarantined with the count and the limit."""
    raw = references(1)
    assert Envelope.from_bytes(raw, limits=ParseLimits(max_ids_per_header=1000)).quarantine_reason is None
    assert Envelope.from_bytes(raw, limits=ParseLimits(max_ids_per_header=999)).quarantine_reason == (
        "id count in References 1000 exceeds the limit of 999"
    )
    assert LimitsSettings(max_ids_per_header=5).parse_limits().max_ids_per_header == 5


@pytest.mark.parametrize("scale", SCALES)
def test_unbalanced_boundary_parameter(scale: int) -> None:
    """An unbalanced quote with 1,000 × scale ';' in the boundary: parsed, the boundary is never found."""
    envelope = Envelope.from_bytes(unbalanced_parameter(scale), limits=WIDE)
    assert envelope.quarantine_reason is None
    assert "no boundary delimiter found in multipart/mixed" in envelope.defects


@pytest.mark.parametrize("scale", SCALES)
def test_unbalanced_filename_parameter(scale: int) -> None:
    """The same in a file name: parsed; the name runs to the end of the header, opening quote kept (compat32)."""
    envelope = Envelope.from_bytes(unbalanced_filename(scale), limits=WIDE)
    assert envelope.quarantine_reason is None
    assert len(envelope.attachments) == 1 and envelope.attachments[0].startswith('"r.pdf;a;a')


@pytest.mark.parametrize("scale", SCALES)
def test_distinct_invalid_cc_addresses(scale: int) -> None:
    """1,000 × scale distinct invalid Cc addresses: no recipient from them, defects capped with a count."""
    envelope = Envelope.from_bytes(invalid_cc(scale), limits=WIDE)
    assert envelope.quarantine_reason is None
    assert [r.address for r in envelope.recipients] == ["help@contoso.example"]
    assert envelope.defects[0] == "invalid address 'user0@bad_0.example' in Cc"
    assert envelope.defects[-1] == f"{1000 * scale - 100} more defects not listed"
    assert len(envelope.defects) == 101


@pytest.mark.parametrize("scale", SCALES)
def test_address_texts_that_once_backtracked(scale: int) -> None:
    """Runs of spaces or dots in an address, and a domain too long to be one (IDNA never run on it): read in
    linear time (bench_growth times them), with the result getaddresses gives."""
    first = "help@contoso.example"  # HEAD's own To, before the hostile one
    spaced = Envelope.from_bytes(spaces_in_an_address(scale))
    assert [r.address for r in spaced.recipients] == [first] and spaced.quarantine_reason is None
    assert "invalid address 'a' in To" in spaced.defects  # getaddresses reads "a   b" as the address "a"
    dotted = Envelope.from_bytes(dots_in_an_address(scale))
    assert [r.address for r in dotted.recipients] == [first, "a." * (1000 * scale) + "@b.example"]
    unicode_domain = Envelope.from_bytes(long_unicode_domain(scale))
    assert [r.address for r in unicode_domain.recipients] == [first]
    assert any(d.startswith("invalid address 'a@éé") for d in unicode_domain.defects)


@pytest.mark.parametrize("scale", SCALES)
def test_escaped_quotes_and_parentheses_in_addresses(scale: int) -> None:
    """``\\", \\", ...`` and ``(\\(, \\(, ... (`` (found by fuzzing: quadratic, seconds at 16 kB): getaddresses
    reads one unclosed quoted string or comment, so the entries are one, not 250 × scale (over the address
    limit at 10×), and nothing in them is a recipient. At 100× its 25,000 commas are over the limit of entry
    ends, which counts inside quoted strings and comments too (see the test of the skipped quote below)."""
    for raw in (escaped_quotes_in_addresses(scale), escaped_parentheses_in_addresses(scale)):
        envelope = Envelope.from_bytes(raw)
        assert envelope.sender == "alice@example.org"
        if scale == 100:
            assert envelope.quarantine_reason == \
                "entry ends in To 25002 exceed the limit of 8000 (8 per address, quoted or not)"
            continue
        assert envelope.quarantine_reason is None
        assert [r.address for r in envelope.recipients] == ["help@contoso.example"]


@pytest.mark.parametrize("scale", SCALES)
def test_entries_ended_by_brackets_count_toward_the_address_limit(scale: int) -> None:
    """``To: G:a]a]...`` (found by fuzzing: 7 s for 32,000 entries in one To): getaddresses ends an entry at each
    ']' (and '>', ')', a '[' not after '@', with a quoted string as its text) and copies the group's list for
    each, so the address count ends entries there too: 1,000 in a To are read (none is an address), 1,001 are
    over the limit — in one To field or in several together."""
    envelope = Envelope.from_bytes(bracket_entries_in_a_group(scale))  # help@ in the first To, then 1,000 × scale
    assert envelope.quarantine_reason == f"address count in To {1000 * scale + 1} exceeds the limit of 1000"
    assert envelope.sender == "alice@example.org"
    cc_only = HEAD.replace(b"To: help@", b"Cc: help@")
    for entry in (b"a]", b"a>", b"a)", b"a[", b'"x"[', b"a;"):
        within = Envelope.from_bytes(cc_only + b"To: G:" + entry * 1000 + b"\r\n\r\nbody\r\n")
        assert within.quarantine_reason is None, entry
        assert within.recipients[0].address == "help@contoso.example", entry
        over = Envelope.from_bytes(cc_only + b"To: G:" + entry * 1001 + b"\r\n\r\nbody\r\n")
        assert over.quarantine_reason == "address count in To 1001 exceeds the limit of 1000", entry


def test_a_domain_literal_is_one_entry() -> None:
    """A '[' right after '@' opens a domain literal: ``a@[192.0.2.1]`` counts once, as any address."""
    literals = b", ".join(b"u%d@[192.0.2.1]" % n for n in range(1000))
    envelope = Envelope.from_bytes(HEAD + b"Cc: " + literals + b"\r\n\r\nbody\r\n")
    assert envelope.quarantine_reason is None


def test_groups_nested_past_the_limit_are_not_read() -> None:
    """getaddresses reads each ':' as a group inside the last, one recursion level each: ~1,000 colons were a
    RecursionError that lost the sender too. Past 32 the header is a defect and the rest of the mail is read."""
    envelope = Envelope.from_bytes(HEAD.replace(b"To: help@contoso.example", b"To: " + b":" * 1000) + b"\r\nx\r\n")
    assert envelope.quarantine_reason is None and envelope.sender == "alice@example.org"
    assert "To has more than 32 groups (':'); not read" in envelope.defects
    quoted = b'To: ' + b", ".join(b'"Team: %d" <t%d@example.org>' % (n, n) for n in range(40))
    assert len(Envelope.from_bytes(HEAD.replace(b"To: help@contoso.example", quoted) + b"\r\nx\r\n").recipients) == 40




def test_groups_behind_a_quote_that_getaddresses_skips_are_not_read() -> None:
    """Found by mutating corpus mail: getaddresses skips the character after an address in angle brackets,
    so in ``<b@c" x: x: ... "y>`` the quote opens nothing and every ':' is a group (a RecursionError at about
    1,000), while the count of colons outside quotes saw none. Each such header is a defect; the rest is read."""
    colons = b"x: " * 2000
    to = HEAD.replace(b"To: help@contoso.example", b'To: help@contoso.example, <b@c.example" ' + colons + b'"y>')
    envelope = Envelope.from_bytes(to + b"\r\nx\r\n")
    assert envelope.quarantine_reason is None and envelope.sender == "alice@example.org"
    assert "To has more than 32 groups (':'); not read" in envelope.defects
    sender = HEAD.replace(b"From: Alice <alice@example.org>", b'From: "A" <a@b.example" <' + colons + b">")
    envelope = Envelope.from_bytes(sender + b"\r\nx\r\n")
    assert envelope.quarantine_reason is None and envelope.sender is None
    assert "From has more than 32 groups (':'); not read" in envelope.defects
    assert [r.address for r in envelope.recipients] == ["help@contoso.example"]


def test_entries_behind_a_quote_that_getaddresses_skips_are_limited() -> None:
    """The same skipped quote before 32,000 '<' inside a group: each '<' is an entry for getaddresses, which
    copies a group's list per entry (0.6 s; 1 MB of them would take minutes), while the address count, which
    skips quoted strings, saw two. Entry ends are limited whatever the quotes: 8 per allowed address."""
    def mail(count: int, fields: int = 1) -> bytes:
        field = b'To: <b@c.example" G: ' + b"<" * count + b">\r\n"
        return HEAD.replace(b"To: help@contoso.example\r\n", field * fields) + b"\r\nx\r\n"

    assert Envelope.from_bytes(mail(32_000)).quarantine_reason == \
        "entry ends in To 32003 exceed the limit of 8000 (8 per address, quoted or not)"
    assert Envelope.from_bytes(mail(4_000, fields=3)).quarantine_reason == \
        "entry ends in To 12009 exceed the limit of 8000 (8 per address, quoted or not)"  # all To fields together
    within = Envelope.from_bytes(mail(4_000))
    assert within.quarantine_reason is None and within.sender == "alice@example.org"
    assert Envelope.from_bytes(skipped_quotes_at_the_limit()).quarantine_reason is None  # bench_growth's worst case
    quoted = b"To: " + b", ".join(b'"Doe, Jane, Jr., %d" <j%d@example.org>' % (n, n) for n in range(1000))
    assert len(Envelope.from_bytes(HEAD.replace(b"To: help@contoso.example", quoted) + b"\r\nx\r\n").recipients) == 1000


@pytest.mark.parametrize("scale", SCALES)
def test_spaces_before_junk_in_an_address_header(scale: int) -> None:
    """``Cc: a@b.example,`` and 1,000 × scale spaces before junk (found by fuzz_corpus.py: 0.3 s for 18,000
    spaces, the entry pattern splitting the run two ways): the address before them is read, the junk is a defect."""
    envelope = Envelope.from_bytes(spaces_before_junk(scale))
    assert envelope.quarantine_reason is None and envelope.sender == "alice@example.org"
    assert [r.address for r in envelope.recipients] == ["help@contoso.example", "a@b.example"]
    assert any("Cc" in defect for defect in envelope.defects), envelope.defects

def test_at_signs_in_a_group_are_limited() -> None:
    """In a group getaddresses is quadratic in '@' ("G:@@@@..."): more than two per allowed address quarantines."""
    def mail(count: int) -> bytes:
        return HEAD.replace(b"To: help@contoso.example", b"To: G:" + b"@" * count) + b"\r\nx\r\n"

    assert Envelope.from_bytes(mail(2000)).quarantine_reason is None
    assert Envelope.from_bytes(mail(2001)).quarantine_reason == (
        "'@' count in To 2001 exceeds the limit of 2000 (two per address)")


@pytest.mark.parametrize("scale", SCALES)
def test_many_header_fields(scale: int) -> None:
    """1,000 × scale header fields: every fact still read (header lookups go through an index)."""
    envelope = Envelope.from_bytes(many_fields(scale), limits=WIDE)
    assert envelope.quarantine_reason is None
    assert (envelope.sender, envelope.subject, envelope.message_id) == ("alice@example.org", "fields", "g@example.org")


def test_linking_router_routes_hostile_subjects() -> None:
    """The benchmark's linking router (hostile but safe pattern, body search) routes 100× subjects."""
    router = linking_router()
    for scale in SCALES:
        raw = b"From: a@example.org\r\nTo: help@contoso.example\r\nSubject: " + b"A" * (1000 * scale) + b"\r\n\r\n"
        assert router.route(Envelope.from_bytes(raw)).decisions


# --- any bytes, and memory ---------------------------------------------------------------------------------


def demo_router() -> Router:
    text = (resources.files("enate_routing") / "data" / "demo.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    data["linking"] = {"subject_pattern": r"\[REF:(?P<ref>[A-Z]+-\d+)\]", "search_body": True,
                       "plus_addressing": "mixed"}
    return Router.compile(parse_config(data))


ROUTER = demo_router()
HEADERS = st.sampled_from([b"From: ", b"To: ", b"Cc: ", b"Subject: ", b"References: ", b"In-Reply-To: ",
                           b"Content-Type: multipart/mixed; boundary=", b"Content-Disposition: attachment; filename=",
                           b"\r\n", b"\r\n\r\n", b"--", b'"', b";", b"<", b">", b"@", b"=?utf-8?q?", b"?="])


@given(st.lists(st.one_of(HEADERS, st.binary(max_size=40)), max_size=30).map(b"".join))
def test_any_bytes_parse_and_route(raw: bytes) -> None:
    """For any bytes (biased towards header syntax), from_bytes and route never raise."""
    envelope = Envelope.from_bytes(raw, envelope_recipients=["help@contoso.example"])
    result = ROUTER.route(envelope)
    assert envelope.quarantine_reason is not None or result.decisions


HOSTILE_WITHIN_LIMITS = {
    "References at the id limit": references(1),
    "1,000 invalid Cc": invalid_cc(1),
    "unbalanced parameter 200 KB": unbalanced_parameter(100),
    "100,000 header fields": many_fields(10),
    "1 MB subject": b"From: a@example.org\r\nTo: help@contoso.example\r\nSubject: " + b"[REF:A" * 150_000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("raw", HOSTILE_WITHIN_LIMITS.values(), ids=HOSTILE_WITHIN_LIMITS.keys())
def test_route_peak_memory_stays_under_64_mb(raw: bytes) -> None:
    """tracemalloc: routing a hostile envelope within the limits allocates less than 64 MB at its peak."""
    envelope = Envelope.from_bytes(raw)
    assert envelope.quarantine_reason is None
    tracemalloc.start()
    try:
        ROUTER.route(envelope)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


def test_worst_case_parameter_messages_are_read_right() -> None:
    """The parameter worst cases at the default limits (bench_growth.WORST_CASES): within the limits, and the
    asked-for parameters are found among the unasked ones (charset, boundary, names, file names)."""
    text = Envelope.from_bytes(text_parameters_at_the_limit())
    assert text.quarantine_reason is None and text.plain_text() == "body\r\n"
    multipart = Envelope.from_bytes(boundary_parameters_at_the_limit())
    assert multipart.quarantine_reason is None and multipart.plain_text() == "x" and not multipart.defects
    parts = Envelope.from_bytes(part_parameters_at_the_limit())
    assert parts.quarantine_reason is None and parts.attachments == ("f.pdf",) * 999
