"""The benchmark runs in quick mode and reports facts identical to the standard library's (not timings)."""

from __future__ import annotations

import json

import pytest

import bench_envelope


def test_benchmark_quick_mode_reports_identical_facts(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_envelope.main(--quick) exits 0 and its JSON line says the facts are identical."""
    assert bench_envelope.main(["--quick"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["facts_identical"] is True
    assert set(report["messages"]) == {"4KB plain", "20KB multipart", "450KB 3 attachments", "1.4MB 1 attachment"}
    assert all(row["quarantine_reason"] for row in report["hostile"].values())
