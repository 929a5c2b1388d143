"""A crash-matrix child over Microsoft Graph: one ingestion run against the fake Graph API, maybe killed.

Like :mod:`crash_driver` (same :class:`crash_driver.FileHost`, same exit status when killed) but the source
and the acknowledgement sender come from the connector factory for an ``office365-graph`` connector, with the
parent's app token as the host's token provider. A new process has no delta state: its first listing is a
full one, as after a real restart.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from crash_driver import CRASH_EXIT, FileHost


def run(spec: dict[str, Any]) -> int:
    from graph_rig import host_access

    from enate_routing._loading import parse_config
    from enate_routing._parse_limits import ParseLimits
    from enate_routing._router import Router
    from enate_routing.ingest import Backoff, Ingestor, SQLiteLedger
    from enate_routing.transports._factory import open_sender, open_source

    directory = Path(spec["dir"])
    config = parse_config(spec["config"])
    connector = config.connector(spec["connector"])
    access = host_access(spec["token"], timeout=10.0)
    crash = spec.get("crash")

    def hook(point: str, index: int) -> None:
        if crash is not None and point == crash[0] and index == crash[1]:
            os._exit(CRASH_EXIT)

    store = SQLiteLedger(directory / "ledger.db")
    ingestor = Ingestor(
        connector=spec["connector"], mailbox="inbox", source_factory=lambda: open_source(connector, access),
        router=Router.compile(config), store=store, handler=FileHost(directory),
        sender_factory=lambda: open_sender(connector, access), ack_from=connector.primary_address,
        limits=ParseLimits(max_message_bytes=config.limits.max_message_bytes),
        acknowledgements_per_hour=config.limits.acknowledgements_per_hour, batch_size=50, hook=hook,
        backoff=Backoff(base=0.01, cap=0.05, max_failures=20),
    )
    ingestor.run_once()
    store.close()
    return 0


def child(spec: dict[str, Any]) -> None:
    """multiprocessing target: run and exit with the run's status."""
    try:
        code = run(spec)
    except BaseException as exc:  # noqa: BLE001 — report any failure to the parent as exit status 1
        print(f"graph crash driver failed: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201
        os._exit(1)
    os._exit(code)


if __name__ == "__main__":
    child(json.loads(Path(sys.argv[1]).read_text()))
