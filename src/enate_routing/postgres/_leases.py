"""Leases per (connector, folder) in PostgreSQL, with a history of who held which folder when.

One row per folder in ``enate_leases``. Taking it is one short transaction: insert the row, or lock the
existing one with ``SELECT … FOR UPDATE SKIP LOCKED`` — a worker that finds the row locked by another
worker's acquisition treats the folder as held and moves on to the next instead of queueing behind it
(only the holder's own heartbeat waits that moment out, so a probe never costs the holder its lease).
The lock is held only for that transaction: what keeps a folder to one poller is the row's owner and
expiry, renewed by the poller's heartbeat.

Expiry is judged by the *database's* clock (``clock_timestamp()``), so workers on hosts whose clocks
disagree still agree on when a lease has run out. A lease whose owner process is gone on this host (the pid
is dead, or now belongs to a process started at another time) is taken over at once, as in the SQLite
ledger; an owner on another host keeps it until it expires.

``enate_lease_history`` gets one row per holding: acquired, last renewed, and how it ended
(``released``, ``expired`` — taken over after expiry — or ``owner-died``); the multi-worker tests read it
to prove no folder was polled by two workers at once.
"""

from __future__ import annotations

import os
import socket
import time

from enate_routing.errors import LeaseHeldError
from enate_routing.ingest._sqlite_leases import _owner_alive, process_start
from enate_routing.postgres._driver import Cursor, PostgresDatabase

__all__ = ["PostgresLeases"]

_HOST = socket.gethostname()
_NOW = "extract(epoch from clock_timestamp())"
_OPEN_HISTORY = (
    "INSERT INTO enate_lease_history (connector, mailbox, owner, host, pid, acquired_at, renewed_at) "
    "VALUES (%s, %s, %s, %s, %s, extract(epoch from clock_timestamp()), extract(epoch from clock_timestamp()))"
)


class PostgresLeases:
    """Acquire, renew and release leases; every call is one transaction on ``db``."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._pid = os.getpid()
        self._started = process_start(self._pid)

    def acquire(self, connector: str, mailbox: str, owner: str, ttl: float) -> None:
        """Take or renew the lease; :class:`LeaseHeldError` when another live owner holds it."""
        if os.getpid() != self._pid:  # a forked child is another owner process
            self._pid, self._started = os.getpid(), process_start(os.getpid())
        with self._db.transaction() as cursor:
            cursor.execute(
                f"INSERT INTO enate_leases (connector, mailbox, owner, host, pid, started, acquired_at, expires_at) "  # noqa: S608 — constant SQL only
                f"VALUES (%s, %s, %s, %s, %s, %s, {_NOW}, {_NOW} + %s) ON CONFLICT (connector, mailbox) DO NOTHING "
                "RETURNING acquired_at",
                (connector, mailbox, owner, _HOST, self._pid, self._started, ttl),
            )
            if cursor.fetchone() is not None:
                self._open_history(cursor, connector, mailbox, owner)
                return
            cursor.execute(
                f"SELECT owner, host, pid, started, expires_at, {_NOW} FROM enate_leases "  # noqa: S608
                "WHERE connector = %s AND mailbox = %s FOR UPDATE SKIP LOCKED",
                (connector, mailbox),
            )
            row = cursor.fetchone()
            if row is None:  # the row is locked: another worker is trying to take it right now
                cursor.execute("SELECT owner FROM enate_leases WHERE connector = %s AND mailbox = %s",
                               (connector, mailbox))
                current = cursor.fetchone()
                if current is None or current[0] != owner:
                    raise LeaseHeldError(connector, mailbox, "another worker (acquiring it now)")
                # Our own lease (a heartbeat): wait out the other worker's short check, then renew.
                cursor.execute(
                    f"SELECT owner, host, pid, started, expires_at, {_NOW} FROM enate_leases "  # noqa: S608
                    "WHERE connector = %s AND mailbox = %s FOR UPDATE",
                    (connector, mailbox),
                )
                row = cursor.fetchone()
                if row is None:
                    raise LeaseHeldError(connector, mailbox, "nobody (released meanwhile)")
            holder, host, pid, started, expires_at, now = row
            if holder == owner:
                cursor.execute(
                    f"UPDATE enate_leases SET expires_at = {_NOW} + %s WHERE connector = %s AND mailbox = %s",  # noqa: S608
                    (ttl, connector, mailbox),
                )
                cursor.execute(
                    f"UPDATE enate_lease_history SET renewed_at = {_NOW} "  # noqa: S608
                    "WHERE connector = %s AND mailbox = %s AND owner = %s AND ended_at IS NULL",
                    (connector, mailbox, owner),
                )
                return
            expired = expires_at <= now
            if not expired and _owner_alive(host, pid, started):
                raise LeaseHeldError(connector, mailbox, f"{holder} on {host} (until {time.ctime(expires_at)})")
            cursor.execute(
                f"UPDATE enate_leases SET owner = %s, host = %s, pid = %s, started = %s, acquired_at = {_NOW}, "  # noqa: S608
                f"expires_at = {_NOW} + %s WHERE connector = %s AND mailbox = %s",
                (owner, _HOST, self._pid, self._started, ttl, connector, mailbox),
            )
            self._close_history(cursor, connector, mailbox, holder, "expired" if expired else "owner-died")
            self._open_history(cursor, connector, mailbox, owner)

    def release(self, connector: str, mailbox: str, owner: str) -> None:
        with self._db.transaction() as cursor:
            cursor.execute(
                "DELETE FROM enate_leases WHERE connector = %s AND mailbox = %s AND owner = %s",
                (connector, mailbox, owner),
            )
            if cursor.rowcount:
                self._close_history(cursor, connector, mailbox, owner, "released")

    def _open_history(self, cursor: Cursor, connector: str, mailbox: str, owner: str) -> None:
        cursor.execute(
            _OPEN_HISTORY,
            (connector, mailbox, owner, _HOST, self._pid),
        )

    @staticmethod
    def _close_history(cursor: Cursor, connector: str, mailbox: str, owner: str, how: str) -> None:
        cursor.execute(
            f"UPDATE enate_lease_history SET ended_at = {_NOW}, ended_by = %s "  # noqa: S608
            "WHERE connector = %s AND mailbox = %s AND owner = %s AND ended_at IS NULL",
            (how, connector, mailbox, owner),
        )
