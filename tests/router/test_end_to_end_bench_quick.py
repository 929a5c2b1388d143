"""The end-to-end benchmark runs in quick mode on the demo mailbox and the synthetic sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench_end_to_end


def test_end_to_end_benchmark_quick_mode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """bench_end_to_end --quick exits 0; every workload reports a parse share and agrees with parse-then-route."""
    exported = tmp_path / "e2e.json"
    assert bench_end_to_end.main(["--quick", "--json", str(exported)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads(exported.read_text(encoding="utf-8")) == summary
    assert summary["all_agree"] is True
    names = [row["workload"] for row in summary["workloads"]]
    assert names[0].startswith("demo mailbox") and len(names) == 4
    for row in summary["workloads"]:
        assert 0 < row["parse_share"] < 1 and row["end_to_end_us"] > 0
