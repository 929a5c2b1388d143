"""The ingest package's shape: private implementation modules, one public import path per name."""

from __future__ import annotations

import ast
from pathlib import Path

import enate_routing
import enate_routing.ingest as ingest

PACKAGE = Path(ingest.__file__).parent


def test_implementation_modules_are_private() -> None:
    """Every module of enate_routing.ingest but __init__ is private (its names come from the package)."""
    assert sorted(p.name for p in PACKAGE.glob("*.py") if not p.name.startswith("_")) == []


def test_public_names_are_exported_once_and_exist() -> None:
    """__all__ lists each name once (ruff's RUF022 keeps it sorted), every name resolves, and nothing else
    public lives on the package."""
    names = ingest.__all__
    assert len(set(names)) == len(names)
    assert all(hasattr(ingest, name) for name in names)
    public = {n for n in vars(ingest) if not n.startswith("_")} - {"annotations"}
    assert public <= set(names)


def test_only_the_cli_reaches_into_private_ingest_modules() -> None:
    """Outside enate_routing.ingest, only the command line (for one helper) and the PostgreSQL ledger (a second
    implementation of the ledger roles, sharing the SQLite ledger's row codecs) import its private modules."""
    root = Path(enate_routing.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if PACKAGE in path.parents or {"_cli", "postgres"} & set(path.relative_to(root).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("enate_routing.ingest._"):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []


def test_ingest_names_have_one_home() -> None:
    """The ingestion names live in enate_routing.ingest only; the top level keeps configuration and routing."""
    for name in ("Ingestor", "SQLiteLedger", "Ledger", "WorkItem", "HOOK_POINTS", "build_acknowledgement"):
        assert hasattr(ingest, name) and not hasattr(enate_routing, name), name
