"""``poll``: run the ingestion loop against a connector's real mailbox (docs/semantics.md §5, §8).

Each decision is appended to ``--out`` as one JSON line: every decision field (``cli/_records.decision_record``,
``message`` being the Message-ID, or the server ref when the message has none) plus ``ledger_id``,
``message_id``, ``sender`` and ``subject`` (docs/json-output.md). The JSON-lines writer *is* the host's handler,
so it honours the host's contract (docs/ingestion.md): it is idempotent on the idempotency key — keys
already in the file are not written again — and every line is written and fsynced before the ledger
records the hand-off. A write that fails (disk full) is cut back, so the file never holds half a line;
a line torn by a crash is cut off when the file is opened again.

The ledger (``--state``, default ``<out>.ledger.db`` beside the output) is what makes a restart resume
where the last run stopped; keep it with the output file. ``--ledger postgresql://...`` (or
``$ENATE_ROUTING_LEDGER``) puts it in PostgreSQL instead, shared by several workers (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from enate_routing._cli._connections import (
    add_connector_arguments,
    add_mailbox_argument,
    add_timeout_argument,
    connector_name,
    seconds,
)
from enate_routing._cli._ledger import add_ledger_argument, ledger_location
from enate_routing._cli._logging import add_logging_options, configure_logging
from enate_routing._cli._records import decision_record
from enate_routing._cli._signals import Signals, reloaded
from enate_routing._cli._text import plural
from enate_routing._loading import load_config
from enate_routing._model import Config
from enate_routing._router import Router
from enate_routing.errors import ConfigError, TransportError
from enate_routing.ingest import Ingestor, IngestStats, Ledger, MailboxWorker, WorkItem, open_ledger
from enate_routing.ingest._configured import ingestor_options
from enate_routing.ingest._housekeeping import KEEP_RAW_FOR
from enate_routing.postgres import is_postgres_url
from enate_routing.transports._factory import ConnectorAccess

__all__ = ["JsonlWriter", "Progress", "StatusLine", "add_ledger_options", "jsonl_line", "ledger_path", "open_ingestor",
           "positive_int", "register"]

# Characters json.dumps(ensure_ascii=False) leaves as they are but that break a JSON-lines file: line
# separators a reader's str.splitlines() splits on (NEL, U+2028, U+2029), and lone surrogates (a decoded
# Subject may hold them) that cannot be written as UTF-8. Escaped as \uXXXX, they read back unchanged.
_UNSAFE_IN_A_LINE = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


def jsonl_line(record: dict[str, Any]) -> bytes:
    """``record`` as one UTF-8 JSON line that every line reader sees as one line."""
    text = _UNSAFE_IN_A_LINE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(record, ensure_ascii=False))
    return (text + "\n").encode("utf-8")


# Keys remembered for the re-delivery window (docs/ingestion.md): far more than the hand-offs a crash can leave
# unrecorded (one batch), and bounded, so months of decisions do not grow memory or the start-up read.
_REMEMBERED_KEYS = 100_000
_TAIL_CHUNK = 1 << 20


class JsonlWriter:
    """Appends one JSON object per decision to a file, at most once per idempotency key (of the most recent
    ``_REMEMBERED_KEYS``). A file deleted or renamed (rotated) while in use is followed by a new one at the path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: set[str] = set()
        self._order: deque[str] = deque()
        self.written = 0
        if path.exists():
            newest_first = []
            for line in _tail_lines(path, _REMEMBERED_KEYS):
                try:
                    newest_first.append(json.loads(line)["idempotency_key"])
                except (ValueError, KeyError, TypeError):
                    continue
            for key in reversed(newest_first):
                self._remember(key)
        self._fd = self._open()

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _remember(self, key: str) -> None:
        if key in self.keys:
            return
        if len(self._order) >= _REMEMBERED_KEYS:
            self.keys.discard(self._order.popleft())
        self.keys.add(key)
        self._order.append(key)

    def _follow_the_path(self) -> None:
        """Reopen when the file at the path is no longer the open one (deleted, or renamed by log rotation):
        a line written to an unlinked file would be lost while the ledger records it as handed off."""
        opened = os.fstat(self._fd)
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if current is None or (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
            fd, self._fd = self._fd, self._open()
            os.close(fd)

    def __call__(self, item: WorkItem) -> None:
        if item.idempotency_key in self.keys:
            return
        envelope = item.envelope
        record: dict[str, Any] = decision_record(item.decision, envelope.message_id or item.ref)
        record["idempotency_key"] = item.idempotency_key  # a reprocessed message's key has its generation
        record.update(ledger_id=item.message, message_id=envelope.message_id, sender=envelope.sender,
                      subject=envelope.subject)
        line = jsonl_line(record)
        self._follow_the_path()
        size = os.fstat(self._fd).st_size
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)  # no half line left behind by a full disk
            raise
        self._remember(item.idempotency_key)
        self.written += 1

    def close(self) -> None:
        os.close(self._fd)


