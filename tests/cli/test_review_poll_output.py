"""`poll --out` over months: the output file rotated or deleted while `poll` runs, and a file of many lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_poll_lines import RAW, TARGET

from enate_routing._cli import _poll
from enate_routing._cli._poll import JsonlWriter
from enate_routing._decision import Decision
from enate_routing._delivery import Delivery
from enate_routing._envelope import Envelope
from enate_routing.ingest import WorkItem

ENVELOPE = Envelope.from_bytes(RAW)


def work(key: str) -> WorkItem:
    decision = Decision(connector="Support", action="create", address="help@acme.example", idempotency_key=key,
                        route="Fires", delivery=Delivery(target=TARGET))
    return WorkItem(idempotency_key=key, decision=decision, envelope=ENVELOPE, connector="Support",
                    mailbox="INBOX", ref="r", message=1)


def keys_in(path: Path) -> list[str]:
    return [json.loads(line)["idempotency_key"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_deleted_output_file_is_created_again_not_written_blind(tmp_path: Path) -> None:
    """A clean-up job deletes the output while `poll` runs: the next decisions must land in a file at the
    path, not in the unlinked one (they would be lost while the ledger records them as handed off)."""
    out = tmp_path / "out.jsonl"
    writer = JsonlWriter(out)
    writer(work("k1"))
    out.unlink()
    writer(work("k2"))
    writer(work("k1"))  # still remembered: not written again
    writer.close()
    assert keys_in(out) == ["k2"]


def test_a_rotated_output_file_is_followed_by_a_new_one(tmp_path: Path) -> None:
    """Log rotation renames the file: later decisions go to a new file at the configured path."""
    out = tmp_path / "out.jsonl"
    writer = JsonlWriter(out)
    writer(work("k1"))
    out.rename(tmp_path / "out.jsonl.1")
    writer(work("k2"))
    writer.close()
    assert keys_in(tmp_path / "out.jsonl.1") == ["k1"] and keys_in(out) == ["k2"]


def test_remembered_keys_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Months of decisions must not grow memory: only the most recent keys (far more than a crash can leave
    unrecorded: one batch) are remembered, read from the end of the file at start."""
    monkeypatch.setattr(_poll, "_REMEMBERED_KEYS", 5)
    monkeypatch.setattr(_poll, "_TAIL_CHUNK", 64)  # the end of the file is read in several chunks
    out = tmp_path / "out.jsonl"
    writer = JsonlWriter(out)
    for n in range(12):
        writer(work(f"k{n}"))
    assert writer.keys == {f"k{n}" for n in range(7, 12)}
    writer.close()
    assert JsonlWriter(out).keys == {f"k{n}" for n in range(7, 12)}
    assert len(keys_in(out)) == 12


def test_a_torn_last_line_is_cut_off_when_read_from_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash mid-write left half a line (longer than one read chunk): it is cut off, the whole lines stay."""
    monkeypatch.setattr(_poll, "_TAIL_CHUNK", 16)
    out = tmp_path / "out.jsonl"
    writer = JsonlWriter(out)
    writer(work("k1"))
    writer.close()
    whole = out.read_bytes()
    out.write_bytes(whole + b'{"idempotency_key": "k2", "half a line')
    assert JsonlWriter(out).keys == {"k1"}
    assert out.read_bytes() == whole


def test_the_keys_are_read_without_holding_the_file_s_end_in_memory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A soak run: reading the last 100,000 lines (63 MB) whole took `poll` from 50 MB to 236 MB at start, and 123 MB
    stayed resident. They are now read a chunk at a time: the peak is the keys, not the lines."""
    import tracemalloc
    monkeypatch.setattr(_poll, "_REMEMBERED_KEYS", 5_000)
    monkeypatch.setattr(_poll, "_TAIL_CHUNK", 1 << 16)
    out = tmp_path / "out.jsonl"
    line = json.loads(_poll.jsonl_line({"padding": "x" * 600, "idempotency_key": "k"}))
    with out.open("w") as file:
        for n in range(6_000):
            file.write(json.dumps({**line, "idempotency_key": f"{n:032x}"}) + "\n")
    tracemalloc.start()
    try:
        writer = JsonlWriter(out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    writer.close()
    assert writer.keys == {f"{n:032x}" for n in range(1_000, 6_000)}
    assert peak < out.stat().st_size / 2  # the 5,000 lines read are 3 MB (10 MB traced when read whole)
