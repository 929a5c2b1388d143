"""The benchmarks run in quick mode: facts equal to the standard library's, every growth case parsed (no timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench_envelope
import bench_growth


def test_benchmark_quick_mode_reports_identical_facts(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_envelope.main(--quick) exits 0 and its JSON line says the facts are identical."""
    assert bench_envelope.main(["--quick"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["facts_identical"] is True
    assert set(report["messages"]) == {"4KB plain", "20KB multipart", "450KB 3 attachments", "1.4MB 1 attachment"}
    assert all(row["quarantine_reason"] for row in report["hostile"].values())


def test_growth_benchmark_quick_mode_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench_growth.main(--quick --json FILE) exits 0 and reports every case at 1×, 10× and 100×, parsed."""
    out = tmp_path / "growth.json"
    assert bench_growth.main(["--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report == json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report["cases"]) == set(bench_growth.CASES) | set(bench_growth.LINKING_CASES) | set(
        bench_growth.TOKEN_CASES)
    for row in report["cases"].values():
        assert set(row["ms"]) == {"1x", "10x", "100x"}
        assert row["outcome_at_100x_wide_limits"].startswith("parsed")
    # The worst cases are within the default limits (parsed, not quarantined), each timed once.
    assert set(report["worst_case"]) == set(bench_growth.WORST_CASES)
    for row in report["worst_case"].values():
        assert row["quarantine_reason"] is None and row["seconds"] >= 0
