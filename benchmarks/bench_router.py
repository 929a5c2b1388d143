"""Benchmark the compiled router against a plain scan and the reference router, side by side in one run.

    python benchmarks/bench_router.py                     # full: 2,000 raw messages per route set, 7 rounds
    python benchmarks/bench_router.py --quick             # CI: the same sets, fewer rounds and samples
    python benchmarks/bench_router.py --json result.json  # also write the summary as JSON
    python benchmarks/bench_router.py --baseline 'f6808b7^'  # also time that revision's router, side by side
    python benchmarks/bench_router.py --baseline 'f6808b7^' --turns 36  # more turns: a steadier share

Route sets of 10, 1,000 and 10,000 routes come from ``enate_routing.testing.synthetic_config`` (seeded; the
same generator the design-guard tests use). Each set gets 2,000 seeded raw messages
(``benchmarks/synthetic_mail.py``: about 70% built to satisfy some route, about 30% reaching the fallback),
parsed once with ``Envelope.from_bytes`` before anything is timed. Three routers see the same mail:

* the compiled ``Router.route`` — the full procedure: follow-ups, decisions, idempotency keys, acknowledgements;
* ``PlainScan`` — the honest baseline: every route of the connector in order over facts extracted beforehand
  (matching only, no decisions), so the speed-up over it is conservative;
* ``ReferenceRouter`` — the oracle written for obviousness (re-parses patterns per check), on a sample.

Rounds are interleaved across sets and routers and the median per-message CPU time of this process is reported
(``time.process_time``: on a shared machine, time spent waiting for a core is not counted). Agreement is
checked before timing: the compiled router must equal the reference router on the sample and choose the same
(address, route) as the plain scan on every message. Prints a table, the targets with PASS/FAIL, and one JSON
line; exits 1 when the routers disagree on any message (never because of a timing).

``--baseline REV`` also times the router of an older revision of this repository on the very same raw
messages: this revision and REV each route them in child processes, taking turns (``benchmarks/revisions.py``).
Against ``f6808b7^``, where the targets of 7 µs and 8 µs were set (12.6 µs and 19.4 µs there), the targets
become shares of that revision's time — 0.556 and 0.412 — which any machine can check in one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cpu_time import cpu_us_per_item
from enate_routing._cli._poll import positive_int
from enate_routing._envelope import Envelope
from enate_routing._matcher import MatchCounters
from enate_routing._model import Config
from enate_routing._router import Router
from enate_routing.testing import PlainScan, ReferenceRouter, synthetic_config
from enate_routing.testing._reference import ScanFacts
from revisions import CONNECTOR, TARGET_REVISION, export_source, run_child, target_share, write_messages
from synthetic_mail import raw_messages

SIZES = (10, 1_000, 10_000)
MESSAGES = 2_000


@dataclass
class Plan:
    rounds: int
    scan_messages: dict[int, int]  # per route set: how many messages the plain scan is timed on
    reference_messages: dict[int, int]
    alternations: int = 9  # --baseline: child processes per revision and route set, taking turns
    child_rounds: int = 2  # timed rounds in each


FULL = Plan(7, {10: 2_000, 1_000: 2_000, 10_000: 2_000}, {10: 2_000, 1_000: 400, 10_000: 60})
QUICK = Plan(3, {10: 2_000, 1_000: 400, 10_000: 100}, {10: 300, 1_000: 30, 10_000: 4}, 1, 2)


@dataclass
class Measured:
    size: int
    config: Config
    envelopes: list[Envelope]
    router: Router
    scan: PlainScan
    facts: list[ScanFacts]
    reference: ReferenceRouter
    route_us: list[float] = field(default_factory=list)
    scan_us: list[float] = field(default_factory=list)
    reference_us: list[float] = field(default_factory=list)
    compile_ms: float = 0.0
    bytes_per_route: float = 0.0
    fallback_share: float = 0.0
    disagreements: int = 0
    probes_per_message: float = 0.0
    full_checks_per_message: float = 0.0


def _retained_bytes(config: Config) -> float:
    """Bytes still allocated after ``Router.compile`` (the router kept alive), per route."""
    gc.collect()
    tracemalloc.start()
    router = Router.compile(config)
    retained = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del router
    return retained / max(1, len(config.routes))


def _chosen(router: Router, envelope: Envelope) -> list[tuple[str, str]]:
    return [(d.address, d.route or "") for d in router.route(envelope, CONNECTOR).decisions if d.action == "create"]


def prepare(size: int, log: Callable[[str], None] | None) -> Measured:
    if log:
        log(f"generating {size:,} routes and {MESSAGES:,} raw messages")
    config = synthetic_config(size, seed=size)
    envelopes = [Envelope.from_bytes(raw) for raw in raw_messages(config, MESSAGES, seed=size)]
    start = time.perf_counter()
    router = Router.compile(config)
    compile_ms = (time.perf_counter() - start) * 1e3
    scan = PlainScan(config, CONNECTOR)
    measured = Measured(size, config, envelopes, router, scan, [scan.facts(e) for e in envelopes],
                        ReferenceRouter(config), compile_ms=compile_ms)
    counters = MatchCounters()
    results = [router.route(envelope, CONNECTOR, counters=counters) for envelope in envelopes]
    measured.probes_per_message = counters.probes / counters.emails
    measured.full_checks_per_message = counters.full_rule_checks / counters.emails
    measured.fallback_share = sum(r.decisions[0].fallback for r in results) / len(results)
    measured.bytes_per_route = _retained_bytes(config)
    return measured


def check_agreement(m: Measured, plan: Plan) -> None:
    """Compiled == reference on the reference sample; same (address, route) as the plain scan on every message."""
    sample = m.envelopes[: plan.reference_messages[m.size]]
    m.disagreements = sum(m.router.route(e, CONNECTOR) != m.reference.route(e, CONNECTOR) for e in sample)
    m.disagreements += sum(_chosen(m.router, e) != m.scan.chosen(f) for e, f in zip(m.envelopes, m.facts, strict=True))


def time_round(m: Measured, plan: Plan) -> None:
    router, envelopes = m.router, m.envelopes
    m.route_us.append(cpu_us_per_item(lambda: [router.route(e, CONNECTOR) for e in envelopes], len(envelopes)))
    facts = m.facts[: plan.scan_messages[m.size]]
    m.scan_us.append(cpu_us_per_item(lambda: [m.scan.chosen(f) for f in facts], len(facts)))
    sample = envelopes[: plan.reference_messages[m.size]]
    m.reference_us.append(cpu_us_per_item(lambda: [m.reference.route(e, CONNECTOR) for e in sample], len(sample)))


def versus_revision(sizes: Sequence[int], plan: Plan, revision: str,
                    log: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """This revision's router and ``revision``'s on the same raw messages, in child processes taking turns."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-router-") as temporary:
        directory = Path(temporary)
        source = export_source(revision, directory / "baseline")
        for size in sizes:
            raw_file = write_messages(size, MESSAGES, directory)
            ours: list[float] = []
            theirs: list[float] = []
            prints: set[str] = set()
            for turn in range(plan.alternations):
                if log:
                    log(f"{size:,} routes: this revision and {revision}, turn {turn + 1}/{plan.alternations}")
                for times, side in ((ours, None), (theirs, source)):
                    found = json.loads(run_child("time", size, plan.child_rounds, raw_file, side).stdout)
                    fingerprint, timed = found["fingerprint"], found["us"]
                    prints.add(fingerprint)
                    times.extend(timed)
            now, before = statistics.median(ours), statistics.median(theirs)
            share = target_share(size) if revision == TARGET_REVISION else None
            rows.append({"routes": size, "now_us": round(now, 3), "baseline_us": round(before, 3),
                         "share": round(now / before, 3), "target_share": None if share is None else round(share, 3),
                         "same_routes": len(prints) == 1})
    return rows


