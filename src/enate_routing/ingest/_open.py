"""Choosing the ledger by location: a ``postgresql://`` URL or the path of a SQLite file (docs/scaling.md)."""

from __future__ import annotations

import os

from enate_routing.errors import StoreError
from enate_routing.ingest._ledger import Ledger
from enate_routing.ingest._sqlite_ledger import SQLiteLedger

__all__ = ["open_ledger"]


def open_ledger(location: str | os.PathLike[str], *, reset: bool = False) -> Ledger:
    """The ledger at ``location``: a :class:`~enate_routing.postgres.PostgresLedger` for a ``postgresql://``
    URL (needs the ``postgres`` extra), else a :class:`SQLiteLedger` on that file (``reset`` as there).

    A string that looks like another connection string (``mysql://...``, ``host=... password=...``) is a
    :class:`~enate_routing.errors.ConfigError`, not a file name; a ``Path`` is always a file.
    """
    # Imported here: enate_routing.postgres builds on this package, and psycopg is optional.
    from enate_routing.postgres import PostgresLedger
    from enate_routing.postgres._driver import store_url

    url = store_url(location) if isinstance(location, str) else None
    if url is not None:
        if reset:
            raise StoreError("--reset-ledger applies to a SQLite ledger file, not to a PostgreSQL database")
        return PostgresLedger(url)
    return SQLiteLedger(location, reset=reset)
