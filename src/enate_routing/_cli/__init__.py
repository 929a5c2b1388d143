"""The ``enate-routing`` command line (docs/semantics.md §5): the only place that prints or exits.

Each command lives in its own module with a ``register(subparsers)`` function that adds its parser and
sets ``handler``: a function taking the parsed arguments and returning the exit code. Every error becomes
one line on stderr and a non-zero exit code — never a traceback (issue 13):

* 1 — an :class:`~enate_routing.errors.EnateRoutingError` (one line per configuration issue), a file that
  cannot be read or written, input nested too deeply to read;
* 2 — a bad command line (argparse's usage text is replaced by one line);
* 70 — anything unexpected (EX_SOFTWARE), named by its type;
* 130 — Ctrl-C.

Output never fails to encode: characters the terminal's encoding lacks are written as backslash escapes,
and file names that are not valid UTF-8 (lone surrogates, PEP 383) are written back as their own bytes.
"""

from __future__ import annotations

import argparse
import codecs
import io
import itertools
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from enate_routing._cli import _check, _connections, _demo, _ledger, _login, _poll, _quarantine, _routing
from enate_routing._version import __version__
from enate_routing.errors import EnateRoutingError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]

# Command modules, in the order `--help` lists them. Later capabilities add theirs here.
_COMMANDS = (_check, _routing, _connections, _login, _poll, _quarantine, _ledger, _demo)


_ERRORS = "enate-routing-escape"


def _escape(error: UnicodeError) -> tuple[str | bytes, int]:
    """Encoding error handler: file-name bytes (PEP 383 surrogates) as themselves, anything else as ``\\x..``."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    if all("\udc80" <= ch <= "\udcff" for ch in text):
        return bytes(ord(ch) - 0xDC00 for ch in text), error.end
    return codecs.backslashreplace_errors(error)


codecs.register_error(_ERRORS, _escape)


def _safe_streams() -> None:
    """Make stdout and stderr unable to fail on a character (PYTHONIOENCODING=ascii, odd file names)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=_ERRORS)


def _one_line(text: str) -> str:
    """``text`` on one line: line breaks inside a message would look like several errors."""
    return " ".join(text.split())


_NEGATIVE_NUMBER = re.compile(r"-\d+$|-\d*\.\d+$")


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``error: ...``) and exit code 2.

    argparse reports a missing required argument before an unknown option, so ``enate-routing --bogus`` would
    only say that COMMAND is missing: the unknown options this parser was given are named first.
    """

    _given: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]  # one signature for argparse's overloads
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        unknown = self._unknown_options()
        if unknown and message.startswith("the following arguments are required"):
            message = f"unrecognized arguments: {' '.join(unknown)}; {message}"
        print(f"error: {self.prog}: {_one_line(message)} (see --help)", file=sys.stderr)
        sys.exit(2)

    def _unknown_options(self) -> list[str]:
        """The options given (before ``--``) that this parser does not know; values and ``-`` are not options."""
        given = itertools.takewhile(lambda arg: arg != "--", self._given)
        return [arg.partition("=")[0] for arg in given
                if arg.startswith("-") and arg != "-" and not _NEGATIVE_NUMBER.match(arg) and not self._knows(arg)]

    def _knows(self, arg: str) -> bool:
        """An option of this parser, an abbreviation of one (``--conf``), or short flags run together (``-vv``)."""
        name = arg.partition("=")[0]
        options = self._option_string_actions
        return any(option.startswith(name) for option in options) or (not arg.startswith("--") and arg[:2] in options)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    _safe_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except EnateRoutingError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `enate-routing route ... | head` closes stdout early; that is not an error of ours.
        return 0
    except OSError as exc:
        # A file named on the command line (--out, --state, a message) cannot be opened, read or written.
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"error: {where}{_one_line(exc.strerror or str(exc) or type(exc).__name__)}", file=sys.stderr)
        return 1
    except RecursionError:
        # Which of the command's inputs is not known here (diff reads two configurations): name the command.
        print(f"error: {args.command}: an input is nested too deeply to read", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 — the last resort: one line, never a traceback
        detail = _one_line(str(exc))[:200]
        print(f"error: unexpected {type(exc).__name__}{': ' + detail if detail else ''}", file=sys.stderr)
        return 70
