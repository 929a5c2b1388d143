"""Unparseable and over-limit mail ends in quarantine with its raw bytes intact; the rest is routed, none lost."""

from __future__ import annotations

from collections.abc import Callable

from fakes import FakeRouter, Host, Mailbox, MemorySender

from corpus_files import corpus_messages
from enate_routing._parse_limits import ParseLimits
from enate_routing.ingest import Ingestor, SQLiteLedger

Make = Callable[..., tuple[Ingestor, Host, MemorySender]]
LIMITS = ParseLimits(max_message_bytes=200_000, max_header_bytes=20_000, max_mime_depth=8, max_mime_parts=50,
                     max_addresses_per_header=20, max_encoded_words_per_header=30)


def hostile() -> dict[str, bytes]:
    """Messages past each limit of semantics.md §3.1.1 (scaled down by LIMITS), plus bytes that are not mail at all."""
    deep = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(12))
    parts = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(80))
    many = b", ".join(b"u%d@example.net" % i for i in range(40))
    return {
        "size": b"Subject: big\r\n\r\n" + b"x" * 250_000,
        "header": b"Subject: " + b"h" * 30_000 + b"\r\n\r\nbody\r\n",
        "depth": b"From: a@example.net\r\nMIME-Version: 1.0\r\n" + deep + b"end\r\n",
        "parts": b'From: a@example.net\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n' + parts + b"--p--\r\n",
        "addresses": b"From: a@example.net\r\nTo: " + many + b"\r\n\r\nx",
        "encoded-words": b"Subject: " + b" ".join(b"=?utf-8?q?w%d?=" % i for i in range(60)) + b"\r\n\r\nx",
    }


def test_generated_over_limit_messages_are_quarantined(make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger) -> None:
    """Each over-limit message is quarantined with a reason and the exact raw bytes; nothing is routed."""
    messages = hostile()
    for raw in messages.values():
        box.deliver(raw)
    router = FakeRouter()
    ingestor, host, _ = make_ingestor(router=router, limits=LIMITS)
    ingestor.run_once()
    quarantined = ingestor.quarantined()
    assert len(quarantined) == len(messages) and router.calls == 0 and not host.items
    assert sorted(ledger.raw(q.id) for q in quarantined) == sorted(messages.values())
    assert all(q.quarantine_reason for q in quarantined)
    assert box.unprocessed() == []


def test_corpus_messages_are_routed_or_quarantined_never_lost(
    make_ingestor: Make, box: Mailbox, ledger: SQLiteLedger
) -> None:
    """Every message of the corpus (broken ones included) ends as work or quarantine, bytes intact."""
    raws = {p: p.read_bytes() for p in corpus_messages()}
    distinct = set(raws.values())
    for raw in distinct:
        box.deliver(raw)
    ingestor, host, _ = make_ingestor(limits=LIMITS, acknowledgements_per_hour=0)
    ingestor.run_once()
    quarantined = {ledger.raw(q.id) for q in ingestor.quarantined()}
    worked = {item.raw for item in host.items.values()}
    assert box.unprocessed() == []
    # Messages with the same Message-ID share a work item (semantics.md §3.1), so count by raw bytes through the ledger.
    handled = {ledger.raw(r) for r in range(1, len(distinct) + 1)}
    assert handled == distinct
    assert worked | quarantined <= distinct and quarantined.isdisjoint(worked)
    assert ledger.counts("Support")["marked"] == len(distinct)
