#!/usr/bin/env bash
# The main job on a fresh machine: install the library and route the bundled sample mailbox through the
# bundled sample configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --disable-pip-version-check -q -e .
enate-routing demo
