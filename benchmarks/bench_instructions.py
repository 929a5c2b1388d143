"""Count the machine instructions one ``Router.route`` costs, with valgrind: a measure the machine's load cannot move.

    python benchmarks/bench_instructions.py                  # 10, 1,000 and 10,000 routes
    python benchmarks/bench_instructions.py --quick          # CI: 10 routes, 100 messages
    python benchmarks/bench_instructions.py --sizes 10       # one route set
    python benchmarks/bench_instructions.py --json out.json  # also write the result
    python benchmarks/bench_instructions.py --baseline f6808b7^  # also count an older revision, side by side

Timings on a shared machine vary by 2× with the neighbours' work; instruction counts do not. For each route
set (``enate_routing.testing.synthetic_config``, the same seeded mail as ``bench_router.py``, 500 messages)
the script runs a child process (``benchmarks/revisions.py``) under ``valgrind --tool=cachegrind`` twice —
routing every message 2 and 4 times after the same set-up — and reports the difference per routed message:
set-up, imports and first-call warm-up cancel out (``PYTHONHASHSEED=0``: the same set orders every run).
Needs valgrind (``apt-get install valgrind``): without it the full run exits 2 and ``--quick`` only checks
that the routing child runs.

``--baseline REV`` also counts the router of an older revision of this repository (its ``src`` exported with
``git archive``) on the very same raw messages. With the revision the speed targets were set against
(``f6808b7^``: 12.6 µs per message at 10 routes and 19.4 at 10,000 on the machine where they were measured,
targets 7 and 8 µs), the targets become instruction budgets — the same share of that revision's work — which
a machine two or three times slower, or busy, can check.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from revisions import TARGET_REVISION, TARGET_US, export_source, run_child, target_share, write_messages

MESSAGES = 500


def instructions(size: int, repeats: int, raw_file: Path, source: Path | None = None) -> int:
    """Instructions a child routing every message ``repeats`` times executes in total (valgrind's ``I refs``);
    ``source``: another revision's ``src`` directory."""
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    done = run_child("route", size, repeats, raw_file, source, valgrind)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_message(size: int, raw_file: Path, messages: int, source: Path | None = None) -> float:
    """Instructions per routed message: 4 passes minus 2, so set-up and imports cancel out."""
    return (instructions(size, 4, raw_file, source) - instructions(size, 2, raw_file, source)) / (2 * messages)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=(10, 1_000, 10_000))
    parser.add_argument("--quick", action="store_true", help="10 routes, 100 messages (CI: checks that it works)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    parser.add_argument("--baseline", metavar="REV", help=f"also count revision REV (git), e.g. {TARGET_REVISION}")
    args = parser.parse_args(argv)
    sizes, messages = ((10,), 100) if args.quick else (args.sizes, MESSAGES)
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as temporary:
        directory = Path(temporary)
        files = {size: write_messages(size, messages, directory) for size in sizes}
        if shutil.which("valgrind") is None:
            print("valgrind is not installed (apt-get install valgrind): nothing counted", file=sys.stderr)
            if not args.quick:
                return 2
            run_child("route", sizes[0], 1, files[sizes[0]])  # quick mode still checks that the routing side runs
            return 0
        baseline_source = export_source(args.baseline, directory / "baseline") if args.baseline else None
        result: dict[str, dict[str, object]] = {}
        for size in sizes:
            counted = per_message(size, files[size], messages)
            row: dict[str, object] = {"instructions": round(counted)}
            line = f"{size:>7,} routes: {counted:>9,.0f} instructions per routed message"
            if baseline_source is not None:
                before = per_message(size, files[size], messages, baseline_source)
                row.update(baseline=round(before), change=round(counted / before - 1, 3))
                line += f"; {args.baseline}: {before:,.0f} ({counted / before - 1:+.0%})"
                share = target_share(size) if args.baseline == TARGET_REVISION else None
                if share is not None:
                    target_us = TARGET_US[size][1]
                    budget = before * share
                    row.update(budget=round(budget), within_budget=counted <= budget)
                    line += (f"; budget for {target_us:g} µs: {budget:,.0f} "
                             f"{'PASS' if counted <= budget else 'FAIL'}")
            result[str(size)] = row
            print(line)
    summary = json.dumps({"instructions_per_message": result, "baseline": args.baseline})
    print(summary)
    if args.json is not None:
        args.json.write_text(summary + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
