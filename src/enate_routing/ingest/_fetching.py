"""Fetching a pass's new messages, so that no single message can hold up the ones after it.

A message the server refuses to deliver (``FETCH`` answered ``NO``, ``RETR`` answered ``-ERR``: a damaged
mail file) is left on the server for a later pass. A message on which the server drops the connection
(Dovecot answers a mail file it cannot read with ``BYE``) cannot be told from an outage the first time;
after ``FETCH_LAST_AFTER`` passes in a row ended by its fetch, it is fetched after the other new messages.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from enate_routing.errors import MessageGoneError, ProtocolError
from enate_routing.ingest._acknowledge import describe
from enate_routing.ingest._contract import IngestStats
from enate_routing.transports._base import MailSource, MessageRef

__all__ = ["Fetcher"]

_log = logging.getLogger("enate_routing.ingest")

FETCH_LAST_AFTER = 2  # passes a message's fetch ended in a row before it is fetched after the others
MIN_BATCH_BYTES = 32 * 1024 * 1024  # fetched bytes that always fit a batch (more when the size limit is higher)


class Fetcher:
    """Fetches new messages for one folder, remembering (across passes) whose fetch ended a pass.

    A batch ends once the bytes fetched for it reach ``batch_bytes``, twice the message size limit but at least
    ``MIN_BATCH_BYTES`` (a single larger message is a batch of its own), so a run of large scans is not held in
    memory fifty at a time.
    """

    def __init__(self, connector: str, max_message_bytes: int) -> None:
        self.connector = connector
        self.batch_bytes = max(2 * max_message_bytes, MIN_BATCH_BYTES)
        self._failed: dict[str, int] = {}  # ref key -> passes its fetch ended in a row
        self.refused: ProtocolError | None = None  # this pass's last message the server would not deliver

    def order(self, fresh: list[tuple[int, MessageRef]], listed: Collection[str]) -> list[tuple[int, MessageRef]]:
        """``fresh`` with the messages whose fetch ended the last passes moved to the end (a pass starts)."""
        self.refused = None
        self._failed = {key: n for key, n in self._failed.items() if key in listed}
        return sorted(fresh, key=lambda item: self._failed.get(item[1].key, 0) >= FETCH_LAST_AFTER)

    def fetch(self, source: MailSource, refs: Sequence[tuple[int, MessageRef]],
              into: list[tuple[int, MessageRef, bytes]], stats: IngestStats) -> int:
        """Append what arrives whole to ``into`` (kept when a dropped connection raises), until ``batch_bytes``
        are fetched; returns how many of ``refs`` were taken (the rest go to the next batch)."""
        held = sum(len(raw) for _, _, raw in into)
        for taken, (index, ref) in enumerate(refs, 1):
            if held >= self.batch_bytes:
                return taken - 1
            self._failed[ref.key] = self._failed.get(ref.key, 0) + 1
            try:
                raw = source.fetch(ref)
                into.append((index, ref, raw))
                held += len(raw)
            except MessageGoneError:
                stats.gone += 1  # expunged by another client before we read it: nothing to lose
            except ProtocolError as exc:  # the server refuses this one message: leave it there
                self.refused = exc
                stats.errors.append(describe(exc))
                _log.warning("message not fetched; left on the server: %s", describe(exc),
                             extra={"connector": self.connector, "key": ref.key})
            self._failed.pop(ref.key, None)  # answered: only a fetch that ended the pass counts
        return len(refs)