def targets(results: Sequence[Measured]) -> list[tuple[str, float, str, bool]]:
    by = {m.size: m for m in results}
    med = statistics.median
    found: list[tuple[str, float, str, bool]] = []
    if 10 in by:
        found.append(("compiled µs/message at 10 routes", med(by[10].route_us), "≤ 7", med(by[10].route_us) <= 7))
    if 10_000 in by:
        m = by[10_000]
        found.append(("compiled µs/message at 10,000 routes", med(m.route_us), "≤ 8", med(m.route_us) <= 8))
        ratio = med(m.scan_us) / med(m.route_us)
        found.append(("plain scan / compiled at 10,000 routes", ratio, "≥ 100×", ratio >= 100))
    for size in (1_000, 10_000):
        if size in by:
            found.append((f"retained bytes per route at {size:,}", by[size].bytes_per_route, "< 1024",
                          by[size].bytes_per_route < 1024))
    worst = max(m.full_checks_per_message for m in results)
    found.append(("full rule checks per message (compiled)", worst, "≤ 0.5", worst <= 0.5))
    return found


def summary_of(results: Sequence[Measured], quick: bool, seconds: float) -> dict[str, Any]:
    med = statistics.median
    checked = targets(results)
    return {
        "mode": "quick" if quick else "full",
        "seconds": round(seconds, 1),
        "timer": "process_time",
        "sizes": [{
            "routes": m.size, "messages": len(m.envelopes), "fallback_share": round(m.fallback_share, 3),
            "compiled_us": round(med(m.route_us), 3), "plain_scan_us": round(med(m.scan_us), 2),
            "reference_us": round(med(m.reference_us), 2),
            "scan_over_compiled": round(med(m.scan_us) / med(m.route_us), 1),
            "reference_over_compiled": round(med(m.reference_us) / med(m.route_us), 1),
            "compile_ms": round(m.compile_ms, 2), "bytes_per_route": round(m.bytes_per_route),
            "probes_per_message": round(m.probes_per_message, 2),
            "full_rule_checks_per_message": m.full_checks_per_message, "disagreements": m.disagreements,
        } for m in results],
        "targets": {name: {"value": round(value, 3), "target": goal, "pass": ok} for name, value, goal, ok in checked},
        "routers_agree": all(m.disagreements == 0 for m in results),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and samples, for CI (indicative only)")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=SIZES,
                        help="comma-separated route counts (default 10,1000,10000)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON summary to FILE")
    parser.add_argument("--baseline", metavar="REV",
                        help=f"also time revision REV (git) on the same mail, e.g. {TARGET_REVISION}")
    parser.add_argument("--turns", type=positive_int, metavar="N",
                        help=f"with --baseline: child processes per revision and route set (default "
                             f"{FULL.alternations}, --quick {QUICK.alternations}); more give a steadier share")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.turns is not None:
        plan = replace(plan, alternations=args.turns)
    for table in (plan.scan_messages, plan.reference_messages):
        for size in args.sizes:
            table.setdefault(size, min(MESSAGES, max(8, 200_000 // max(size, 1))))
    log = (lambda text: print(text, file=sys.stderr)) if sys.stderr.isatty() else None
    started = time.perf_counter()
    # Children first: an unknown revision stops the run before anything else is timed.
    versus = versus_revision(args.sizes, plan, args.baseline, log) if args.baseline else []
    results = [prepare(size, log) for size in args.sizes]
    for m in results:
        check_agreement(m, plan)
    for round_number in range(plan.rounds):  # interleaved: every set and router in every round
        if log:
            log(f"round {round_number + 1}/{plan.rounds}")
        for m in results:
            time_round(m, plan)
    summary = summary_of(results, args.quick, time.perf_counter() - started)
    if args.baseline:
        summary["baseline"] = {"revision": args.baseline, "turns": plan.alternations,
                               "rounds_per_turn": plan.child_rounds, "sizes": versus}
        for row in versus:
            if row["target_share"] is not None:
                summary["targets"][f"compiled / {args.baseline} at {row['routes']:,} routes (same run)"] = {
                    "value": row["share"], "target": f"≤ {row['target_share']}",
                    "pass": row["share"] <= row["target_share"]}

    print(f"{'routes':>7}  {'fallback':>8}  {'compiled µs':>11}  {'scan µs':>9}  {'scan/compiled':>13}  "
          f"{'reference µs':>12}  {'ref/compiled':>12}  {'compile ms':>10}  {'B/route':>7}  {'probes':>6}  "
          f"{'disagree':>8}")
    for row in summary["sizes"]:
        print(f"{row['routes']:>7,}  {row['fallback_share']:>8.0%}  {row['compiled_us']:>11.2f}  "
              f"{row['plain_scan_us']:>9.1f}  {row['scan_over_compiled']:>12.0f}×  {row['reference_us']:>12.1f}  "
              f"{row['reference_over_compiled']:>11.0f}×  {row['compile_ms']:>10.1f}  {row['bytes_per_route']:>7}  "
              f"{row['probes_per_message']:>6.1f}  {row['disagreements']:>8}")
    if versus:
        print(f"versus {args.baseline}, each in child processes taking turns (median of "
              f"{plan.alternations * plan.child_rounds} rounds each):")
        print(f"{'routes':>7}  {'now µs':>8}  {args.baseline + ' µs':>14}  {'now / before':>12}  {'target':>8}")
        for row in versus:
            target = "" if row["target_share"] is None else f"≤ {row['target_share']}"
            same = "" if row["same_routes"] else "  (the revisions built different routes: not comparable)"
            print(f"{row['routes']:>7,}  {row['now_us']:>8.2f}  {row['baseline_us']:>14.2f}  {row['share']:>12.3f}  "
                  f"{target:>8}{same}")
    print("targets:")
    for name, result in summary["targets"].items():
        print(f"  {'PASS' if result['pass'] else 'FAIL'}  {name}: {result['value']:,.2f} (target {result['target']})")
    line = json.dumps(summary, ensure_ascii=False)
    print(line)
    if args.json is not None:
        args.json.write_text(line + "\n", encoding="utf-8")
    comparable = all(row["same_routes"] for row in versus)
    return 0 if summary["routers_agree"] and comparable else 1


if __name__ == "__main__":
    sys.exit(main())
