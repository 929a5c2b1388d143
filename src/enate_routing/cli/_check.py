"""``check`` and ``schema``: validate a configuration file; print the file format's JSON Schema."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from enate_routing.loading import config_schema, load_config

__all__ = ["register"]


def register(subparsers: Any) -> None:
    check = subparsers.add_parser("check", help="validate a configuration file (exit 1 on errors)")
    check.add_argument("--config", required=True, type=Path, metavar="FILE")
    check.set_defaults(handler=run_check)
    schema = subparsers.add_parser("schema", help="print the JSON Schema of the configuration file")
    schema.set_defaults(handler=run_schema)


def run_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    routes = len(config.routes) + len(config.fallbacks)
    print(f"{args.config}: OK — {len(config.connectors)} connectors, {routes} incoming routes, "
          f"{len(config.outgoing_routes)} outgoing routes")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0
