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


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {_one_line(message)} (see --help)", file=sys.stderr)
        sys.exit(2)


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
        source = getattr(args, "config", None)
        print(f"error: {source or 'the input'}: nested too deeply to read", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 — the last resort: one line, never a traceback
        detail = _one_line(str(exc))[:200]
        print(f"error: unexpected {type(exc).__name__}{': ' + detail if detail else ''}", file=sys.stderr)
        return 70
