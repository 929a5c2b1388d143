"""The shadowing benchmark runs in quick mode and the indexed analysis agrees with the pairwise one."""

from __future__ import annotations

import json

import pytest

import bench_check


def test_check_benchmark_quick_mode_runs_and_analyses_agree(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_check --quick exits 0 and its JSON line says both analyses found the same shadowed routes."""
    assert bench_check.main(["--quick"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["analyses_agree"] is True and summary["mode"] == "quick"
    assert [row["routes"] for row in summary["sizes"]] == [100, 1000, 5000]
    assert all(row["shadowed"] > 0 for row in summary["sizes"])
