"""The PostgreSQL schema as ordered, versioned migrations; :func:`migrate` applies the missing ones.

Every table is prefixed ``enate_`` so the ledger can live in a database the host already has. The table
``enate_schema_version`` lists every applied step (version, description, when). :func:`migrate` takes a
transaction-scoped advisory lock first, so workers starting at the same moment apply each step once; each
step runs in its own transaction, so a failure leaves the database at the last complete version. A
database migrated by a newer release (a version this one does not know) is refused rather than guessed at.

Steps are append-only: a released step is never edited; a change is a new step at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from enate_routing.errors import StoreError
from enate_routing.postgres._driver import PostgresDatabase

__all__ = ["MIGRATIONS", "Migration", "current_version", "migrate"]

# An arbitrary constant: the advisory lock that serialises migrations across processes and hosts.
_LOCK_KEY = 0x656E617465  # "enate"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "ingestion ledger: messages, refs, work items, acknowledgements, folders", """
CREATE TABLE enate_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    ref_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    message_id TEXT,
    size INTEGER NOT NULL,
    raw BYTEA NOT NULL,
    state TEXT NOT NULL,
    quarantine_reason TEXT,
    fallback_only BOOLEAN NOT NULL DEFAULT FALSE,
    decisions TEXT NOT NULL DEFAULT '[]',
    generation INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    UNIQUE (connector, sha256)
);
CREATE INDEX enate_messages_message_id ON enate_messages (connector, message_id);
CREATE INDEX enate_messages_state ON enate_messages (connector, mailbox, state);
CREATE TABLE enate_refs (
    connector TEXT NOT NULL,
    ref_key TEXT NOT NULL,
    message BIGINT NOT NULL REFERENCES enate_messages (id),
    seen_at DOUBLE PRECISION NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (connector, ref_key)
);
CREATE INDEX enate_refs_message ON enate_refs (message);
CREATE TABLE enate_work (
    connector TEXT NOT NULL,
    key TEXT NOT NULL,
    message BIGINT NOT NULL REFERENCES enate_messages (id),
    position INTEGER NOT NULL,
    handed_at DOUBLE PRECISION,
    ack_state TEXT NOT NULL,
    ack_recipients TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    ack_reason TEXT,
    PRIMARY KEY (connector, key)
);
CREATE INDEX enate_work_message ON enate_work (message);
CREATE TABLE enate_acks (
    recipient TEXT NOT NULL,
    sent_at DOUBLE PRECISION NOT NULL,
    key TEXT NOT NULL
);
CREATE INDEX enate_acks_recipient ON enate_acks (recipient, sent_at);
CREATE TABLE enate_mailboxes (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    PRIMARY KEY (connector, mailbox)
);
"""),
    Migration(2, "leases per (connector, folder) and their history", """
CREATE TABLE enate_leases (
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL DEFAULT '',
    acquired_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (connector, mailbox)
);
CREATE TABLE enate_lease_history (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at DOUBLE PRECISION NOT NULL,
    renewed_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    ended_by TEXT
);
CREATE INDEX enate_lease_history_mailbox ON enate_lease_history (connector, mailbox, acquired_at);
"""),
    Migration(3, "administration history", """
CREATE TABLE enate_history (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    connector TEXT NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    version INTEGER NOT NULL,
    changes TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX enate_history_subject ON enate_history (kind, connector, name, seq);
"""),
    Migration(4, "the work item's reference the host's handler returned", """
ALTER TABLE enate_work ADD COLUMN reference TEXT;
"""),
    Migration(5, "pending acknowledgements found by the rate limit", """
CREATE INDEX enate_work_pending_ack ON enate_work (ack_state) WHERE ack_state = 'pending';
"""),
    Migration(6, "marked messages whose raw bytes retention may still drop", """
CREATE INDEX enate_messages_raw_kept ON enate_messages (connector, updated_at)
    WHERE state = 'marked' AND quarantine_reason IS NULL AND octet_length(raw) > 0;
"""),
)

LATEST = MIGRATIONS[-1].version

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS enate_schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def current_version(db: PostgresDatabase) -> int:
    """The highest applied step (0 for a database without the ledger's tables)."""
    rows = db.query("SELECT to_regclass('enate_schema_version') IS NOT NULL")
    if not rows[0][0]:
        return 0
    return int(db.query("SELECT COALESCE(MAX(version), 0) FROM enate_schema_version")[0][0])


def migrate(db: PostgresDatabase) -> list[Migration]:
    """Apply every step the database lacks, in order; the steps applied now (none when up to date)."""
    applied: list[Migration] = []
    for step in MIGRATIONS:
        with db.transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            cursor.execute(_VERSION_TABLE)
            cursor.execute("SELECT COALESCE(MAX(version), 0) FROM enate_schema_version")
            row = cursor.fetchone()
            found = int(row[0]) if row else 0
            if found > LATEST:
                raise StoreError(f"{db.what} {db.shown} has schema version {found}, newer than this release "
                                 f"knows ({LATEST}): upgrade enate-routing")
            if found >= step.version:
                continue
            cursor.execute(step.sql.encode())
            cursor.execute("INSERT INTO enate_schema_version (version, description) VALUES (%s, %s)",
                           (step.version, step.description))
            applied.append(step)
    return applied
