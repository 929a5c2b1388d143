#!/usr/bin/env bash
# Ensure PostgreSQL's server binaries are installed (docs/scaling.md, "Tests").
#
# Idempotent; for a fresh Debian 12 machine, as root. May be executed or sourced by scripts/test.sh:
#   bash .ci/postgres.sh        or        source .ci/postgres.sh
# Exits (or returns, when sourced) non-zero on failure. It installs Debian's `postgresql` (server, initdb,
# pg_ctl) only; no cluster is created or started here: the pytest fixture (tests/mailrig/postgres.py) and
# benchmarks/bench_workers.py initdb a throw-away cluster in a temporary folder on a free loopback port.
# psycopg comes from the project's `postgres` extra (pip), which the `dev` extra includes.

source "$(dirname "${BASH_SOURCE[0]}")/apt_quiet_install.sh"

_enate_postgres_bindir() {
    # Debian keeps the server binaries out of PATH, one folder per major version; the newest wins.
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

_enate_postgres() {
    # (no "set -u" here: when sourced, it would change the caller's shell options)
    local bindir
    bindir=$(_enate_postgres_bindir)
    if [ -n "$bindir" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && [ -x "$bindir/postgres" ]; then
        echo "postgres: already installed ($("$bindir/postgres" --version))"
        return 0
    fi
    enate_apt_quiet_install postgres postgresql || return 1
    # A system cluster started despite everything would only hold port 5432; the tests run their own.
    if command -v systemctl >/dev/null && systemctl is-active --quiet postgresql 2>/dev/null; then
        systemctl stop postgresql || true
    fi
    bindir=$(_enate_postgres_bindir)
    [ -n "$bindir" ] && [ -x "$bindir/initdb" ] || {
        echo "postgres: initdb missing after install" >&2
        return 1
    }
    echo "postgres: installed $("$bindir/postgres" --version)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _enate_postgres
    exit $?
else
    _enate_postgres
fi
