"""Activity history of administration edits (docs/semantics.md §7): who changed what, when, old → new.

Every edit made through :class:`~enate_routing.admin.Administration` appends one :class:`HistoryEntry` per
object it touched: a connector, an incoming route, a fallback or an outgoing route. Entries are append-only
and carry the changed fields with their old and new values; secret fields (passwords, certificate
passwords) are always written as :data:`REDACTED`, so no secret value ever reaches the history (docs/semantics.md §2).

Where entries are kept is the host's choice through the :class:`HistoryStore` protocol. Two stores ship:
:class:`MemoryHistoryStore` (tests, demos) and :class:`SQLiteHistoryStore` (durable: WAL journal, full
synchronous commits, survives reopening the file).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, TypeAlias

from pydantic import BaseModel, SecretStr

from enate_routing._closing import ClosedOnExit
from enate_routing.errors import StoreError

REDACTED = "<redacted>"
"""What the history shows instead of a secret's value, old or new (docs/semantics.md §2, §7)."""

HistorySubjectKind = Literal["connector", "route", "fallback", "outgoing_route"]
HistoryAction = Literal["created", "edited", "deleted", "enabled", "disabled", "moved", "tested"]
JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None

_SUBJECT_KINDS: frozenset[str] = frozenset({"connector", "route", "fallback", "outgoing_route"})
_ACTIONS: frozenset[str] = frozenset({"created", "edited", "deleted", "enabled", "disabled", "moved", "tested"})


def utc_now() -> datetime:
    """The default clock: the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HistorySubject:
    """What an entry is about.

    * a connector: ``HistorySubject("connector", connector=name)``;
    * an incoming route: ``HistorySubject("route", connector=c, name=route name)`` (names are unique per connector);
    * a fallback: ``HistorySubject("fallback", connector=c)`` — one per connector, whatever its name;
    * an outgoing route: ``HistorySubject("outgoing_route", name=name)`` (names are unique in a configuration).
    """

    kind: HistorySubjectKind
    connector: str = ""
    name: str = ""

    def __str__(self) -> str:
        if self.kind == "connector":
            return f"connector {self.connector!r}"
        if self.kind == "fallback":
            return f"fallback of connector {self.connector!r}"
        if self.kind == "outgoing_route":
            return f"outgoing route {self.name!r}"
        return f"route {self.name!r} of connector {self.connector!r}"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed field: a dotted path (``rules.senders``, ``incoming.host``) and its old and new values.

    Values are JSON-like (lists for the model's tuples); a secret is :data:`REDACTED` on either side when set.
    """

    field: str
    old: JSONValue
    new: JSONValue


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event in the life of a subject. ``seq`` is assigned by the store (0 until appended)."""

    subject: HistorySubject
    action: HistoryAction
    actor: str
    at: datetime
    version: int
    changes: tuple[FieldChange, ...] = ()
    note: str = ""
    seq: int = 0

    def change(self, field: str) -> FieldChange | None:
        """The change of ``field`` in this entry, if it changed."""
        return next((c for c in self.changes if c.field == field), None)


class HistoryStore(Protocol):
    """Where history entries are kept. Appends are atomic: all entries of one edit, or none."""

    def append(self, entries: Sequence[HistoryEntry]) -> tuple[HistoryEntry, ...]:
        """Store ``entries`` in order; return them with their ``seq`` assigned. Raises StoreError."""
        ...

    def entries(self, subject: HistorySubject | None = None) -> tuple[HistoryEntry, ...]:
        """The entries of ``subject`` (all entries when None), oldest first."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


# --- computing the changed fields -------------------------------------------------------------------------


def field_changes(old: BaseModel | None, new: BaseModel | None) -> tuple[FieldChange, ...]:
    """The fields that differ between two versions of one object, flattened to dotted paths.

    ``old=None`` lists every set field of a created object; ``new=None`` every field of a deleted one.
    Secrets (``SecretStr``) are compared by value but written as :data:`REDACTED` (docs/semantics.md §2).
    """
    before = _flatten(old.model_dump() if old is not None else {})
    after = _flatten(new.model_dump() if new is not None else {})
    changes: list[FieldChange] = []
    for field in dict.fromkeys([*before, *after]):
        a, b = before.get(field), after.get(field)
        if _plain(a) == _plain(b):
            continue
        changes.append(FieldChange(field, _shown(a), _shown(b)))
    return tuple(changes)


def _flatten(data: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _plain(value: object) -> object:
    """A comparable form; a secret compares by its value, which never leaves this function."""
    if isinstance(value, SecretStr):
        return ("secret", value.get_secret_value())
    return _shown(value)


def _shown(value: object) -> JSONValue:
    if isinstance(value, SecretStr):
        return REDACTED
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _shown(v) for k, v in value.items()}
    return str(value)


# --- following renames ------------------------------------------------------------------------------------


