"""The documentation stands alone and stays true: every cited section of docs/semantics.md exists, nothing cites
outside docs, every Python example compiles, imports what it names from where it says and defines what it uses,
every file a page names exists, the `ledger migrate` example shows this release's schema steps."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

from enate_routing.postgres._migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
SEMANTICS = ROOT / "docs" / "semantics.md"
CITED_IN = ("src", "docs", "tests", "benchmarks", "scripts", ".ci/run", "README.md", "CHANGELOG.md")
CITATION = re.compile(r"semantics(?:\.md)? (§\d+(?:\.\d+)*)")
# Words that would point a reader at a document that is not in this repository.
# (Spelled in parts so that this guard does not match itself in a grep of the repository.)
OUTSIDE = re.compile(r"\b" + "SP" + r"EC\b|STYLE\.md")
TEXT_SUFFIXES = (".py", ".md", ".toml", ".sh")
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))


def project_texts() -> list[Path]:
    files: list[Path] = []
    for name in CITED_IN:
        path = ROOT / name
        files += [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES]
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


def python_examples() -> list[tuple[str, str]]:
    """Every ```python block of the README and the docs pages, named ``page:line``."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            found.append((f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}", match.group(1)))
    return found


def test_every_python_example_compiles_and_its_imports_work() -> None:
    """A reader copies an example: it is valid Python, and every name it imports exists where it imports it from
    (the rest of an example needs the reader's own files, mailboxes and handler; README's runs in test_readme.py)."""
    examples = python_examples()
    assert len(examples) >= 8
    broken = []
    for where, code in examples:
        tree = ast.parse(code, where)
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                try:
                    exec(compile(ast.Module([node], []), where, "exec"), {})  # noqa: S102 - our own examples
                except ImportError as exc:
                    broken.append(f"{where}: {exc}")
    assert broken == []


# What an example leaves to the reader: their own handler, lookups, data and secrets. Any other name an example
# uses must be defined or imported in it (a reader who copies it gets no NameError for `os` or `load_config`).
READERS_OWN = {"config", "create_work_item", "host", "host_permissions", "my_directory", "my_work_items", "password",
               "rate_limiter", "raw", "saved_fingerprints", "utc_now"}


def test_every_python_example_defines_or_imports_what_it_uses() -> None:
    """Every name an example reads is a builtin, assigned or imported in the example, or the reader's own."""
    undefined = []
    for where, code in python_examples():
        defined, used = set(dir(builtins)), set()
        for node in ast.walk(ast.parse(code, where)):
            if isinstance(node, ast.Name):
                (defined if isinstance(node.ctx, ast.Store) else used).add(node.id)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                defined |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.arg):  # a parameter of a function the example defines
                defined.add(node.arg)
        undefined += [f"{where}: {name}" for name in sorted(used - defined - READERS_OWN)]
    assert undefined == []


def test_every_file_a_page_names_exists() -> None:
    """A module or script a page names in backticks (`_matcher.py`, `tests/router/test_demo_corpus.py`) exists:
    as that path in the repository, or as the file name of one."""
    files = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if ".git" not in p.parts and p.is_file()]
    missing = [
        f"{page.relative_to(ROOT)}: {name}"
        for page in PAGES
        for name in re.findall(r"`([\w/.-]+\.(?:py|sh))(?:::\w+)?`", page.read_text(encoding="utf-8"))
        if not any(path == name or path.endswith("/" + name) for path in files)
    ]
    assert missing == []


def test_the_migrate_example_shows_every_schema_step() -> None:
    """docs/scaling.md's `ledger migrate` output of a new database lists the steps this release applies."""
    text = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    shown = [(int(n), what) for n, what in re.findall(r": applied step (\d+): (.+)$", text, re.M)]
    assert shown == [(step.version, step.description) for step in MIGRATIONS]
    assert f"schema version 0 -> {MIGRATIONS[-1].version}\n" in text
