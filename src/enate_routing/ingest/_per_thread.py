"""One database connection per thread, closed when its thread ends.

A connection belongs to the thread that opened it. The lease heartbeat is a new thread every run, so a
connection kept after its thread ended would leak one per run: over months of ``poll``, the process ran
out of file descriptors (SQLite) or the server out of connections (PostgreSQL). The thread's entry in a
``threading.local`` is dropped when the thread ends; the holder kept there closes the connection then.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerThread"]

T = TypeVar("T")


class _Held(Generic[T]):
    """One thread's connection; closed once, when dropped or by :meth:`PerThread.close_all`."""

    __slots__ = ("__weakref__", "_close", "_closed", "value")

    def __init__(self, value: T, close: Callable[[T], None]) -> None:
        self.value = value
        self._close = close
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self._close(self.value)

    def __del__(self) -> None:
        self.close()


class PerThread(Generic[T]):
    """The calling thread's connection (:meth:`get`, :meth:`keep`), every live one closed by :meth:`close_all`."""

    def __init__(self, close: Callable[[T], None]) -> None:
        self._close = close
        self._local = threading.local()
        self._live: weakref.WeakSet[_Held[T]] = weakref.WeakSet()
        self._lock = threading.Lock()

    def get(self) -> T | None:
        held: _Held[T] | None = getattr(self._local, "held", None)
        return None if held is None else held.value

    def keep(self, value: T) -> None:
        held = _Held(value, self._close)
        self._local.held = held
        with self._lock:
            self._live.add(held)

    def forget(self) -> None:
        """Close the calling thread's connection (a broken one: the next call opens a new one)."""
        held: _Held[T] | None = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held.close()

    def close_all(self) -> None:
        with self._lock:
            live, self._live = list(self._live), weakref.WeakSet()
        for held in live:
            held.close()
        self._local = threading.local()
