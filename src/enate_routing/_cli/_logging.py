"""Log records of the ``enate_routing`` package on stderr, as text lines or JSON lines (``poll -v``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from enate_routing._decision import visible

__all__ = ["add_logging_options", "configure_logging"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the record's structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(_fields(record))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {record.levelname.lower():7} {record.name}: {record.getMessage()}"
        # One record, one line: a line break or an ESC in a value (a reason quoting mail) is written as \xNN.
        return visible(f"{line} {extra}" if extra else line).replace("\n", "\\x0a")


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more: -v for progress (info), -vv for every step (debug)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="log level on stderr (default: warning; -v sets info)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="text lines, or one JSON object per line for log collectors")


@contextlib.contextmanager
def configure_logging(args: argparse.Namespace, stream: TextIO | None = None) -> Iterator[logging.Handler]:
    """One stderr handler on the package logger, at the level the options ask for, while the command runs."""
    level = args.log_level or ("debug" if args.verbose > 1 else "info" if args.verbose else "warning")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if args.log_format == "json" else TextFormatter())
    logger = logging.getLogger("enate_routing")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
