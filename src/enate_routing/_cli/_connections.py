"""``test-connection``: a real login against a connector's servers (docs/semantics.md §2, §5, §8).

Also the connector-naming options every connection command shares (``NAME`` or ``--connector NAME``,
``--mailbox``), so ``route``, ``poll`` and ``test-connection`` name a connector the same way, and the one
``--timeout`` (positive, finite seconds) of every command that talks to a server.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from enate_routing._loading import load_config
from enate_routing._model import Config, Connector
from enate_routing.errors import ConfigError
from enate_routing.transports._factory import ConnectorAccess, check_connection

__all__ = [
    "add_connector_arguments", "add_mailbox_argument", "add_timeout_argument", "connector_name", "register", "seconds",
]


def add_connector_arguments(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``NAME`` as a positional argument or as ``--connector NAME`` (the spelling ``route`` uses)."""
    parser.add_argument("name", nargs="?", metavar="NAME", help=help_text)
    parser.add_argument("--connector", dest="connector_option", metavar="NAME", help="the same as NAME")


def add_mailbox_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mailbox", choices=("primary", "additional"), default="primary",
                        help="read the connector's primary mailbox (default) or its additional_mailbox")


def seconds(text: str) -> float:
    """argparse type: a finite number of seconds greater than zero (rejects 0, -1, nan, inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds greater than 0, not {text!r}")
    return value


def add_timeout_argument(parser: argparse.ArgumentParser) -> None:
    """``--timeout SECONDS``, the same for every command that talks to a server."""
    parser.add_argument("--timeout", type=seconds, default=30.0, metavar="SECONDS",
                        help="bound on every network operation (default 30)")


def connector_name(args: argparse.Namespace) -> str:
    """The connector named by ``NAME`` or ``--connector``; a ConfigError when none or two different ones."""
    positional, option = args.name, args.connector_option
    if positional and option and positional != option:
        raise ConfigError.single(f"two connectors named: {positional!r} and --connector {option!r}; name one")
    name: str | None = positional or option
    if not name:
        raise ConfigError.single("name the connector: NAME or --connector NAME")
    return name


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "test-connection",
        help="log in to a connector's servers (and its additional mailbox) and report the result (exit 1 on failure)",
    )
    parser.add_argument("--config", required=True, type=Path, metavar="FILE")
    add_connector_arguments(parser, "the connector's name")
    add_timeout_argument(parser)
    parser.set_defaults(handler=run_test_connection)


def find_connector(config: Config, name: str, file: Path) -> Connector:
    try:
        return config.connector(name)
    except KeyError:
        names = ", ".join(repr(c.name) for c in config.connectors) or "none"
        raise ConfigError.single(f"no connector has this name (connectors: {names})", file=str(file),
                                 item=name) from None


def run_test_connection(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    connector = find_connector(config, connector_name(args), args.config)
    access = ConnectorAccess(base_dir=args.config.parent, timeout=args.timeout)
    results = check_connection(connector, access)
    for result in results:
        status = "ok" if result.ok else f"FAILED ({result.error})"
        print(f"{connector.name}: {result.server}: {status} — {result.detail} "
              f"[{result.elapsed:.2f} s]")
    return 0 if results and all(result.ok for result in results) else 1
