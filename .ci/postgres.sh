#!/usr/bin/env bash
# Ensure PostgreSQL's server binaries are installed (docs/scaling.md, "Tests").
#
# Idempotent; for a fresh Debian 12 machine, as root. May be executed or sourced by scripts/test.sh:
#   bash .ci/postgres.sh        or        source .ci/postgres.sh
# Exits (or returns, when sourced) non-zero on failure. It installs Debian's `postgresql` (server, initdb,
# pg_ctl) only; no cluster is created or started here: the pytest fixture (tests/mailrig/postgres.py) and
# benchmarks/bench_workers.py initdb a throw-away cluster in a temporary folder on a free loopback port.
# psycopg comes from the project's `postgres` extra (pip), which the `dev` extra includes.

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
    if [ "$(id -u)" -ne 0 ]; then
        echo "postgres: must run as root to install postgresql" >&2
        return 1
    fi

    # The package's postinst creates and starts a system cluster (main, port 5432) unless invoke-rc.d is
    # forbidden; the tests never use it. policy-rc.d exit 101 = "action forbidden" (invoke-rc.d(8)).
    local policy=/usr/sbin/policy-rc.d
    local created_policy=0
    if [ ! -x "$policy" ] || ! grep -q 'exit 101' "$policy" 2>/dev/null; then
        if [ -e "$policy" ]; then
            cp -p "$policy" "$policy.enate-backup" || return 1
        fi
        printf '#!/bin/sh\n# installed by .ci/postgres.sh: no service starts during apt-get install\nexit 101\n' \
            >"$policy" || return 1
        chmod 0755 "$policy" || return 1
        created_policy=1
    fi

    export DEBIAN_FRONTEND=noninteractive
    local status=0
    local attempt
    for attempt in 1 2 3; do
        if apt-get update -q; then
            status=0
            break
        fi
        status=$?
        echo "postgres: apt-get update failed (attempt $attempt/3)" >&2
        sleep $((attempt * 5))
    done
    if [ "$status" -eq 0 ]; then
        apt-get install -y -q --no-install-recommends postgresql || status=$?
    fi

    if [ "$created_policy" -eq 1 ]; then
        if [ -e "$policy.enate-backup" ]; then
            mv -f "$policy.enate-backup" "$policy"
        else
            rm -f "$policy"
        fi
    fi
    if [ "$status" -ne 0 ]; then
        echo "postgres: installing postgresql failed ($status)" >&2
        return "$status"
    fi
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
