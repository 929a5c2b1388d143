"""What a host pays per message: raw bytes → ``Envelope.from_bytes`` → ``Router.route`` → decisions.

    python benchmarks/bench_end_to_end.py                     # demo mailbox + 10 / 1,000 / 10,000 routes
    python benchmarks/bench_end_to_end.py --quick             # CI: fewer messages and rounds
    python benchmarks/bench_end_to_end.py --json result.json  # also write the summary as JSON

Two kinds of mail: the bundled demo mailbox (``enate_routing/data/demo_mail``, 35 real-looking messages through
``demo.toml`` with its work items, so follow-ups, auto-replies and bounces are in it), and the seeded synthetic
sets of ``bench_router.py`` (``benchmarks/synthetic_mail.py``: 2,000 raw messages per route set, about 30% to
the fallback). For each, rounds time the parse alone, the routing of the parsed envelopes alone, and the
whole path in one loop; medians of the per-message CPU time of this process (``time.process_time``) are
reported with the parse share (parse / (parse + route)). Prints a table and one JSON line; exits 1 if the
end-to-end decisions differ from parse-then-route (never because of a timing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from cpu_time import cpu_us_per_item
from enate_routing._decision import RoutingResult
from enate_routing._envelope import Envelope
from enate_routing._loading import load_config
from enate_routing._parse_limits import ParseLimits
from enate_routing._router import Router
from enate_routing.testing import InMemoryWorkItems, synthetic_config
from synthetic_mail import raw_messages


@dataclass
class Workload:
    name: str
    router: Router
    raws: list[bytes]
    limits: ParseLimits
    connector: str | None = None
    parse_us: list[float] = field(default_factory=list)
    route_us: list[float] = field(default_factory=list)
    total_us: list[float] = field(default_factory=list)
    agree: bool = True

    def parse_all(self) -> list[Envelope]:
        return [Envelope.from_bytes(raw, limits=self.limits) for raw in self.raws]

    def route_all(self, envelopes: Sequence[Envelope]) -> list[RoutingResult]:
        return [self.router.route(envelope, self.connector) for envelope in envelopes]

    def end_to_end(self) -> list[RoutingResult]:
        route, limits, connector = self.router.route, self.limits, self.connector
        return [route(Envelope.from_bytes(raw, limits=limits), connector) for raw in self.raws]


def demo_workload(repeat: int) -> Workload:
    """The demo mailbox, ``repeat`` times over (so a round is long enough to time)."""
    data = resources.files("enate_routing") / "data"
    with resources.as_file(data) as folder:
        config = load_config(folder / "demo.toml", verify_certificates=False)
        memory = json.loads((folder / "demo_work_items.json").read_text(encoding="utf-8"))
        raws = [path.read_bytes() for path in sorted((folder / "demo_mail").glob("*.eml"))]
    lookup = InMemoryWorkItems(memory.get("work_items", ()))
    for message_id, known in memory.get("messages", {}).items():
        lookup.remember(message_id, known["work_item"], known["address"], generated=bool(known.get("generated")))
    router = Router.compile(config, lookup=lookup)
    return Workload(f"demo mailbox ({len(raws)} messages)", router, raws * repeat, config.limits.parse_limits())


def synthetic_workload(routes: int, messages: int) -> Workload:
    config = synthetic_config(routes, seed=routes)
    raws = raw_messages(config, messages, seed=routes)
    return Workload(f"synthetic, {routes:,} routes", Router.compile(config), raws, config.limits.parse_limits(),
                    "Support")


def measure(workloads: Sequence[Workload], rounds: int) -> None:
    for w in workloads:  # agreement first: the one-loop path decides what parse-then-route decides
        w.agree = w.end_to_end() == w.route_all(w.parse_all())
    for _ in range(rounds):  # interleaved rounds
        for w in workloads:
            count = len(w.raws)
            envelopes = w.parse_all()
            w.parse_us.append(cpu_us_per_item(w.parse_all, count))
            w.route_us.append(cpu_us_per_item(partial(w.route_all, envelopes), count))
            w.total_us.append(cpu_us_per_item(w.end_to_end, count))


def summary_of(workloads: Sequence[Workload], quick: bool) -> dict[str, Any]:
    med = statistics.median
    rows = []
    for w in workloads:
        parse, route = med(w.parse_us), med(w.route_us)
        rows.append({"workload": w.name, "messages": len(w.raws), "end_to_end_us": round(med(w.total_us), 2),
                     "parse_us": round(parse, 2), "route_us": round(route, 2),
                     "parse_share": round(parse / (parse + route), 3), "agree": w.agree})
    return {"mode": "quick" if quick else "full", "timer": "process_time", "workloads": rows,
            "all_agree": all(w.agree for w in workloads)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds, for CI (indicative only)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON summary to FILE")
    args = parser.parse_args(argv)
    messages, rounds, repeat = (300, 2, 4) if args.quick else (2_000, 5, 30)
    workloads = [demo_workload(repeat)] + [synthetic_workload(size, messages) for size in (10, 1_000, 10_000)]
    measure(workloads, rounds)
    summary = summary_of(workloads, args.quick)
    print(f"{'workload':<34}  {'messages':>8}  {'end to end µs':>13}  {'parse µs':>9}  {'route µs':>9}  "
          f"{'parse share':>11}")
    for row in summary["workloads"]:
        print(f"{row['workload']:<34}  {row['messages']:>8,}  {row['end_to_end_us']:>13.1f}  {row['parse_us']:>9.1f}  "
              f"{row['route_us']:>9.1f}  {row['parse_share']:>11.0%}")
    line = json.dumps(summary, ensure_ascii=False)
    print(line)
    if args.json is not None:
        args.json.write_text(line + "\n", encoding="utf-8")
    return 0 if summary["all_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
