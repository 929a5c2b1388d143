"""Count the machine instructions one ``Router.route`` costs, with valgrind: a measure the machine's load cannot move.

    python benchmarks/bench_instructions.py                  # 10, 1,000 and 10,000 routes
    python benchmarks/bench_instructions.py --quick          # CI: 10 routes, 100 messages
    python benchmarks/bench_instructions.py --sizes 10       # one route set
    python benchmarks/bench_instructions.py --json out.json  # also write the result

Timings on a shared machine vary by 2× with the neighbours' work; instruction counts do not. For each route
set (``enate_routing.testing.synthetic_config``, the same seeded mail as ``bench_router.py``, 500 messages)
the script runs a child process under ``valgrind --tool=cachegrind`` twice — routing every message 2 and 4
times after the same set-up — and reports the difference per routed message: set-up, imports and first-call
warm-up cancel out (``PYTHONHASHSEED=0``: the same set orders every run). Needs valgrind
(``apt-get install valgrind``): without it the full run exits 2 and ``--quick`` only checks that the routing
child runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

MESSAGES = 500
CONNECTOR = "Support"


def child(size: int, repeats: int, messages: int) -> None:
    """Set up one route set, then route every message ``repeats`` times (run under valgrind)."""
    from enate_routing._envelope import Envelope
    from enate_routing._router import Router
    from enate_routing.testing import synthetic_config
    from synthetic_mail import raw_messages

    config = synthetic_config(size, seed=size)
    envelopes = [Envelope.from_bytes(raw) for raw in raw_messages(config, messages, seed=size)]
    router = Router.compile(config)
    for _ in range(repeats):
        for envelope in envelopes:
            router.route(envelope, CONNECTOR)


def instructions(size: int, repeats: int, messages: int) -> int:
    """Instructions the child executes in total (valgrind's ``I refs``)."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, __file__, "--child", str(size), str(repeats), str(messages)]
    # A fixed hash seed: set and dict orders (and so the work of a set intersection) are the same every run.
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)  # noqa: S603 — our own argv
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=(10, 1_000, 10_000))
    parser.add_argument("--quick", action="store_true", help="10 routes, 100 messages (CI: checks that it works)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sizes, messages = ((10,), 100) if args.quick else (args.sizes, MESSAGES)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): nothing counted", file=sys.stderr)
        if not args.quick:
            return 2
        child(sizes[0], 1, messages)  # quick mode still checks that the routing side runs
        return 0
    result = {}
    for size in sizes:
        per_message = (instructions(size, 4, messages) - instructions(size, 2, messages)) / (2 * messages)
        result[str(size)] = round(per_message)
        print(f"{size:>7,} routes: {per_message:>9,.0f} instructions per routed message")
    line = json.dumps({"instructions_per_message": result})
    print(line)
    if args.json is not None:
        args.json.write_text(line + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
