"""Crash matrix: kill the ingesting process at every step boundary, restart until drained (real servers).

For IMAP and POP3, a 50-message mailbox (two of them over the size limit, so they must end in
quarantine) is ingested by a child process that dies with ``os._exit`` at one hook point — every step
boundary of ``HOOK_POINTS``: after spool, route, handler, before and after the acknowledgement, after the
ledger commit and after the server mark — at the first, a middle and the last message (the acknowledgement
points exist only for the first, acknowledged, one; the other two children then run to the end).
Restarts follow until a run drains the mailbox. Every message must end as exactly one
work item or one quarantine record: 0 lost, 0 duplicate work items. Handler re-invocations (the documented
window between handler return and ledger commit) and duplicate acknowledgements (the SMTP window after the
final dot) are counted. The three positions of one hook point run at once, in three users' mailboxes.

Messages 0–19 are acknowledged (the per-item path: each hand-off recorded before its acknowledgement);
messages 20–49 are automatic (``Auto-Submitted``), so they get none and take the group-commit path: their
hand-offs are recorded in one transaction at the end of the batch, before any of them is marked. The first
position (message 0) is on the per-item path; the middle (25) and last (49) on the group path, where a
crash before the group commit re-invokes the handler for every hand-off of the group not yet committed —
exactly that many re-invocations are expected, and still no duplicate work item.

The figures are printed as one line at the end of the module (shown even with ``-q``) and written to
``figures.json`` in the module's tmp dir.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from crash_driver import CRASH_EXIT
from ingest_rig import (
    append,
    connector_config,
    count,
    empty,
    ledger_quarantine,
    message_id,
    private_dovecot,
    read_jsonl,
    run_children,
    sample_message,
    scratch_dir,
)

from enate_routing.ingest import HOOK_POINTS
from mailrig.dovecot import ALICE, BOB, SHARED, Dovecot, User
from mailrig.pki import Pki
from mailrig.smtp import SmtpServers

pytestmark = [pytest.mark.servers, pytest.mark.slow]

N = 50
BIG = {10, 30}  # over the 4000-byte limit of the test configuration: quarantined
POSITIONS: dict[str, tuple[int, User]] = {"first": (0, ALICE), "middle": (N // 2, BOB), "last": (N - 1, SHARED)}
AUTOMATIC = set(range(20, N))  # no acknowledgement: the group-commit path
GROUP = sorted(AUTOMATIC - BIG)  # the work items of the batch's group commit
REDELIVERY_WINDOW = {"after_handler"}
ACK_WINDOW = {"after_ack"}
ACK_ONLY = {"before_ack", "after_ack"}  # reached only by acknowledged messages


def group_reinvocations(point: str, index: int) -> int:
    """Handler calls a crash at ``point`` of group message ``index`` leaves uncommitted (one batch of N).

    A crash after the handler of the last message of the group is the crash just before its one commit."""
    return sum(1 for i in GROUP if i <= index) if point == "after_handler" else 0


def reaches(point: str, index: int) -> bool:
    return point not in ACK_ONLY or index not in AUTOMATIC


@pytest.fixture(scope="module")
def crash_dovecot(pki: Pki) -> Iterator[Dovecot]:
    with private_dovecot(pki) as server:
        yield server


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    totals: dict[str, Any] = {"scenarios": 0, "runs": 0, "messages": 0, "lost": 0, "duplicate_work_items": 0,
                              "handler_reinvocations": 0, "group_reinvocations": 0, "duplicate_acks": 0,
                              "quarantined": 0, "by_protocol": {}}
    yield totals
    if not totals["scenarios"]:
        return
    path = Path(tmp_path_factory.mktemp("crash-matrix")) / "figures.json"
    path.write_text(json.dumps(totals, indent=2))
    line = (f"crash matrix: {totals['scenarios']} scenarios, {totals['runs']} runs, {totals['messages']} messages: "
            f"lost {totals['lost']}, duplicate work items {totals['duplicate_work_items']}, "
            f"handler re-invocations {totals['handler_reinvocations']} "
            f"({totals['group_reinvocations']} of them group-commit), duplicate acks {totals['duplicate_acks']}, "
            f"quarantined {totals['quarantined']} ({path})")
    show(request, line)


def show(request: pytest.FixtureRequest, line: str) -> None:
    """Write a line to the terminal even while output is captured (as pytest does for breakpoints)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


@pytest.mark.parametrize("point", HOOK_POINTS)
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_crash_then_restart_loses_and_duplicates_nothing(
    protocol: str, point: str, crash_dovecot: Dovecot, smtp_servers: SmtpServers, tmp_path: Path,
    figures: dict[str, Any],
) -> None:
    """A kill at this step boundary (first, middle, last message), then restarts: 0 lost, 0 duplicate work items."""
    run_scenario(protocol, point, crash_dovecot, smtp_servers, tmp_path, figures)


