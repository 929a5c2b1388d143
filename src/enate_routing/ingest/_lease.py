"""The lease on a folder, kept alive by a heartbeat while the loop works.

Renewed from a background thread every third of its time to live, so a slow batch or a slow handler does
not let the lease lapse; a poller whose renewal failed (another owner took the lease, or the ledger
could not be written for a whole time to live) stops before its next hand-off.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time

from enate_routing.errors import LeaseHeldError, StoreError
from enate_routing.ingest._ledger import LeaseLedger

__all__ = ["Lease", "LeaseLostError"]

_log = logging.getLogger("enate_routing.ingest")


class LeaseLostError(LeaseHeldError):
    """This poller's lease was taken over or could not be renewed: it stops before its next hand-off."""


def new_owner() -> str:
    """A random instance token (with the host name, for people reading the ledger)."""
    return f"{socket.gethostname()}:{secrets.token_hex(8)}"


class Lease:
    """One poller's lease on (connector, folder); :meth:`hold` takes it and starts the heartbeat."""

    def __init__(self, store: LeaseLedger, connector: str, mailbox: str, ttl: float, *,
                 heartbeat: bool = True) -> None:
        self.store = store
        self.connector = connector
        self.mailbox = mailbox
        self.ttl = ttl
        self.owner = new_owner()
        self._heartbeat = heartbeat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: str | None = None
        self._renewed = 0.0

    def hold(self) -> None:
        """Take the lease (:class:`LeaseHeldError` when another live poller holds it) and keep it."""
        self.store.acquire_lease(self.connector, self.mailbox, self.owner, self.ttl)
        self._renewed = time.monotonic()
        self._lost = None
        _log.debug("lease acquired", extra={"connector": self.connector, "folder": self.mailbox,
                                            "owner": self.owner, "ttl": self.ttl})
        if self._heartbeat and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name=f"lease {self.connector}", daemon=True)
            self._thread.start()

    def renew(self) -> None:
        """Renew now (between batches; the heartbeat does it during them)."""
        self.check()
        self.store.acquire_lease(self.connector, self.mailbox, self.owner, self.ttl)
        self._renewed = time.monotonic()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.store.acquire_lease(self.connector, self.mailbox, self.owner, self.ttl)
            except LeaseHeldError as exc:
                self._lost = str(exc)
                _log.error("lease lost", extra={"connector": self.connector, "folder": self.mailbox,
                                                "owner": self.owner, "reason": str(exc)})
                return
            except StoreError as exc:
                _log.warning("lease renewal failed", extra={"connector": self.connector, "reason": str(exc)})
                continue
            self._renewed = time.monotonic()

    def check(self) -> None:
        """Raise :class:`LeaseLostError` when the lease can no longer be trusted to be ours."""
        if self._lost is None and time.monotonic() - self._renewed > self.ttl:
            self._lost = f"not renewed for {self.ttl:g} s"
        if self._lost is not None:
            raise LeaseLostError(self.connector, self.mailbox, f"another poller ({self._lost})")

    def release(self) -> None:
        """Stop the heartbeat and give the lease up (a restart may take it at once)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        try:
            self.store.release_lease(self.connector, self.mailbox, self.owner)
        except StoreError as exc:
            _log.warning("lease not released", extra={"connector": self.connector, "reason": str(exc)})
            return
        _log.debug("lease released", extra={"connector": self.connector, "folder": self.mailbox, "owner": self.owner})
