"""The scaling tests reuse the ingestion tests' rig and crash driver (tests/ingest)."""

from __future__ import annotations

import sys
from pathlib import Path

_INGEST = str(Path(__file__).resolve().parents[1] / "ingest")
if _INGEST not in sys.path:
    sys.path.insert(0, _INGEST)
