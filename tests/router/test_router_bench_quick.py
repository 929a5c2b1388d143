"""The benchmark runs in quick mode and its two routers agree (timings are not asserted)."""

from __future__ import annotations

import json

import pytest

import bench_router


def test_benchmark_quick_mode_runs_and_routers_agree(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_router --quick exits 0, prints its table and a JSON line saying the routers agree."""
    assert bench_router.main(["--quick"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["routers_agree"] is True and summary["mode"] == "quick"
    assert [row["routes"] for row in summary["sizes"]] == [10, 100, 1000, 10000]
    assert all(row["disagreements"] == 0 for row in summary["sizes"])
