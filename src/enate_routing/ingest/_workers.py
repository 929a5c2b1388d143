"""One worker process over many mailboxes: each mailbox drained under its lease, held ones left to others.

Run N copies of a :class:`MailboxWorker` (on one host or several) over the same M mailboxes and one shared
ledger — a PostgreSQL one for several hosts (docs/scaling.md). A round visits the mailboxes in a random
order; for each it runs :meth:`~enate_routing.ingest.Ingestor.run_once`, which takes the mailbox's lease
first: a mailbox whose lease another live worker holds raises
:class:`~enate_routing.errors.LeaseHeldError` at once and is skipped, so the workers spread over the
mailboxes by themselves, and a worker that dies loses its mailboxes to the others (at once on the same
host, after the lease's ttl on another).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from enate_routing.errors import LeaseHeldError, StoreError
from enate_routing.ingest._acknowledge import describe
from enate_routing.ingest._contract import Backoff, IngestStats, retrying_may_fix
from enate_routing.ingest._loop import Ingestor

__all__ = ["MailboxWorker", "WorkerRound"]

_log = logging.getLogger("enate_routing.ingest")

SET_ASIDE_FOR = 900.0  # seconds before a mailbox that failed with what retrying cannot fix is tried again


@dataclass
class WorkerRound:
    """What one :meth:`MailboxWorker.run_round` did: the mailboxes it drained, those another worker held."""

    drained: dict[str, IngestStats] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run_forever only: mailbox -> why it will be retried
    set_aside: dict[str, str] = field(default_factory=dict)  # run_forever only: mailbox -> what retrying cannot fix

    @property
    def handed(self) -> int:
        return sum(stats.handed for stats in self.drained.values())


class MailboxWorker:
    """Drains whichever of ``ingestors``' mailboxes no other worker holds, one at a time.

    Mailboxes are named ``"<connector>/<folder>"`` in results. ``shuffle`` orders each round (random by
    default, so workers started together begin on different mailboxes).
    """

    def __init__(
        self,
        ingestors: Sequence[Ingestor],
        *,
        shuffle: Callable[[list[Ingestor]], None] = random.shuffle,
        sleep: Callable[[float], None] = time.sleep,
        stop: Callable[[], bool] = lambda: False,
        give_up_after: float | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ingestors = list(ingestors)
        self.shuffle = shuffle
        self.sleep = sleep  # between the rounds of run_forever
        self.stop = stop  # checked before each mailbox (a signal: finish the current one, start no other)
        self.give_up_after = give_up_after  # passed to each Ingestor.run_once (poll --once --retry-for)
        self.backoff = backoff or Backoff()  # between rounds of run_forever that had a failure
        self.handed: Counter[str] = Counter()  # hand-offs per mailbox since the worker started, every round
        self.last_round: WorkerRound | None = None
        self.clock = clock
        self._set_aside: dict[str, tuple[float, str]] = {}  # mailbox -> (when it is tried again, why)

    @property
    def set_aside(self) -> dict[str, str]:
        """The mailboxes set aside now (``run_round``), and why."""
        return {name: why for name, (_, why) in self._set_aside.items()}

    def run_round(self, *, keep_going: bool = False) -> WorkerRound:
        """Visit every mailbox once: drain it under its lease, or skip it when another worker holds it.

        ``keep_going`` (what :meth:`run_forever` passes): a failure that retrying can fix — the ledger's
        database restarting, a mail server down longer than ``run_once`` retries — is logged and noted in
        ``failed``, and the round goes on to the next mailbox. One that retrying cannot fix — refused
        credentials, a folder that is gone — sets that mailbox aside: logged at error, noted in ``set_aside``,
        tried again after ``SET_ASIDE_FOR`` seconds (someone may fix it on the server), while the others are
        served. Only when every mailbox is set aside is it raised. Without ``keep_going`` every failure is."""
        result = WorkerRound()
        order = list(self.ingestors)
        self.shuffle(order)
        for ingestor in order:
            if self.stop():
                break
            name = f"{ingestor.connector}/{ingestor.mailbox}"
            aside = self._set_aside.get(name)
            if aside is not None and self.clock() < aside[0]:
                result.set_aside[name] = aside[1]
                continue
            try:
                result.drained[name] = ingestor.run_once(give_up_after=self.give_up_after)
            except LeaseHeldError as exc:
                result.held.append(name)
                _log.debug("mailbox held by another worker", extra={"connector": ingestor.connector,
                                                                     "folder": ingestor.mailbox, "owner": exc.owner})
                continue
            except (OSError, StoreError) as exc:
                # A run can fail after handing messages off (the ledger gone while marking them): count them.
                self.handed[name] += ingestor.run_stats.handed
                if not keep_going:
                    raise
                reason = describe(exc)
                where = {"connector": ingestor.connector, "folder": ingestor.mailbox, "reason": reason}
                if retrying_may_fix(exc):
                    result.failed[name] = reason
                    _log.warning("poll failed; retrying", extra=where)
                    continue
                result.set_aside[name] = reason
                self._set_aside[name] = (self.clock() + SET_ASIDE_FOR, reason)
                _log.error("mailbox set aside: %s; the others are served, this one is tried again in %.0f s",
                           reason, SET_ASIDE_FOR, extra=where)
                if len(self._set_aside) == len(self.ingestors):
                    raise  # no mailbox left to serve
                continue
            self._set_aside.pop(name, None)
            self.handed[name] += result.drained[name].handed
        self.last_round = result
        return result

    def run_until_idle(self, *, max_rounds: int = 1_000_000) -> list[WorkerRound]:
        """Rounds until one hands nothing off (``poll --once``): what is left is held by other workers."""
        rounds: list[WorkerRound] = []
        while len(rounds) < max_rounds and not self.stop():
            rounds.append(self.run_round())
            if rounds[-1].handed == 0:
                break
        return rounds

    def run_forever(self, interval: float = 60.0) -> None:
        """A round every ``interval`` seconds until ``stop()`` is true.

        Never gives up on an outage, as :meth:`Ingestor.run_forever`: after a round in which a mailbox
        failed with a retryable error, the next round starts after a backoff delay (capped exponential,
        with jitter) instead of ``interval``. A mailbox that fails with what retrying cannot fix (refused
        credentials) is set aside (:meth:`run_round`); that failure is raised only when every mailbox is."""
        failures = 0
        while not self.stop():
            failed = self.run_round(keep_going=True).failed
            failures = failures + 1 if failed else 0
            wait = self.backoff.delay(failures - 1, random.uniform) if failed else interval
            deadline = time.monotonic() + wait
            while not self.stop() and time.monotonic() < deadline:
                self.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
