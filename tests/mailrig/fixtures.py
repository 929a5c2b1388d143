"""pytest fixtures for the loopback mail servers (loaded by tests/conftest.py as ``mailrig.fixtures``).

Session-scoped (started once, stopped at the end of the run; nothing is left running):

- ``pki`` -> :class:`mailrig.pki.Pki`: CA, server certificate, ``client.pfx`` (password
  ``pki.pfx_password``), rogue CA and client, expired client.
- ``dovecot`` -> :class:`mailrig.dovecot.Dovecot`: IMAP/IMAPS/POP3/POP3S/LMTP on 127.0.0.1, ports in
  ``dovecot.ports``; users :data:`mailrig.dovecot.ALICE`, ``BOB`` (50-character password), ``SHARED``,
  ``MASTER``; helpers ``deliver``, ``deliver_lmtp``, ``reset``, ``set_uidvalidity``, ``grant``, ``messages``.
- ``postgres_cluster`` -> :class:`mailrig.postgres.PostgresCluster`: a throw-away PostgreSQL cluster on
  127.0.0.1 (initdb into a temp folder, a free port), stopped and removed at the end.
- ``smtp_servers`` -> :class:`mailrig.smtp.SmtpServers`: aiosmtpd in modes ``open``, ``submission``,
  ``smtps_auth``, ``starttls_cert``, ``smtps_cert``; ports in ``smtp_servers.ports[mode]``; accepted mail in
  ``smtp_servers.messages``.

Function-scoped:

- ``mailboxes`` -> the same ``Dovecot``, with every user's folders emptied, extra folders deleted and
  ACL grants dropped before the test (~0.2 s).
- ``postgres_url`` -> the ``postgresql://`` URL of a new, empty database in ``postgres_cluster``.
- ``own_postgres_cluster`` -> a ``PostgresCluster`` of the test's own, which it may stop and start (a
  restart of the database) without touching the other tests' connections (~1 s).
- ``smtp_inbox`` -> the same ``SmtpServers`` with ``messages`` cleared before the test.

Skip rule: when a server cannot start (Dovecot not installed, not root, a port problem), tests that need
it are skipped with the reason — unless the environment has ``CI=true``, where they fail instead, so CI
can never go green by skipping the real-server tests.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from mailrig.dovecot import Dovecot, RigUnavailable
from mailrig.pki import Pki, generate_pki
from mailrig.postgres import PostgresCluster
from mailrig.smtp import SmtpServers, start_smtp_servers

__all__ = [
    "dovecot", "mailboxes", "own_postgres_cluster", "pki", "postgres_cluster", "postgres_url", "server_unavailable",
    "smtp_inbox", "smtp_servers",
]


def server_unavailable(reason: str) -> NoReturn:
    """Skip locally; fail when ``CI=true`` (a CI run must really exercise the servers)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"test server unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"test server unavailable: {reason}")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The test PKI, generated once per session."""
    return generate_pki(Path(tmp_path_factory.mktemp("pki")))


def _throw_away_dovecot(pki: Pki, extra_config: str = "") -> Iterator[Dovecot]:
    """A private Dovecot, stopped and its temp root removed when the fixture ends (or the process exits)."""
    try:
        server = Dovecot.start(pki, extra_config=extra_config)
    except RigUnavailable as exc:
        server_unavailable(str(exc))
    atexit.register(server.stop)  # belt and braces if the session dies before teardown
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)


@pytest.fixture(scope="session")
def dovecot(pki: Pki) -> Iterator[Dovecot]:
    """A private Dovecot for the session."""
    yield from _throw_away_dovecot(pki)


@pytest.fixture
def own_dovecot(pki: Pki, request: pytest.FixtureRequest) -> Iterator[Dovecot]:
    """A private Dovecot for one test, which may restart it; parametrized ``indirect``, the parameter is
    configuration added to the rig's own."""
    yield from _throw_away_dovecot(pki, getattr(request, "param", ""))


def _throw_away_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster, stopped and its folder removed when the fixture ends (or the process exits)."""
    try:
        cluster = PostgresCluster.start()
    except RigUnavailable as exc:
        server_unavailable(str(exc))
    atexit.register(cluster.stop)
    try:
        yield cluster
    finally:
        cluster.stop()
        atexit.unregister(cluster.stop)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL cluster for the session."""
    yield from _throw_away_cluster()


@pytest.fixture
def own_postgres_cluster() -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL cluster for one test, which may restart it."""
    yield from _throw_away_cluster()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster, request: pytest.FixtureRequest) -> str:
    """A new empty database for this test; its URL (with the password in it)."""
    _counter.append(request.node.name)
    return postgres_cluster.create_database(f"test_{len(_counter)}")


_counter: list[str] = []


@pytest.fixture(scope="session")
def smtp_servers(pki: Pki) -> Iterator[SmtpServers]:
    """The aiosmtpd servers for the session (stopped at the end)."""
    try:
        servers = start_smtp_servers(pki)
    except (OSError, RuntimeError, TimeoutError) as exc:
        server_unavailable(f"aiosmtpd did not start: {exc}")
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def mailboxes(dovecot: Dovecot) -> Dovecot:
    """The session Dovecot with every test user's mailboxes reset to empty defaults."""
    dovecot.reset_all()
    return dovecot


@pytest.fixture
def smtp_inbox(smtp_servers: SmtpServers) -> SmtpServers:
    """The session SMTP servers with the received-message list cleared."""
    smtp_servers.clear()
    return smtp_servers