def _cut_torn_line(file: BinaryIO) -> int:
    """Cut a line torn by a crash (no newline at the end) off the file — that decision was not recorded as handed
    off — and return where the file now ends."""
    end = position = file.seek(0, os.SEEK_END)
    keep = 0
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        file.seek(position)
        newline = file.read(step).rfind(b"\n")
        if newline >= 0:
            keep = position + newline + 1
            break
    if keep < end:
        file.truncate(keep)
    return keep


def _tail_lines(path: Path, count: int) -> Iterator[bytes]:
    """The last ``count`` whole lines of ``path``, newest first, read backwards a chunk at a time: months of
    decisions are never in memory at once (reading the last 100,000 lines whole took ``poll`` from 50 MB to 236 MB
    at start, and 123 MB stayed)."""
    with path.open("r+b") as file:
        position = _cut_torn_line(file)
        partial = b""  # the end of a line that starts in an earlier chunk, with its newline
        while position > 0 and count > 0:
            step = min(_TAIL_CHUNK, position)
            position -= step
            file.seek(position)
            lines = (file.read(step) + partial).split(b"\n")  # ends with b"": the last line has its newline
            partial = lines[0] + b"\n" if position > 0 else b""
            for line in reversed(lines[1 if position > 0 else 0:-1]):
                yield line
                count -= 1
                if count == 0:
                    return


def add_ledger_options(parser: argparse.ArgumentParser, *, out_required: bool, connector_option: bool = True) -> None:
    """``--config``, the connector, ``--mailbox``, ``--out``, ``--state``, ``--timeout`` and logging options.

    Commands with another positional argument after NAME pass ``connector_option=False``: argparse would give
    a lone positional to the later argument when NAME is optional, so there NAME stays required.
    """
    parser.add_argument("--config", required=True, type=Path, metavar="FILE")
    if connector_option:
        add_connector_arguments(parser, "the incoming connector")
    else:
        parser.add_argument("name", metavar="NAME", help="the incoming connector")
        parser.set_defaults(connector_option=None)
    add_mailbox_argument(parser)
    parser.add_argument("--out", required=out_required, type=_output_file, metavar="FILE.jsonl",
                        help="decisions are appended here")
    parser.add_argument("--state", type=Path, metavar="DB", help="the ingestion ledger (default: <out>.ledger.db)")
    add_ledger_argument(parser, what="the ingestion ledger instead of --state (PostgreSQL: docs/scaling.md)")
    add_timeout_argument(parser)
    add_logging_options(parser)


def ledger_path(args: argparse.Namespace) -> str | Path:
    """``--ledger`` (or ``$ENATE_ROUTING_LEDGER``), else ``--state``, else ``<out>.ledger.db``."""
    location = ledger_location(args)
    if location is not None:
        return location
    if args.state is not None:
        return Path(args.state)
    if args.out is None:
        raise ConfigError.single("name the ingestion ledger with --state DB (or the output file with --out FILE.jsonl)",
                                 field="--state")
    return Path(args.out).with_name(Path(args.out).name + ".ledger.db")


