"""Benchmark the compiled router against the reference router on seeded synthetic route sets.

    python benchmarks/bench_router.py            # full: 100,000 emails per route set (a few minutes)
    python benchmarks/bench_router.py --quick    # CI: a couple of thousand emails, well under 30 s

Route sets of 10, 100, 1,000 and 10,000 routes come from ``enate_routing.testing.synthetic`` (the same
generator the design-guard tests use); each set gets its own seeded emails, the same for both routers. The
reference router checks every route one by one, so it is timed on the first emails of each set only (its
per-email time is what is compared). Rounds are interleaved across sets and routers and the median per-email
time of the rounds is reported, which damps the noise of a shared machine. Prints a table, the targets with
PASS/FAIL, and one JSON line; exits 1 when the two routers disagree on any email (never because of timings).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from typing import Any

from enate_routing.envelope import Envelope
from enate_routing.loading import load_config
from enate_routing.matcher import MatchCounters
from enate_routing.model import Config
from enate_routing.router import Router
from enate_routing.testing import ReferenceRouter, synthetic_config, synthetic_envelopes

SIZES = (10, 100, 1_000, 10_000)


@dataclass
class Plan:
    emails: int
    reference_emails: dict[int, int]
    rounds: int
    compile_rounds: int


FULL = Plan(100_000, {10: 5_000, 100: 2_000, 1_000: 400, 10_000: 60}, rounds=5, compile_rounds=3)
QUICK = Plan(2_000, {10: 500, 100: 200, 1_000: 40, 10_000: 8}, rounds=3, compile_rounds=1)


@dataclass
class Measured:
    size: int
    config: Config
    envelopes: list[Envelope]
    compiled: Router
    reference: ReferenceRouter
    route_us: list[float] = field(default_factory=list)
    reference_us: list[float] = field(default_factory=list)
    compile_ms: list[float] = field(default_factory=list)
    bytes_per_route: float = 0.0
    mismatches: int = 0
    full_checks_per_email: float = 0.0
    probes_per_email: float = 0.0


def _per_email(work: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) / count * 1e6


def _retained_bytes(config: Config) -> float:
    """Bytes still allocated after ``Router.compile`` (the router kept alive), per route."""
    gc.collect()
    tracemalloc.start()
    router = Router.compile(config)
    retained = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del router
    return retained / max(1, len(config.routes))


def _route_all(router: Router | ReferenceRouter, envelopes: Sequence[Envelope]) -> list[Any]:
    return [router.route(envelope) for envelope in envelopes]


def measure(plan: Plan, sizes: Sequence[int] = SIZES, log: Callable[[str], None] | None = None) -> list[Measured]:
    results: list[Measured] = []
    for size in sizes:
        if log:
            log(f"generating {size} routes and {plan.emails} emails")
        config = synthetic_config(size, seed=size)
        envelopes = synthetic_envelopes(config, plan.emails, seed=size)
        results.append(Measured(size, config, envelopes, Router.compile(config), ReferenceRouter(config)))
    for m in results:  # agreement and instrumentation, before any timing
        sample = m.envelopes[: plan.reference_emails[m.size]]
        compiled = _route_all(m.compiled, sample)
        m.mismatches = sum(a != b for a, b in zip(compiled, _route_all(m.reference, sample), strict=True))
        counters = MatchCounters()
        for envelope in m.envelopes:
            m.compiled.route(envelope, counters=counters)
        m.full_checks_per_email = counters.full_rule_checks / counters.emails
        m.probes_per_email = counters.probes / counters.emails
        m.bytes_per_route = _retained_bytes(m.config)
    for round_number in range(plan.rounds):  # interleaved: every set and router in every round
        if log:
            log(f"round {round_number + 1}/{plan.rounds}")
        for m in results:
            m.route_us.append(_per_email(partial(_route_all, m.compiled, m.envelopes), len(m.envelopes)))
            sample = m.envelopes[: plan.reference_emails[m.size]]
            m.reference_us.append(_per_email(partial(_route_all, m.reference, sample), len(sample)))
            if round_number < plan.compile_rounds:
                start = time.perf_counter()
                Router.compile(m.config)
                m.compile_ms.append((time.perf_counter() - start) * 1e3)
    return results


def parsing_versus_routing(rounds: int) -> dict[str, float]:
    """Median per-message time of Envelope.from_bytes and of routing, on the bundled demo mailbox."""
    data = resources.files("enate_routing") / "data"
    with resources.as_file(data) as folder:
        router = Router.compile(load_config(folder / "demo.toml", verify_certificates=False))
        raws = [path.read_bytes() for path in sorted((folder / "demo_mail").glob("*.eml"))]
    envelopes = [Envelope.from_bytes(raw) for raw in raws]
    repeat = 50
    parse = [_per_email(lambda: [Envelope.from_bytes(raw) for raw in raws * repeat], len(raws) * repeat)
             for _ in range(rounds)]
    route = [_per_email(lambda: [router.route(e) for e in envelopes * repeat], len(raws) * repeat)
             for _ in range(rounds)]
    return {"parse_us": statistics.median(parse), "route_us": statistics.median(route)}


def targets(results: Sequence[Measured]) -> list[tuple[str, float, str, bool]]:
    by = {m.size: m for m in results}
    med = statistics.median

    def speedup(size: int) -> float:
        return med(by[size].reference_us) / med(by[size].route_us)

    found: list[tuple[str, float, str, bool]] = []
    if 10_000 in by:
        found.append(("compiled vs reference at 10,000 routes", speedup(10_000), "≥ 100×", speedup(10_000) >= 100))
    if 1_000 in by:
        found.append(("compiled vs reference at 1,000 routes", speedup(1_000), "≥ 20×", speedup(1_000) >= 20))
    if {10, 10_000} <= by.keys():
        ratio = med(by[10_000].route_us) / med(by[10].route_us)
        found.append(("compiled: 10,000 routes / 10 routes", ratio, "≤ 3×", ratio <= 3))
    if {1_000, 10_000} <= by.keys():
        ratio = med(by[10_000].route_us) / med(by[1_000].route_us)
        found.append(("compiled: 10,000 routes / 1,000 routes", ratio, "≤ 1.3×", ratio <= 1.3))
        ratio = med(by[10_000].compile_ms) / med(by[1_000].compile_ms)
        found.append(("compile time: 10,000 / 1,000 routes", ratio, "≤ 15×", ratio <= 15))
    for size in (1_000, 10_000):
        if size in by:
            found.append((f"retained bytes per route at {size:,}", by[size].bytes_per_route, "< 1024",
                          by[size].bytes_per_route < 1024))
    worst = max(m.full_checks_per_email for m in results)
    found.append(("full rule checks per email (compiled)", worst, "≤ 0.5", worst <= 0.5))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run for CI (timings indicative only)")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=SIZES,
                        help="comma-separated route counts (default 10,100,1000,10000)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    progress = sys.stderr.isatty()
    started = time.perf_counter()
    results = measure(plan, args.sizes, (lambda text: print(text, file=sys.stderr)) if progress else None)
    parsing = parsing_versus_routing(plan.rounds)

    med = statistics.median
    print(f"{'routes':>7}  {'emails':>7}  {'compiled µs':>11}  {'reference µs':>12}  {'speed-up':>9}  "
          f"{'compile ms':>10}  {'B/route':>8}  {'probes':>6}  {'full checks':>11}  {'disagree':>8}")
    for m in results:
        print(f"{m.size:>7,}  {len(m.envelopes):>7,}  {med(m.route_us):>11.2f}  {med(m.reference_us):>12.1f}  "
              f"{med(m.reference_us) / med(m.route_us):>8.0f}×  {med(m.compile_ms):>10.1f}  "
              f"{m.bytes_per_route:>8.0f}  {m.probes_per_email:>6.1f}  {m.full_checks_per_email:>11.2f}  "
              f"{m.mismatches:>8}")
    print(f"demo mailbox: Envelope.from_bytes {parsing['parse_us']:.1f} µs/message, route "
          f"{parsing['route_us']:.1f} µs/message ({parsing['parse_us'] / parsing['route_us']:.1f}× parse/route)")
    print("targets:")
    checked = targets(results)
    for name, value, goal, ok in checked:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value:,.2f} (target {goal})")
    disagreements = sum(m.mismatches for m in results)
    summary = {
        "mode": "quick" if args.quick else "full",
        "seconds": round(time.perf_counter() - started, 1),
        "sizes": [{"routes": m.size, "emails": len(m.envelopes), "compiled_us": round(med(m.route_us), 3),
                   "reference_us": round(med(m.reference_us), 2), "compile_ms": round(med(m.compile_ms), 2),
                   "bytes_per_route": round(m.bytes_per_route), "probes_per_email": round(m.probes_per_email, 2),
                   "full_rule_checks_per_email": m.full_checks_per_email, "disagreements": m.mismatches}
                  for m in results],
        "parsing": {k: round(v, 2) for k, v in parsing.items()},
        "targets": {name: {"value": round(value, 3), "target": goal, "pass": ok} for name, value, goal, ok in checked},
        "routers_agree": disagreements == 0,
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if disagreements == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
