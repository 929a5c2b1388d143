"""The admin search benchmark runs in quick mode and both sides return equal results (timings not asserted)."""

from __future__ import annotations

import json

import pytest

import bench_admin_search


def test_benchmark_quick_mode_reports_identical_results(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_admin_search.main(--quick) exits 0 and its JSON line says index and linear filter agree."""
    assert bench_admin_search.main(["--quick"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["results_identical"] is True
    assert report["routes"] == 10_000
    assert set(report["queries"]) == {label for label, _, _ in bench_admin_search.QUERIES}
    assert all(row["rows"] > 0 for row in report["queries"].values())
