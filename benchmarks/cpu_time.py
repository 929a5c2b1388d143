"""The benchmarks' one clock: CPU time of this process per item (``time.process_time``), so that on a shared
machine the time spent waiting for a core is not counted. Imports nothing from the package: a child routing
an older revision (``revisions.py``) uses it too."""

from __future__ import annotations

import time
from collections.abc import Callable


def cpu_us_per_item(work: Callable[[], object], count: int) -> float:
    """CPU µs per item of one call of ``work``, which handles ``count`` items."""
    start = time.process_time()
    work()
    return (time.process_time() - start) / count * 1e6
