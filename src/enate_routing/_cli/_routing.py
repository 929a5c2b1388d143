"""``route``, ``explain`` and ``diff``: run stored mail through a configuration (docs/semantics.md §5)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from enate_routing._cli._records import FORMAT_VERSION, explain_record, result_records
from enate_routing._cli._text import plural
from enate_routing._decision import Decision, RoutingResult, visible
from enate_routing._directory import KnownMessage
from enate_routing._envelope import Envelope
from enate_routing._loading import load_config
from enate_routing._model import Config
from enate_routing._parse_limits import ParseLimits
from enate_routing._router import Router
from enate_routing.errors import ConfigError, MessageFileError

__all__ = ["load_work_items", "register"]


def register(subparsers: Any) -> None:
    route = subparsers.add_parser("route", help="route .eml files and print one JSON object per decision")
    _common(route)
    route.add_argument("messages", nargs="+", metavar="MESSAGE", help=".eml file, folder of them, or - for stdin")
    route.set_defaults(handler=run_route)

    explain = subparsers.add_parser("explain", help="explain, route by route and rule by rule, how a message routes")
    _common(explain)
    explain.add_argument("message", metavar="MESSAGE", help=".eml file, or - for stdin")
    _format(explain)
    explain.set_defaults(handler=run_explain)

    diff = subparsers.add_parser("diff", help="replay messages through two configurations and list the differences")
    diff.add_argument("--config", required=True, type=Path, metavar="OLD")
    diff.add_argument("--against", required=True, type=Path, metavar="NEW")
    diff.add_argument("--connector", metavar="NAME", help="the incoming connector (needed when there are several)")
    diff.add_argument("--work-items", type=Path, metavar="JSON", help="known message ids and work items")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when some message routes differently")
    _format(diff)
    diff.add_argument("messages", nargs="+", metavar="MESSAGE", help=".eml file, folder of them, or - for stdin")
    diff.set_defaults(handler=run_diff)



def _format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text for people (default) or one JSON object (docs/json-output.md)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, metavar="FILE")
    parser.add_argument("--connector", metavar="NAME", help="the incoming connector (needed when there are several)")
    parser.add_argument("--work-items", type=Path, metavar="JSON",
                        help="known message ids and work items, to link follow-ups (docs/routing.md)")


# --- inputs ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Message:
    """A message as read: all of it, or (``complete`` false) its first ``limit + 1`` bytes when it is longer."""

    name: str
    data: bytes
    complete: bool = True
    size: int | None = None  # the real size of a message cut short, when the file system knows it

    def envelope(self, limits: ParseLimits) -> Envelope:
        """The parsed message; one cut short is over every limit read for, reported as Envelope.from_bytes
        reports a message past ``max_message_bytes``, with its real size (``N+`` when it is not known)."""
        envelope = Envelope.from_bytes(self.data, limits=limits)
        if self.complete:
            return envelope
        size = str(self.size) if self.size is not None else f"{len(self.data)}+"
        reason = f"message size {size} exceeds the limit of {limits.max_message_bytes}"
        return dataclasses.replace(envelope, size=self.size or len(self.data), quarantine_reason=reason)


def _messages(names: Sequence[str], limit: int) -> Iterator[_Message]:
    """Every message named: files, the ``*.eml`` files of folders (sorted), ``-`` for stdin; each read up to
    ``limit + 1`` bytes (``limit``: the largest ``max_message_bytes`` the messages will be parsed with)."""
    for name in names:
        if name == "-":
            yield _read(name, sys.stdin.buffer, limit)
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.eml") if p.is_file())
            if not files:
                raise MessageFileError(f"{path}: no .eml files in this folder")
            for file in files:
                yield _read_file(str(file), file, limit)
        else:
            yield _read_file(name, path, limit)


def _read_file(name: str, path: Path, limit: int) -> _Message:
    try:
        with path.open("rb") as stream:
            return _read(name, stream, limit)
    except OSError as exc:
        raise MessageFileError(f"{path}: cannot read the message ({exc.strerror or type(exc).__name__})") from None


def _read(name: str, stream: BinaryIO, limit: int) -> _Message:
    """At most ``limit + 1`` bytes: enough to know a message is too large without holding all of it
    (``/dev/zero`` never ends, a sparse file may claim terabytes)."""
    data = stream.read(limit + 1)
    if len(data) <= limit:
        return _Message(name, data)
    return _Message(name, data, complete=False, size=_file_size(stream, limit))


def _file_size(stream: BinaryIO, limit: int) -> int | None:
    """The size of the regular file behind ``stream`` (past ``limit``), or None for a pipe or a device."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):  # no file descriptor (a test's BytesIO stdin)
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and info.st_size > limit else None


class _JsonWorkItems:
    """A work-item lookup read from JSON: ``{"messages": {id: {work_item, address, generated}}, "work_items": []}``."""

    def __init__(self, data: dict[str, Any], source: str) -> None:
        try:
            self.messages = {
                message_id: KnownMessage(str(entry["work_item"]), str(entry["address"]).casefold(),
                                         bool(entry.get("generated", False)))
                for message_id, entry in dict(data.get("messages", {})).items()
            }
            self.items = {str(item).casefold() for item in data.get("work_items", [])}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError.single(f"not a work-items file ({type(exc).__name__}: {exc})", file=source) from None
        self.items.update(known.work_item.casefold() for known in self.messages.values())

    def find_message(self, message_id: str) -> KnownMessage | None:
        return self.messages.get(message_id)

    def work_item_exists(self, reference: str) -> bool:
        return reference.casefold() in self.items


