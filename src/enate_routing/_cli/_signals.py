"""The signals a long-running ``poll`` answers: SIGTERM and SIGINT stop it, SIGHUP reloads its configuration.

A stop finishes the message in hand, releases the lease and ends the run (``Ingestor.stop``); a second
SIGTERM or SIGINT interrupts at once (``KeyboardInterrupt``: exit 130). SIGHUP stops the run the same way
and asks the command to read its configuration file again and start over with it — the way a service
manager's ``reload`` is told (docs/ingestion.md, Running poll as a service).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType

from enate_routing._loading import load_config
from enate_routing._model import Config
from enate_routing.errors import ConfigError

__all__ = ["Signals", "reloaded"]

_log = logging.getLogger("enate_routing.cli")
_SIGHUP: int | None = getattr(signal, "SIGHUP", None)  # (Windows has none: there, nothing reloads)


class Signals:
    """While entered: SIGTERM / SIGINT call every function of ``stops`` (the command sets them: its current
    ingestors' ``stop``) and are kept in ``received``; with ``reload``, SIGHUP calls them too and sets
    ``reload_requested``. Entered once for the whole command, so that no signal finds the default handler
    between two runs. The handlers before are put back on exit."""

    def __init__(self, *, reload: bool = False) -> None:
        self.stops: Sequence[Callable[[], None]] = ()
        self.received: list[int] = []
        self.reload_requested = False
        self._names = (signal.SIGTERM, signal.SIGINT, *((_SIGHUP,) if reload and _SIGHUP is not None else ()))
        self._previous: dict[int, object] = {}

    @property
    def stopping(self) -> bool:
        """Whether the run should end: stopped, or to be started over with the configuration read again."""
        return bool(self.received) or self.reload_requested

    def __enter__(self) -> Signals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self._names}
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]  # what signal.signal returned

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == _SIGHUP:
            self.reload_requested = True
        elif self.received:
            raise KeyboardInterrupt
        else:
            self.received.append(signum)
        for stop in self.stops:
            stop()


def reloaded(path: Path, current: Config, usable: Callable[[Config], object]) -> Config:
    """The configuration in ``path`` read again; ``current`` when the file no longer loads, or when ``usable``
    (what the command must be able to build from it) raises a ConfigError: a connector it polls is gone,
    disabled or reads no mail. The error is logged."""
    try:
        config = load_config(path)
        usable(config)
    except ConfigError as exc:
        _log.error("configuration not reloaded; going on with the one loaded before: %s", " / ".join(
            str(exc).splitlines()), extra={"file": str(path)})
        return current
    _log.info("configuration reloaded", extra={"file": str(path), "routes": len(config.routes)})
    return config
