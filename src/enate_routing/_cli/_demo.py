"""``demo``: route the bundled sample mailbox through the bundled configuration, as a table that fits the
terminal (wide characters count two columns)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from typing import Any

from enate_routing._cli._routing import load_work_items
from enate_routing._cli._text import fit, plural
from enate_routing._decision import Decision
from enate_routing._envelope import Envelope
from enate_routing._loading import load_config
from enate_routing._router import Router

__all__ = ["Column", "layout", "register", "table_row"]

Column = tuple[str, int]
# (title, preferred width, narrowest useful width), left to right.
_COLUMNS: tuple[tuple[str, int, int], ...] = (
    ("message", 24, 10), ("from", 26, 12), ("subject", 28, 12), ("action", 6, 6), ("route / link", 18, 10),
    ("target / reason", 30, 12), ("ack", 24, 8),
)
_DROPPED_FIRST = ("from", "ack", "target / reason")  # the columns a narrow terminal loses, in this order
_GAP = "  "


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="route the bundled sample mailbox through the bundled configuration")
    demo.add_argument("--width", type=int, metavar="COLUMNS",
                      help="table width (default: $COLUMNS, else the terminal's; not limited in a pipe)")
    demo.set_defaults(handler=run_demo)


def _terminal_width() -> int | None:
    """$COLUMNS, else the terminal's width; None when the output is not a terminal (nothing to fit)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def layout(total: int | None) -> list[Column]:
    """Column titles and widths whose row, gaps included, is at most ``total`` columns wide (None: no limit).

    Columns shrink towards their narrowest useful width in proportion to how much they can give; when even
    that is too wide, whole columns are left out (``from``, then ``ack``, then ``target / reason``).
    """
    columns = list(_COLUMNS)
    dropping = list(_DROPPED_FIRST)

    def narrowest() -> int:
        return sum(low for _, _, low in columns) + len(_GAP) * (len(columns) - 1)

    while total is not None and narrowest() > total and dropping:
        gone = dropping.pop(0)
        columns = [c for c in columns if c[0] != gone]
    if total is None:
        return [(title, high) for title, high, _ in columns]
    preferred = sum(high for _, high, _ in columns) + len(_GAP) * (len(columns) - 1)
    if preferred <= total:
        return [(title, high) for title, high, _ in columns]
    spare = max(0, total - narrowest())
    give = sum(high - low for _, high, low in columns)
    widths = [low + (high - low) * spare // give for _, high, low in columns]
    return [(title, width) for (title, _, _), width in zip(columns, widths, strict=True)]


def table_row(cells: dict[str, str], columns: Sequence[Column]) -> str:
    """One table line: each cell cut and padded to its column's width in terminal columns."""
    return _GAP.join(fit(cells.get(title, ""), width) for title, width in columns).rstrip()


def _cells(decision: Decision) -> dict[str, str]:
    """The route or link, target or reason, and acknowledgement cells of one decision."""
    if decision.action == "create" and decision.delivery is not None:
        route = f"{decision.route} (fallback)" if decision.fallback else str(decision.route)
        created = decision.delivery.target
        target = f"{created.customer} / {created.process} ({created.kind})"
        if decision.acknowledge:
            more = len(decision.acknowledge) - 1
            ack = decision.acknowledge[0] + (f" +{more}" if more else "")
        else:
            ack = f"none: {decision.suppressed}" if decision.suppressed else "-"
        return {"route / link": route, "target / reason": target, "ack": ack}
    if decision.action == "link":
        return {"route / link": f"→ {decision.link}", "target / reason": decision.reason or "", "ack": "-"}
    return {"route / link": "-", "target / reason": decision.reason or "", "ack": "-"}


def run_demo(args: argparse.Namespace) -> int:
    width = args.width or _terminal_width()
    columns = layout(None if width is None else max(width, 1))
    data = resources.files("enate_routing") / "data"
    with resources.as_file(data) as folder:
        config = load_config(folder / "demo.toml", verify_certificates=False)
        router = Router.compile(config, lookup=load_work_items(folder / "demo_work_items.json"))
        mail = sorted((folder / "demo_mail").glob("*.eml"))
        limits = config.limits.parse_limits()
        print(table_row({title: title for title, _ in columns}, columns))
        print(_GAP.join("-" * w for _, w in columns))
        actions: Counter[str] = Counter()
        for path in mail:
            envelope = Envelope.from_bytes(path.read_bytes(), limits=limits)
            for index, decision in enumerate(router.route(envelope).decisions):
                actions[decision.action] += 1
                first = index == 0
                cells = {"message": path.stem if first else "  ″",
                         "from": (envelope.sender or "(none)") if first else "",
                         "subject": envelope.subject if first else "", "action": decision.action,
                         **_cells(decision)}
                print(table_row(cells, columns))
    print()
    print(f"{plural(len(mail), 'message')}, "
          + ", ".join(f"{count} {action}" for action, count in sorted(actions.items())))
    # importlib.resources gives the real files for an installed package, so the paths stay usable; quoted, so
    # the line can be pasted into a shell also from a folder with a space in its name.
    command = ["enate-routing", "explain", "--config", str(folder / "demo.toml"),
               "--work-items", str(folder / "demo_work_items.json"), str(mail[0])]
    print(f"Why? {shlex.join(command)}  (docs/routing.md)")
    return 0