@contextlib.contextmanager
def open_ingestor(args: argparse.Namespace, *, reset: bool = False, existing: bool = False, **options: Any) -> Iterator[
        tuple[Ingestor, Ledger, JsonlWriter | None]]:
    """The configured ingestor with its ledger and (with ``--out``) its JSON-lines writer, closed after.
    ``existing``: the ledger must already exist (the quarantine commands read what `poll` wrote)."""
    args.name = connector_name(args)
    if existing:
        _ledger_must_exist(ledger_path(args))
    with open_ingestors(args, [args.name], reset=reset, **options) as ([ingestor], store, writer):
        yield ingestor, store, writer


def _ledger_must_exist(location: str | Path) -> None:
    """A SQLite ledger path that names no file is a mistake (a typo, another folder), not a new empty ledger."""
    if (isinstance(location, Path) or not is_postgres_url(location)) and not Path(location).exists():
        raise ConfigError.single("no ingestion ledger in this file: `enate-routing poll` creates it; name the one it "
                                 "wrote (--out FILE.jsonl, --state DB or --ledger)", file=str(location))


@contextlib.contextmanager
def open_ingestors(args: argparse.Namespace, names: Sequence[str], *, reset: bool = False, config: Config | None = None,
                   **options: Any) -> Iterator[tuple[list[Ingestor], Ledger, JsonlWriter | None]]:
    """An ingestor per connector of ``names`` (of ``config``, else of ``--config``), all on one ledger and one
    JSON-lines writer, closed after."""
    with configure_logging(args):
        config = config or load_config(args.config)
        ingestors: list[Ingestor] = []
        access = ConnectorAccess(base_dir=args.config.parent, timeout=args.timeout,
                                 wait=lambda seconds: _wait_unless_stopping(ingestors, seconds))
        router = Router.compile(config)
        store = open_ledger(ledger_path(args), reset=reset)
        writer = JsonlWriter(args.out) if args.out is not None else None
        try:
            handler = writer if writer is not None else _no_handler
            ingestors += [Ingestor.from_config(config, name, router=router, store=store, handler=handler,
                                               access=access, mailbox=args.mailbox, **options) for name in names]
            yield ingestors, store, writer
        finally:
            if writer is not None:
                writer.close()
            store.close()


def _wait_unless_stopping(ingestors: Sequence[Ingestor], seconds: float) -> bool:
    """Wait out a server's Retry-After; True when a signal cut it short (the call gives up then).

    ``Ingestor.wait`` of the first ingestor: ``_stop_on_signals`` stops every ingestor of the command at once,
    so its stop ends the wait for all of them."""
    first = ingestors[0]
    first.wait(seconds)
    return first.stopping


def _no_handler(item: WorkItem) -> None:  # pragma: no cover - only listing commands use it, and they hand nothing
    raise RuntimeError("no output file: name one with --out")


def positive_int(text: str) -> int:
    """argparse type: a whole number greater than zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text!r}")
    return value


def _days(text: str) -> float:
    """argparse type: a number of days, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more days, not {text!r}")
    return value


