"""Where the real-mail corpus is: ``tests/corpus`` when the repository has it, else ``../shared/corpus``."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[2]


def corpus_root() -> Path:
    """``tests/corpus`` if present, else the shared copy beside the project (which may be absent too)."""
    inside = ROOT / "tests" / "corpus"
    return inside if inside.is_dir() else ROOT.parent / "shared" / "corpus"


def corpus_messages() -> list[Path]:
    """Every ``.eml`` and ``.msg`` file of the corpus, sorted; empty when there is no corpus."""
    root = corpus_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in (".eml", ".msg") and p.is_file())
