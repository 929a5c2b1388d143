"""The ``enate-routing`` command line (docs/semantics.md §5): the only place that prints or exits.

Each command lives in its own module with a ``register(subparsers)`` function that adds its parser and
sets ``handler``: a function taking the parsed arguments and returning the exit code. A user's mistake
(an :class:`~enate_routing.errors.EnateRoutingError`, or an unreadable file) becomes one line on stderr
and exit code 1 or 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from enate_routing._version import __version__
from enate_routing.cli import _check, _connections, _ledger, _poll, _quarantine, _routing
from enate_routing.errors import EnateRoutingError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]

# Command modules, in the order `--help` lists them. Later capabilities add theirs here.
_COMMANDS = (_check, _routing, _connections, _poll, _quarantine, _ledger)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enate-routing",
        description="Route incoming email to tickets and cases; check, explain and test configurations.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``python -m enate_routing`` exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except EnateRoutingError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `enate-routing route ... | head` closes stdout early; that is not an error of ours.
        return 0
