"""Real-world recovery (issue 15 item 4): broken mail the standard library misreads, read right.

Each kind of damage has a golden message in ``recovery/`` written for this test; the expected facts are
what a person reading the mail would take, and the standard library's full parse gets each of them wrong.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from enate_routing._envelope import Envelope

RECOVERY = Path(__file__).parent / "recovery"

EXPECTED: dict[str, dict[str, Any]] = {
    "junk_line_before_headers": {
        "sender": "priya@fabrikam.example", "sender_name": "Priya Shah", "subject": "Printer on floor 3",
        "message_id": "junk-1@fabrikam.example", "defects": ["junk line before the header block skipped"],
    },
    "broken_fold": {
        "sender": "priya@fabrikam.example", "sender_name": "Priya Shah",
        "subject": "Password reset for the finance team", "message_id": "fold-1@fabrikam.example",
        "defects": ["header line without leading white space joined to the field before it"],
    },
    "from_two_addresses": {
        "sender": "priya@fabrikam.example", "sender_name": "Shah, Priya", "subject": "Joint request",
        "message_id": "two-1@fabrikam.example", "defects": ["From has 2 addresses; the first is used"],
    },
    "encoded_words_with_spaces": {
        "sender": "joerg@fabrikam.example", "sender_name": "Jörg Müller",
        "subject": "ABC / 123 Personaländerung", "message_id": "ew-1@fabrikam.example", "defects": [],
    },
    "undeclared_shift_jis": {
        "sender": "yamada@fabrikam.example", "sender_name": "山田 太郎", "subject": "お問い合わせ：請求書について",
        "message_id": "sjis-1@fabrikam.example",
        "defects": ["8-bit bytes in From are not UTF-8; read as shift_jis",
                    "8-bit bytes in Subject are not UTF-8; read as shift_jis"],
    },
    "undeclared_gb2312": {
        "sender": "wang@fabrikam.example", "sender_name": "王小明", "subject": "关于发票的问题",
        "message_id": "gb-1@fabrikam.example",
        "defects": ["8-bit bytes in From are not UTF-8; read as gb2312",
                    "8-bit bytes in Subject are not UTF-8; read as gb2312"],
    },
}


def facts(envelope: Envelope) -> dict[str, Any]:
    return {
        "sender": envelope.sender, "sender_name": envelope.sender_name, "subject": envelope.subject,
        "message_id": envelope.message_id, "defects": list(envelope.defects),
    }


def test_every_golden_message_has_an_expectation() -> None:
    """The folder and the table name the same messages."""
    assert sorted(p.stem for p in RECOVERY.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recovered_facts(name: str) -> None:
    """Sender, display name, subject, Message-ID and the defect naming the repair, as expected."""
    envelope = Envelope.from_bytes((RECOVERY / f"{name}.eml").read_bytes())
    assert envelope.quarantine_reason is None
    assert facts(envelope) == EXPECTED[name]
    assert [r.address for r in envelope.recipients] == ["help@contoso.example"]


# Where the standard library's full parse goes wrong on each message (encoded words with spaces it reads
# right, like us, since Python 3.11's header parser accepts them).
STDLIB_MISSES = {
    "junk_line_before_headers": "sender",
    "broken_fold": "subject",
    "from_two_addresses": "sender",
    "undeclared_shift_jis": "subject",
    "undeclared_gb2312": "subject",
}


@pytest.mark.parametrize(("name", "fact"), sorted(STDLIB_MISSES.items()))
def test_better_than_the_standard_library(name: str, fact: str) -> None:
    """On each damaged message the standard library's full parse gets this fact wrong; we do not."""
    raw = (RECOVERY / f"{name}.eml").read_bytes()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    senders = [a.addr_spec for a in getattr(message["from"], "addresses", ())] if message["from"] else []
    theirs = {"sender": senders[0] if len(senders) == 1 else None, "subject": str(message["subject"] or "")}
    assert theirs[fact] != EXPECTED[name][fact]
