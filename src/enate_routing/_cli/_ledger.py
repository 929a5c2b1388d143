"""``ledger migrate``: create or bring up to date the schema of a ledger (docs/scaling.md).

``--ledger`` is a ``postgresql://`` URL or the path of a SQLite ledger file; it defaults to the environment
variable ``ENATE_ROUTING_LEDGER`` so that a password need not appear on a command line (where ``ps`` shows
it). Output never contains the password.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from enate_routing.errors import ConfigError
from enate_routing.ingest import SQLiteLedger
from enate_routing.postgres import migrate_database, redact_url
from enate_routing.postgres._driver import store_url

__all__ = ["LEDGER_ENV", "add_ledger_argument", "ledger_location", "register"]

LEDGER_ENV = "ENATE_ROUTING_LEDGER"


def add_ledger_argument(parser: argparse.ArgumentParser, *, what: str) -> None:
    """The shared ``--ledger URL|FILE`` option (``poll`` uses it too)."""
    parser.add_argument(
        "--ledger", metavar="URL|FILE",
        help=f"{what}: a postgresql://user:password@host:port/database URL or a SQLite file "
             f"(default: ${LEDGER_ENV})",
    )


def ledger_location(args: argparse.Namespace) -> str | None:
    """``--ledger``, else ``$ENATE_ROUTING_LEDGER``, else None."""
    value: str | None = args.ledger or os.environ.get(LEDGER_ENV) or None
    return value


def register(subparsers: Any) -> None:
    ledger = subparsers.add_parser("ledger", help="manage the ingestion ledger's database")
    commands = ledger.add_subparsers(dest="ledger_command", metavar="COMMAND", required=True)
    migrate = commands.add_parser(
        "migrate", help="create the ledger's tables, or apply the schema steps a database lacks"
    )
    add_ledger_argument(migrate, what="the ledger to migrate")
    migrate.set_defaults(handler=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    location = ledger_location(args)
    if location is None:
        raise ConfigError.single(f"give --ledger URL|FILE or set {LEDGER_ENV}", field="--ledger")
    url = store_url(location)
    if url is None:
        SQLiteLedger(location).close()  # a SQLite ledger creates and updates its tables when it opens
        print(f"ledger {location}: SQLite schema up to date")
        return 0
    before, after, applied = migrate_database(url)
    shown = redact_url(url)
    if not applied:
        print(f"ledger {shown}: schema version {after}, up to date")
        return 0
    for step in applied:
        print(f"ledger {shown}: applied step {step.version}: {step.description}")
    print(f"ledger {shown}: schema version {before} -> {after}")
    return 0