def history_of(store: HistoryStore, subject: HistorySubject) -> tuple[HistoryEntry, ...]:
    """The whole history of ``subject``, oldest first, following renames back to its earlier names.

    A rename is an ``edited`` entry filed under the new name with a ``name`` change; the entries filed under
    the old name before that rename belong to the same object. A named object's history under one name
    starts where it got that name (its ``created`` entry or the rename into it): older entries under the
    name belong to an object deleted or renamed away since.
    """
    found: dict[int, HistoryEntry] = {}
    pending: list[tuple[HistorySubject, int | None]] = [(subject, None)]
    seen: set[tuple[HistorySubject, int | None]] = set()
    named = subject.kind in ("route", "outgoing_route")
    while pending:
        current, before = pending.pop()
        if (current, before) in seen:
            continue
        seen.add((current, before))
        for entry in reversed(store.entries(current)):  # newest first, back to where the name was given
            if before is not None and entry.seq >= before:
                continue
            found[entry.seq] = entry
            renamed = entry.change("name")
            if named and renamed is not None and isinstance(renamed.old, str) and entry.action != "deleted":
                pending.append((replace(current, name=renamed.old), entry.seq))
                break
            if named and entry.action == "created":
                break
    return tuple(found[seq] for seq in sorted(found))


# --- the stores -------------------------------------------------------------------------------------------


class MemoryHistoryStore:
    """History kept in a list: for tests and demos; gone when the process ends."""

    def __init__(self) -> None:
        self._entries: list[HistoryEntry] = []
        self._lock = threading.Lock()

    def append(self, entries: Sequence[HistoryEntry]) -> tuple[HistoryEntry, ...]:
        with self._lock:
            start = len(self._entries) + 1
            stored = tuple(replace(e, seq=start + i) for i, e in enumerate(entries))
            self._entries.extend(stored)
            return stored

    def entries(self, subject: HistorySubject | None = None) -> tuple[HistoryEntry, ...]:
        with self._lock:
            return tuple(e for e in self._entries if subject is None or e.subject == subject)

    def close(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,
    connector TEXT NOT NULL,
    name      TEXT NOT NULL,
    action    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL,
    version   INTEGER NOT NULL,
    changes   TEXT NOT NULL,
    note      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_subject ON history (kind, connector, name, seq);
"""
_SCHEMA_VERSION = 1


class SQLiteHistoryStore(ClosedOnExit):
    """History in an SQLite file (standard library ``sqlite3``), durable across restarts.

    The journal is WAL (readers never block the writer) with ``synchronous=FULL``, so an entry that
    :meth:`append` returned survives a power cut. One edit's entries are written in one transaction.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        with self._errors("open"):
            # check_same_thread=False: the lock above serialises use, and hosts call from worker threads.
            self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            found = self._db.execute("PRAGMA user_version").fetchone()[0]
            if found not in (0, _SCHEMA_VERSION):
                self._db.close()
                raise StoreError(f"history database {self._path}: unknown schema version {found}")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Map sqlite3's errors to StoreError once, naming the file and the operation, not the data."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"history database {self._path}: cannot {doing} ({type(exc).__name__}: {exc})") from exc

    def append(self, entries: Sequence[HistoryEntry]) -> tuple[HistoryEntry, ...]:
        rows = [
            (e.subject.kind, e.subject.connector, e.subject.name, e.action, e.actor, e.at.isoformat(), e.version,
             json.dumps([[c.field, c.old, c.new] for c in e.changes], ensure_ascii=False), e.note)
            for e in entries
        ]
        stored: list[HistoryEntry] = []
        with self._lock, self._errors("append"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for entry, row in zip(entries, rows, strict=True):
                    cursor = self._db.execute(
                        "INSERT INTO history (kind, connector, name, action, actor, at, version, changes, note) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                    stored.append(replace(entry, seq=int(cursor.lastrowid or 0)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return tuple(stored)

    def entries(self, subject: HistorySubject | None = None) -> tuple[HistoryEntry, ...]:
        query = "SELECT seq, kind, connector, name, action, actor, at, version, changes, note FROM history"
        params: tuple[str, ...] = ()
        if subject is not None:
            query += " WHERE kind = ? AND connector = ? AND name = ?"
            params = (subject.kind, subject.connector, subject.name)
        with self._lock, self._errors("read"):
            rows = self._db.execute(query + " ORDER BY seq", params).fetchall()
        return tuple(_entry_from_row(row) for row in rows)

    def close(self) -> None:
        with self._lock, self._errors("close"):
            self._db.close()



def _entry_from_row(row: tuple[object, ...]) -> HistoryEntry:
    seq, kind, connector, name, action, actor, at, version, changes, note = row
    if kind not in _SUBJECT_KINDS or action not in _ACTIONS:
        raise StoreError(f"history entry {seq}: unknown kind {kind!r} or action {action!r}")
    decoded = json.loads(str(changes))
    return HistoryEntry(
        subject=HistorySubject(kind, str(connector), str(name)),  # type: ignore[arg-type]  # checked against _SUBJECT_KINDS
        action=action,  # type: ignore[arg-type]  # checked against _ACTIONS above
        actor=str(actor),
        at=datetime.fromisoformat(str(at)),
        version=int(str(version)),
        changes=tuple(FieldChange(str(f), old, new) for f, old, new in decoded),
        note=str(note),
        seq=int(str(seq)),
    )
