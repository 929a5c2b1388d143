"""The real-mail corpus in ``tests/corpus`` (copied in with its licences; see its README)."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus_messages() -> list[Path]:
    """Every message of the corpus (``.eml`` and ``.msg``), in a stable order."""
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".eml", ".msg") and p.is_file())