def _output_file(text: str) -> Path:
    """argparse type: a file path that is not an existing folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name a .jsonl file")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
    return path


def register(subparsers: Any) -> None:
    poll = subparsers.add_parser(
        "poll", help="ingest a connector's mailbox: route every new message, append decisions to a JSON-lines file"
    )
    add_ledger_options(poll, out_required=True)
    poll.add_argument("more", nargs="*", metavar="NAME",
                      help="more incoming connectors: one worker drains whichever of them no other worker holds "
                           "(several workers share a --ledger postgresql://..., docs/scaling.md)")
    poll.add_argument("--once", action="store_true", help="drain the mailbox once and exit")
    poll.add_argument("--interval", type=seconds, default=60.0, metavar="SECONDS",
                      help="time between polls without --once (default 60; IMAP IDLE wakes up earlier)")
    poll.add_argument("--retry-for", type=seconds, default=60.0, metavar="SECONDS",
                      help="with --once: how long to keep retrying an unreachable server before giving up (default 60)")
    poll.add_argument("--batch-size", type=positive_int, default=50, metavar="N",
                      help="messages per batch: per spool, route and group-commit transaction (default 50)")
    poll.add_argument("--keep-raw-days", type=_days, default=KEEP_RAW_FOR / 86400, metavar="DAYS",
                      help="days to keep the raw bytes of a message marked processed on the server (default 30; 0: "
                           "drop them at the next poll; quarantined and unrouted messages keep theirs)")
    poll.add_argument("--no-idle", action="store_true", help="poll every --interval even where IMAP IDLE is offered")
    poll.add_argument("--reset-ledger", action="store_true",
                      help="start a new, empty ledger when the file is empty or unreadable (quarantine records in it "
                           "are lost)")
    poll.set_defaults(handler=run_poll)


class StatusLine(io.TextIOBase):
    """stderr on a terminal: one progress line redrawn in place at the bottom. Anything else written (a warning,
    an error) first erases it, so it starts at the left margin instead of after the progress text."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._showing = False

    def show(self, text: str) -> None:
        self.stream.write(f"\r{text}\x1b[K")  # \x1b[K: erase what a longer earlier line left
        self.stream.flush()
        self._showing = True

    def end(self) -> None:
        """Keep the last progress line on screen: what follows starts below it."""
        if self._showing:
            self.stream.write("\n")
            self._showing = False

    def write(self, text: str) -> int:
        if self._showing and text:
            self.stream.write("\r\x1b[K")
            self._showing = False
        return self.stream.write(text)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


@contextlib.contextmanager
def _status_line(args: argparse.Namespace) -> Iterator[StatusLine | None]:
    """A status line on stderr when it is a terminal and no log level was asked for; everything written to
    stderr meanwhile (log records, errors) goes through it."""
    if not sys.stderr.isatty() or args.verbose or args.log_level:
        yield None
        return
    line = StatusLine(sys.stderr)
    try:
        with contextlib.redirect_stderr(line):
            yield line
    finally:
        line.end()


class Progress:
    """The progress callback: counts since the command started (each pass of the daemon starts its own
    ``IngestStats``; showing those alone turned the line back to zeros at every idle poll)."""

    _COUNTS = (("spooled", "spooled"), ("handed", "handed off"), ("quarantined", "quarantined"),
               ("marked", "marked"), ("reconnects", "reconnects"))

    def __init__(self, line: StatusLine) -> None:
        self.line = line
        self._earlier = dict.fromkeys([name for name, _ in self._COUNTS], 0)  # passes before the current one
        self._run: IngestStats | None = None

    def __call__(self, stats: IngestStats) -> None:
        if self._run is not None and stats is not self._run:
            for name in self._earlier:
                self._earlier[name] += getattr(self._run, name)
        self._run = stats
        counts = "  ".join(f"{label} {self._earlier[name] + getattr(stats, name)}" for name, label in self._COUNTS)
        self.line.show(f"listed {stats.listed}  {counts}")


def run_poll(args: argparse.Namespace) -> int:
    if args.more:
        return run_worker(args)
    with _status_line(args) as line:
        return _poll(args, Progress(line) if line is not None else None)


def _poll(args: argparse.Namespace, progress: Progress | None) -> int:
    """One connector: ``run_once`` with ``--once``, else ``run_forever`` until a signal (SIGHUP: start over with
    the configuration read again)."""
    args.name = connector_name(args)
    options = {"progress": progress, "batch_size": args.batch_size, "keep_raw_for": args.keep_raw_days * 86400}
    written, stats = 0, None
    with Signals(reload=not args.once) as signals, \
            contextlib.closing(_runs(args, [args.name], signals, **options)) as runs:
        for (ingestor,), writer in runs:
            try:
                if args.once:
                    stats = ingestor.run_once(give_up_after=args.retry_for)
                else:
                    ingestor.run_forever(args.interval, idle=not args.no_idle)
            except OSError as exc:
                if isinstance(exc, TransportError):
                    raise
                print(f"error: cannot write decisions to {args.out}: {exc.strerror or exc}; nothing was "
                      "quarantined or marked that was not written: run again when this is fixed", file=sys.stderr)
                return 1
            written += writer.written
            quarantined = len(ingestor.quarantined())
    if progress is not None:
        progress.line.end()
    stopped = f" (stopped by signal {signals.received[0]})" if signals.received else ""
    marked = f", {plural(stats.marked, 'message')} marked processed" if stats is not None else ""
    print(f"{args.name}: {plural(written, 'decision')} written to {args.out}{marked}, {quarantined} in "
          f"quarantine{stopped}", file=sys.stderr)
    return 0


