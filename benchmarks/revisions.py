"""Another revision of this repository beside this one, on the very same mail (docs/routing.md, Benchmark).

``bench_instructions.py`` counts the instructions of both routers and ``bench_router.py --baseline`` times
both; each runs this file as a child process whose ``sys.path`` holds a revision's ``src`` (another revision's
exported with ``git archive``), which reads the seeded raw messages this revision wrote to a file, so the two
route exactly the same bytes:

    python benchmarks/revisions.py route SIZE REPEATS FILE   # route every message REPEATS times
    python benchmarks/revisions.py time SIZE ROUNDS FILE     # one warm-up round, then ROUNDS timed: JSON

The speed targets were set against ``f6808b7^`` on the machine where they were measured: 12.6 µs per
message at 10 routes and 19.4 at 10,000, targets 7 and 8 µs. As a share of that revision's cost, measured
in the same run, they can be checked on any machine.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cpu_time import cpu_us_per_item

CONNECTOR = "Support"
TARGET_REVISION = "f6808b7^"
# Where the targets were set: that revision's µs per message, and the target, at 10 and 10,000 routes.
TARGET_US = {10: (12.6, 7.0), 10_000: (19.4, 8.0)}
_ROOT = Path(__file__).resolve().parent.parent


def target_share(size: int) -> float | None:
    """The target at ``size`` routes as a share of :data:`TARGET_REVISION`'s cost, or None without a target."""
    if size not in TARGET_US:
        return None
    measured_us, target_us = TARGET_US[size]
    return target_us / measured_us


def export_source(revision: str, directory: Path) -> Path:
    """``src`` of ``revision`` of this repository, unpacked into ``directory``."""
    try:
        done = subprocess.run(["git", "-C", str(_ROOT), "archive", "--format=tar", revision, "src"],  # noqa: S603, S607
                              capture_output=True, check=False)
    except OSError as exc:  # no git on PATH
        raise SystemExit(f"--baseline {revision}: cannot run git ({exc.strerror})") from None
    if done.returncode != 0:
        raise SystemExit(f"--baseline {revision}: git archive failed: {done.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(directory, filter="data")
    return directory / "src"


def run_child(mode: str, size: int, count: int, raw_file: Path, source: Path | None = None,
              wrapper: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Run this file as a child (``mode`` ``route`` or ``time``) with the package of ``source`` (a ``src``
    directory; None: this checkout's), under ``wrapper`` (valgrind, say). Raises SystemExit when it fails.

    A fixed hash seed: set and dict orders (and so the work of a set intersection) are the same every run.
    """
    path = os.pathsep.join([str(source if source is not None else _ROOT / "src"), str(Path(__file__).parent)])
    command = [*wrapper, sys.executable, __file__, mode, str(size), str(count), str(raw_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,  # noqa: S603 — our own argv
                          env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path})
    if done.returncode != 0:
        raise SystemExit(f"the routing child failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    return done


def write_messages(size: int, messages: int, directory: Path) -> Path:
    """The seeded raw messages of one route set (``bench_router.py``'s), as a file any revision can read."""
    from enate_routing.testing import synthetic_config
    from synthetic_mail import raw_messages

    path = directory / f"messages-{size}.json"
    raws = raw_messages(synthetic_config(size, seed=size), messages, seed=size)
    path.write_text(json.dumps([raw.hex() for raw in raws]), encoding="ascii")
    return path


def load_routing(size: int, raw_file: str) -> tuple[Any, list[Any], str]:
    """In a child: the router of route set ``size``, the envelopes of ``raw_file``, and a fingerprint of the
    routes (the same on both sides, or the two revisions route different configurations).

    The package on ``sys.path`` may be an older revision, laid out before the modules became private: hence
    the second import spelling.
    """
    try:
        from enate_routing._envelope import Envelope
        from enate_routing._router import Router
    except ImportError:
        from enate_routing.envelope import Envelope  # type: ignore[no-redef]
        from enate_routing.router import Router  # type: ignore[no-redef]
    from enate_routing.testing import synthetic_config

    raws = json.loads(Path(raw_file).read_text(encoding="ascii"))
    envelopes = [Envelope.from_bytes(bytes.fromhex(raw)) for raw in raws]
    config = synthetic_config(size, seed=size)
    routes = "\n".join(f"{route.name}\t{route.address}" for route in config.routes)
    return Router.compile(config), envelopes, hashlib.sha256(routes.encode()).hexdigest()[:16]


def main(argv: Sequence[str]) -> int:
    mode, size, count, raw_file = argv
    router, envelopes, fingerprint = load_routing(int(size), raw_file)
    if mode == "route":
        for _ in range(int(count)):
            for envelope in envelopes:
                router.route(envelope, CONNECTOR)
        return 0
    # Each round's results kept in a list, as bench_router.py's own rounds keep them.
    def one_round() -> object:
        return [router.route(envelope, CONNECTOR) for envelope in envelopes]

    one_round()  # warm-up: first calls, caches
    timed = [cpu_us_per_item(one_round, len(envelopes)) for _ in range(int(count))]
    print(json.dumps({"fingerprint": fingerprint, "us": timed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
