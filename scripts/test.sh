#!/usr/bin/env bash
# The whole test suite, with all set-up, on a fresh Debian 12 machine (run as root, as CI does):
# installs Dovecot and PostgreSQL (apt) and the project with its dev extras into .venv/ (pip), then runs ruff,
# mypy --strict, pytest (the loopback mail servers and a throw-away PostgreSQL cluster are started and stopped
# by the test fixtures) and the benchmarks in quick mode. Every step runs; the script fails when any of them failed.
set -uo pipefail
cd "$(dirname "$0")/.."

bash .ci/mailservers.sh || exit 1
bash .ci/postgres.sh || exit 1
source scripts/_venv.sh
ensure_venv "[dev]" || exit 1
python=.venv/bin/python

failed=()
step() {
    local name=$1
    shift
    echo "== $name"
    "$@" || failed+=("$name")
}

step "ruff" "$python" -m ruff check src tests benchmarks scripts
step "mypy --strict" "$python" -m mypy --strict src
step "pytest" "$python" -m pytest --strict-markers -p no:cacheprovider "$@"
# Quick mode checks that each benchmark runs and its two sides agree, not how fast this machine is. The router
# is also timed beside the revision its targets were set on, when this clone holds it (not a shallow one).
for bench in benchmarks/bench_*.py; do
    extra=()
    if [ "$bench" = benchmarks/bench_router.py ] && git cat-file -e 'f6808b7^{commit}' 2>/dev/null; then
        extra=(--baseline 'f6808b7^')
    fi
    step "benchmark $bench --quick ${extra[*]}" "$python" "$bench" --quick "${extra[@]}"
done

if [ ${#failed[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all checks passed"
