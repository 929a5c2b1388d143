"""Fixtures for the ingestion tests: a ledger in tmp, an in-memory mailbox, and an Ingestor factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeRouter, Host, Mailbox, MemorySender, MemorySource

from enate_routing.ingest import Backoff, Ingestor, SQLiteLedger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SQLiteLedger]:
    store = SQLiteLedger(tmp_path / "ledger.db")
    yield store
    store.close()


@pytest.fixture
def box() -> Mailbox:
    return Mailbox()


@pytest.fixture
def make_ingestor(ledger: SQLiteLedger, box: Mailbox) -> Callable[..., tuple[Ingestor, Host, MemorySender]]:
    def make(
        *, host: Host | None = None, router: Any = None, sender: MemorySender | None = None,
        source: Callable[[], MemorySource] | None = None, **kwargs: Any,
    ) -> tuple[Ingestor, Host, MemorySender]:
        host = host or Host()
        sender = sender or MemorySender()
        kwargs.setdefault("backoff", Backoff(base=0.0, cap=0.0, max_failures=50))
        kwargs.setdefault("sleep", lambda _: None)
        ingestor = Ingestor(
            connector="Support", mailbox="INBOX",
            source_factory=source or (lambda: MemorySource(box)),
            router=router or FakeRouter(), store=kwargs.pop("store", ledger), handler=host,
            sender_factory=lambda: sender, ack_from="help@acme.example", **kwargs,
        )
        return ingestor, host, sender

    return make
