"""Benchmark: the admin grid's start-with search (``RouteIndex``) against a plain linear filter (docs/semantics.md §7).

Builds a configuration of 10,000 routes over 20 connectors in-process, indexes it once (as the admin does
per configuration version), then times a mix of grid queries — narrow and broad prefixes on every
searchable column, with and without the connector filter — through the index and through
:func:`~enate_routing.admin.linear_search` (the definition: case-fold each cell, ``startswith``).
Rounds are interleaved (each query runs through the index, then the linear filter, then the next query) so
drift hits both alike; within a round a query is repeated back to back and timed per call. The table shows
medians over rounds per query and the ratio of the total query-mix time. Both sides must return identical
rows.

Target (issue 7): the index ≥ 20× faster than the linear filter over the query mix at 10,000 routes.

    python benchmarks/bench_admin_search.py            # full run
    python benchmarks/bench_admin_search.py --quick    # under a few seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from typing import Any

from enate_routing._loading import parse_config
from enate_routing._model import Config
from enate_routing.admin import RouteIndex, RouteRow, linear_search

TARGET = 20.0
PROCESSES = ["Invoice query", "Incident", "Change request", "Onboarding", "Offboarding", "Password reset",
             "Purchase order", "Payroll", "Refund", "Complaint", "Access request", "Contract renewal"]
CATEGORIES = ["Urgent", "Normal", "Low", "Billing", "Hardware", "Software", "Network", None]
PEOPLE = ["Dana", "Ali", "Chen", "María", "Jürgen", "Olu", None, None, None]
DEPARTMENTS = ["support", "billing", "hr", "it", "sales", "legal", "ops", "finance"]

# (label, filters, connector): what admins type into the grid's column filters.
QUERIES: list[tuple[str, dict[str, str], str | None]] = [
    ("address 'bil'", {"address": "bil"}, None),
    ("address 'hr12'", {"address": "hr12"}, None),
    ("address 'sup' in one connector", {"address": "sup"}, "Mailbox 07"),
    ("process 'inv'", {"process": "inv"}, None),
    ("process 'pass' + category 'urg'", {"process": "pass", "ticket_category": "urg"}, None),
    ("category 'net'", {"ticket_category": "net"}, None),
    ("for attention 'jü'", {"for_attention": "jü"}, None),
    ("test mode 'y'", {"test_mode": "y"}, None),
    ("enabled 'n'", {"enabled": "n"}, None),
    ("automated 'yes' + process 'ref'", {"send_automated_emails": "yes", "process": "ref"}, None),
    ("process 'p' (broad)", {"process": "p"}, None),
    ("one connector, no filter", {}, "Mailbox 13"),
]


def build_config(routes: int, connectors: int = 20, seed: int = 7) -> Config:
    """A valid configuration with ``routes`` incoming routes spread over ``connectors`` incoming connectors."""
    rng = random.Random(seed)
    data: dict[str, Any] = {"connectors": [], "routes": [], "fallbacks": []}
    for c in range(connectors):
        name = f"Mailbox {c:02d}"
        primary = f"box{c:02d}@acme.example"
        data["connectors"].append({
            "name": name, "service": "other", "username": primary, "primary_address": primary,
            "use_for": "incoming", "incoming": {"protocol": "imap", "host": "imap.acme.example", "port": 993,
                                                "security": "ssl"},
        })
        data["fallbacks"].append({"connector": name, "address": primary, "target": {
            "customer": "Acme", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}})
    for i in range(routes):
        wildcard = rng.random() < 0.1
        category = rng.choice(CATEGORIES)
        route: dict[str, Any] = {
            "connector": f"Mailbox {rng.randrange(connectors):02d}",
            "name": f"Route {i:05d}",
            "address": "*" if wildcard else f"{rng.choice(DEPARTMENTS)}{rng.randrange(400)}@acme.example",
            "target": {"customer": f"Customer {rng.randrange(300)}", "contract": "2026", "service": "Service",
                       "process": f"{rng.choice(PROCESSES)} {rng.randrange(50)}",
                       "kind": "ticket" if category else "case"},
            "ticket_category": category,
            "for_attention": rng.choice(PEOPLE),
            "send_automated_emails": rng.random() < 0.3,
            "test_mode": rng.random() < 0.05,
            "enabled": rng.random() < 0.9,
        }
        if wildcard:
            route["rules"] = {"senders": f"*customer{rng.randrange(300)}.example"}
        data["routes"].append(route)
    return parse_config(data)


def _time(repeat: int, function: Any, *args: Any, **kwargs: Any) -> tuple[float, tuple[RouteRow, ...]]:
    """Seconds per call, averaged over ``repeat`` back-to-back calls (one call is too short to time alone)."""
    start = time.perf_counter()
    for _ in range(repeat):
        result: tuple[RouteRow, ...] = function(*args, **kwargs)
    return (time.perf_counter() - start) / repeat, result


def run(quick: bool) -> dict[str, Any]:
    routes = 10_000
    rounds = 3 if quick else 21
    index_repeat, linear_repeat = (2, 1) if quick else (20, 3)
    started = time.perf_counter()
    config = build_config(routes)
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    index = RouteIndex(config)
    build_s = time.perf_counter() - started
    rows = index.rows

    per_query: dict[str, dict[str, list[float]]] = {label: {"index": [], "linear": []} for label, _, _ in QUERIES}
    totals: dict[str, list[float]] = {"index": [], "linear": []}
    identical = True
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        round_total = {"index": 0.0, "linear": 0.0}
        for label, filters, connector in QUERIES:  # interleaved: each query runs both ways in turn
            t_index, found = _time(index_repeat, index.search, filters, connector=connector)
            t_linear, expected = _time(linear_repeat, linear_search, rows, filters, connector=connector)
            identical = identical and found == expected
            sizes[label] = len(expected)
            per_query[label]["index"].append(t_index)
            per_query[label]["linear"].append(t_linear)
            round_total["index"] += t_index
            round_total["linear"] += t_linear
        totals["index"].append(round_total["index"])
        totals["linear"].append(round_total["linear"])

    queries = {}
    for label, timings in per_query.items():
        index_us = statistics.median(timings["index"]) * 1e6
        linear_us = statistics.median(timings["linear"]) * 1e6
        queries[label] = {"rows": sizes[label], "index_us": round(index_us, 1), "linear_us": round(linear_us, 1),
                          "speedup": round(linear_us / index_us, 1)}
    ratio = statistics.median(totals["linear"]) / statistics.median(totals["index"])
    return {
        "benchmark": "admin_search",
        "quick": quick,
        "routes": routes,
        "grid_rows": len(rows),
        "rounds": rounds,
        "parse_config_s": round(parse_s, 3),
        "index_build_ms": round(build_s * 1e3, 1),
        "queries": queries,
        "mix_index_us": round(statistics.median(totals["index"]) * 1e6, 1),
        "mix_linear_us": round(statistics.median(totals["linear"]) * 1e6, 1),
        "mix_speedup": round(ratio, 1),
        "target": TARGET,
        "target_met": ratio >= TARGET,
        "results_identical": identical,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, for CI")
    report = run(parser.parse_args(argv).quick)
    print(f"{report['routes']} routes ({report['grid_rows']} grid rows with fallbacks), {report['rounds']} rounds; "
          f"index built in {report['index_build_ms']} ms")
    print(f"{'query':<36}{'rows':>7}{'index µs':>11}{'linear µs':>11}{'speedup':>9}")
    for label, row in report["queries"].items():
        print(f"{label:<36}{row['rows']:>7}{row['index_us']:>11}{row['linear_us']:>11}{row['speedup']:>8}×")
    print(f"{'query mix (median of round totals)':<43}{report['mix_index_us']:>11}{report['mix_linear_us']:>11}"
          f"{report['mix_speedup']:>8}×")
    print(f"results identical: {report['results_identical']}; target ≥{TARGET:g}×: {report['target_met']}")
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["results_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
