"""The ledger's housekeeping at the start of every run, so months of ``poll`` do not grow it without bound:
acknowledgement counters older than the rate limit's hour, and the raw bytes of handled mail older than
``keep_raw_for`` (docs/ingestion.md "Retention"). A host's own ledger without ``prune_acks`` or
``drop_raw`` keeps what it has (both are looked up, not required by :class:`Ledger`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from enate_routing.errors import ConfigError
from enate_routing.ingest._acknowledge import AckRateLimit
from enate_routing.ingest._ledger import Ledger

__all__ = ["KEEP_RAW_FOR", "Housekeeping"]

KEEP_RAW_FOR = 30 * 86400.0  # seconds the raw bytes of a message marked on the server are kept by default

_log = logging.getLogger("enate_routing.ingest")


class Housekeeping:
    """Forget what no run needs any more, for one connector; ``keep_raw_for`` None keeps raw bytes forever."""

    def __init__(self, store: Ledger, connector: str, rate_limit: AckRateLimit, keep_raw_for: float | None,
                 clock: Callable[[], float]) -> None:
        if keep_raw_for is not None and not keep_raw_for >= 0:
            raise ConfigError.single(f"must be 0 or more seconds (or None: keep forever), not {keep_raw_for!r}",
                                     field="keep_raw_for")
        self.store = store
        self.connector = connector
        self.rate_limit = rate_limit
        self.keep_raw_for = keep_raw_for
        self.clock = clock

    def run(self) -> None:
        prune = getattr(self.store, "prune_acks", None)
        if callable(prune):
            prune(self.rate_limit.window_start())
        drop = getattr(self.store, "drop_raw", None)
        if self.keep_raw_for is not None and callable(drop):
            # Marked (not quarantined) before this: bytes emptied, rows kept for de-duplication.
            dropped = drop(self.connector, self.clock() - self.keep_raw_for)
            if dropped:
                _log.info("raw bytes of %d handled messages dropped", dropped,
                          extra={"connector": self.connector, "dropped": dropped})
