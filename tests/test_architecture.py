"""The package's shape: the public API is pinned and imports point one way."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import enate_routing

PACKAGE = Path(enate_routing.__file__).parent
ROOT = PACKAGE.parents[1]

# Lower layers never import higher ones. Modules not listed are checked only by the "never" rules below.
LAYERS: dict[str, int] = {
    "errors": 0, "_version": 0,
    "_patterns": 1, "_link_pattern": 1, "_presets": 1, "_oauth_settings": 1, "_certificates": 1, "_delivery": 1,
    "_envelope": 1, "_mime": 1, "_mime_params": 1, "_charset_guess": 1, "_address_lists": 1, "_priority": 0,
    "_regex_compat": 0, "_frozen": 0, "_parse_limits": 0, "_header_block": 1, "_model_types": 1, "_secret_inputs": 1,
    "_paths": 1, "_token_files": 1, "_lookup_bound": 0, "_closing": 0, "_tcp": 0,
    "_ack_template": 2, "_connector": 2, "_model": 2, "_loading": 2,
    "_toml_edit": 2,
    "_directory": 3, "_decision": 3, "_bounces": 3, "_dead_settings": 3, "_matcher": 3, "_router": 3, "_analysis": 3,
    "_followups": 3, "_email_keys": 3,
    "admin": 3, "transports": 3,
    "ingest": 4, "postgres": 4,
    "_cli": 5, "testing": 5, "__init__": 5, "__main__": 5,
}
# Siblings that must stay apart even within a layer (docs/semantics.md §8).
NEVER: dict[str, set[str]] = {
    "_router": {"transports", "ingest", "admin"},
    "_matcher": {"transports", "ingest", "admin"},
    "_email_keys": {"transports", "ingest", "admin", "_router", "_matcher"},
    "_followups": {"transports", "ingest", "admin"},
    "_decision": {"transports", "ingest"},
    "_bounces": {"transports", "ingest", "admin", "_router", "_matcher"},
    "_dead_settings": {"transports", "ingest", "admin", "_router", "_matcher"},
    "_directory": {"transports", "ingest"},
    "transports": {"_router", "_matcher", "_email_keys", "_decision", "_directory", "_analysis", "admin"},
    "admin": {"transports", "_router", "_matcher", "_email_keys", "ingest"},
    # Ingestion drives the router through the RouterLike protocol; it edits no configuration.
    "ingest": {"_router", "_matcher", "_email_keys", "admin", "_analysis"},
    # The PostgreSQL stores keep rows; they neither route nor talk to mail servers.
    "postgres": {"_router", "_matcher", "_email_keys", "transports", "_analysis"},
}


def imports_of(path: Path) -> set[str]:
    """The first component below enate_routing of every package module that ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "enate_routing" and len(parts) > 1:
                found.add(parts[1])
    return found


