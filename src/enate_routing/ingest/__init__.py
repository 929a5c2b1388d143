"""Ingestion (docs/ingestion.md, docs/semantics.md §8): drain a mailbox into the host's handler exactly once.

The loop (:class:`Ingestor`) lists, spools, parses, routes, hands off, acknowledges and marks; the ledger
(:class:`Ledger`, the union of four small role protocols; :class:`SQLiteLedger` by default) records every
step before the next one, so a crash or restart loses nothing and duplicates no work item.

Module map: ``_loop`` (the loop: lease, backoff, passes), ``_batch`` (one batch through its steps),
``_inflight`` (one message in flight), ``_handoff`` (hand-off and group commit), ``_acknowledge``
(acknowledgements: builder, sending connector, the rate limit), ``_fetching`` (new messages of a pass),
``_marking`` (server marks), ``_per_thread`` (a database connection per thread),
``_lease`` (lease heartbeat), ``_ledger`` (role protocols, typed rows), ``_sqlite_*`` (the SQLite ledger),
``_configured`` (options from a configuration), ``_contract`` (what the host sees), ``_workers`` (one
worker over many mailboxes, docs/scaling.md), ``_open`` (a ledger chosen by URL or path).
"""

from __future__ import annotations

from enate_routing.ingest._acknowledge import (
    AckBuilder,
    AckContent,
    AckRoute,
    AckWording,
    build_acknowledgement,
    render_acknowledgement,
    sending_connector,
)
from enate_routing.ingest._contract import HOOK_POINTS, Backoff, Handler, IngestStats, RouterLike, StepHook, WorkItem
from enate_routing.ingest._lease import LeaseLostError
from enate_routing.ingest._ledger import (
    AckState,
    LeaseLedger,
    Ledger,
    MessageRecord,
    MessageState,
    PlannedWork,
    QuarantineLedger,
    RoutedMessage,
    SpoolItem,
    SpoolLedger,
    WorkLedger,
    WorkRecord,
    content_digest,
)
from enate_routing.ingest._loop import Ingestor
from enate_routing.ingest._open import open_ledger
from enate_routing.ingest._sqlite_ledger import SQLiteLedger
from enate_routing.ingest._workers import MailboxWorker, WorkerRound

__all__ = [
    "HOOK_POINTS",
    "AckBuilder",
    "AckContent",
    "AckRoute",
    "AckState",
    "AckWording",
    "Backoff",
    "Handler",
    "IngestStats",
    "Ingestor",
    "LeaseLedger",
    "LeaseLostError",
    "Ledger",
    "MailboxWorker",
    "MessageRecord",
    "MessageState",
    "PlannedWork",
    "QuarantineLedger",
    "RoutedMessage",
    "RouterLike",
    "SQLiteLedger",
    "SpoolItem",
    "SpoolLedger",
    "StepHook",
    "WorkItem",
    "WorkLedger",
    "WorkRecord",
    "WorkerRound",
    "build_acknowledgement",
    "content_digest",
    "open_ledger",
    "render_acknowledgement",
    "sending_connector",
]