def _runs(args: argparse.Namespace, names: Sequence[str], signals: Signals,
          **options: Any) -> Generator[tuple[list[Ingestor], JsonlWriter], None, None]:
    """The ingestors of ``names`` and the writer, for each run of the command: the first run with the
    configuration file as it is, each later one after a SIGHUP with the file read again (docs/ingestion.md,
    Running poll as a service). A stop signal stops the current run's ingestors."""
    config, reset = load_config(args.config), args.reset_ledger
    while True:
        with open_ingestors(args, names, reset=reset, config=config, **options) as (ingestors, _, writer):
            assert writer is not None
            signals.stops = [ingestor.stop for ingestor in ingestors]
            if signals.stopping:  # a signal came while this run was set up (its stop went to the last run's)
                for ingestor in ingestors:
                    ingestor.stop()
            yield ingestors, writer
            if not _reload(signals):
                return
            # Read again while this run's logging is on (and never a second --reset-ledger).
            config, reset = reloaded(args.config, config, _runs_with(args, names)), False


def _runs_with(args: argparse.Namespace, names: Sequence[str]) -> Callable[[Config], object]:
    """What a configuration read again must allow: the ingestors of ``names`` (``ingestor_options`` raises a
    ConfigError for a connector that is gone, disabled or reads no mail; it opens nothing)."""
    return lambda config: [ingestor_options(config, name, None, args.mailbox, {}) for name in names]


def _reload(signals: Signals) -> bool:
    """Whether the run ended for a SIGHUP (and no stop): the request is taken, so a later one counts again."""
    if signals.received or not signals.reload_requested:
        return False
    signals.reload_requested = False
    return True


def run_worker(args: argparse.Namespace) -> int:
    """``poll NAME NAME...``: one worker over several mailboxes, each drained under its lease (docs/scaling.md)."""
    names = [connector_name(args), *args.more]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError.single("a connector is named twice", field="NAME", item=", ".join(twice))
    written = 0
    handed: Counter[str] = Counter()
    options = {"batch_size": args.batch_size, "keep_raw_for": args.keep_raw_days * 86400}
    with Signals(reload=not args.once) as signals, contextlib.closing(_runs(args, names, signals, **options)) as runs:
        for ingestors, writer in runs:
            worker = MailboxWorker(ingestors, stop=lambda: signals.stopping,
                                   give_up_after=args.retry_for if args.once else None)
            if args.once:
                worker.run_until_idle()
            else:
                worker.run_forever(args.interval)
            written += writer.written
            handed.update(worker.handed)
    last = worker.last_round
    for name in names:  # counts of every round (a daemon stopped by SIGTERM printed 0 hand-offs for each)
        count = sum(n for key, n in handed.items() if key.split("/")[0] == name)
        held = last is not None and any(key.split("/")[0] == name for key in last.held)
        aside = [why for key, why in worker.set_aside.items() if key.split("/")[0] == name]
        note = f" (set aside: {aside[0]})" if aside else " (held by another worker at the end)" if held else ""
        print(f"{name}: {plural(count, 'hand-off')}{note}", file=sys.stderr)
    stopped = f" (stopped by signal {signals.received[0]})" if signals.received else ""
    print(f"{plural(written, 'decision')} written to {args.out}{stopped}", file=sys.stderr)
    return 0
