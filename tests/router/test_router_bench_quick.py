"""The router benchmark runs in quick mode and its three routers agree (timings are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench_router


def test_benchmark_quick_mode_runs_and_routers_agree(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """bench_router --quick exits 0, prints both ratios per set and writes the JSON it prints."""
    exported = tmp_path / "router.json"
    assert bench_router.main(["--quick", "--sizes", "10,1000", "--json", str(exported)]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert json.loads(exported.read_text(encoding="utf-8")) == summary
    assert summary["routers_agree"] is True and summary["mode"] == "quick"
    assert [row["routes"] for row in summary["sizes"]] == [10, 1000]
    for row in summary["sizes"]:
        assert row["disagreements"] == 0
        assert row["scan_over_compiled"] > 0 and row["reference_over_compiled"] > 0
        assert 0.2 <= row["fallback_share"] <= 0.45
    assert "scan/compiled" in out and "ref/compiled" in out
