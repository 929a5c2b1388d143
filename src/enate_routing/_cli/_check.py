"""``check`` and ``schema``: validate a configuration file; print the file format's JSON Schema.

``check`` reports, each with its location: validation errors (the file cannot be loaded), dead settings
that can never work (errors) or may be deliberate (warnings, :mod:`enate_routing._dead_settings`), OAuth
refresh-token files the transports would refuse, client certificates and CA files loading would refuse (a
certificate whose file or password is not on this machine: a warning), shadowed
routes and mail loops (warnings, :mod:`enate_routing._analysis`). Errors exit 1; warnings exit 0 unless
``--strict``. ``--format json`` prints one JSON object (docs/configuration.md, "check --format json").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from enate_routing._analysis import find_loops, find_shadowed
from enate_routing._cli._text import plural
from enate_routing._dead_settings import (
    Finding,
    find_certificate_problems,
    find_dead_settings,
    find_token_file_problems,
)
from enate_routing._loading import config_schema, load_config
from enate_routing._model import Config
from enate_routing.errors import ConfigError, ConfigIssue

__all__ = ["register"]

CHECK_FORMAT_VERSION = 1


def register(subparsers: Any) -> None:
    check = subparsers.add_parser("check", help="validate a configuration file (exit 1 on errors)")
    check.add_argument("file", nargs="?", type=Path, metavar="FILE", help="the configuration file")
    check.add_argument("--config", type=Path, metavar="FILE", help="the same as FILE")
    check.add_argument("--strict", action="store_true",
                       help="exit 1 on warnings (shadowed routes, mail loops, settings that may be mistakes) too")
    check.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    check.set_defaults(handler=run_check)
    schema = subparsers.add_parser("schema", help="print the JSON Schema of the configuration file")
    schema.set_defaults(handler=run_schema)


def config_path(args: argparse.Namespace) -> Path:
    """``FILE`` or ``--config FILE`` (one of them, or both the same)."""
    positional, option = args.file, args.config
    if positional is not None and option is not None and positional != option:
        raise ConfigError.single(f"two files named: {positional} and --config {option}; name one")
    path: Path | None = positional or option
    if path is None:
        raise ConfigError.single("name the configuration file: check FILE")
    return path


def _findings(config: Config, base_dir: Path) -> list[Finding]:
    found = list(find_dead_settings(config))
    found += find_token_file_problems(config, base_dir=base_dir)
    found += find_certificate_problems(config, base_dir=base_dir)
    found += [Finding("warning", "shadowed", ConfigIssue(str(s), where=f"route {s.route!r} of connector "
                                                                         f"{s.connector!r}"))
              for s in find_shadowed(config)]
    found += [Finding("warning", "mail-loop", ConfigIssue(str(loop), where=f"connector {loop.connector!r}"))
              for loop in find_loops(config)]
    found += [Finding("warning", "legacy-auth", ConfigIssue(advice, where=f"connector {connector.name!r}"))
              for connector in config.connectors for advice in connector.auth_warnings()]
    return found


def _line(finding: Finding, file: Path) -> str:
    """One located line; shadowing and loops carry their location in their own sentence."""
    issue = finding.issue
    if finding.code in ("shadowed", "mail-loop", "legacy-auth"):
        return f"{file}: {issue.problem}"
    return str(ConfigIssue(issue.problem, file=str(file), where=issue.where, field=issue.field, item=issue.item))


def _json_issue(code: str, issue: ConfigIssue, file: Path) -> dict[str, Any]:
    return {"code": code, "file": issue.file or str(file), "where": issue.where, "field": issue.field,
            "item": issue.item, "problem": issue.problem}


def run_check(args: argparse.Namespace) -> int:
    """Errors exit 1; warnings (docs/semantics.md §5) are printed and exit 0 — the file is valid and routes mail as
    written — unless ``--strict`` asks CI to fail on them (docs/routing.md)."""
    path = config_path(args)
    strict = bool(getattr(args, "strict", False))
    as_json = getattr(args, "format", "text") == "json"
    try:
        config = load_config(path, verify_certificates=False)  # reported as findings below
    except ConfigError as exc:
        if not as_json:
            raise
        print(json.dumps(_report(path, None, [], list(exc.issues), strict), ensure_ascii=False))
        return 1
    findings = _findings(config, path.parent)
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"]
    failed = bool(errors) or (strict and bool(warnings))
    if as_json:
        print(json.dumps(_report(path, config, findings, [], strict), ensure_ascii=False))
        return 1 if failed else 0
    for finding in (*errors, *warnings):
        print(f"{finding.severity}: {_line(finding, path)}")
    counts = (f"{plural(len(config.connectors), 'connector')}, "
              f"{plural(len(config.routes) + len(config.fallbacks), 'incoming route')}, "
              f"{plural(len(config.outgoing_routes), 'outgoing route')}")
    noted = ", ".join(plural(len(group), kind) for group, kind in ((errors, "error"), (warnings, "warning")) if group)
    verdict = "FAILED" if failed else "OK"
    why = " (--strict)" if failed and not errors else ""
    print(f"{path}: {verdict} — {counts}{', ' + noted if noted else ''}{why}")
    return 1 if failed else 0


def _report(path: Path, config: Config | None, findings: list[Finding], invalid: list[ConfigIssue],
            strict: bool) -> dict[str, Any]:
    errors = [_json_issue("invalid", issue, path) for issue in invalid]
    errors += [_json_issue(f.code, f.issue, path) for f in findings if f.severity == "error"]
    warnings = [_json_issue(f.code, f.issue, path) for f in findings if f.severity == "warning"]
    counts = None if config is None else {
        "connectors": len(config.connectors),
        "incoming_routes": len(config.routes) + len(config.fallbacks),
        "outgoing_routes": len(config.outgoing_routes),
    }
    return {"format": CHECK_FORMAT_VERSION, "file": str(path), "valid": config is not None,
            "ok": not errors and not (strict and warnings), "strict": strict, "counts": counts,
            "errors": errors, "warnings": warnings}


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0
