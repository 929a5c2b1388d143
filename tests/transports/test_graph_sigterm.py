"""`poll` stopped by SIGTERM while it waits out Graph's Retry-After: it stops now, not when the wait is over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enate_routing._loading import parse_config, save_config
from mailrig.graph import FakeGraph
from mailrig.oauth_server import IdentityProvider
from mailrig.pki import Pki
from mailrig.util import message
from transports.cloud_config import DESK, SECRET, SECRET_ENV, graph_connector, register_app

pytestmark = pytest.mark.servers

TARGET = {"customer": "Contoso", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}


def test_sigterm_ends_a_retry_after_wait(graph: FakeGraph, idp: IdentityProvider, pki: Pki, tmp_path: Path) -> None:
    """Graph answers 429 with ``Retry-After: 59`` (within the call's 60 s budget, so the call waits); SIGTERM
    during that wait ends poll with 0 at once, without asking Graph again."""
    register_app(idp)
    graph.deliver(DESK, message("throttled"))
    connector = graph_connector(graph, idp, pki)
    config = tmp_path / "routing.toml"
    save_config(parse_config({
        "connectors": [connector.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
                       | {"name": "Graph desk"}],
        "fallbacks": [{"connector": "Graph desk", "address": DESK, "target": TARGET}]}), config)
    graph.throttle(1, retry_after=59)
    poll = subprocess.Popen([sys.executable, "-m", "enate_routing", "poll", "--config", str(config), "Graph desk",
                             "--out", str(tmp_path / "out.jsonl")], env={**os.environ, SECRET_ENV: SECRET},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until the 429 was answered (at most a minute)
            with graph.lock:
                if any(status == 429 for _, _, status in graph.log):
                    break
            time.sleep(0.1)
        time.sleep(0.5)  # inside the wait
        poll.send_signal(signal.SIGTERM)
        _, err = poll.communicate(timeout=30)  # the wait would last 59 s
    finally:
        if poll.poll() is None:
            poll.kill()
            poll.communicate()
    assert poll.returncode == 0, err
    assert [status for _, _, status in graph.log].count(429) == 1
    assert len(graph.log) == 1, "nothing asked after the stop"
