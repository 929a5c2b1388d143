"""The header block fast paths (issue 15) give exactly what the feedparser-rule line walk gives."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from enate_routing import _header_block

LINES = st.sampled_from([
    b"Subject: hello", b"From: a@example.org", b"X-Empty:", b"To :  b@example.org", b" continued", b"\tfolded",
    b"From sender Mon Jan 1", b"junk line", b": no name", b"Subject:\xc3\xa4", b"",
    b"Subject", b"X-Bad\x01: v", b"Two words: v", b"Subject \t:\t v ", b"X-\xc3\xa4: v", b"  ",
])
# The regex the fast path replaced (one pass over every byte); its answers are the reference.
WELL_FORMED_FIELD = re.compile(rb"(([\x21-\x39\x3b-\x7e]+)[ \t]*:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)\r?\n)")


def regex_fields(raw: bytes, start: int, block_end: int) -> list[tuple[str, bytes]] | None:
    found = WELL_FORMED_FIELD.findall(raw, start, block_end)
    if sum(len(whole) for whole, _, _ in found) != block_end - start:
        return None
    return [(name.decode("ascii").lower(), re.sub(rb"\r?\n", b"", value)) for _, name, value in found]


EOLS = st.sampled_from([b"\r\n", b"\n", b"\r"])
# Mostly CRLF, so that whole blocks often take the one-pass CRLF route.
MOSTLY_CRLF = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])


@given(st.lists(st.tuples(LINES, EOLS), max_size=10), st.sampled_from([b"\r\n", b"\n", b"", b"\r"]))
def test_fast_split_agrees_with_the_line_walk(lines: list[tuple[bytes, bytes]], blank: bytes) -> None:
    """Whenever the fast path answers, its fields equal the line walk's; the blank-line finder agrees
    with the regex it replaces."""
    raw = b"".join(line + eol for line, eol in lines) + blank + b"body\r\n"
    found = _header_block._blank_line(raw, 0, len(raw))
    match = _header_block._BLANK_LINE.search(raw, 0, len(raw))
    assert found == (None if match is None else (match.start(), match.end()))
    if found is None:
        return
    block_end = found[0] + (2 if raw.startswith(b"\r\n", found[0]) else 1)
    fast = _header_block.well_formed_fields(raw, 0, block_end)
    assert fast == regex_fields(raw, 0, block_end)
    walked = _header_block._walk_header_lines(raw, 0, block_end, found[1], True, 1 << 20, True)
    if fast is not None:
        assert fast == walked.fields
        assert walked.defects == []


@given(st.lists(st.tuples(LINES, MOSTLY_CRLF), max_size=10), st.sampled_from([b"\r\n", b"\n", b"", b"\r"]),
       st.sampled_from([b"", b"\r\n", b"x\r\n"]), st.sampled_from([1 << 20, 0, 12, 40]))
def test_split_header_block_agrees_with_its_general_route(
    lines: list[tuple[bytes, bytes]], blank: bytes, before: bytes, max_bytes: int
) -> None:
    """The one-pass route for CRLF blocks (cut at the first CRLF blank line) gives what the general route gives:
    the blank-line finder, then the line-by-line fast path or the line walk; lookups agree with the fields."""
    body = b"".join(line + eol for line, eol in lines) + blank + b"body\r\n"
    raw = before + body
    start = len(before)
    block = _header_block.split_header_block(raw, start, len(raw), max_bytes)
    if body[:1] in (b"\r", b"\n"):  # a blank first line: no fields, whichever route
        assert (block.fields, block.end, block.body_start) == ([], start, start + (2 if body[:2] == b"\r\n" else 1))
        return
    window_end = min(len(raw), start + max_bytes + 4)
    found = _header_block._blank_line(raw, start, window_end)
    if found is None:
        expected = _header_block._walk_header_lines(raw, start, window_end, window_end, window_end == len(raw),
                                                    max_bytes, False)
    else:
        block_end = found[0] + (2 if raw.startswith(b"\r\n", found[0]) else 1)
        fast = _header_block.well_formed_fields(raw, start, block_end)
        expected = _header_block._walk_header_lines(raw, start, block_end, found[1], True, max_bytes, True)
        if fast is not None:
            assert fast == expected.fields
            expected.defects = []
    assert (block.fields, block.end, block.body_start, block.defects, block.over_limit, block.end_seen) == (
        expected.fields, expected.end, expected.body_start, expected.defects, expected.over_limit, expected.end_seen)
    for name in ("subject", "from", "to", "x-empty", "nothing"):
        values = [value for key, value in block.fields if key == name]
        assert block.all(name) == values
        assert block.first(name) == (values[0] if values else None)


@given(st.sampled_from([8180, 8189, 8190, 8191, 8192, 16379, 16381, 16382, 16383, 16384, 30000]),
       st.lists(st.tuples(LINES, EOLS), max_size=4), st.sampled_from([b"\r\n", b"\n", b"", b"\r"]),
       st.sampled_from([b"", b"\r\n", b"x\r\n"]), st.booleans())
def test_blank_line_past_the_first_8_kb_agrees_with_the_regex(
    padding: int, lines: list[tuple[bytes, bytes]], blank: bytes, before: bytes, bare_cr: bool
) -> None:
    """Blocks longer than the first 8 KB window (the blank line across a window's edge, none at all, a bare
    CR before it or not): the doubling finds answer as the regex does."""
    raw = before + b"X-Pad: " + b"p" * padding + (b"\r" if bare_cr else b"") + b"\r\n"
    raw += b"".join(line + eol for line, eol in lines) + blank + b"body"
    start = len(before)
    for end in (len(raw), len(raw) - 2, start + 8192, start + 16384):
        found = _header_block._blank_line(raw, start, end)
        match = _header_block._BLANK_LINE.search(raw, start, end)
        assert found == (None if match is None else (match.start(), match.end()))


def test_invented_field_names_do_not_keep_the_real_ones_out_of_the_known_names() -> None:
    """A message of more invented field names than the table holds, read first, must not fill it for good: the
    next message's names are remembered again, and the table never grows past its bound."""
    _header_block.forget_field_names()
    invented = "".join(f"X-Invented-{n}: v\r\n" for n in range(_header_block._MAX_FIELD_NAMES + 88))
    first = (invented + "Subject: s\r\n\r\nbody\r\n").encode()
    hostile = _header_block.split_header_block(first, 0, len(first), 1 << 20)
    assert hostile.first("x-invented-599") == b"v"
    assert len(_header_block._FIELD_NAMES) <= _header_block._MAX_FIELD_NAMES
    raw = b"From: a@example.org\r\nReceived: by mx\r\nSubject: s\r\n\r\nbody\r\n"
    _header_block.split_header_block(raw, 0, len(raw), 1 << 20)
    assert {b"From", b"Received", b"Subject"} <= _header_block._FIELD_NAMES.keys()
    assert len(_header_block._FIELD_NAMES) <= _header_block._MAX_FIELD_NAMES
