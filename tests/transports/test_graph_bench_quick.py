"""The Graph benchmark's quick mode runs end to end (it starts its own Dovecot and fake Graph API)."""

from __future__ import annotations

import json

import pytest

import bench_graph
from mailrig.fixtures import server_unavailable

pytestmark = pytest.mark.servers


def test_graph_benchmark_quick_mode_works(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_graph --quick exits 0 and reports both rates and their ratio in its JSON line."""
    assert bench_graph.main(["--quick"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    if last.startswith("skipped"):
        server_unavailable(last)  # fails under CI=true
    summary = json.loads(last)
    assert summary["graph_msgs_per_s"] > 0 and summary["imap_msgs_per_s"] > 0
    assert summary["ratio"] == pytest.approx(summary["graph_msgs_per_s"] / summary["imap_msgs_per_s"], rel=0.05)
