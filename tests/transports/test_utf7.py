"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3) and IMAP quoting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enate_routing.transports._utf7 import decode_mailbox, encode_mailbox, quote_mailbox

VECTORS = [
    ("INBOX", "INBOX"),
    ("Deleted Items", "Deleted Items"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("&", "&-"),
    ("Tom & Jerry", "Tom &- Jerry"),
    ("日本語", "&ZeVnLIqe-"),
    # The example of RFC 3501 §5.1.3.
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Erledigt ✓", "Erledigt &JxM-"),
    ("😀", "&2D3eAA-"),
]


@pytest.mark.parametrize(("name", "encoded"), VECTORS)
def test_known_vectors(name: str, encoded: str) -> None:
    """Encoding matches the RFC's worked examples and decoding inverts it."""
    assert encode_mailbox(name) == encoded
    assert decode_mailbox(encoded) == name


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_round_trip_and_ascii(name: str) -> None:
    """Any name encodes to printable ASCII and decodes back unchanged."""
    encoded = encode_mailbox(name)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert decode_mailbox(encoded) == name


@pytest.mark.parametrize("bad", ["&", "abc&Zm9v", "&!!!-", "&AA-"])
def test_malformed_names_are_refused(bad: str) -> None:
    """A malformed &...- run is a ValueError, not a wrong name."""
    with pytest.raises(ValueError, match="mailbox name"):
        decode_mailbox(bad)


def test_quoting_escapes_quotes_and_backslashes() -> None:
    """quote_mailbox makes one IMAP quoted string, so a name with spaces is not cut at the first word."""
    assert quote_mailbox("Deleted Items") == '"Deleted Items"'
    assert quote_mailbox('a"b\\c') == '"a\\"b\\\\c"'
    assert quote_mailbox("Entwürfe") == '"Entw&APw-rfe"'


def test_quoting_refuses_line_breaks() -> None:
    """CR, LF and NUL cannot be sent in a quoted string, so such a name is refused."""
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        quote_mailbox("a\r\nb")
