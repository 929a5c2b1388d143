"""The durable ingestion ledger (docs/semantics.md §3.5, §8): what happened to every fetched message, step by step.

The ingestion loop (:mod:`enate_routing.ingest`) records each step here *before* it takes the next one,
so that after a crash a restart resumes every message from its last recorded step and nothing is lost or
done twice. :class:`Ledger` is the ``typing.Protocol`` a host implements to keep the ledger in its own
database; :class:`SqliteLedger` is the default (standard-library ``sqlite3``, WAL, ``synchronous=FULL``).

Per message (one row, keyed by the server's stable id *and* by its content)::

    (listed) ──fetch──▶ SPOOLED ──parse+route──▶ ROUTED ──every decision handed off──▶ DONE ──mark──▶ MARKED
                           │                        │   (and its acknowledgement sent,      ▲
                           │                        │    suppressed or refused)             │
                           └──over limit / unparseable──┴──handler failed permanently──▶ DONE (quarantined)

- **Keys.** A message is found by ``(connector, MessageRef.key)`` — ``imap:<mailbox>:<uidvalidity>:<uid>``
  or ``pop3:<mailbox>:<uidl>`` — and, as a second key, by ``(connector, SHA-256 of the raw bytes)``, with
  the Message-ID beside it. When a folder's UIDVALIDITY changes, or a POP3 server renumbers its UIDLs, the
  same bytes arrive under a new ref: the digest finds the existing row and the new ref is added as an
  alias, so no work is re-created.
- **Raw bytes are spooled in the database**, in the same WAL transaction that creates the row: one fsync
  makes the bytes and their state durable together, and there is no second place (a spool folder) that
  could disagree with the ledger after a crash. SQLite keeps BLOBs of up to 1 GB; messages are limited
  to 25 MB by default (docs/semantics.md §3.1.1).
- **Work items.** Each decision's idempotency key has one ``work`` row per connector: ``handed_at`` is
  set in a transaction after the host handler's return — for work without an acknowledgement, one
  transaction for a whole batch (:meth:`Ledger.record_handed_many`, a group commit that precedes every
  server mark of that batch) —, ``ack_state`` when its acknowledgement
  was sent (or why not). A key is handed to the host at most once *as recorded*; see
  :mod:`enate_routing.ingest` for the host's side of the contract.
- **Quarantine.** A quarantined message keeps its raw bytes and a reason; it is listed by
  :meth:`Ledger.quarantined` and can be reprocessed.
- **Acknowledgement rate limit.** One row per acknowledgement and recipient; the count over the last hour
  (a sliding window) is what the limit is checked against (docs/semantics.md §3.5, default 10 an hour).
- **Leases.** One process per (connector, mailbox) at a time: a lease row with an owner and an expiry,
  renewed while the loop runs. A lease whose owner process is gone (same host, pid not alive) or whose
  expiry has passed may be taken over.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from enate_routing.errors import StoreError

__all__ = [
    "AckState",
    "LeaseHeldError",
    "Ledger",
    "MessageRecord",
    "MessageState",
    "PlannedWork",
    "SqliteLedger",
    "WorkRecord",
    "digest",
]

HOUR = 3600.0


def digest(raw: bytes) -> str:
    """The SHA-256 hex digest of a message's raw bytes: the ledger's content key."""
    return hashlib.sha256(raw).hexdigest()


class MessageState(enum.StrEnum):
    """Where a message is in the ingestion pipeline (see the module docstring)."""

    SPOOLED = "spooled"
    ROUTED = "routed"
    DONE = "done"
    MARKED = "marked"


class AckState(enum.StrEnum):
    """What became of a work item's acknowledgement (at most one per decision, docs/semantics.md §3.5)."""

    NONE = "none"  # the decision asks for no acknowledgement (or it was suppressed by the router)
    PENDING = "pending"  # to be sent
    SENT = "sent"
    RATE_LIMITED = "rate-limited"  # every recipient was over the hourly limit
    NO_SENDER = "no-sender"  # no outgoing connector can send it
    FAILED = "failed"  # the sender refused it permanently (or too many attempts)


