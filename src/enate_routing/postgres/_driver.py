"""The one module that imports psycopg 3: connections to a PostgreSQL database, every error a StoreError.

psycopg is an optional dependency (``pip install 'enate-routing[postgres]'``); without it, opening a
``postgresql://`` ledger or history store raises :class:`~enate_routing.errors.StoreError` saying so, and
nothing else in the package notices.

:class:`PostgresDatabase` gives each thread its own connection (a psycopg connection carries one
transaction at a time), runs each :meth:`~PostgresDatabase.transaction` as one atomic unit with
``synchronous_commit`` as the server has it (on, by default: a commit that returned is durable), and
turns every database error into a ``StoreError`` that names the database by its URL *without* the password.
A connection the server ended while it sat idle (a restart of the database) is replaced before it is used,
so a restart costs no failed transaction once the server is back (docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from collections.abc import Iterator, Sequence
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from enate_routing._tcp import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    UNACKNOWLEDGED_MS,
    peer_has_spoken,
)
from enate_routing.errors import ConfigError, StoreError
from enate_routing.ingest._per_thread import PerThread

if TYPE_CHECKING:
    import psycopg

    Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
    Cursor: TypeAlias = psycopg.Cursor[tuple[Any, ...]]
else:
    Connection = Any
    Cursor = Any

__all__ = ["Connection", "Cursor", "PostgresDatabase", "is_postgres_url", "redact_url", "store_url"]

_log = logging.getLogger("enate_routing.postgres")

# libpq's own TCP options, where the URL does not set them (docs/scaling.md): the package's keepalives (_tcp.py).
# Unix sockets ignore them.
_TCP_DEFAULTS = {"keepalives": "1", "keepalives_idle": str(KEEPALIVE_IDLE),
                 "keepalives_interval": str(KEEPALIVE_INTERVAL), "keepalives_count": str(KEEPALIVE_COUNT),
                 "tcp_user_timeout": str(UNACKNOWLEDGED_MS)}

_SCHEMES = ("postgresql", "postgres")
_INSTALL = "pip install 'enate-routing[postgres]'"
# A URL scheme (RFC 3986 §3.1) of two characters or more: "C:\\ledger.db" stays a Windows path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
_URL_HEAD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?://)?")
# libpq's other connection string form, "host=db port=5432 password=...".
_KEYWORD_STRING = re.compile(r"\s*[A-Za-z_]+\s*=")
_KEYWORD_PASSWORD = re.compile(r"(\w*password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)", re.IGNORECASE)


def _scheme(value: str) -> str | None:
    match = _SCHEME.match(value)
    return match.group(1).lower() if match else None


def is_postgres_url(value: object) -> bool:
    """True for a ``postgresql:`` (or ``postgres:``) URL, in any case: what selects the PostgreSQL stores."""
    return isinstance(value, str) and _scheme(value) in _SCHEMES


def store_url(location: str, *, what: str = "ledger") -> str | None:
    """The PostgreSQL URL that ``location`` names, as libpq takes it (:func:`postgres_url`); None for a file path.

    Anything else that looks like a connection string — another ``scheme:`` URL, a libpq keyword string — is
    a :class:`ConfigError` showing it without its password, never the name of a SQLite file to create.
    """
    if is_postgres_url(location):
        return postgres_url(location, what=what)
    if _scheme(location) is not None:
        raise _refused(location, what, "not a postgresql:// URL (for a file whose name has a colon, write ./NAME)")
    if _KEYWORD_STRING.match(location):
        raise _refused(location, what, "libpq keyword strings are not supported, use a postgresql:// URL "
                                        "(for a file whose name has '=', write ./NAME)")
    return None


def postgres_url(url: str, *, what: str) -> str:
    """``url`` with its scheme in lower case (libpq knows no other); a ConfigError unless it is a well-formed
    ``postgresql://`` URL (libpq would echo a malformed one, password included, in its error)."""
    scheme, _, rest = url.partition(":")
    if scheme.lower() not in _SCHEMES or not rest.startswith("//"):
        raise _refused(url, what, "a PostgreSQL URL starts with postgresql://")
    try:
        urlsplit(url)
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        raise _refused(url, what, f"malformed PostgreSQL URL ({exc})") from None
    return f"{scheme.lower()}:{rest}"


def _refused(location: str, what: str, problem: str) -> ConfigError:
    return ConfigError.single(f"{what} {_redact_location(location)}: {problem}")


def _redact_location(location: str) -> str:
    """A location as it may be shown: a URL by :func:`redact_url`, else any ``password=`` value cut."""
    if _scheme(location) is not None:
        return redact_url(location)
    return _KEYWORD_PASSWORD.sub(r"\1***", location)


