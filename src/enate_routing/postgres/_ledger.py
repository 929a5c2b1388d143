"""The ingestion ledger in PostgreSQL: the same rows, state machine and guarantees as the SQLite ledger.

:class:`PostgresLedger` implements :class:`~enate_routing.ingest.Ledger` over the tables of
:mod:`enate_routing.postgres._migrations` (created or brought up to date when it opens). Several worker
processes, on several hosts, share one database: each folder is polled by one worker at a time
(:mod:`enate_routing.postgres._leases`), and what makes a restart — on any worker — resume where a killed
one stopped is the same as in SQLite:

- every method is one transaction, committed (durably, with the server's default ``synchronous_commit``)
  before it returns;
- a batch's hand-offs are recorded in one transaction (:meth:`record_handed`, the group commit)
  before any message of that batch is marked on the server;
- the idempotency key is unique *in the database* (``PRIMARY KEY (connector, key)`` of ``enate_work``),
  so two workers can never both own a work item; the first to record the routing owns it;
- raw bytes are spooled in the same transaction that creates the row, and found again by content digest.

Timestamps are the ledger's ``clock`` (epoch seconds, injectable like SQLite's); lease expiry uses the
database's clock, which every host shares.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from enate_routing._closing import ClosedOnExit
from enate_routing.errors import StoreError
from enate_routing.ingest._ledger import AckState, MessageRecord, MessageState, RoutedMessage, SpoolItem, WorkRecord

# The column lists and row decoders are the SQLite ledger's: the same rows, read the same way.
from enate_routing.ingest._sqlite_schema import DROPPABLE_RAW
from enate_routing.ingest._sqlite_schema import MESSAGE_COLUMNS as _COLUMNS
from enate_routing.ingest._sqlite_schema import WORK_COLUMNS as _WORK_COLUMNS
from enate_routing.ingest._sqlite_schema import message_row as _record
from enate_routing.ingest._sqlite_schema import work_row as _work
from enate_routing.postgres._driver import Cursor, PostgresDatabase
from enate_routing.postgres._leases import PostgresLeases
from enate_routing.postgres._migrations import migrate

__all__ = ["PostgresLedger"]

_SPOOL_NEW = (
    "WITH new AS (INSERT INTO enate_messages (connector, mailbox, ref_key, sha256, size, raw, state, created_at, "
    "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (connector, sha256) DO NOTHING RETURNING id) "
    "INSERT INTO enate_refs (connector, ref_key, message, seen_at) SELECT %s, %s, id, %s FROM new "
    "ON CONFLICT (connector, ref_key) DO UPDATE SET message = EXCLUDED.message, seen_at = EXCLUDED.seen_at, "
    "seq = DEFAULT RETURNING message"
)
_FINISH_MANY = (
    "WITH candidates AS (SELECT DISTINCT unnest(%s::bigint[]) AS id), "
    "ready AS (SELECT c.id FROM candidates c WHERE NOT EXISTS (SELECT 1 FROM enate_work w WHERE w.message = c.id "
    "AND (w.handed_at IS NULL OR w.ack_state = %s))), "
    "done AS (UPDATE enate_messages SET state = %s, updated_at = %s WHERE id IN (SELECT id FROM ready) "
    "AND state IN (%s, %s) RETURNING id) "
    "SELECT id FROM ready"
)
_FINISH = (
    "WITH open AS (SELECT EXISTS (SELECT 1 FROM enate_work WHERE message = %s AND "
    "(handed_at IS NULL OR ack_state = %s)) AS busy), "
    "done AS (UPDATE enate_messages SET state = %s, updated_at = %s WHERE id = %s AND state IN (%s, %s) "
    "AND NOT (SELECT busy FROM open) RETURNING id) "
    "SELECT busy FROM open"
)


_DROP_RAW = (
    "UPDATE enate_messages SET raw = ''::bytea WHERE "  # noqa: S608 — constants only
    f"{DROPPABLE_RAW.format(length='octet_length')} "
    "AND connector = %s AND updated_at < %s RETURNING 1"
)
# Sent in the window, plus pending: those go out as soon as the mail server answers again.
_ACK_COUNT = (
    "SELECT (SELECT COUNT(*) FROM enate_acks WHERE recipient = %s AND sent_at >= %s) + "
    "(SELECT COUNT(*) FROM enate_work w, json_array_elements_text(w.ack_recipients::json) AS r(value) "
    "WHERE w.ack_state = 'pending' AND lower(r.value) = %s)"
)

class PostgresLedger(ClosedOnExit):
    """A :class:`~enate_routing.ingest.Ledger` in a PostgreSQL database, shared by many workers.

    ``url`` is a ``postgresql://user:password@host:port/database`` URL (libpq's parameters, e.g.
    ``?sslmode=verify-full``, are honoured); the password never appears in an error or a repr.
    """

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, migrate_schema: bool = True) -> None:
        self.clock = clock
        self._db = PostgresDatabase(url, what="ingestion ledger")
        try:
            if migrate_schema:
                migrate(self._db)
        except BaseException:
            self._db.close()
            raise
        self._leases = PostgresLeases(self._db)

    def __repr__(self) -> str:
        return f"PostgresLedger({self._db.shown!r})"

    def close(self) -> None:
        self._db.close()


    # ----------------------------------------------------------------------------------------- leases
    def acquire_lease(self, connector: str, mailbox: str, owner: str, ttl: float) -> None:
        self._leases.acquire(connector, mailbox, owner, ttl)

    def release_lease(self, connector: str, mailbox: str, owner: str) -> None:
        self._leases.release(connector, mailbox, owner)

    # ----------------------------------------------------------------------------------------- messages
    def observe_uidvalidity(self, connector: str, mailbox: str, uidvalidity: int) -> int | None:
        with self._db.transaction() as cursor:
            cursor.execute(
                "SELECT uidvalidity FROM enate_mailboxes WHERE connector = %s AND mailbox = %s FOR UPDATE",
                (connector, mailbox),
            )
            row = cursor.fetchone()
            if row is not None and row[0] == uidvalidity:
                return None
            cursor.execute(
                "INSERT INTO enate_mailboxes (connector, mailbox, uidvalidity) VALUES (%s, %s, %s) "
                "ON CONFLICT (connector, mailbox) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity",
                (connector, mailbox, uidvalidity),
            )
            return None if row is None else int(row[0])

    def lookup_refs(self, connector: str, ref_keys: Sequence[str]) -> dict[str, MessageRecord]:
        if not ref_keys:
            return {}
        cols = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
        rows = self._db.query(
            f"SELECT r.ref_key, {cols} FROM enate_refs r JOIN enate_messages m ON m.id = r.message "  # noqa: S608 — constant SQL only
            "WHERE r.connector = %s AND r.ref_key = ANY(%s)",
            (connector, list(ref_keys)),
        )
        return {row[0]: _record(row[1:]) for row in rows}

    def spool(self, connector: str, mailbox: str, items: Sequence[SpoolItem]) -> list[MessageRecord]:
        now = self.clock()
        with self._db.transaction() as cursor:
            # New bytes: the row and its ref in one statement each, all sent in one pipeline (one round trip
            # for the batch, executed in order); known bytes insert nothing and take the alias path below.
            with cursor.connection.pipeline():
                sent = [self._db.cursor(cursor) for _ in items]
                for statement, (ref_key, raw, sha) in zip(sent, items, strict=True):
                    statement.execute(_SPOOL_NEW, (connector, mailbox, ref_key, sha, len(raw), raw,
                                                   MessageState.SPOOLED.value, now, now, connector, ref_key, now))
            out: list[MessageRecord] = []
            for statement, (ref_key, raw, sha) in zip(sent, items, strict=True):
                inserted = statement.fetchone()
                statement.close()
                if inserted is not None:
                    out.append(MessageRecord(
                        id=int(inserted[0]), connector=connector, mailbox=mailbox, ref_key=ref_key, sha256=sha,
                        message_id=None, size=len(raw), state=MessageState.SPOOLED, quarantine_reason=None,
                        fallback_only=False, decisions=(), generation=0, attempts=0, created_at=now, updated_at=now,
                    ))
                    continue
                # The same bytes under a new ref (UIDVALIDITY change, renumbered UIDLs): an alias of the row.
                cursor.execute(
                    f"UPDATE enate_messages SET ref_key = %s, updated_at = %s WHERE connector = %s AND sha256 = %s "  # noqa: S608
                    f"RETURNING {_COLUMNS}",
                    (ref_key, now, connector, sha),
                )
                record = _record(_one(cursor))
                cursor.execute(
                    "INSERT INTO enate_refs (connector, ref_key, message, seen_at) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (connector, ref_key) DO UPDATE SET message = EXCLUDED.message, "
                    "seen_at = EXCLUDED.seen_at, seq = DEFAULT",
                    (connector, ref_key, record.id, now),
                )
                out.append(record)
        return out

    def pending(self, connector: str, mailbox: str) -> list[MessageRecord]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM enate_messages WHERE connector = %s AND mailbox = %s AND state != %s "  # noqa: S608
            "ORDER BY id",
            (connector, mailbox, MessageState.MARKED.value),
        )
        return [_record(r) for r in rows]

    def get(self, message: int) -> MessageRecord:
        rows = self._db.query(f"SELECT {_COLUMNS} FROM enate_messages WHERE id = %s", (message,))  # noqa: S608
        if not rows:
            raise StoreError(f"ledger {self._db.shown}: no message {message}")
        return _record(rows[0])

    def raw(self, message: int) -> bytes:
        rows = self._db.query("SELECT raw FROM enate_messages WHERE id = %s", (message,))
        if not rows:
            raise StoreError(f"ledger {self._db.shown}: no message {message}")
        return bytes(rows[0][0])

    def refs_of(self, message: int) -> list[str]:
        rows = self._db.query(
            "SELECT ref_key FROM enate_refs WHERE message = %s ORDER BY seen_at DESC, seq DESC", (message,)
        )
        return [r[0] for r in rows]

    def note_attempt(self, messages: Sequence[int]) -> None:
        if messages:
            with self._db.transaction() as cursor:
                # One increment per occurrence, as in SQLite (a message listed twice counts twice).
                cursor.executemany("UPDATE enate_messages SET attempts = attempts + 1 WHERE id = %s",
                                   [(m,) for m in messages])

    # ----------------------------------------------------------------------------------------- work
    def record_routed(self, routed: Sequence[RoutedMessage]) -> int:
        now = self.clock()
        duplicates = 0
        with self._db.transaction() as cursor:
            cursor.execute("SELECT id, connector FROM enate_messages WHERE id = ANY(%s)", ([r[0] for r in routed],))
            connectors = dict(cursor.fetchall())
            if missing := [r[0] for r in routed if r[0] not in connectors]:
                raise StoreError(f"ledger {self._db.shown}: no message {missing[0]}")
            # The idempotency key is unique in the database: the first message to route it owns it. Every
            # work row of the batch is sent in one pipeline, in order; a key already owned inserts nothing.
            with cursor.connection.pipeline():
                sent = []
                for message, _, _, work, _ in routed:
                    for position, item in enumerate(work):
                        statement = self._db.cursor(cursor)
                        statement.execute(
                            "INSERT INTO enate_work (connector, key, message, position, ack_state, ack_recipients) "
                            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (connector, key) DO NOTHING RETURNING 1",
                            (connectors[message], item.key, message, position, item.ack_state.value,
                             json.dumps(item.ack_recipients)),
                        )
                        sent.append((message, item.key, statement))
            owns_open: set[int] = set()
            for message, key, statement in sent:
                inserted = statement.fetchone() is not None
                statement.close()
                if inserted:
                    owns_open.add(message)
                    continue
                cursor.execute("SELECT message, handed_at FROM enate_work WHERE connector = %s AND key = %s",
                               (connectors[message], key))
                owner, handed_at = _one(cursor)
                if owner == message and handed_at is None:
                    owns_open.add(message)
                duplicates += owner != message
            cursor.executemany(
                "UPDATE enate_messages SET state = %s, message_id = %s, decisions = %s, fallback_only = %s, "
                "quarantine_reason = NULL, updated_at = %s WHERE id = %s",
                [((MessageState.ROUTED if message in owns_open else MessageState.DONE).value, message_id,
                  json.dumps(list(decisions)), fallback_only, now, message)
                 for message, message_id, decisions, _, fallback_only in routed],
            )
        return duplicates

    def record_quarantine(self, message: int, reason: str, message_id: str | None = None) -> None:
        # A MARKED message (reprocessed after the server copy was moved) keeps its state.
        self._db.query(
            "UPDATE enate_messages SET state = CASE state WHEN %s THEN state ELSE %s END, quarantine_reason = %s, "
            "message_id = COALESCE(%s, message_id), updated_at = %s WHERE id = %s",
            (MessageState.MARKED.value, MessageState.DONE.value, reason, message_id, self.clock(), message),
        )

    def work_of(self, message: int) -> list[WorkRecord]:
        rows = self._db.query(
            f"SELECT {_WORK_COLUMNS} FROM enate_work WHERE message = %s ORDER BY position", (message,)  # noqa: S608
        )
        return [_work(r) for r in rows]

    def record_handed(
        self, connector: str, keys: Sequence[str], *, finish: Sequence[int] = (),
        references: Mapping[str, str] | None = None,
    ) -> set[int]:
        now = self.clock()
        with self._db.transaction() as cursor:
            if keys:  # the first hand-off recorded keeps its reference (a re-delivered handler may answer again)
                cursor.executemany(
                    "UPDATE enate_work SET handed_at = COALESCE(handed_at, %s), reference = COALESCE(reference, %s) "
                    "WHERE connector = %s AND key = %s",
                    [(now, (references or {}).get(key), connector, key) for key in keys],
                )
            if not finish:
                return set()
            # One statement for the whole group: DONE for each message without open work.
            cursor.execute(_FINISH_MANY, (list(finish), AckState.PENDING.value, MessageState.DONE.value, now,
                                          MessageState.ROUTED.value, MessageState.SPOOLED.value))
            return {int(row[0]) for row in cursor.fetchall()}

    def record_ack(
        self, connector: str, key: str, state: AckState, recipients: Sequence[str], *,
        attempt: bool = False, reason: str | None = None, finish: int | None = None,
    ) -> None:
        now = self.clock()
        with self._db.transaction() as cursor:
            cursor.execute(
                "UPDATE enate_work SET handed_at = COALESCE(handed_at, %s), ack_state = %s, ack_recipients = %s, "
                "attempts = attempts + %s, ack_reason = %s WHERE connector = %s AND key = %s",
                (now, state.value, json.dumps(list(recipients)), int(attempt), reason, connector, key),
            )
            if state is AckState.SENT and recipients:
                cursor.executemany(
                    "INSERT INTO enate_acks (recipient, sent_at, key) VALUES (%s, %s, %s)",
                    [(r.casefold(), now, key) for r in recipients],
                )
            if finish is not None:
                _finish(cursor, finish, now)

    def note_work_failure(self, connector: str, key: str) -> int:
        rows = self._db.query(
            "UPDATE enate_work SET attempts = attempts + 1 WHERE connector = %s AND key = %s RETURNING attempts",
            (connector, key),
        )
        return int(rows[0][0]) if rows else 0

    def record_marked(self, messages: Sequence[int]) -> None:
        if messages:
            self._db.query(
                "UPDATE enate_messages SET state = %s, updated_at = %s WHERE id = ANY(%s) AND state = %s",
                (MessageState.MARKED.value, self.clock(), list(messages), MessageState.DONE.value),
            )

    # ----------------------------------------------------------------------------------------- rate limit
    def ack_count(self, recipient: str, since: float) -> int:
        recipient = recipient.casefold()
        return int(self._db.query(_ACK_COUNT, (recipient, since, recipient))[0][0])

    def prune_acks(self, before: float) -> int:
        """Forget acknowledgements older than ``before`` (they no longer count in any window)."""
        return len(self._db.query("DELETE FROM enate_acks WHERE sent_at < %s RETURNING 1", (before,)))

    def drop_raw(self, connector: str, before: float) -> int:
        """:meth:`SQLiteLedger.drop_raw <enate_routing.ingest.SQLiteLedger.drop_raw>`, one UPDATE likewise."""
        return len(self._db.query(_DROP_RAW, (connector, before)))

    # ----------------------------------------------------------------------------------------- administration
    def quarantined(self, connector: str | None = None) -> list[MessageRecord]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM enate_messages WHERE quarantine_reason IS NOT NULL "  # noqa: S608
            "AND (%s::text IS NULL OR connector = %s) ORDER BY id",
            (connector, connector),
        )
        return [_record(r) for r in rows]

    def unrouted(self, connector: str | None = None) -> list[MessageRecord]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM enate_messages WHERE quarantine_reason IS NULL AND fallback_only "  # noqa: S608
            "AND state IN (%s, %s) AND octet_length(raw) > 0 AND (%s::text IS NULL OR connector = %s) ORDER BY id",
            (MessageState.DONE.value, MessageState.MARKED.value, connector, connector),
        )
        return [_record(r) for r in rows]

    def reopen(self, message: int, *, new_generation: bool) -> MessageRecord:
        rows = self._db.query(
            "UPDATE enate_messages SET state = %s, quarantine_reason = NULL, attempts = 0, "  # noqa: S608 — constant SQL
            f"generation = generation + %s, updated_at = %s WHERE id = %s RETURNING {_COLUMNS}",
            (MessageState.SPOOLED.value, int(new_generation), self.clock(), message),
        )
        if not rows:
            raise StoreError(f"ledger {self._db.shown}: no message {message}")
        return _record(rows[0])

    def counts(self, connector: str | None = None) -> dict[str, int]:
        """Messages per state (and ``quarantined``), for progress lines and tests."""
        out = {state.value: 0 for state in MessageState}
        rows = self._db.query(
            "SELECT state, COUNT(*) FROM enate_messages WHERE (%s::text IS NULL OR connector = %s) GROUP BY state",
            (connector, connector),
        )
        out.update({state: int(n) for state, n in rows})
        out["quarantined"] = int(self._db.query(
            "SELECT COUNT(*) FROM enate_messages WHERE quarantine_reason IS NOT NULL "
            "AND (%s::text IS NULL OR connector = %s)",
            (connector, connector),
        )[0][0])
        return out


def _finish(cursor: Cursor, message: int, now: float) -> bool:
    """DONE when no owned work is unhanded or awaits its acknowledgement; one round trip."""
    cursor.execute(_FINISH, (message, AckState.PENDING.value, MessageState.DONE.value, now, message,
                             MessageState.ROUTED.value, MessageState.SPOOLED.value))
    return not _one(cursor)[0]


def _one(cursor: Cursor) -> tuple[Any, ...]:
    row = cursor.fetchone()
    if row is None:
        raise StoreError("ledger: a row the transaction relies on is missing")
    return row