def load_work_items(path: Path | None) -> _JsonWorkItems | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    # (ValueError: bad UTF-8 or JSON, and an integer of more digits than Python converts; RecursionError: deep nesting)
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError.single(f"cannot read the work items ({type(exc).__name__})", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError.single("the work items must be a JSON object", file=str(path))
    return _JsonWorkItems(data, str(path))


def _router(config: Config, work_items: Path | None) -> Router:
    return Router.compile(config, lookup=load_work_items(work_items))


# --- commands -------------------------------------------------------------------------------------------


def run_route(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    router, limits = _router(config, args.work_items), config.limits.parse_limits()
    for message in _messages(args.messages, limits.max_message_bytes):
        result = router.route(message.envelope(limits), args.connector)
        for row in result_records(result, message.name):
            print(json.dumps(row, ensure_ascii=False), flush=False)
    sys.stdout.flush()
    return 0


def run_explain(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    router, limits = _router(config, args.work_items), config.limits.parse_limits()
    found = list(_messages([args.message], limits.max_message_bytes))
    if len(found) != 1:  # a folder: explain is about one message
        raise MessageFileError(f"{args.message}: {len(found)} messages; explain takes one (route takes many)")
    name, envelope = found[0].name, found[0].envelope(limits)
    trace = router.explain(envelope, args.connector)
    if args.format == "json":
        print(json.dumps(explain_record(name, envelope, trace), ensure_ascii=False))
        return 0
    print(visible(f"{name}: from {envelope.sender or '(none)'}, subject {envelope.subject!r}"))
    if envelope.defects:
        print(f"parser notes: {'; '.join(envelope.defects)}")
    print(trace.format())
    return 0


def _comparable(result: RoutingResult) -> list[dict[str, Any]]:
    return result_records(result, "")


def _label(decision: Decision) -> str:
    if decision.action == "create":
        return f"{'fallback ' if decision.fallback else ''}{decision.route}"
    if decision.action == "link":
        return f"link {decision.link}"
    return decision.action


def _summary(result: RoutingResult) -> str:
    return "; ".join(f"{_label(d)} ({d.address})" for d in result.decisions)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _field_changes(result: RoutingResult, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    """What the same routes decide differently (a target, a category, who is acknowledged), per decision that
    changed: ``Fabrikam invoices (billing@…): target.kind case → ticket``."""
    described: list[str] = []
    for decision, old, new in zip(result.decisions, before, after, strict=False):
        changes: list[str] = []
        for name, value in old.items():
            other = new.get(name)
            if isinstance(value, dict) and isinstance(other, dict):
                changes += [f"{name}.{key} {_shown(value.get(key))} → {_shown(other.get(key))}"
                            for key in {**value, **other} if value.get(key) != other.get(key)]
            elif value != other:
                changes.append(f"{name} {_shown(value)} → {_shown(other)}")
        if changes:
            described.append(f"{_label(decision)} ({decision.address}): {', '.join(changes)}")
    return "; ".join(described)


def run_diff(args: argparse.Namespace) -> int:
    old_config, new_config = load_config(args.config), load_config(args.against)
    old, new = _router(old_config, args.work_items), _router(new_config, args.work_items)
    old_limits, new_limits = old_config.limits.parse_limits(), new_config.limits.parse_limits()
    old_counts: Counter[str] = Counter()
    new_counts: Counter[str] = Counter()
    total = differing = 0
    as_json = args.format == "json"
    changes: list[dict[str, Any]] = []
    progress = sys.stderr.isatty()
    for message in _messages(args.messages, max(old_limits.max_message_bytes, new_limits.max_message_bytes)):
        name, envelope = message.name, message.envelope(old_limits)
        before = old.route(envelope, args.connector)
        if new_limits != old_limits:  # a limits change is a configuration change diff must show
            envelope = message.envelope(new_limits)
        after = new.route(envelope, args.connector)
        total += 1
        old_counts.update(_label(d) for d in before.decisions)
        new_counts.update(_label(d) for d in after.decisions)
        old_records, new_records = _comparable(before), _comparable(after)
        if old_records != new_records:
            differing += 1
            if as_json:
                changes.append({"message": name, "before": result_records(before, name),
                                "after": result_records(after, name)})
            else:
                if progress:
                    print("\r\033[K", end="", file=sys.stderr)
                old_summary, new_summary = _summary(before), _summary(after)
                if old_summary != new_summary:
                    print(visible(f"{name}: {old_summary} → {new_summary}"))
                else:  # the same routes decided: name what they decide differently
                    print(visible(f"{name}: {_field_changes(before, old_records, new_records)}"))
        if progress and total % 100 == 0:
            print(f"\r{total} messages…", end="", file=sys.stderr, flush=True)
    if progress:
        print("\r\033[K", end="", file=sys.stderr)
    changed = sorted(label for label in old_counts | new_counts if old_counts[label] != new_counts[label])
    if as_json:
        print(json.dumps({
            "format": FORMAT_VERSION, "old": str(args.config), "new": str(args.against), "messages": total,
            "differing": differing, "changes": changes,
            "per_route": [{"label": label, "old": old_counts[label], "new": new_counts[label],
                           "delta": new_counts[label] - old_counts[label]} for label in changed],
        }, ensure_ascii=False))
        return 1 if args.exit_code and differing else 0
    print(f"{differing} of {plural(total, 'message')} route{'s' if total == 1 else ''} differently")
    if changed:
        print("per route (old → new):")
        width = max(len(label) for label in changed)
        for label in changed:
            delta = new_counts[label] - old_counts[label]
            print(f"  {label:<{width}}  {old_counts[label]:>5} → {new_counts[label]:<5} ({delta:+d})")
    return 1 if args.exit_code and differing else 0
