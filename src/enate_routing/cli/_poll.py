"""``poll``: run the ingestion loop against a connector's real mailbox (docs/semantics.md §5, §8).

Each decision is appended to ``--out`` as one JSON line with the docs/semantics.md §5 fields (``message`` is the
Message-ID, or the server ref when the message has none). The JSON-lines writer *is* the host's handler,
so it honours the host's contract (docs/ingestion.md): it is idempotent on the idempotency key — keys
already in the file are not written again — and every line is flushed and fsynced before the ledger
records the hand-off. A line torn by a crash mid-write is cut off when the file is opened again.

The ledger (``--state``, default ``<out>.ledger.db`` beside the output) is what makes a restart resume
where the last run stopped; keep it with the output file. ``--ledger postgresql://...`` (or
``$ENATE_ROUTING_LEDGER``) puts it in PostgreSQL instead, shared by several workers (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from enate_routing.cli._ledger import add_ledger_argument, ledger_location
from enate_routing.ingest import Ingestor, IngestStats, WorkItem
from enate_routing.loading import load_config
from enate_routing.postgres import open_ledger
from enate_routing.router import Router
from enate_routing.transports.factory import ConnectorAccess

__all__ = ["JsonlWriter", "register"]


class JsonlWriter:
    """Appends one JSON object per decision to a file, at most once per idempotency key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: set[str] = set()
        self.written = 0
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                # A crash mid-write left half a line: drop it; that decision was not recorded as handed off.
                data = data[: data.rfind(b"\n") + 1]
                with path.open("r+b") as out:
                    out.truncate(len(data))
            for line in data.decode("utf-8", "replace").splitlines():
                try:
                    self.keys.add(json.loads(line)["idempotency_key"])
                except (ValueError, KeyError, TypeError):
                    continue
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: TextIO = path.open("a", encoding="utf-8")

    def __call__(self, item: WorkItem) -> None:
        if item.idempotency_key in self.keys:
            return
        record: dict[str, Any] = item.decision.to_json(item.envelope.message_id or item.ref)
        record["idempotency_key"] = item.idempotency_key
        self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._out.flush()
        os.fsync(self._out.fileno())
        self.keys.add(item.idempotency_key)
        self.written += 1

    def close(self) -> None:
        self._out.close()


def register(subparsers: Any) -> None:
    poll = subparsers.add_parser(
        "poll", help="ingest a connector's mailbox: route every new message, append decisions to a JSON-lines file"
    )
    poll.add_argument("--config", required=True, type=Path, metavar="FILE")
    poll.add_argument("name", metavar="NAME", help="the incoming connector to poll")
    poll.add_argument("--once", action="store_true", help="drain the mailbox once and exit")
    poll.add_argument("--out", required=True, type=Path, metavar="FILE.jsonl", help="decisions are appended here")
    poll.add_argument("--state", type=Path, metavar="DB", help="the ingestion ledger (default: <out>.ledger.db)")
    add_ledger_argument(poll, what="the ingestion ledger instead of --state")
    poll.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                      help="time between polls without --once (default 60)")
    poll.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                      help="bound on every server operation (default 30)")
    poll.set_defaults(handler=run_poll)


def _progress(stream: TextIO) -> Any:
    def show(stats: IngestStats) -> None:
        stream.write(
            f"\rlisted {stats.listed}  spooled {stats.spooled}  handed off {stats.handed}  "
            f"quarantined {stats.quarantined}  marked {stats.marked}  reconnects {stats.reconnects}   "
        )
        stream.flush()

    return show


def run_poll(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    state: str | Path = ledger_location(args) or args.state or args.out.with_name(args.out.name + ".ledger.db")
    access = ConnectorAccess(base_dir=args.config.parent, timeout=args.timeout)
    router = Router.compile(config)
    writer = JsonlWriter(args.out)
    store = open_ledger(state)
    try:
        ingestor = Ingestor.from_config(
            config, args.name, router=router, store=store, handler=writer, access=access,
            progress=_progress(sys.stderr) if sys.stderr.isatty() else None,
        )
        if args.once:
            stats = ingestor.run_once()
        else:
            ingestor.run_forever(args.interval)
            return 0  # pragma: no cover - run_forever ends only by an exception (Ctrl-C)
        quarantined = len(ingestor.quarantined())
    finally:
        writer.close()
        store.close()
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(
        f"{args.name}: {writer.written} decisions written to {args.out}, {stats.marked} messages marked processed, "
        f"{quarantined} in quarantine", file=sys.stderr,
    )
    return 0