class LeaseHeldError(StoreError):
    """Another live process holds the lease on this connector's mailbox."""

    def __init__(self, connector: str, mailbox: str, owner: str) -> None:
        self.connector = connector
        self.mailbox = mailbox
        self.owner = owner
        super().__init__(f"connector {connector!r}, mailbox {mailbox!r} is being polled by {owner}")


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One ledger row (without its raw bytes; :meth:`Ledger.raw` reads them)."""

    id: int
    connector: str
    mailbox: str
    ref_key: str
    sha256: str
    message_id: str | None
    size: int
    state: MessageState
    quarantine_reason: str | None
    fallback_only: bool
    decisions: tuple[dict[str, Any], ...]
    generation: int
    attempts: int
    created_at: float
    updated_at: float

    @property
    def quarantined(self) -> bool:
        return self.quarantine_reason is not None


@dataclass(frozen=True, slots=True)
class WorkRecord:
    """One work item: a decision's idempotency key, owned by the message that first routed it."""

    connector: str
    key: str
    message: int
    handed_at: float | None
    ack_state: AckState
    ack_recipients: tuple[str, ...]
    attempts: int


@dataclass(frozen=True, slots=True)
class PlannedWork:
    """A work item as routing planned it: its key, and whether (and to whom) to acknowledge."""

    key: str
    ack_state: AckState
    ack_recipients: tuple[str, ...] = ()


@runtime_checkable
class Ledger(Protocol):
    """What the ingestion loop needs from a durable store. Every method is one atomic transaction."""

    # --- leases -------------------------------------------------------------------------------------
    def acquire_lease(self, connector: str, mailbox: str, owner: str, ttl: float) -> None:
        """Take (or renew) the lease; :class:`LeaseHeldError` when another live owner holds it."""
        ...

    def release_lease(self, connector: str, mailbox: str, owner: str) -> None: ...

    # --- messages -----------------------------------------------------------------------------------
    def observe_uidvalidity(self, connector: str, mailbox: str, uidvalidity: int) -> int | None:
        """Remember the folder's UIDVALIDITY; return the previous value when it changed, else None."""
        ...

    def lookup_refs(self, connector: str, ref_keys: Sequence[str]) -> dict[str, MessageRecord]:
        """The known messages among ``ref_keys`` (by ref key, aliases included)."""
        ...

    def spool(self, connector: str, mailbox: str, items: Sequence[tuple[str, bytes]]) -> list[MessageRecord]:
        """Store each ``(ref_key, raw)`` durably (state SPOOLED), in order, in one transaction.

        Bytes already known by digest are not stored again: the ref becomes an alias of that row, which
        is returned as it is (UIDVALIDITY change, renumbered UIDLs).
        """
        ...

    def pending(self, connector: str, mailbox: str) -> list[MessageRecord]:
        """Messages of this mailbox not yet MARKED, oldest first."""
        ...

    def get(self, message: int) -> MessageRecord: ...

    def raw(self, message: int) -> bytes: ...

    def refs_of(self, message: int) -> list[str]:
        """Every ref key the message was seen under, newest first."""
        ...

    def note_attempt(self, messages: Sequence[int]) -> None:
        """Count one more processing attempt of each message (a message that keeps crashing the loop)."""
        ...

    def record_routed(
        self,
        routed: Sequence[tuple[int, str | None, Sequence[dict[str, Any]], Sequence[PlannedWork], bool]],
    ) -> int:
        """Record parse + route results: ``(message, message_id, decisions, work, fallback_only)``.

        Work rows whose key already exists (the same message reached the connector twice) are left to
        their owner; their number is returned. State becomes ROUTED, or DONE when the message owns no
        unhanded work.
        """
        ...

    def record_quarantine(self, message: int, reason: str, message_id: str | None = None) -> None:
        """Quarantine: keep raw bytes and reason; state DONE so the server copy can be marked."""
        ...

    def work_of(self, message: int) -> list[WorkRecord]:
        """The work rows this message owns, in decision order."""
        ...

    def handed_keys(self, connector: str, keys: Sequence[str]) -> set[str]: ...

    def record_handed(self, connector: str, key: str, *, finish: int | None = None) -> None:
        """Record the work item as handed off; with ``finish``, also :meth:`finish` that message."""
        ...

    def record_handed_many(self, connector: str, keys: Sequence[str], *, finish: Sequence[int] = ()) -> set[int]:
        """Group commit: record every key as handed off and :meth:`finish` each of ``finish``, in one
        transaction (one fsync for a whole batch). Returns the messages of ``finish`` that are now DONE."""
        ...

    def record_ack(
        self,
        connector: str,
        key: str,
        state: AckState,
        recipients: Sequence[str],
        *,
        attempt: bool = False,
        finish: int | None = None,
    ) -> None:
        """Record the acknowledgement's outcome; SENT also counts every recipient against the rate limit."""
        ...

    def note_work_failure(self, connector: str, key: str) -> int:
        """Count a failed hand-off attempt; return the attempts so far."""
        ...

    def finish(self, message: int) -> bool:
        """Set DONE when every owned work item is handed off and no acknowledgement is pending."""
        ...

    def record_marked(self, messages: Sequence[int]) -> None: ...

    # --- acknowledgements rate limit ----------------------------------------------------------------
    def ack_count(self, recipient: str, since: float) -> int:
        """Acknowledgements sent to ``recipient`` at or after ``since`` (epoch seconds)."""
        ...

    # --- administration -----------------------------------------------------------------------------
    def quarantined(self, connector: str | None = None) -> list[MessageRecord]: ...

    def unrouted(self, connector: str | None = None) -> list[MessageRecord]:
        """Messages whose every decision came from the fallback route (no route held)."""
        ...

    def reopen(self, message: int, *, new_generation: bool) -> MessageRecord:
        """Put a message back to SPOOLED for reprocessing (quarantine cleared; its raw bytes kept)."""
        ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    ref_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    message_id TEXT,
    size INTEGER NOT NULL,
    raw BLOB NOT NULL,
    state TEXT NOT NULL,
    quarantine_reason TEXT,
    fallback_only INTEGER NOT NULL DEFAULT 0,
    decisions TEXT NOT NULL DEFAULT '[]',
    generation INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_digest ON messages (connector, sha256);
