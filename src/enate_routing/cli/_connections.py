"""``test-connection``: a real login against a connector's servers (docs/semantics.md §2, §5, §8)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from enate_routing.errors import ConfigError
from enate_routing.loading import load_config
from enate_routing.transports.factory import ConnectorAccess, check_connection

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "test-connection", help="log in to a connector's servers and report the result (exit 1 on failure)"
    )
    parser.add_argument("--config", required=True, type=Path, metavar="FILE")
    parser.add_argument("name", metavar="NAME", help="the connector's name")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per network operation (default 30)")
    parser.set_defaults(handler=run_test_connection)


def run_test_connection(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        connector = config.connector(args.name)
    except KeyError:
        names = ", ".join(repr(c.name) for c in config.connectors) or "none"
        raise ConfigError.single(f"no connector has this name (connectors: {names})", file=str(args.config),
                                 item=args.name) from None
    access = ConnectorAccess(base_dir=args.config.parent, timeout=args.timeout)
    results = check_connection(connector, access)
    for result in results:
        status = "ok" if result.ok else f"FAILED ({result.error})"
        print(f"{connector.name}: {result.server}: {status} — {result.detail} "
              f"[{result.elapsed:.2f} s]")
    return 0 if all(result.ok for result in results) else 1
