"""The default ledger: one SQLite file (standard-library ``sqlite3``, WAL, ``synchronous=FULL``).

- **Keys.** A message is found by ``(connector, MessageRef.key)`` and, as a second key, by
  ``(connector, SHA-256 of the raw bytes)``. When a folder's UIDVALIDITY changes, or a POP3 server renumbers
  its UIDLs, the same bytes arrive under a new ref: the digest finds the existing row and the new ref is
  added as an alias, so no work is re-created.
- **Raw bytes are spooled in the database**, in the same transaction that creates the row: one fsync makes
  the bytes and their state durable together, and no second place (a spool folder) can disagree with the
  ledger after a crash. Messages are limited to 25 MB by default (docs/semantics.md §3.1.1).
- **Acknowledgement rate limit.** One row per acknowledgement and recipient; the count over the last hour
  (a sliding window) is what the limit is checked against (docs/semantics.md §3.5).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from enate_routing._closing import ClosedOnExit
from enate_routing.errors import StoreError
from enate_routing.ingest._ledger import (
    AckState,
    MessageRecord,
    MessageState,
    RoutedMessage,
    SpoolItem,
    WorkRecord,
)
from enate_routing.ingest._sqlite_db import SQLiteDatabase
from enate_routing.ingest._sqlite_leases import acquire, release
from enate_routing.ingest._sqlite_schema import (
    DROPPABLE_RAW,
    MESSAGE_COLUMNS,
    SCHEMA,
    WORK_COLUMNS,
    message_row,
    migrate,
    work_row,
)

__all__ = ["SQLiteLedger"]

_CHUNK = 500  # bound on "IN (...)" placeholders per statement
_DROPPABLE = DROPPABLE_RAW.format(length="length")


class SQLiteLedger(ClosedOnExit):
    """The default :class:`~enate_routing.ingest.Ledger`, usable from any thread and by several processes.

    Every commit is durable when it returns. Leases keep one poller per folder. ``clock`` (epoch seconds) is
    injectable for tests of the rate limit and of lease expiry. An empty or unreadable file is refused
    (:class:`~enate_routing.errors.StoreError`) unless ``reset=True``. Every database error is a StoreError.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time,
                 reset: bool = False) -> None:
        self.clock = clock
        self._db = SQLiteDatabase(path, SCHEMA, what="ingestion ledger", reset=reset)
        self.path = self._db.path
        with self._db.transaction() as db:
            migrate(db)

    def close(self) -> None:
        self._db.close()


    # ----------------------------------------------------------------------------------------- leases
    def acquire_lease(self, connector: str, mailbox: str, owner: str, ttl: float) -> None:
        with self._db.transaction() as db:
            acquire(db, connector, mailbox, owner, ttl, self.clock())

    def release_lease(self, connector: str, mailbox: str, owner: str) -> None:
        with self._db.transaction() as db:
            release(db, connector, mailbox, owner)

    # ----------------------------------------------------------------------------------------- spool
    def observe_uidvalidity(self, connector: str, mailbox: str, uidvalidity: int) -> int | None:
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT uidvalidity FROM mailboxes WHERE connector = ? AND mailbox = ?", (connector, mailbox)
            ).fetchone()
            if row is not None and row[0] == uidvalidity:
                return None
            db.execute(
                "INSERT OR REPLACE INTO mailboxes (connector, mailbox, uidvalidity) VALUES (?, ?, ?)",
                (connector, mailbox, uidvalidity),
            )
            return None if row is None else int(row[0])

    def lookup_refs(self, connector: str, ref_keys: Sequence[str]) -> dict[str, MessageRecord]:
        found: dict[str, MessageRecord] = {}
        keys = list(ref_keys)
        cols = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            rows = self._db.query(
                f"SELECT r.ref_key, {cols} FROM refs r JOIN messages m ON m.id = r.message "  # noqa: S608 — placeholders only
                f"WHERE r.connector = ? AND r.ref_key IN ({','.join('?' * len(chunk))})",
                (connector, *chunk),
            )
            for row in rows:
                found[row[0]] = message_row(row[1:])
        return found

    def spool(self, connector: str, mailbox: str, items: Sequence[SpoolItem]) -> list[MessageRecord]:
        now = self.clock()
        out: list[MessageRecord] = []
        with self._db.transaction() as db:
            for ref_key, raw, sha in items:
                row = db.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE connector = ? AND sha256 = ?",  # noqa: S608
                    (connector, sha),
                ).fetchone()
                if row is None:
                    cursor = db.execute(
                        "INSERT INTO messages (connector, mailbox, ref_key, sha256, size, raw, state, "
                        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (connector, mailbox, ref_key, sha, len(raw), raw, MessageState.SPOOLED, now, now),
                    )
                    message = int(cursor.lastrowid or 0)
                    record = MessageRecord(  # what was just inserted: no need to read it back
                        id=message, connector=connector, mailbox=mailbox, ref_key=ref_key, sha256=sha,
                        message_id=None, size=len(raw), state=MessageState.SPOOLED, quarantine_reason=None,
                        fallback_only=False, decisions=(), generation=0, attempts=0, created_at=now, updated_at=now,
                    )
                else:
                    message = int(row[0])
                    db.execute("UPDATE messages SET ref_key = ?, updated_at = ? WHERE id = ?", (ref_key, now, message))
                    record = message_row(db.execute(
                        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message,)  # noqa: S608
                    ).fetchone())
                db.execute(
                    "INSERT OR REPLACE INTO refs (connector, ref_key, message, seen_at) VALUES (?, ?, ?, ?)",
                    (connector, ref_key, message, now),
                )
                out.append(record)
        return out

    def pending(self, connector: str, mailbox: str) -> list[MessageRecord]:
        rows = self._db.query(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE connector = ? AND mailbox = ? AND state != ? "  # noqa: S608
            "ORDER BY id",
            (connector, mailbox, MessageState.MARKED),
        )
        return [message_row(r) for r in rows]

    def get(self, message: int) -> MessageRecord:
        rows = self._db.query(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message,))  # noqa: S608
        if not rows:
            raise StoreError(f"ledger {self.path}: no message {message}")
        return message_row(rows[0])

    def raw(self, message: int) -> bytes:
        rows = self._db.query("SELECT raw FROM messages WHERE id = ?", (message,))
        if not rows:
            raise StoreError(f"ledger {self.path}: no message {message}")
        return bytes(rows[0][0])

    def refs_of(self, message: int) -> list[str]:
        """Every ref key the message was seen under, newest first."""
        rows = self._db.query(
            "SELECT ref_key FROM refs WHERE message = ? ORDER BY seen_at DESC, rowid DESC", (message,)
        )
        return [r[0] for r in rows]

    def note_attempt(self, messages: Sequence[int]) -> None:
        if messages:
            with self._db.transaction() as db:
                db.executemany("UPDATE messages SET attempts = attempts + 1 WHERE id = ?", [(m,) for m in messages])

    # ----------------------------------------------------------------------------------------- work
    def record_routed(self, routed: Sequence[RoutedMessage]) -> int:
        now = self.clock()
        duplicates = 0
        with self._db.transaction() as db:
            for message, message_id, decisions, work, fallback_only in routed:
                connector = db.execute("SELECT connector FROM messages WHERE id = ?", (message,)).fetchone()[0]
                owns_open = False
                for position, item in enumerate(work):
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO work (connector, key, message, position, ack_state, ack_recipients) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (connector, item.key, message, position, item.ack_state, json.dumps(item.ack_recipients)),
                    )
                    if cursor.rowcount:
                        owns_open = True
                        continue
                    owner = db.execute(
                        "SELECT message, handed_at FROM work WHERE connector = ? AND key = ?", (connector, item.key),
                    ).fetchone()
                    owns_open = owns_open or (owner[0] == message and owner[1] is None)
                    duplicates += owner[0] != message
                db.execute(
                    "UPDATE messages SET state = ?, message_id = ?, decisions = ?, fallback_only = ?, "
                    "quarantine_reason = NULL, updated_at = ? WHERE id = ?",
                    (MessageState.ROUTED if owns_open else MessageState.DONE, message_id,
                     json.dumps(list(decisions)), int(fallback_only), now, message),
                )
        return duplicates

    def record_quarantine(self, message: int, reason: str, message_id: str | None = None) -> None:
        with self._db.transaction() as db:
            # A MARKED message (reprocessed after the server copy was moved) keeps its state.
            db.execute(
                "UPDATE messages SET state = CASE state WHEN ? THEN state ELSE ? END, quarantine_reason = ?, "
                "message_id = COALESCE(?, message_id), updated_at = ? WHERE id = ?",
                (MessageState.MARKED, MessageState.DONE, reason, message_id, self.clock(), message),
            )

    def work_of(self, message: int) -> list[WorkRecord]:
        rows = self._db.query(
            f"SELECT {WORK_COLUMNS} FROM work WHERE message = ? ORDER BY position", (message,)  # noqa: S608
        )
        return [work_row(r) for r in rows]

    def record_handed(
        self, connector: str, keys: Sequence[str], *, finish: Sequence[int] = (),
        references: Mapping[str, str] | None = None,
    ) -> set[int]:
        now = self.clock()
        references = references or {}
        with self._db.transaction() as db:
            # The first hand-off recorded keeps its reference (a re-delivered handler may answer again).
            db.executemany(
                "UPDATE work SET handed_at = COALESCE(handed_at, ?), reference = COALESCE(reference, ?) "
                "WHERE connector = ? AND key = ?",
                [(now, references.get(key), connector, key) for key in keys],
            )
            return {message for message in finish if self._finish(db, message)}

    def record_ack(
        self, connector: str, key: str, state: AckState, recipients: Sequence[str], *,
        attempt: bool = False, reason: str | None = None, finish: int | None = None,
    ) -> None:
        now = self.clock()
        with self._db.transaction() as db:
            db.execute(
                "UPDATE work SET handed_at = COALESCE(handed_at, ?), ack_state = ?, ack_recipients = ?, "
                "attempts = attempts + ?, ack_reason = ? WHERE connector = ? AND key = ?",
                (now, state, json.dumps(list(recipients)), int(attempt), reason, connector, key),
            )
            if state is AckState.SENT:
                db.executemany(
                    "INSERT INTO acks (recipient, sent_at, key) VALUES (?, ?, ?)",
                    [(r.casefold(), now, key) for r in recipients],
                )
            if finish is not None:
                self._finish(db, finish)

    def note_work_failure(self, connector: str, key: str) -> int:
        with self._db.transaction() as db:
            db.execute("UPDATE work SET attempts = attempts + 1 WHERE connector = ? AND key = ?", (connector, key))
            row = db.execute("SELECT attempts FROM work WHERE connector = ? AND key = ?", (connector, key)).fetchone()
        return int(row[0]) if row else 0

    def _finish(self, db: Any, message: int) -> bool:
        """Set DONE when every owned work item is handed off and no acknowledgement is pending."""
        open_work = db.execute(
            "SELECT COUNT(*) FROM work WHERE message = ? AND (handed_at IS NULL OR ack_state = ?)",
            (message, AckState.PENDING),
        ).fetchone()[0]
        if open_work:
            return False
        db.execute(
            "UPDATE messages SET state = ?, updated_at = ? WHERE id = ? AND state IN (?, ?)",
            (MessageState.DONE, self.clock(), message, MessageState.ROUTED, MessageState.SPOOLED),
        )
        return True

    def record_marked(self, messages: Sequence[int]) -> None:
        if messages:
            now = self.clock()
            with self._db.transaction() as db:
                db.executemany(
                    "UPDATE messages SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
                    [(MessageState.MARKED, now, m, MessageState.DONE) for m in messages],
                )

    def ack_count(self, recipient: str, since: float) -> int:
        # Pending acknowledgements count too: they go out as soon as the mail server answers again.
        recipient = recipient.casefold()
        rows = self._db.query(
            "SELECT (SELECT COUNT(*) FROM acks WHERE recipient = ? AND sent_at >= ?) + "
            "(SELECT COUNT(*) FROM work, json_each(work.ack_recipients) AS r "
            "WHERE work.ack_state = 'pending' AND lower(r.value) = ?)",
            (recipient, since, recipient),
        )
        return int(rows[0][0])

    def prune_acks(self, before: float) -> int:
        """Forget acknowledgements older than ``before`` (they no longer count in any window)."""
        with self._db.transaction() as db:
            return int(db.execute("DELETE FROM acks WHERE sent_at < ?", (before,)).rowcount)

    def drop_raw(self, connector: str, before: float) -> int:
        """Empty the raw bytes of ``connector``'s messages MARKED before ``before``, not quarantined (the row,
        its digest, refs and work keys stay for de-duplication); how many were emptied."""
        with self._db.transaction() as db:
            sql = f"UPDATE messages SET raw = X'' WHERE {_DROPPABLE} AND connector = ? AND updated_at < ?"  # noqa: S608
            return int(db.execute(sql, (connector, before)).rowcount)

    # ----------------------------------------------------------------------------------------- quarantine
    def quarantined(self, connector: str | None = None) -> list[MessageRecord]:
        return self._messages("quarantine_reason IS NOT NULL", (), connector)

    def unrouted(self, connector: str | None = None) -> list[MessageRecord]:
        # Past the retention (drop_raw) an unrouted message has no bytes to route again: no longer listed.
        return self._messages("quarantine_reason IS NULL AND fallback_only = 1 AND state IN (?, ?) AND length(raw) > 0",
                              (MessageState.DONE, MessageState.MARKED), connector)

    def _messages(self, where: str, params: tuple[Any, ...], connector: str | None) -> list[MessageRecord]:
        if connector is not None:
            where, params = f"{where} AND connector = ?", (*params, connector)
        rows = self._db.query(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY id", params)  # noqa: S608
        return [message_row(r) for r in rows]

    def reopen(self, message: int, *, new_generation: bool) -> MessageRecord:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE messages SET state = ?, quarantine_reason = NULL, attempts = 0, "
                "generation = generation + ?, updated_at = ? WHERE id = ?",
                (MessageState.SPOOLED, int(new_generation), self.clock(), message),
            )
        return self.get(message)

    def counts(self, connector: str | None = None) -> dict[str, int]:
        """Messages per state (and ``quarantined``), for progress lines and tests."""
        where, params = ("WHERE connector = ?", (connector,)) if connector is not None else ("", ())
        out = {state.value: 0 for state in MessageState}
        for state, count in self._db.query(
            f"SELECT state, COUNT(*) FROM messages {where} GROUP BY state", params  # noqa: S608
        ):
            out[state] = count
        rows = self._db.query(
            f"SELECT COUNT(*) FROM messages {where} {'AND' if where else 'WHERE'} quarantine_reason IS NOT NULL",  # noqa: S608
            params,
        )
        out["quarantined"] = int(rows[0][0])
        return out
