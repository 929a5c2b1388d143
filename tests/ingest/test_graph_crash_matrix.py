"""Crash matrix over the Graph source: kill the ingesting process at every step boundary, restart until drained.

The scenarios of test_crash_matrix.py (50 messages, two over the size limit, 0–19 acknowledged, 20–49
automatic; a kill at the first, a middle and the last message of each hook point), with the mailboxes on the
fake Graph API and acknowledgements through ``sendMail``. Every message must end as exactly one work item or
one quarantine record: 0 lost, 0 duplicate work items; handler re-invocations stay within the documented
windows, and an acknowledgement is repeated at most once, only in the window after ``sendMail``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graph_crash_driver
import pytest
import test_crash_matrix
from crash_driver import CRASH_EXIT
from graph_rig import app_token, graph_config
from ingest_rig import _context, ledger_quarantine, message_id, read_jsonl, sample_message, scratch_dir
from test_crash_matrix import ACK_WINDOW, AUTOMATIC, BIG, REDELIVERY_WINDOW, N, group_reinvocations, show

from enate_routing.ingest import HOOK_POINTS
from mailrig.graph import FakeGraph
from mailrig.pki import Pki

pytestmark = [pytest.mark.servers, pytest.mark.slow]

POSITIONS = {"first": 0, "middle": N // 2, "last": N - 1}
# Whether a hook point is reached for a message, as the IMAP / POP3 matrix defines it (where acknowledgement
# points exist only for acknowledged messages); every point is reached where it defines nothing.
reaches = getattr(test_crash_matrix, "reaches", lambda point, index: True)
TOTALS: dict[str, int] = {"scenarios": 0, "lost": 0, "duplicate_work_items": 0, "duplicate_acks": 0}


@pytest.fixture(scope="module", autouse=True)
def totals(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the module's figures as one line at the end (shown even with ``-q``)."""
    yield
    if TOTALS["scenarios"]:
        show(request, f"graph crash matrix: {TOTALS['scenarios']} scenarios: lost {TOTALS['lost']}, duplicate work "
                      f"items {TOTALS['duplicate_work_items']}, duplicate acks {TOTALS['duplicate_acks']}")


def run_children(specs: list[dict[str, Any]], timeout: float = 120.0) -> list[int]:
    ctx = _context()
    processes = [ctx.Process(target=graph_crash_driver.child, args=(spec,)) for spec in specs]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)
    return [p.exitcode if p.exitcode is not None else -1 for p in processes]


@pytest.mark.parametrize("point", HOOK_POINTS)
def test_graph_crash_then_restart_loses_and_duplicates_nothing(point: str, graph: FakeGraph, pki: Pki,
                                                               tmp_path: Path) -> None:
    """A kill at this step boundary (first, middle, last message), then restarts: 0 lost, 0 duplicate work items."""
    token = app_token(graph)
    with scratch_dir(tmp_path) as scratch:
        specs: dict[str, dict[str, Any]] = {}
        mailboxes: dict[str, list[bytes]] = {}
        for position, index in POSITIONS.items():
            address = f"{position}@contoso.test"
            messages = [sample_message(i, to=address, big=i in BIG, tag=f"graph-{point}-{position}-",
                                       sender=f"customer{i}.{position}@example.net", automatic=i in AUTOMATIC)
                        for i in range(N)]
            for raw in messages:
                graph.deliver(address, raw)
            mailboxes[position] = messages
            directory = scratch / position
            directory.mkdir()
            name = f"Box {position}"
            specs[position] = {"dir": str(directory), "connector": name, "token": token, "crash": [point, index],
                               "config": graph_config(graph.port, str(pki.ca_pem), address, name)}
        statuses = run_children(list(specs.values()))
        expected = [CRASH_EXIT if reaches(point, index) else 0 for index in POSITIONS.values()]
        assert statuses == expected, f"the crash point {point} was not reached: {statuses}"
        runs = dict.fromkeys(POSITIONS, 1)
        for spec in specs.values():
            spec["crash"] = None
        todo = dict(specs)
        while todo:
            statuses = run_children(list(todo.values()))
            for position, status in zip(list(todo), statuses, strict=True):
                runs[position] += 1
                assert status == 0 and runs[position] <= 4, f"{position}: restart ended with {status}"
                if not graph.messages_in(f"{position}@contoso.test"):
                    del todo[position]
        for position, messages in mailboxes.items():
            check(point, position, messages, scratch / position, graph)


def check(point: str, position: str, messages: list[bytes], directory: Path, graph: FakeGraph) -> None:
    where = f"graph {point} {position}"
    expected = {message_id(raw) for raw in messages}
    worked = [w["message_id"] for w in read_jsonl(directory / "work.jsonl")]
    calls = read_jsonl(directory / "calls.jsonl")
    quarantined = [q[0] for q in ledger_quarantine(directory / "ledger.db")]
    lost = expected - set(worked) - set(quarantined)
    duplicate_work = len(worked) - len(set(worked)) + len(set(worked) & set(quarantined))
    reinvocations = len(calls) - len({c["key"] for c in calls})
    address = f"{position}@contoso.test"
    ack_ids = [message_id(sent.mime) for sent in graph.sent if sent.mailbox == address]
    duplicate_acks = len(ack_ids) - len(set(ack_ids))
    TOTALS["scenarios"] += 1
    TOTALS["lost"] += len(lost)
    TOTALS["duplicate_work_items"] += duplicate_work
    TOTALS["duplicate_acks"] += duplicate_acks
    assert lost == set(), where
    assert duplicate_work == 0, where
    assert sorted(quarantined) == sorted(message_id(messages[i]) for i in BIG), where
    assert len(graph.messages_in(address, "archive")) == N, where
    index = POSITIONS[position]
    if index in AUTOMATIC:
        assert reinvocations == group_reinvocations(point, index), where
    else:
        assert reinvocations <= (1 if point in REDELIVERY_WINDOW else 0), where
    assert len(set(ack_ids)) == len(set(range(N)) - BIG - AUTOMATIC), where
    assert duplicate_acks <= (1 if point in ACK_WINDOW else 0), where
