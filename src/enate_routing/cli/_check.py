"""``check`` and ``schema``: validate a configuration file; print the file format's JSON Schema."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from enate_routing.analysis import find_loops, find_shadowed
from enate_routing.loading import config_schema, load_config

__all__ = ["register"]


def register(subparsers: Any) -> None:
    check = subparsers.add_parser("check", help="validate a configuration file (exit 1 on errors)")
    check.add_argument("--config", required=True, type=Path, metavar="FILE")
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings (shadowed routes, mail loops) too")
    check.set_defaults(handler=run_check)
    schema = subparsers.add_parser("schema", help="print the JSON Schema of the configuration file")
    schema.set_defaults(handler=run_schema)


def run_check(args: argparse.Namespace) -> int:
    """Errors exit 1; warnings (docs/semantics.md §5: shadowed routes, mail loops) are printed and exit 0 — the file is
    valid and routes mail as written — unless ``--strict`` asks CI to fail on them (docs/routing.md)."""
    config = load_config(args.config)
    routes = len(config.routes) + len(config.fallbacks)
    warnings = [str(found) for found in (*find_shadowed(config), *find_loops(config))]
    warnings += [advice for connector in config.connectors for advice in connector.auth_warnings()]
    for warning in warnings:
        print(f"warning: {args.config}: {warning}")
    noted = f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""
    print(f"{args.config}: OK — {len(config.connectors)} connectors, {routes} incoming routes, "
          f"{len(config.outgoing_routes)} outgoing routes{noted}")
    return 1 if warnings and getattr(args, "strict", False) else 0


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0
