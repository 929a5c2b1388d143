"""The one module that imports psycopg 3: connections to a PostgreSQL database, every error a StoreError.

psycopg is an optional dependency (``pip install 'enate-routing[postgres]'``); without it, opening a
``postgresql://`` ledger or history store raises :class:`~enate_routing.errors.StoreError` saying so, and
nothing else in the package notices.

:class:`PostgresDatabase` gives each thread its own connection (a psycopg connection carries one
transaction at a time), runs each :meth:`~PostgresDatabase.transaction` as one atomic unit with
``synchronous_commit`` as the server has it (on, by default: a commit that returned is durable), and
turns every database error into a ``StoreError`` that names the database by its URL *without* the password.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from enate_routing.errors import StoreError

if TYPE_CHECKING:
    import psycopg

    Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
    Cursor: TypeAlias = psycopg.Cursor[tuple[Any, ...]]
else:
    Connection = Any
    Cursor = Any

__all__ = ["Connection", "Cursor", "PostgresDatabase", "is_postgres_url", "redact_url"]

_SCHEMES = ("postgresql", "postgres")
_INSTALL = "pip install 'enate-routing[postgres]'"


def is_postgres_url(value: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL: what selects the PostgreSQL stores."""
    return isinstance(value, str) and urlsplit(value).scheme.lower() in _SCHEMES


def redact_url(url: str) -> str:
    """``url`` as it may be shown: the password (in the netloc or a ``password=`` parameter) removed."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, address = netloc.rpartition("@")
        netloc = f"{credentials.partition(':')[0]}@{address}"
    query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _psycopg() -> ModuleType:
    try:
        return importlib.import_module("psycopg")
    except ImportError as exc:
        raise StoreError(f"a postgresql:// ledger or history store needs psycopg 3, which is not installed: "
                         f"{_INSTALL}") from exc


class PostgresDatabase:
    """One PostgreSQL database shared by threads: a connection per thread, every error a StoreError.

    ``what`` names the store in messages ("ingestion ledger", "history database").
    """

    def __init__(self, url: str, *, what: str, connect_timeout: float = 10.0) -> None:
        if not is_postgres_url(url):
            raise StoreError(f"{what}: not a postgresql:// URL: {redact_url(url)}")
        self._psycopg = _psycopg()
        self._url = url
        self.shown = redact_url(url)
        self.what = what
        self._timeout = max(1, int(connect_timeout))
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()
        self._connection()  # fail now, not at the first statement, when the server cannot be reached

    def _connection(self) -> Connection:
        db: Connection | None = getattr(self._local, "db", None)
        if db is not None and not db.closed:
            return db
        try:
            # autocommit: every transaction is an explicit ``with db.transaction()`` block, nothing is left open.
            db = self._psycopg.connect(
                self._url, autocommit=True, connect_timeout=self._timeout, application_name="enate-routing"
            )
        except self._psycopg.Error as exc:
            raise StoreError(f"cannot open the {self.what} {self.shown}: {self._reason(exc)}") from None
        self._local.db = db
        with self._lock:
            self._all.append(db)
        return db

    def _reason(self, exc: BaseException) -> str:
        """The server's message, with the URL's password cut out should a driver ever echo it."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        password = urlsplit(self._url).password
        return text.replace(password, "***") if password else text

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One transaction (a cursor inside it); commits on exit, rolls back on any exception.

        A database error inside becomes a StoreError; a lost connection is dropped so the next
        transaction opens a new one.
        """
        db = self._connection()
        try:
            with db.transaction(), db.cursor() as cursor:
                yield cursor
        except self._psycopg.Error as exc:
            if db.broken or db.closed:
                self._forget(db)
            raise StoreError(f"{self.what} {self.shown}: {self._reason(exc)}") from None

    @staticmethod
    def cursor(inside: Cursor) -> Cursor:
        """Another cursor in the transaction of ``inside`` (a pipeline needs one per statement)."""
        return inside.connection.cursor()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement, atomic on its own (autocommit: no BEGIN/COMMIT round trips); its rows, if any."""
        db = self._connection()
        try:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description is not None else []
        except self._psycopg.Error as exc:
            if db.broken or db.closed:
                self._forget(db)
            raise StoreError(f"{self.what} {self.shown}: {self._reason(exc)}") from None

    def _forget(self, db: Connection) -> None:
        with contextlib.suppress(Exception):
            db.close()
        with self._lock:
            if db in self._all:
                self._all.remove(db)
        if getattr(self._local, "db", None) is db:
            self._local.db = None

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._all = self._all, []
        for db in connections:
            with contextlib.suppress(Exception):
                db.close()
        self._local = threading.local()
