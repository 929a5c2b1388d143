"""``login``: the device-code sign-in of a delegated Microsoft connector (docs/microsoft365.md).

Prints where to sign in and the code to enter, waits for the user, and stores the refresh token in the
connector's ``oauth.token_file`` (mode 0600). The token itself is never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from enate_routing._cli._connections import add_timeout_argument
from enate_routing._loading import load_config
from enate_routing.errors import ConfigError
from enate_routing.transports._token_sources import sign_in

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "login", help="sign in a Microsoft connector (device code) and store its refresh token (oauth.token_file)"
    )
    parser.add_argument("--config", required=True, type=Path, metavar="FILE")
    parser.add_argument("name", metavar="NAME", help="the connector's name")
    add_timeout_argument(parser)
    parser.set_defaults(handler=run_login)


def run_login(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        connector = config.connector(args.name)
    except KeyError:
        names = ", ".join(repr(c.name) for c in config.connectors) or "none"
        raise ConfigError.single(f"no connector has this name (connectors: {names})", file=str(args.config),
                                 item=args.name) from None

    def show(instructions: str) -> None:
        print(instructions, file=sys.stderr, flush=True)

    stored = sign_in(connector, args.config.parent, show, timeout=args.timeout)
    print(f"{connector.name}: signed in; refresh token stored in {stored} (mode 0600)")
    return 0