def _url_parts(url: str) -> tuple[str, str | None, str, str]:
    """``url`` as (``scheme:`` or ``scheme://``, user info or None, host and path, query). Never raises.

    The user info ends at the *last* ``@``, so a password with an unescaped ``/``, ``?`` or ``@`` is still cut
    out whole: at worst more than the password is hidden, never less.
    """
    start = _URL_HEAD.match(url)
    head = start.group() if start else ""
    userinfo, at, rest = url[len(head):].rpartition("@")
    address, _, query = rest.partition("?")
    return head, userinfo if at else None, address, query.partition("#")[0]


def redact_url(url: str) -> str:
    """``url`` as it may be shown: the password (in the user info or a ``password=`` parameter) removed."""
    head, userinfo, address, query = _url_parts(url)
    user = "" if userinfo is None else f"{userinfo.partition(':')[0]}@"
    shown = urlencode([(k, "***" if "password" in k.lower() else v) for k, v in parse_qsl(query)])
    return f"{head}{user}{address}{'?' + shown if shown else ''}"


def _password(url: str) -> str:
    """The password in ``url``'s user info, as written ("" when none)."""
    userinfo = _url_parts(url)[1] or ""
    return userinfo.partition(":")[2]


def _psycopg() -> ModuleType:
    try:
        return importlib.import_module("psycopg")
    except ImportError as exc:
        raise StoreError(f"a postgresql:// ledger or history store needs psycopg 3, which is not installed: "
                         f"{_INSTALL}") from exc


@cache  # one class for every store of the process
def _total_text() -> type:
    """psycopg's text dumper, writing any string: NUL as U+FFFD, and what the connection's encoding cannot
    hold (a lone surrogate; a character of another script in a LATIN1 database) as ``?``. PostgreSQL text
    cannot hold NUL (psycopg raises ``DataError``, and ``UnicodeEncodeError`` for the rest), and mail can
    carry one into a Message-ID, a quarantine reason or a host's reference: one such message must not fail
    every pass of its mailbox (docs/scaling.md, "Text PostgreSQL cannot store")."""
    base: Any = importlib.import_module("psycopg.types.string").StrDumperUnknown

    class TotalText(base):  # type: ignore[misc]  # psycopg's class, imported at run time
        def dump(self, obj: str) -> bytes:
            return obj.replace("\x00", "\ufffd").encode(self._encoding, "replace")

    return TotalText


class PostgresDatabase:
    """One PostgreSQL database shared by threads: a connection per thread, every error a StoreError.

    ``what`` names the store in messages ("ingestion ledger", "history database").
    """

    def __init__(self, url: str, *, what: str, connect_timeout: float = 10.0) -> None:
        self._url = postgres_url(url, what=what)
        self._psycopg = _psycopg()
        self._text_dumper = _total_text()
        self.shown = redact_url(self._url)
        self.what = what
        self._timeout = max(1, int(connect_timeout))
        try:
            given = importlib.import_module("psycopg.conninfo").conninfo_to_dict(self._url)
        except self._psycopg.Error as exc:  # an option libpq does not know: as connect() would say
            raise self._cannot_open(exc) from None
        self._tcp = {name: value for name, value in _TCP_DEFAULTS.items() if name not in given}
        self._connections: PerThread[Connection] = PerThread(lambda db: db.close())
        self._connection()  # fail now, not at the first statement, when the server cannot be reached

    def _connection(self) -> Connection:
        db = self._connections.get()
        if db is not None and not db.closed:
            if not peer_has_spoken(db.fileno()):
                return db
            # An idle connection has nothing to read unless the server ended it: a restart sends "terminating
            # connection due to administrator command" and closes. Used, it would fail the next transaction.
            # (A setting the server reports changing after a reload is read too: a needless reconnect, no harm.)
            _log.info("%s: the server closed an idle connection; reconnecting", self.what,
                      extra={"store": self.shown})
            self._forget(db)
        try:
            # autocommit: every transaction is an explicit ``with db.transaction()`` block, nothing is left open.
            opened: Connection = self._psycopg.connect(
                self._url, autocommit=True, connect_timeout=self._timeout, application_name="enate-routing",
                **self._tcp,
            )
        except self._psycopg.Error as exc:
            raise self._cannot_open(exc) from None
        opened.adapters.register_dumper(str, self._text_dumper)
        self._connections.keep(opened)
        return opened

    def _cannot_open(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open the {self.what} {self.shown}: {self._reason(exc)}")

    def _reason(self, exc: BaseException) -> str:
        """The server's message, with the URL's password cut out should a driver ever echo it."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        password = _password(self._url)
        for secret in filter(None, (password, unquote(password))):  # libpq may echo it percent-decoded
            text = text.replace(secret, "***")
        return text

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
        if self._connections.get() is db:
            self._connections.forget()

    def close(self) -> None:
        """Close every thread's connection."""
        self._connections.close_all()
