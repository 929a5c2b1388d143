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
