"""The crash matrix over PostgresLedger: kill at every step boundary, restart until drained: 0 lost, 0 duplicates.

The very scenarios of tests/ingest/test_crash_matrix.py (50 messages, two over the size limit, 20
acknowledged, 30 on the group-commit path; a kill at the first, a middle and the last message), run by the
same code (:func:`test_crash_matrix.run_scenario`, the same crash driver and checks), with one difference:
the three mailboxes' children share ONE PostgreSQL database as their ledger (three connectors,
concurrently), as workers on several hosts would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ingest_rig import message_id, private_dovecot
from test_crash_matrix import run_scenario, show

from enate_routing.ingest import HOOK_POINTS
from mailrig.dovecot import Dovecot
from mailrig.pki import Pki
from mailrig.postgres import PostgresCluster
from mailrig.smtp import SmtpServers

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg_crash_dovecot(pki: Pki) -> Iterator[Dovecot]:
    with private_dovecot(pki) as server:
        yield server


@pytest.fixture(scope="module")
def pg_figures(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    totals: dict[str, Any] = {"scenarios": 0, "runs": 0, "messages": 0, "lost": 0, "duplicate_work_items": 0,
                              "handler_reinvocations": 0, "group_reinvocations": 0, "duplicate_acks": 0,
                              "quarantined": 0, "by_protocol": {}}
    yield totals
    if totals["scenarios"]:
        path = Path(tmp_path_factory.mktemp("pg-crash-matrix")) / "figures.json"
        path.write_text(json.dumps(totals, indent=2))
        show(request, f"crash matrix over PostgreSQL: {totals['scenarios']} scenarios, {totals['runs']} runs, "
                      f"{totals['messages']} messages: lost {totals['lost']}, duplicate work items "
                      f"{totals['duplicate_work_items']}, handler re-invocations {totals['handler_reinvocations']}, "
                      f"duplicate acks {totals['duplicate_acks']}, quarantined {totals['quarantined']} ({path})")


def postgres_quarantine(url: str, connector: str) -> list[tuple[str | None, bytes, str]]:
    """(message id, raw bytes, reason) of every quarantined message of ``connector`` in the ledger."""
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT raw, quarantine_reason FROM enate_messages "
                          "WHERE connector = %s AND quarantine_reason IS NOT NULL", (connector,)).fetchall()
    return [(message_id(bytes(raw)), bytes(raw), reason) for raw, reason in rows]


@pytest.mark.parametrize("point", HOOK_POINTS)
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_crash_then_restart_over_postgres(
    protocol: str, point: str, pg_crash_dovecot: Dovecot, smtp_servers: SmtpServers,
    postgres_cluster: PostgresCluster, tmp_path: Path, pg_figures: dict[str, Any],
) -> None:
    """A kill at this step boundary, then restarts, three mailboxes on one PostgreSQL ledger: 0 lost, 0 duplicates."""
    url = postgres_cluster.create_database(f"crash_{protocol}_{point}")
    run_scenario(protocol, point, pg_crash_dovecot, smtp_servers, tmp_path, pg_figures, ledger=url,
                 quarantine_of=lambda connector: postgres_quarantine(url, connector))
