#!/usr/bin/env bash
# The whole test suite, with all set-up, on a fresh Debian 12 machine (run as root, as CI does):
# installs Dovecot (apt) and the project with its dev extras (pip), then runs ruff, mypy --strict,
# pytest (the loopback mail servers are started and stopped by the test fixtures) and the benchmarks in
# quick mode. Any failure fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f .ci/mailservers.sh ]; then
    bash .ci/mailservers.sh
fi
python3 -m pip install --disable-pip-version-check -q -e '.[dev]'

echo "== ruff"
python3 -m ruff check src tests benchmarks
echo "== mypy --strict"
python3 -m mypy --strict src
echo "== pytest"
python3 -m pytest --strict-markers -p no:cacheprovider "$@"
echo "== benchmarks (quick mode: checks they run, not how fast this machine is)"
for bench in benchmarks/bench_*.py; do
    [ -e "$bench" ] || continue
    echo "-- $bench"
    python3 "$bench" --quick
done
