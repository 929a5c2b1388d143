"""``quarantine list|show|reprocess``: what the ingestion loop could not route, and trying it again.

A quarantined message keeps its raw bytes and the reason in the ledger (docs/ingestion.md). ``list`` shows
them, ``show`` one of them (its reason and its header block, or ``--raw`` bytes), ``reprocess`` routes them
again — after a route was added or a limit raised — and hands the decisions to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from enate_routing._cli._poll import add_ledger_options, open_ingestor
from enate_routing._cli._text import plural
from enate_routing.errors import ConfigError
from enate_routing.ingest import MessageRecord
from enate_routing.ingest._acknowledge import header_value

__all__ = ["register"]

_HEADER_LINES = 40


def register(subparsers: Any) -> None:
    quarantine = subparsers.add_parser("quarantine", help="list, show or reprocess quarantined messages")
    commands = quarantine.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    listing = commands.add_parser("list", help="quarantined messages of a connector: id, reason, Message-ID")
    add_ledger_options(listing, out_required=False)
    listing.set_defaults(handler=run_list)
    show = commands.add_parser("show", help="one quarantined message: reason and header block")
    add_ledger_options(show, out_required=False, connector_option=False)
    show.add_argument("id", type=int, metavar="ID", help="the message's ledger id (from `quarantine list`)")
    show.add_argument("--raw", action="store_true", help="write the raw message bytes to stdout")
    show.set_defaults(handler=run_show)
    again = commands.add_parser("reprocess", help="route quarantined messages again; decisions go to --out")
    add_ledger_options(again, out_required=True, connector_option=False)
    again.add_argument("ids", nargs="+", metavar="ID", help="ledger ids, or `all` for every quarantined message")
    again.set_defaults(handler=run_reprocess)


def _line(record: MessageRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.updated_at))
    message_id, reason = header_value(record.message_id or "-"), header_value(record.quarantine_reason or "")
    return f"{record.id}\t{when}\t{message_id}\t{reason}"


def run_list(args: argparse.Namespace) -> int:
    with open_ingestor(args, existing=True) as (ingestor, _, _):
        records = ingestor.quarantined()
    for record in records:
        print(_line(record))
    print(f"{args.name}: {len(records)} in quarantine", file=sys.stderr)
    return 0


def _find(records: list[MessageRecord], wanted: int, name: str) -> MessageRecord:
    for record in records:
        if record.id == wanted:
            return record
    raise ConfigError.single(f"no quarantined message with id {wanted} (see `enate-routing quarantine list`)",
                             where=f"connector {name!r}")


def run_show(args: argparse.Namespace) -> int:
    with open_ingestor(args, existing=True) as (ingestor, store, _):
        record = _find(ingestor.quarantined(), args.id, args.name)
        raw = store.raw(record.id)
    if args.raw:
        sys.stdout.buffer.write(raw)
        return 0
    print(f"id:         {record.id}\nreason:     {header_value(record.quarantine_reason or '')}\n"
          f"message-id: {header_value(record.message_id or '-')}\nsize:       {record.size} bytes\n"
          f"ref:        {record.ref_key}\n")
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.decode("utf-8", "replace").splitlines()
    for line in lines[:_HEADER_LINES]:
        print(header_value(line, 200))
    if len(lines) > _HEADER_LINES:
        print(f"... {len(lines) - _HEADER_LINES} more header lines (--raw shows everything)")
    return 0


def _id(text: str) -> int:
    if not text.isdigit():
        raise ConfigError.single("a ledger id is a number (see `enate-routing quarantine list`), or `all`",
                                 item=text)
    return int(text)


def run_reprocess(args: argparse.Namespace) -> int:
    with open_ingestor(args, existing=True) as (ingestor, _, writer):
        records = ingestor.quarantined()
        ids = [r.id for r in records] if args.ids == ["all"] else [_id(text) for text in args.ids]
        for wanted in ids:
            _find(records, wanted, args.name)
        stats = ingestor.reprocess(ids)
        left = len(ingestor.quarantined())
    written = writer.written if writer is not None else 0
    print(f"{args.name}: {len(ids)} reprocessed, {stats.handed} handed off, {plural(written, 'decision')} written to "
          f"{args.out}, {left} still in quarantine", file=sys.stderr)
    return 0
