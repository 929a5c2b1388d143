"""A poller runs for months: what the package holds must not grow with the mail it has handled.

The real router (the demo configuration: creates, links, bounces, acknowledgements, rejects) and the real
SQLite ledger, fed the demo mailbox again and again under new Message-IDs through an in-memory source. The
memory that the package's own code allocated and still holds is read with ``tracemalloc`` after each round;
the bounded tables (remembered senders, keys, addresses) fill during the warm-up round, so from then on any
growth is a leak: 1,000 messages a round, a leak of 11 bytes per message fails.
"""

from __future__ import annotations

import gc
import re
import tracemalloc
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from fakes import Mailbox, MemorySender, MemorySource

import enate_routing
from enate_routing import Router, load_config
from enate_routing.ingest import Backoff, Ingestor, SQLiteLedger, WorkItem

ROUNDS = 4
PER_ROUND = 1000
ALLOWED_GROWTH = 32 * 1024  # bytes over the last three rounds (3,000 messages): about 11 bytes per message


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def _held_by_the_package() -> int:
    gc.collect()
    package = str(Path(enate_routing.__file__).parent)
    only = [tracemalloc.Filter(True, f"{package}/*")]
    return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(only).statistics("filename"))


def test_memory_held_stays_flat_over_thousands_of_messages(tmp_path: Path, traced: None) -> None:
    data = resources.files("enate_routing") / "data"
    config = load_config(Path(str(data / "demo.toml")))
    connector = config.connectors[0]
    demo_mail = [path.read_bytes() for path in sorted(Path(str(data / "demo_mail")).glob("*.eml"))]
    box = Mailbox()
    handed = [0]

    def host(item: WorkItem) -> None:
        handed[0] += 1

    ledger = SQLiteLedger(tmp_path / "ledger.db")
    ingestor = Ingestor(
        connector=connector.name, mailbox="INBOX", source_factory=lambda: MemorySource(box),
        router=Router.compile(config), store=ledger, handler=host, sender_factory=MemorySender,
        ack_from=connector.primary_address, backoff=Backoff(base=0.0, cap=0.0, max_failures=50),
        sleep=lambda _: None,
    )
    held: list[int] = []
    sent = 0
    try:
        for _ in range(ROUNDS):
            for _ in range(PER_ROUND):
                sent += 1
                raw = demo_mail[sent % len(demo_mail)]
                box.deliver(re.sub(rb"(?im)^Message-ID:.*$", b"Message-ID: <round-%d@memory.example>" % sent, raw,
                                   count=1))
            stats = ingestor.run_once()
            assert stats.marked == PER_ROUND and box.unprocessed() == []
            box.messages.clear()  # the fake server's copies: not the package's memory
            held.append(_held_by_the_package())
    finally:
        ledger.close()
    assert handed[0] >= ROUNDS * PER_ROUND * 0.9  # (some demo mail is ignored or rejected: no work)
    growth = max(held[1:]) - held[1]
    assert growth <= ALLOWED_GROWTH, f"memory held after each round of {PER_ROUND} messages: {held}"
