"""The real-mail corpus in ``tests/corpus`` (copied in with its licences; see its README), and the edits that
mutate its messages (tests/envelope/test_corpus_mutations.py, scripts/fuzz_corpus.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from enate_routing._envelope import Envelope

CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus_messages() -> list[Path]:
    """Every message of the corpus (``.eml`` and ``.msg``), in a stable order."""
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".eml", ".msg") and p.is_file())


# Bytes that mutations insert: line endings, address and MIME syntax, encoded-word marks, field starts.
SYNTAX = [b"\r\n", b"\n", b"\r", b"\r\n ", b"\r\n\r\n", b'"', b"\\", b"(", b")", b"<", b">", b",", b";", b":",
          b"@", b"[", b"]", b"=?utf-8?q?", b"=?utf-8?b?", b"?=", b"\x00", b"\xff", b"\xe9", b"--", b"\t", b" ",
          b"boundary=", b"filename*0*=", b"charset=", b"From: ", b"To: ", b"Cc: ", b"Subject: ", b"References: <",
          b"Content-Type: multipart/mixed; boundary=x\r\n", b"Content-Disposition: attachment; filename=",
          b"=?utf-7?q?+2AA-?=", b"charset=utf-7", b"filename*=utf-7''%2B2AA-", b"+2AA-"]
# How many times an inserted token is repeated, and how many times a copied run.
REPEATS = (1, 1, 2, 50, 2000)
COPIES = (1, 3, 100)

# An edit: ("insert", where as a fraction of the message, bytes, times), ("delete", where, length, 1) or
# ("copy", where, length, times): the run at ``where`` repeated ``times`` in place.
Edit = tuple[str, float, "bytes | int", int]


def mutated(raw: bytes, edits: list[Edit]) -> bytes:
    """``raw`` with ``edits`` applied in order."""
    data = bytearray(raw)
    for kind, where, what, times in edits:
        at = int(where * len(data))
        if kind == "delete":
            assert isinstance(what, int)
            del data[at:at + what]
        elif kind == "copy":
            assert isinstance(what, int)
            data[at:at] = data[at:at + what] * times
        else:
            assert isinstance(what, bytes)
            data[at:at] = what * times
    return bytes(data)


def unwritable_fact(envelope: Envelope) -> str | None:
    """The first text fact of ``envelope`` (its plain text too) that UTF-8 cannot encode, or None: a lone
    surrogate would make a host's database, JSON file or terminal refuse it."""
    facts = [(f.name, getattr(envelope, f.name)) for f in dataclasses.fields(envelope)]
    for name, value in [*facts, ("plain_text()", envelope.plain_text())]:
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            text = getattr(item, "address", item)
            if isinstance(text, str) and not _encodes(text):
                return name
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