def layer_name(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_imports_point_one_way() -> None:
    """No module imports a higher layer, and the never-import pairs hold (e.g. router never imports transports)."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = layer_name(path)
        if me not in LAYERS:
            problems.append(f"{path.relative_to(PACKAGE)} is not assigned a layer in this test")
            continue
        for other in imports_of(path) - {me}:
            if other not in LAYERS:
                continue
            if LAYERS[other] > LAYERS[me] or other in NEVER.get(me, set()):
                problems.append(f"{path.relative_to(PACKAGE)} imports enate_routing.{other}")
    assert problems == []


def test_errors_module_imports_nothing_from_the_package() -> None:
    """errors.py is the bottom of the tree: it imports nothing from enate_routing."""
    assert imports_of(PACKAGE / "errors.py") == set()


def test_public_api_is_sorted_and_importable() -> None:
    """__all__ lists every public name once, every name in it exists (ruff's RUF022 keeps it sorted)."""
    names = enate_routing.__all__
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(enate_routing, name), name
    public = {n for n in vars(enate_routing) if not n.startswith("_")} - {
        "annotations", *(m for m in LAYERS), "cli", "testing", "transports"}
    assert public <= set(names) | {"__version__"}


# The public API, pinned (httpx tests/test_exported_members.py): adding or removing a name is a decision
# that belongs in CHANGELOG.md, so it must also change this list.
PUBLIC_API = {
    "AcknowledgementAllowed", "AddressPattern", "BlockedEntry", "ClientCertificate", "CompanyDirectory", "Config",
    "ConfiguredCompanies", "Connector", "Decision", "Delivery", "Envelope", "Fallback", "IncomingRoute",
    "IncomingServer", "KnownMessage", "LimitsSettings", "Linking", "OutgoingRoute", "OutgoingServer", "ParseLimits",
    "Recipient", "RecipientSource", "Router", "RoutingResult", "RoutingRules", "Target", "Trace", "WorkItemLookup",
    "__version__", "config_schema", "dump_config", "find_loops", "find_shadowed", "load_config", "load_pkcs12",
    "parse_config", "save_config",
}
# The other public modules; everything else under enate_routing is private (a leading underscore).
PUBLIC_MODULES = ("errors", "ingest", "admin", "transports", "testing", "postgres")


def test_public_api_is_pinned() -> None:
    """enate_routing exports exactly the pinned names."""
    assert set(enate_routing.__all__) == PUBLIC_API


def test_one_import_path_per_public_name() -> None:
    """Each public name is exported by exactly one public module, and every other module is private."""
    homes: dict[str, list[str]] = {}
    for module in ("enate_routing", *(f"enate_routing.{m}" for m in PUBLIC_MODULES)):
        for name in importlib.import_module(module).__all__:
            homes.setdefault(name, []).append(module)
    assert {name: found for name, found in homes.items() if len(found) > 1} == {}
    public_files = {f"{m}.py" for m in PUBLIC_MODULES} | set(PUBLIC_MODULES)
    public_files |= {"__init__.py", "__main__.py", "py.typed", "strategies.py"}
    exposed = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*")
               if "__pycache__" not in path.parts and "data" not in path.relative_to(PACKAGE).parts[:1]
               and path.name not in public_files and not path.name.startswith("_")]
    assert exposed == []


def test_changelog_has_an_entry_for_this_version() -> None:
    """CHANGELOG.md keeps an [Unreleased] section and names the package version (Keep a Changelog)."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    assert re.search(rf"^## \[{re.escape(enate_routing.__version__)}\]", text, re.MULTILINE)


def test_test_modules_have_unique_basenames() -> None:
    """pytest (prepend import mode) imports test folders without __init__.py by basename: keep them unique."""
    tests = Path(__file__).parent
    names = [p.name for p in tests.rglob("*.py")
             if p.name not in ("__init__.py", "conftest.py") and not (p.parent / "__init__.py").exists()]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_no_module_over_600_lines_and_no_class_over_300() -> None:
    """Small modules with one job each: no module in src/ over 600 lines, no class over 300."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 600:
            problems.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and (node.end_lineno or 0) - node.lineno + 1 > 300:
                problems.append(f"{path.relative_to(PACKAGE)}: class {node.name} is "
                                f"{(node.end_lineno or 0) - node.lineno + 1} lines")
    assert problems == []


def test_admin_package_has_one_import_path_per_name() -> None:
    """enate_routing.admin: implementation modules are private; its __all__ is sorted and importable."""
    import enate_routing.admin as admin

    modules = [p.name for p in (PACKAGE / "admin").glob("*.py") if p.name != "__init__.py"]
    assert modules and all(name.startswith("_") for name in modules)
    assert list(admin.__all__) == sorted(admin.__all__, key=lambda n: (not n.isupper(), n))
    for name in admin.__all__:
        assert hasattr(admin, name), name
    assert not (PACKAGE / "admin.py").exists() and not (PACKAGE / "audit.py").exists()
