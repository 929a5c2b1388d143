"""The SQLite ledger's tables and row decoders (one place for the column lists)."""

from __future__ import annotations

import json
from typing import Any

from enate_routing.ingest._ledger import AckState, MessageRecord, MessageState, WorkRecord

__all__ = ["DROPPABLE_RAW", "MESSAGE_COLUMNS", "SCHEMA", "WORK_COLUMNS", "message_row", "migrate", "work_row"]

SCHEMA = """
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
CREATE INDEX IF NOT EXISTS messages_raw_kept ON messages (connector, updated_at)
    WHERE state = 'marked' AND quarantine_reason IS NULL AND length(raw) > 0;
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
    ack_reason TEXT,
    reference TEXT,
    PRIMARY KEY (connector, key)
);
CREATE INDEX IF NOT EXISTS work_message ON work (message);
CREATE INDEX IF NOT EXISTS work_pending_ack ON work (ack_state) WHERE ack_state = 'pending';
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
    started TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (connector, mailbox)
);
"""

# Columns added after the first release: (table, column, declaration) for ledgers created before them.
_ADDED = (("work", "ack_reason", "TEXT"), ("leases", "started", "TEXT NOT NULL DEFAULT ''"),
          ("work", "reference", "TEXT"))

# The messages whose raw bytes retention may drop: finished, marked on the server, not quarantined (kept for
# `quarantine reprocess`), bytes still there. An unrouted one (only the fallback took it) can be routed again
# until then; months later its work is long done. The terms are the partial index's
# (SQLite's messages_raw_kept, PostgreSQL's enate_messages_raw_kept), word for word, so the index is used.
DROPPABLE_RAW = "state = 'marked' AND quarantine_reason IS NULL AND {length}(raw) > 0"

MESSAGE_COLUMNS = (
    "id, connector, mailbox, ref_key, sha256, message_id, size, state, quarantine_reason, fallback_only, "
    "decisions, generation, attempts, created_at, updated_at"
)
WORK_COLUMNS = "connector, key, message, handed_at, ack_state, ack_recipients, attempts, ack_reason, reference"


def migrate(db: Any) -> None:
    """Add the columns a ledger from an earlier version lacks (inside the caller's transaction)."""
    for table, column, declaration in _ADDED:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def message_row(row: tuple[Any, ...]) -> MessageRecord:
    return MessageRecord(
        id=row[0], connector=row[1], mailbox=row[2], ref_key=row[3], sha256=row[4], message_id=row[5],
        size=row[6], state=MessageState(row[7]), quarantine_reason=row[8], fallback_only=bool(row[9]),
        decisions=tuple(json.loads(row[10])), generation=row[11], attempts=row[12], created_at=row[13],
        updated_at=row[14],
    )


def work_row(row: tuple[Any, ...]) -> WorkRecord:
    return WorkRecord(
        connector=row[0], key=row[1], message=row[2], handed_at=row[3], ack_state=AckState(row[4]),
        ack_recipients=tuple(json.loads(row[5])), attempts=row[6], ack_reason=row[7], reference=row[8],
    )
