"""A throw-away PostgreSQL cluster on 127.0.0.1 for the tests and benchmarks/bench_workers.py.

:meth:`PostgresCluster.start` runs ``initdb`` into a fresh folder under the system temp dir, starts the
server with ``pg_ctl`` on a free loopback port (its Unix socket in the same folder, never the system's),
and waits until it accepts connections. :meth:`PostgresCluster.stop` stops it (``-m immediate``: nothing in
it is worth a checkpoint) and removes the folder.

PostgreSQL refuses to run as root. As root the server binaries run as the ``postgres`` system user (which
Debian's package creates) through ``runuser``, and the folder is handed to that user; as any other user they
run as that user. The superuser is ``enate`` with a random password (scram-sha-256), so every test connects
the way a host would, with a password in the URL.

``fsync=False`` (the tests' default) skips the server's fsyncs: the tests kill clients, never the server.
The benchmark starts its cluster with ``fsync=True``, as a real server runs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from mailrig.dovecot import RigUnavailable, free_ports

__all__ = ["PostgresCluster", "server_bindir"]

SUPERUSER = "enate"


def server_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` (Debian keeps the server binaries out of PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        on_path = shutil.which("initdb")
        if on_path is None:
            raise RigUnavailable("PostgreSQL is not installed: no initdb (run .ci/postgres.sh)")
        return Path(on_path).parent
    return found[-1].parent


class PostgresCluster:
    """One running throw-away cluster. Build it with :meth:`start`; always :meth:`stop` it."""

    host = "127.0.0.1"

    def __init__(self, root: Path, port: int, password: str, run_as: list[str]) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.password = password
        self._fsync = False
        self._run_as = run_as
        self._bindir = server_bindir()

    # ------------------------------------------------------------------------------------------- lifecycle
    @classmethod
    def start(cls, *, fsync: bool = False, timeout: float = 60.0) -> PostgresCluster:
        """initdb, start and wait; :class:`RigUnavailable` with the reason (and the server log) if it fails."""
        bindir = server_bindir()
        run_as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RigUnavailable("running as root and there is no 'postgres' user to run the server as "
                                     "(run .ci/postgres.sh)") from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RigUnavailable("running as root and runuser(1) is missing")
            run_as = [runuser, "-u", "postgres", "--"]
        root = Path(tempfile.mkdtemp(prefix="enate-postgres-"))
        password = secrets.token_urlsafe(18)
        [port] = free_ports(1)
        cluster = cls(root, port, password, run_as)
        try:
            root.chmod(0o700)
            (root / "pwfile").write_text(password + "\n")
            if owner is not None:
                os.chown(root, owner.pw_uid, owner.pw_gid)
                os.chown(root / "pwfile", owner.pw_uid, owner.pw_gid)
            cluster._run(
                str(bindir / "initdb"), "-D", str(cluster.data), "-U", SUPERUSER, "--pwfile", str(root / "pwfile"),
                "-A", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync", timeout=timeout,
            )
            cluster._fsync = fsync
            cluster.start_server(timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def start_server(self, timeout: float = 60.0) -> None:
        """Start the server on its data folder and port (again, after :meth:`stop_server`) and wait for it."""
        durable = "on" if self._fsync else "off"
        options = (f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self.root} "
                   f"-c max_connections=200 -c fsync={durable} -c synchronous_commit={durable} "
                   f"-c full_page_writes={durable}")
        self._run(
            str(self._bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
            "-w", "-t", str(int(timeout)), "start", timeout=timeout + 5,
        )
        self._wait_ready(time.monotonic() + timeout)

    def stop_server(self) -> None:
        """Shut the server down as an administrator's restart does (``-m fast``: clients are disconnected with
        "terminating connection due to administrator command"); the data stays for :meth:`start_server`."""
        self._run(str(self._bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)

    def _run(self, *argv: str, timeout: float) -> None:
        try:
            result = subprocess.run([*self._run_as, *argv], capture_output=True, text=True, check=False,
                                    timeout=timeout, cwd=self.root)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RigUnavailable(f"{Path(argv[0]).name} failed: {exc}\n{self.log_tail()}") from None
        if result.returncode != 0:
            raise RigUnavailable(
                f"{Path(argv[0]).name} exited with {result.returncode}: {result.stderr.strip()}\n{self.log_tail()}"
            )

    def _wait_ready(self, deadline: float) -> None:
        pg_isready = str(self._bindir / "pg_isready")
        while time.monotonic() < deadline:
            done = subprocess.run([pg_isready, "-q", "-h", self.host, "-p", str(self.port)], check=False)
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise RigUnavailable(f"PostgreSQL on {self.host}:{self.port} did not accept connections\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it needs a checkpoint) and remove its folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RigUnavailable):
                self._run(str(self._bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.root / "server.log").read_text(errors="replace").splitlines()[-lines:])
        return ""

    # ------------------------------------------------------------------------------------------- databases
    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``database`` with the superuser's password in it."""
        return f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql (no psycopg needed); its output, unaligned and tuples only."""
        result = subprocess.run(
            [str(self._bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql],
            capture_output=True, text=True, check=False, timeout=60, env={**os.environ, "PGPASSWORD": self.password},
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """A new empty database (``name`` is a plain identifier); its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain identifier: {name!r}")
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)
