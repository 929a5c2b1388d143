"""Leases in the SQLite ledger: one poller per (connector, folder), owners named by a random token.

The owner is a random instance token, so two pollers never share an identity. Beside it the row keeps the
host, the pid and the process's start time: a lease whose owner process has died on this host (the pid
is gone, or now belongs to a process started at another time — a restarted container is PID 1 again)
is taken over at once; on another host it is taken over when it expires. A poller renews its lease by a
heartbeat while it works, so ``ttl`` only needs to cover a missed heartbeat or two.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

from enate_routing.errors import LeaseHeldError

__all__ = ["acquire", "release"]

_HOST = socket.gethostname()


def process_start(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot, from /proc), or "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


_STARTED = process_start(os.getpid())


def _owner_alive(host: str, pid: int, started: str) -> bool:
    if host != _HOST:
        return True  # cannot tell from here: wait for the lease to expire
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or process_start(pid) in ("", started)


def acquire(db: sqlite3.Connection, connector: str, mailbox: str, owner: str, ttl: float, now: float) -> None:
    """Take or renew the lease inside the caller's write transaction."""
    row = db.execute(
        "SELECT owner, host, pid, expires_at, started FROM leases WHERE connector = ? AND mailbox = ?",
        (connector, mailbox),
    ).fetchone()
    if row is not None and row[0] != owner and row[3] > now and _owner_alive(row[1], row[2], row[4]):
        raise LeaseHeldError(connector, mailbox, f"{row[0]} on {row[1]} (until {time.ctime(row[3])})")
    db.execute(
        "INSERT OR REPLACE INTO leases (connector, mailbox, owner, host, pid, expires_at, started) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (connector, mailbox, owner, _HOST, os.getpid(), now + ttl, _STARTED),
    )


def release(db: sqlite3.Connection, connector: str, mailbox: str, owner: str) -> None:
    db.execute("DELETE FROM leases WHERE connector = ? AND mailbox = ? AND owner = ?", (connector, mailbox, owner))
