#!/usr/bin/env bash
# The whole test suite, with all set-up, on a fresh Debian 12 machine (run as root, as CI does):
# installs Dovecot (apt) and the project with its dev extras (pip), then runs ruff, mypy --strict,
# pytest (the loopback mail servers are started and stopped by the test fixtures) and the benchmarks in
# quick mode. Every step runs; the script fails when any of them failed.
set -uo pipefail
cd "$(dirname "$0")/.."

bash .ci/mailservers.sh || exit 1
python3 -m pip install --disable-pip-version-check -q -e '.[dev]' || exit 1

failed=()
step() {
    local name=$1
    shift
    echo "== $name"
    "$@" || failed+=("$name")
}

step "ruff" python3 -m ruff check src tests benchmarks
step "mypy --strict" python3 -m mypy --strict src
step "pytest" python3 -m pytest --strict-markers -p no:cacheprovider "$@"
# Quick mode checks that each benchmark runs and its two sides agree, not how fast this machine is.
for bench in benchmarks/bench_*.py; do
    step "benchmark $bench --quick" python3 "$bench" --quick
done

if [ ${#failed[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all checks passed"