CREATE INDEX IF NOT EXISTS messages_message_id ON messages (connector, message_id);
CREATE INDEX IF NOT EXISTS messages_state ON messages (connector, mailbox, state);
CREATE TABLE IF NOT EXISTS refs (
    connector TEXT NOT NULL,
    ref_key TEXT NOT NULL,
    message INTEGER NOT NULL REFERENCES messages (id),
    seen_at REAL NOT NULL,
    PRIMARY KEY (connector, ref_key)
);
CREATE INDEX IF NOT EXISTS refs_message ON refs (message);
CREATE TABLE IF NOT EXISTS work (
    connector TEXT NOT NULL,
    key TEXT NOT NULL,
    message INTEGER NOT NULL REFERENCES messages (id),
    position INTEGER NOT NULL,
    handed_at REAL,
    ack_state TEXT NOT NULL,
    ack_recipients TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connector, key)
);
CREATE INDEX IF NOT EXISTS work_message ON work (message);
CREATE TABLE IF NOT EXISTS acks (
    recipient TEXT NOT NULL,
    sent_at REAL NOT NULL,
    key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS acks_recipient ON acks (recipient, sent_at);
CREATE TABLE IF NOT EXISTS mailboxes (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    PRIMARY KEY (connector, mailbox)
);
CREATE TABLE IF NOT EXISTS leases (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (connector, mailbox)
);
"""

_COLUMNS = (
    "id, connector, mailbox, ref_key, sha256, message_id, size, state, quarantine_reason, fallback_only, "
    "decisions, generation, attempts, created_at, updated_at"
)


def _record(row: sqlite3.Row | tuple[Any, ...]) -> MessageRecord:
    return MessageRecord(
        id=row[0], connector=row[1], mailbox=row[2], ref_key=row[3], sha256=row[4], message_id=row[5],
        size=row[6], state=MessageState(row[7]), quarantine_reason=row[8], fallback_only=bool(row[9]),
        decisions=tuple(json.loads(row[10])), generation=row[11], attempts=row[12], created_at=row[13],
        updated_at=row[14],
    )


def _work(row: tuple[Any, ...]) -> WorkRecord:
    return WorkRecord(
        connector=row[0], key=row[1], message=row[2], handed_at=row[3], ack_state=AckState(row[4]),
        ack_recipients=tuple(json.loads(row[5])), attempts=row[6],
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqliteLedger:
    """The default :class:`Ledger`: one SQLite file in WAL mode with ``synchronous=FULL``.

    Every commit is durable when it returns (FULL syncs the WAL on each commit), so a step recorded here
    survives a crash or power loss. Several processes may share the file; leases keep them to one per
    mailbox. ``clock`` (epoch seconds) is injectable for tests of the rate limit and of lease expiry.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
            with self._tx():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the ingestion ledger {self.path}: {exc}") from exc
        self._host = socket.gethostname()

    # ----------------------------------------------------------------------------------------- plumbing
    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE so concurrent writers queue instead of failing late."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"ledger {self.path}: cannot start a transaction: {exc}") from exc
        try:
            yield self._db
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise StoreError(f"ledger {self.path}: commit failed: {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"ledger {self.path}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------- leases
    def acquire_lease(self, connector: str, mailbox: str, owner: str, ttl: float) -> None:
        now = self.clock()
        with self._tx() as db:
            row = db.execute(
                "SELECT owner, host, pid, expires_at FROM leases WHERE connector = ? AND mailbox = ?",
                (connector, mailbox),
            ).fetchone()
            # A crashed owner on this host releases its lease at once; elsewhere we wait for expiry.
            crashed = row is not None and row[1] == self._host and not _pid_alive(row[2])
            if row is not None and row[0] != owner and row[3] > now and not crashed:
                raise LeaseHeldError(connector, mailbox, f"{row[0]} (until {time.ctime(row[3])})")
            db.execute(
                "INSERT OR REPLACE INTO leases (connector, mailbox, owner, host, pid, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (connector, mailbox, owner, self._host, os.getpid(), now + ttl),
            )

    def release_lease(self, connector: str, mailbox: str, owner: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM leases WHERE connector = ? AND mailbox = ? AND owner = ?", (connector, mailbox, owner)
            )

    # ----------------------------------------------------------------------------------------- messages
    def observe_uidvalidity(self, connector: str, mailbox: str, uidvalidity: int) -> int | None:
        with self._tx() as db:
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
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            cols = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
            rows = self._query(
                f"SELECT r.ref_key, {cols} FROM refs r JOIN messages m ON m.id = r.message "  # noqa: S608 — placeholders only
                f"WHERE r.connector = ? AND r.ref_key IN ({marks})",
                (connector, *chunk),
            )
            for row in rows:
                found[row[0]] = _record(row[1:])
        return found

    def spool(self, connector: str, mailbox: str, items: Sequence[tuple[str, bytes]]) -> list[MessageRecord]:
        now = self.clock()
        out: list[MessageRecord] = []
        with self._tx() as db:
            for ref_key, raw in items:
                sha = digest(raw)
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM messages WHERE connector = ? AND sha256 = ?",  # noqa: S608
                    (connector, sha),
                ).fetchone()
                if row is None:
                    cursor = db.execute(
                        "INSERT INTO messages (connector, mailbox, ref_key, sha256, size, raw, state, "
                        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (connector, mailbox, ref_key, sha, len(raw), raw, MessageState.SPOOLED, now, now),
                    )
                    message = int(cursor.lastrowid or 0)
                    # What was just inserted: no need to read it back.
                    record = MessageRecord(
                        id=message, connector=connector, mailbox=mailbox, ref_key=ref_key, sha256=sha, message_id=None,
                        size=len(raw), state=MessageState.SPOOLED, quarantine_reason=None, fallback_only=False,
                        decisions=(), generation=0, attempts=0, created_at=now, updated_at=now,
                    )
                else:
                    message = int(row[0])
                    db.execute("UPDATE messages SET ref_key = ?, updated_at = ? WHERE id = ?", (ref_key, now, message))
                    record = _record(db.execute(
                        f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message,)  # noqa: S608
                    ).fetchone())
                db.execute(
                    "INSERT OR REPLACE INTO refs (connector, ref_key, message, seen_at) VALUES (?, ?, ?, ?)",
                    (connector, ref_key, message, now),
                )
                out.append(record)
        return out

    def pending(self, connector: str, mailbox: str) -> list[MessageRecord]:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM messages WHERE connector = ? AND mailbox = ? AND state != ? "  # noqa: S608
            "ORDER BY id",
            (connector, mailbox, MessageState.MARKED),
        )
        return [_record(r) for r in rows]

    def get(self, message: int) -> MessageRecord:
        rows = self._query(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message,))  # noqa: S608
        if not rows:
            raise StoreError(f"ledger {self.path}: no message {message}")
        return _record(rows[0])

    def raw(self, message: int) -> bytes:
        rows = self._query("SELECT raw FROM messages WHERE id = ?", (message,))
        if not rows:
            raise StoreError(f"ledger {self.path}: no message {message}")
        return bytes(rows[0][0])

    def refs_of(self, message: int) -> list[str]:
        rows = self._query(
            "SELECT ref_key FROM refs WHERE message = ? ORDER BY seen_at DESC, rowid DESC", (message,)
        )
        return [r[0] for r in rows]

    def note_attempt(self, messages: Sequence[int]) -> None:
        if not messages:
            return
        with self._tx() as db:
            db.executemany("UPDATE messages SET attempts = attempts + 1 WHERE id = ?", [(m,) for m in messages])

    def record_routed(
        self,
        routed: Sequence[tuple[int, str | None, Sequence[dict[str, Any]], Sequence[PlannedWork], bool]],
    ) -> int:
        now = self.clock()
        duplicates = 0
        with self._tx() as db:
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
                    else:
                        owner = db.execute(
                            "SELECT message, handed_at FROM work WHERE connector = ? AND key = ?",
                            (connector, item.key),
                        ).fetchone()
                        owns_open = owns_open or (owner[0] == message and owner[1] is None)
                        duplicates += owner[0] != message
                state = MessageState.ROUTED if owns_open else MessageState.DONE
                db.execute(
                    "UPDATE messages SET state = ?, message_id = ?, decisions = ?, fallback_only = ?, "
                    "quarantine_reason = NULL, updated_at = ? WHERE id = ?",
                    (state, message_id, json.dumps(list(decisions)), int(fallback_only), now, message),
                )
        return duplicates

    def record_quarantine(self, message: int, reason: str, message_id: str | None = None) -> None:
        with self._tx() as db:
            # A MARKED message (reprocessed after the server copy was moved) keeps its state.
            db.execute(
                "UPDATE messages SET state = CASE state WHEN ? THEN state ELSE ? END, quarantine_reason = ?, "
                "message_id = COALESCE(?, message_id), updated_at = ? WHERE id = ?",
                (MessageState.MARKED, MessageState.DONE, reason, message_id, self.clock(), message),
            )

    def work_of(self, message: int) -> list[WorkRecord]:
        rows = self._query(
            "SELECT connector, key, message, handed_at, ack_state, ack_recipients, attempts FROM work "
            "WHERE message = ? ORDER BY position",
            (message,),
        )
        return [_work(r) for r in rows]

    def handed_keys(self, connector: str, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        marks = ",".join("?" * len(keys))
        rows = self._query(
            f"SELECT key FROM work WHERE connector = ? AND key IN ({marks}) AND handed_at IS NOT NULL",  # noqa: S608
            (connector, *keys),
        )
        return {r[0] for r in rows}

    def record_handed(self, connector: str, key: str, *, finish: int | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE work SET handed_at = COALESCE(handed_at, ?) WHERE connector = ? AND key = ?",
                (self.clock(), connector, key),
            )
            if finish is not None:
                self._finish(db, finish)

    def record_handed_many(self, connector: str, keys: Sequence[str], *, finish: Sequence[int] = ()) -> set[int]:
        now = self.clock()
        done: set[int] = set()
        with self._tx() as db:
            db.executemany(
                "UPDATE work SET handed_at = COALESCE(handed_at, ?) WHERE connector = ? AND key = ?",
                [(now, connector, key) for key in keys],
            )
            for message in finish:
                if self._finish(db, message):
                    done.add(message)
        return done

    def record_ack(
        self,
        connector: str,
        key: str,
        state: AckState,
        recipients: Sequence[str],
        *,
        attempt: bool = False,
        finish: int | None = None,
    ) -> None:
        now = self.clock()
        with self._tx() as db:
            db.execute(
                "UPDATE work SET handed_at = COALESCE(handed_at, ?), ack_state = ?, ack_recipients = ?, "
                "attempts = attempts + ? WHERE connector = ? AND key = ?",
                (now, state, json.dumps(list(recipients)), int(attempt), connector, key),
            )
            if state is AckState.SENT:
                db.executemany(
                    "INSERT INTO acks (recipient, sent_at, key) VALUES (?, ?, ?)",
                    [(r.casefold(), now, key) for r in recipients],
                )
            if finish is not None:
                self._finish(db, finish)

    def note_work_failure(self, connector: str, key: str) -> int:
        with self._tx() as db:
            db.execute("UPDATE work SET attempts = attempts + 1 WHERE connector = ? AND key = ?", (connector, key))
            row = db.execute("SELECT attempts FROM work WHERE connector = ? AND key = ?", (connector, key)).fetchone()
        return int(row[0]) if row else 0

    def finish(self, message: int) -> bool:
        with self._tx() as db:
            return self._finish(db, message)

    def _finish(self, db: sqlite3.Connection, message: int) -> bool:
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
        if not messages:
            return
        now = self.clock()
        with self._tx() as db:
            db.executemany(
                "UPDATE messages SET state = ?, updated_at = ? WHERE id = ? AND state = ?",
                [(MessageState.MARKED, now, m, MessageState.DONE) for m in messages],
            )

    # ----------------------------------------------------------------------------------------- rate limit
    def ack_count(self, recipient: str, since: float) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM acks WHERE recipient = ? AND sent_at >= ?", (recipient.casefold(), since)
        )
        return int(rows[0][0])

    def prune_acks(self, before: float) -> int:
        """Forget acknowledgements older than ``before`` (they no longer count in any window)."""
        with self._tx() as db:
            return db.execute("DELETE FROM acks WHERE sent_at < ?", (before,)).rowcount

    # ----------------------------------------------------------------------------------------- administration
    def quarantined(self, connector: str | None = None) -> list[MessageRecord]:
        sql = f"SELECT {_COLUMNS} FROM messages WHERE quarantine_reason IS NOT NULL"  # noqa: S608
        params: tuple[Any, ...] = ()
        if connector is not None:
            sql += " AND connector = ?"
            params = (connector,)
        return [_record(r) for r in self._query(sql + " ORDER BY id", params)]

    def unrouted(self, connector: str | None = None) -> list[MessageRecord]:
        sql = (
            f"SELECT {_COLUMNS} FROM messages WHERE quarantine_reason IS NULL AND fallback_only = 1 "  # noqa: S608
            "AND state IN (?, ?)"
        )
        params: tuple[Any, ...] = (MessageState.DONE, MessageState.MARKED)
        if connector is not None:
            sql += " AND connector = ?"
            params = (*params, connector)
        return [_record(r) for r in self._query(sql + " ORDER BY id", params)]

    def reopen(self, message: int, *, new_generation: bool) -> MessageRecord:
        with self._tx() as db:
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
        for state, count in self._query(f"SELECT state, COUNT(*) FROM messages {where} GROUP BY state", params):  # noqa: S608
            out[state] = count
        rows = self._query(
            f"SELECT COUNT(*) FROM messages {where} {'AND' if where else 'WHERE'} quarantine_reason IS NOT NULL",  # noqa: S608
            params,
        )
        out["quarantined"] = int(rows[0][0])
        return out
