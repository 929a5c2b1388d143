"""The documentation stands alone: every cited section of docs/semantics.md exists, nothing cites outside docs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEMANTICS = ROOT / "docs" / "semantics.md"
CITED_IN = ("src", "docs", "tests", "benchmarks", "README.md")
CITATION = re.compile(r"semantics(?:\.md)? (§\d+(?:\.\d+)*)")
# Words that would point a reader at a document that is not in this repository.
# (Spelled in parts so that this guard does not match itself in a grep of the repository.)
OUTSIDE = re.compile(r"\b" + "SP" + r"EC\b|STYLE\.md")


def project_texts() -> list[Path]:
    files: list[Path] = []
    for name in CITED_IN:
        path = ROOT / name
        files += [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix in (".py", ".md", ".toml")]
    return [p for p in files if "corpus" not in p.parts]


def test_every_cited_section_exists() -> None:
    headings = set(re.findall(r"^#+ (§\d+(?:\.\d+)*) ", SEMANTICS.read_text(encoding="utf-8"), re.MULTILINE))
    missing = {
        f"{path.relative_to(ROOT)}: {section}"
        for path in project_texts()
        for section in CITATION.findall(path.read_text(encoding="utf-8"))
        if section.rstrip(".") not in headings
    }
    assert missing == set()


def test_nothing_cites_a_document_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in project_texts()
        if path.name != "test_docs.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_the_architecture_page_names_every_module() -> None:
    """docs/architecture.md has one line for every module of the package, and no line for a module that is gone."""
    package = ROOT / "src" / "enate_routing"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")}
    listed = set(re.findall(r"^\| `([^`]+\.py)` \| \S", (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"),
                            re.MULTILINE))
    assert (modules - listed, listed - modules) == (set(), set())
