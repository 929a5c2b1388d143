"""One SQLite file shared by threads and processes: a connection per thread, every error a StoreError.

WAL with ``synchronous=FULL``: every commit is durable when it returns. Write transactions start with
``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing late. A connection belongs to the thread
that opened it (``sqlite3`` objects must not be shared), so each thread gets its own on first use —
the ledger works from ``asyncio.to_thread`` or a worker pool as well as from the thread that created it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from enate_routing.errors import StoreError
from enate_routing.ingest._per_thread import PerThread

__all__ = ["SQLiteDatabase"]

WAL_SIZE_LIMIT = 8 * 1024 * 1024  # bytes of write-ahead log kept between checkpoints
_SIDE_FILES = ("-wal", "-shm", "-journal")


class SQLiteDatabase:
    """The file at ``path`` with ``schema`` applied; refuses an empty or unreadable file unless ``reset``.

    An existing file of zero bytes, or one that is not a SQLite database, is not silently re-created — it
    may be a ledger truncated by a full disk or a wrong path, and re-creating it would forget quarantined
    messages and their raw bytes. ``reset=True`` (``poll --reset-ledger``) deletes it and starts empty.
    """

    def __init__(self, path: str | os.PathLike[str], schema: str, *, what: str, reset: bool = False) -> None:
        self.path = Path(path)
        self.what = what
        self._connections: PerThread[sqlite3.Connection] = PerThread(sqlite3.Connection.close)
        self._identity: tuple[int, int] | None = None  # the file's (device, inode) once open
        if reset:
            for suffix in ("", *_SIDE_FILES):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.path}{suffix}").unlink()
        elif self.path.exists() and self.path.is_file() and self.path.stat().st_size == 0:
            raise StoreError(f"{what} {self.path} is an empty file; restore it from a backup, or start a new "
                             "ledger with --reset-ledger (quarantined messages recorded in it are then forgotten)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the {what} {self.path}: {exc.strerror}") from exc
        if not self.path.exists():
            self._create_atomically(schema)
        with self.transaction() as db:
            _apply(schema, db)
        self._identity = _file_identity(self.path)

    def _check_same_file(self) -> None:
        """Refuse to write when the file was deleted or replaced since it was opened: the open connections
        would go on writing to the unlinked file, and everything recorded from then on would be lost."""
        if self._identity is not None and _file_identity(self.path) != self._identity:
            raise StoreError(f"{self.what} {self.path} was deleted or replaced while in use; nothing more is "
                             "recorded: restore it and restart (or start a new ledger with --reset-ledger)")

    def _create_atomically(self, schema: str) -> None:
        """Write a new file beside the path and link it into place, so that another process starting at the
        same moment never sees it empty (which the check above refuses) while this one writes the schema.
        When another process links first, its file is used. Where hard links are not supported, the file is
        created in place as before."""
        temp = self.path.with_name(f"{self.path.name}.new-{os.getpid()}-{threading.get_ident()}")
        try:
            db = sqlite3.connect(str(temp), isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                _apply(schema, db)
            finally:
                db.close()
            with contextlib.suppress(FileExistsError):
                os.link(temp, self.path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the {self.what} {self.path}: {exc}") from exc
        except OSError:
            pass  # no hard links here: _connection creates the file in place
        finally:
            for suffix in ("", *_SIDE_FILES):
                with contextlib.suppress(OSError):
                    Path(f"{temp}{suffix}").unlink()

    def _connection(self) -> sqlite3.Connection:
        db = self._connections.get()
        if db is not None:
            return db
        try:
            db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            # A WAL file keeps the size of the largest transaction it held (a batch of large mail) unless told
            # to shrink back after a checkpoint: at most this much stays on disk between batches.
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        except sqlite3.Error as exc:
            hint = "; start a new ledger with --reset-ledger" if "not a database" in str(exc) else ""
            raise StoreError(f"cannot open the {self.what} {self.path}: {exc}{hint}") from exc
        self._connections.keep(db)
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any database error inside it rolls back and becomes a StoreError."""
        self._check_same_file()
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.what} {self.path}: cannot start a transaction: {exc}") from exc
        try:
            yield db
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.what} {self.path}: {exc}") from exc
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise StoreError(f"{self.what} {self.path}: commit failed: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._connection().execute(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.what} {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close every thread's connection."""
        self._connections.close_all()


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _apply(schema: str, db: sqlite3.Connection) -> None:
    """Run each ``;``-separated statement of ``schema``."""
    for statement in schema.split(";"):
        if statement.strip():
            db.execute(statement)