def run_scenario(protocol: str, point: str, dovecot: Dovecot, smtp_servers: SmtpServers, tmp_path: Path,
                 figures: dict[str, Any], *, ledger: str | None = None,
                 quarantine_of: Callable[[str], list[tuple[str | None, bytes, str]]] | None = None) -> None:
    """One scenario: kill at ``point``, restart until drained, check. ``ledger`` (a PostgreSQL URL shared by the
    three mailboxes) and ``quarantine_of`` (connector -> its quarantine) are for tests/scaling."""
    smtp_servers.clear()
    port = dovecot.ports.imap if protocol == "imap" else dovecot.ports.pop3
    smtp_port = smtp_servers.ports["open"]
    with scratch_dir(tmp_path) as scratch:
        specs: list[dict[str, Any]] = []
        mailboxes: dict[str, list[bytes]] = {}
        for position, (index, user) in POSITIONS.items():
            empty(dovecot, user)
            messages = [sample_message(i, to=user.login, big=i in BIG, tag=f"{protocol}-{point}-{position}-",
                                       sender=f"customer{i}.{position}@example.net", automatic=i in AUTOMATIC)
                        for i in range(N)]
            append(dovecot, user, messages)
            mailboxes[position] = messages
            directory = scratch / position
            directory.mkdir()
            config = connector_config(protocol, port, smtp_port, user=user, name=f"Box {position}")
            specs.append({
                "dir": str(directory), "protocol": protocol, "port": port, "smtp_port": smtp_port,
                "user": user.login, "password": user.password, "connector": f"Box {position}", "config": config,
                "crash": [point, index], "ledger": ledger,
            })
        statuses = run_children(specs)
        expected = [CRASH_EXIT if reaches(point, index) else 0 for index, _ in POSITIONS.values()]
        assert statuses == expected, f"the crash point {point} was not reached: {statuses}"
        runs = {position: 1 for position in POSITIONS}
        todo = dict(zip(POSITIONS, specs, strict=True))
        for spec in specs:
            spec["crash"] = None
        while todo:
            statuses = run_children(list(todo.values()))
            for (position, _), status in zip(list(todo.items()), statuses, strict=True):
                runs[position] += 1
                assert status == 0 and runs[position] <= 4, f"{position}: restart ended with {status}"
                if count(dovecot, POSITIONS[position][1]) == 0:
                    del todo[position]

        for position, messages in mailboxes.items():
            quarantine = quarantine_of(f"Box {position}") if quarantine_of is not None else None
            check(protocol, point, position, messages, scratch / position, runs[position], smtp_servers, figures,
                  quarantine)


def check(protocol: str, point: str, position: str, messages: list[bytes], directory: Path, runs: int,
          smtp_servers: SmtpServers, figures: dict[str, Any],
          quarantine: list[tuple[str | None, bytes, str]] | None = None) -> None:
    """Assert 0 lost, 0 duplicates; ``quarantine`` defaults to the SQLite ledger's (tests/scaling passes
    PostgreSQL's)."""
    expected = {message_id(raw) for raw in messages}
    work = read_jsonl(directory / "work.jsonl")
    calls = read_jsonl(directory / "calls.jsonl")
    if quarantine is None:
        quarantine = ledger_quarantine(directory / "ledger.db")
    worked = [w["message_id"] for w in work]
    quarantined = [q[0] for q in quarantine]
    lost = expected - set(worked) - set(quarantined)
    duplicate_work = len(worked) - len(set(worked)) + len(set(worked) & set(quarantined))
    reinvocations = len(calls) - len({c["key"] for c in calls})
    acks = [m for m in smtp_servers.messages
            if b"Auto-Submitted: auto-replied" in m.data and any(f".{position}@" in r for r in m.rcpt_tos)]
    ack_ids = [message_id(m.data) for m in acks]
    # Each acknowledgement carries the reference recorded with its hand-off (the host's, for that message).
    references = {w["message_id"]: w["reference"] for w in work}
    for ack in acks:
        parsed = message_from_bytes(ack.data)
        assert f"[REF:{references[str(parsed['In-Reply-To']).strip('<>')]}]" in str(parsed["Subject"])
    duplicate_acks = len(ack_ids) - len(set(ack_ids))

    figures["scenarios"] += 1
    figures["runs"] += runs
    figures["messages"] += len(messages)
    figures["lost"] += len(lost)
    figures["duplicate_work_items"] += duplicate_work
    figures["handler_reinvocations"] += reinvocations
    index = POSITIONS[position][0]
    if index in AUTOMATIC:
        figures["group_reinvocations"] += reinvocations
    figures["duplicate_acks"] += duplicate_acks
    figures["quarantined"] += len(quarantined)
    per = figures["by_protocol"].setdefault(protocol, {"scenarios": 0, "lost": 0, "duplicates": 0})
    per["scenarios"] += 1
    per["lost"] += len(lost)
    per["duplicates"] += duplicate_work

    where = f"{protocol} {point} {position}"
    assert lost == set(), where
    assert duplicate_work == 0, where
    assert sorted(quarantined) == sorted(message_id(messages[i]) for i in BIG), where
    by_id = {message_id(raw): raw for raw in messages}
    assert all(raw.replace(b"\r\n", b"\n") == by_id[mid].replace(b"\r\n", b"\n") for mid, raw, _ in quarantine)
    if index in AUTOMATIC:
        assert reinvocations == group_reinvocations(point, index), where
    else:
        assert reinvocations <= (1 if point in REDELIVERY_WINDOW else 0), where
    assert len(set(ack_ids)) == len(set(range(N)) - BIG - AUTOMATIC), where
    assert duplicate_acks <= (1 if point in ACK_WINDOW else 0), where
