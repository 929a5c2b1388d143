#!/usr/bin/env bash
# The main job on a fresh machine: install the library into .venv/ and route the bundled sample mailbox
# through the bundled sample configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""
.venv/bin/enate-routing demo
