"""Benchmark ``check``'s shadowing analysis on many routes of one address (issue: quadratic ``check``).

    python benchmarks/bench_check.py            # 1,000 / 10,000 / 100,000 routes on one address, and `check`
    python benchmarks/bench_check.py --quick    # CI: 100 / 1,000 / 5,000 routes, `check` of 2,000

For each size, seeded routes from ``enate_routing.testing.synthetic_config(n, addresses=1)`` (every route on
one address: the worst case for a per-address comparison) are analysed by ``find_shadowed``; the growth
ratio of the largest to the smallest size is printed next to the linear ratio. The pairwise definition
(every later route against every earlier one) is timed at the smallest sizes for comparison, and must give
the same findings. Then the whole ``enate-routing check`` of a 10,000-route file is timed end to end
(loading and validation included; target < 5 s). Times are CPU seconds of this process
(``time.process_time``), so other jobs on a shared machine inflate them less. Prints a table and one JSON
line (``--json FILE`` also writes it); exits 1 when the two analyses disagree, never because of a timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from enate_routing._analysis import Shadowing, find_shadowed, rules_cover
from enate_routing._cli import main as cli_main
from enate_routing._loading import save_config
from enate_routing._model import Config, IncomingRoute
from enate_routing._patterns import subject_words
from enate_routing.testing import synthetic_config


def pairwise(config: Config) -> list[Shadowing]:
    """The quadratic definition the index must agree with (the analysis before the index)."""
    found: list[Shadowing] = []
    for connector in config.connectors:
        if not connector.uses_incoming:
            continue
        earlier: dict[str, list[IncomingRoute]] = {}
        for later in config.routes_of(connector.name):
            if not later.enabled:
                continue
            group = earlier.setdefault(later.address, [])
            keywords = later.rules.subject_keywords
            if not (keywords and not any(subject_words(k) for k in keywords)):
                first = next((f for f in group if rules_cover(f.rules, later.rules)), None)
                if first is not None:
                    found.append(Shadowing(connector.name, later.name, first.name, later.address))
            group.append(later)
    return found


def _timed(function: object, config: Config) -> tuple[float, list[Shadowing]]:
    start = time.process_time()
    result: list[Shadowing] = function(config)  # type: ignore[operator]  # one of the two analyses
    return time.process_time() - start, result


def check_seconds(config: Config) -> float:
    """``enate-routing check --config FILE`` in-process, end to end, for ``config`` saved as TOML."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "routes.toml"
        save_config(config, path)
        start = time.process_time()
        with redirect_stdout(StringIO()):
            code = cli_main(["check", "--config", str(path)])
        elapsed = time.process_time() - start
    if code != 0:
        raise SystemExit(f"check exited {code}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for CI")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON summary to FILE")
    args = parser.parse_args(argv)
    sizes = (100, 1_000, 5_000) if args.quick else (1_000, 10_000, 100_000)
    pairwise_limit = 1_000 if args.quick else 2_000
    check_size = 2_000 if args.quick else 10_000
    rows = []
    agree = True
    print(f"{'routes':>8}  {'indexed s':>9}  {'pairwise s':>10}  {'shadowed':>8}")
    for size in sizes:
        config = synthetic_config(size, seed=size, addresses=1)
        indexed, found = _timed(find_shadowed, config)
        reference = None
        if size <= pairwise_limit:
            reference, expected = _timed(pairwise, config)
            agree = agree and found == expected
        rows.append({"routes": size, "indexed_s": round(indexed, 4), "shadowed": len(found),
                     "pairwise_s": None if reference is None else round(reference, 4)})
        shown = "-" if reference is None else f"{reference:.3f}"
        print(f"{size:>8,}  {indexed:>9.3f}  {shown:>10}  {len(found):>8,}")
    growth = rows[-1]["indexed_s"] / max(rows[0]["indexed_s"], 1e-9)  # type: ignore[operator]
    linear = sizes[-1] / sizes[0]
    print(f"growth {sizes[-1]:,} / {sizes[0]:,} routes: {growth:.0f}× (linear would be {linear:.0f}×)")
    check = check_seconds(synthetic_config(check_size, seed=check_size, addresses=1))
    print(f"enate-routing check, {check_size:,} routes on one address: {check:.2f} s (target < 5 s at 10,000)")
    summary = {"mode": "quick" if args.quick else "full", "sizes": rows, "growth": round(growth, 1),
               "linear_growth": linear, "check_routes": check_size, "check_s": round(check, 2),
               "analyses_agree": agree}
    line = json.dumps(summary)
    print(line)
    if args.json is not None:
        args.json.write_text(line + "\n", encoding="utf-8")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
