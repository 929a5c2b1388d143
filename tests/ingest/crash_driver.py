"""A child process for the crash matrix: one ingestion run against the loopback Dovecot, maybe killed.

``run(spec)`` builds the real adapters (IMAP or POP3 source, SMTP sender), the real router and the
SQLite ledger (or ``spec["ledger"]``, a PostgreSQL URL), and drains the mailbox once. When
``spec["crash"]`` names a hook point and a message index, the process dies right there with
``os._exit(CRASH_EXIT)`` — no ``finally``, no QUIT, no LOGOUT, no flush: what a power cut or ``kill -9``
leaves behind.

The host side is a pair of append-only files, written with fsync: ``calls.jsonl`` gets a line for every
handler invocation, ``work.jsonl`` a line per work item created — only when the key is not there yet,
which is the idempotency the host contract asks for (docs/ingestion.md). The host returns the work item's
reference (``T-`` and its line number in ``work.jsonl``), the same one again for a key it already has.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

CRASH_EXIT = 77


class FileHost:
    """An idempotent host that keeps its work items in an append-only JSON-lines file."""

    def __init__(self, directory: Path) -> None:
        self.calls = directory / "calls.jsonl"
        self.work = directory / "work.jsonl"
        self.references: dict[str, str] = {}
        if self.work.exists():
            data = self.work.read_bytes()
            if data and not data.endswith(b"\n"):  # a torn last line from a crash mid-write
                data = data[: data.rfind(b"\n") + 1]
                self.work.write_bytes(data)
            for line in data.decode().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.references[record["key"]] = record["reference"]

    def _append(self, path: Path, record: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def __call__(self, item: Any) -> str:
        record = {"key": item.idempotency_key, "message_id": item.envelope.message_id, "pid": os.getpid()}
        self._append(self.calls, record)
        known = self.references.get(item.idempotency_key)
        if known is not None:
            return known
        reference = f"T-{len(self.references) + 1:06d}"
        self._append(self.work, {**record, "reference": reference})
        self.references[item.idempotency_key] = reference
        return reference


def run(spec: dict[str, Any]) -> int:
    from enate_routing._loading import parse_config
    from enate_routing._parse_limits import ParseLimits
    from enate_routing._router import Router
    from enate_routing.ingest import Backoff, Ingestor, open_ledger
    from enate_routing.transports import Endpoint, ImapSource, MoveAction, PasswordAuth, Pop3Source, SmtpSender

    directory = Path(spec["dir"])
    config = parse_config(spec["config"])
    router = Router.compile(config)
    limits = config.limits
    credentials = PasswordAuth(spec["user"], spec["password"], method="login")

    def source() -> Any:
        endpoint = Endpoint("127.0.0.1", spec["port"], "none", timeout=spec.get("timeout", 10.0),
                            allow_plaintext_auth=True)
        if spec["protocol"] == "imap":
            return ImapSource(endpoint, credentials, "INBOX", processed=MoveAction("Archive"))
        return Pop3Source(endpoint, credentials)

    def sender() -> Any:
        return SmtpSender(Endpoint("127.0.0.1", spec["smtp_port"], "none", timeout=10.0))

    crash = spec.get("crash")

    def hook(point: str, index: int) -> None:
        if crash is not None and point == crash[0] and index == crash[1]:
            os._exit(CRASH_EXIT)

    store = open_ledger(spec.get("ledger") or directory / "ledger.db")  # a postgresql:// URL in tests/scaling
    ingestor = Ingestor(
        connector=spec["connector"], mailbox="INBOX", source_factory=source, router=router, store=store,
        handler=FileHost(directory), sender_factory=sender, ack_from=spec["user"],
        limits=ParseLimits(max_message_bytes=limits.max_message_bytes),
        acknowledgements_per_hour=limits.acknowledgements_per_hour,
        batch_size=spec.get("batch_size", 50), hook=hook,
        backoff=Backoff(base=0.01, cap=0.05, max_failures=spec.get("max_failures", 20)),
    )
    stats = ingestor.run_once()
    store.close()
    (directory / f"stats-{os.getpid()}.json").write_text(json.dumps({
        "spooled": stats.spooled, "handed": stats.handed, "marked": stats.marked, "reconnects": stats.reconnects,
        "quarantined": stats.quarantined, "acks": stats.acks_sent, "listed": stats.listed,
    }))
    return 0


def child(spec: dict[str, Any]) -> None:
    """multiprocessing target: run and exit with the run's status."""
    try:
        code = run(spec)
    except BaseException as exc:  # noqa: BLE001 — report any failure to the parent as exit status 1
        print(f"crash driver failed: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201
        os._exit(1)
    os._exit(code)


if __name__ == "__main__":
    child(json.loads(Path(sys.argv[1]).read_text()))
