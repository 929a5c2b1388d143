"""Benchmark: ingestion through the Microsoft Graph source against the same pipeline over IMAP, on loopback.

Starts its own servers (tests/mailrig): Dovecot, and the fake Graph API with its identity provider over HTTPS.
Both mailboxes get the same N small messages; each round runs the whole pipeline
(:class:`enate_routing.ingest.Ingestor`: spool, parse, route, hand off, commit, mark) once per source:

- **imap**: the IMAP adapter on Dovecot (flag mode, ``$Processed``), as ``bench_ingest.py`` measures it;
- **graph**: the connector factory's Graph source (client-secret token through MSAL, delta listing in pages
  of 200, ``$value`` per message, the ``Processed`` category as the mark), over TLS.

The IMAP flags are cleared and the Graph mailbox re-filled between rounds, so both read fresh messages.
Prints messages per second for both, the ratio graph / imap, and one JSON line. The fake Graph API is a
threaded ``http.server``; real Graph adds network latency and throttling that no loopback figure shows.

    python benchmarks/bench_graph.py            # 1,000 messages, 3 rounds
    python benchmarks/bench_graph.py --quick    # 100 messages, 1 round (a few seconds)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src"), str(ROOT / "benchmarks")]

from bench_ingest import fill, message, pipeline, unflag  # noqa: E402
from enate_routing._loading import parse_config  # noqa: E402
from enate_routing._router import Router  # noqa: E402
from enate_routing.ingest import (  # noqa: E402
    Ingestor,
    SQLiteLedger,
    WorkItem,
)
from enate_routing.transports._factory import ConnectorAccess, open_source  # noqa: E402
from enate_routing.transports._graph import DELTA_STATES  # noqa: E402
from mailrig.dovecot import Dovecot, RigUnavailable  # noqa: E402
from mailrig.graph import FakeGraph  # noqa: E402
from mailrig.oauth_server import IdentityProvider, MicrosoftApp, TokenBook  # noqa: E402
from mailrig.pki import Pki, generate_pki  # noqa: E402

DESK = "desk@contoso.test"
SECRET = "bench-secret"  # noqa: S105 - a throw-away secret of the loopback identity provider
TARGET = {"customer": "Acme", "contract": "C", "service": "IT", "process": "General", "kind": "ticket"}


def graph_pipeline(graph: FakeGraph, idp: IdentityProvider, pki: Pki, workdir: Path, round_: int) -> int:
    server = {"host": "127.0.0.1", "port": graph.port, "ca_file": str(pki.ca_pem)}
    config = parse_config({
        "connectors": [{
            "name": "Graph", "service": "office365-graph", "primary_address": DESK, "use_for": "incoming",
            "incoming": {**server, "processed": "flag"},
            "oauth": {"provider": "microsoft", "flow": "client-secret", "tenant": idp.tenant, "client_id": "bench",
                      "client_secret_env": "BENCH_SECRET", "authority": idp.url, "ca_file": str(pki.ca_pem)},
        }],
        "fallbacks": [{"connector": "Graph", "address": DESK, "target": TARGET}],
    })
    connector = config.connector("Graph")
    access = ConnectorAccess(environ={"BENCH_SECRET": SECRET}, timeout=30)
    keys: set[str] = set()

    def handler(item: WorkItem) -> None:
        keys.add(item.idempotency_key)

    store = SQLiteLedger(workdir / f"graph-ledger-{round_}.db")
    ingestor = Ingestor(connector="Graph", mailbox="inbox", router=Router.compile(config), store=store,
                        handler=handler, source_factory=lambda: open_source(connector, access))
    stats = ingestor.run_once()
    store.close()
    return stats.marked


def refill_graph(graph: FakeGraph, n: int) -> None:
    graph.reset()
    DELTA_STATES.clear()
    for i in range(n):
        graph.deliver(DESK, message(i).replace(b"alice@", b"desk@"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 messages, one round")
    parser.add_argument("--messages", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args(argv)
    n = args.messages or (100 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        pki = generate_pki(workdir / "pki")
        try:
            dovecot = Dovecot.start(pki)
        except RigUnavailable as exc:
            print(f"skipped: the loopback Dovecot is not available ({exc})")
            return 0
        book = TokenBook()
        with IdentityProvider(pki, book) as idp, FakeGraph(pki, book) as graph:
            idp.apps["bench"] = MicrosoftApp("bench", secret=SECRET)
            try:
                fill(dovecot, n)
                results: dict[str, list[float]] = {"imap": [], "graph": []}
                for round_ in range(rounds):
                    for name in ("imap", "graph"):  # interleaved, so background load hits both alike
                        if name == "imap":
                            unflag(dovecot)
                        else:
                            refill_graph(graph, n)
                        start = time.perf_counter()
                        done = (pipeline(dovecot, workdir, round_) if name == "imap"
                                else graph_pipeline(graph, idp, pki, workdir, round_))
                        elapsed = time.perf_counter() - start
                        if done != n:
                            raise SystemExit(f"{name} processed {done} of {n} messages")
                        results[name].append(n / elapsed)
                requests = len(graph.log)
            finally:
                dovecot.stop()
    imap_rate = statistics.median(results["imap"])
    graph_rate = statistics.median(results["graph"])
    ratio = graph_rate / imap_rate
    print(f"messages: {n}, rounds: {rounds}")
    print(f"IMAP source on Dovecot     : {imap_rate:8.0f} msg/s")
    print(f"Graph source on fake Graph : {graph_rate:8.0f} msg/s   ({requests / n:.2f} requests per message)")
    print(f"ratio graph / imap         : {ratio:8.2f}")
    summary: dict[str, Any] = {
        "benchmark": "graph", "messages": n, "rounds": rounds, "imap_msgs_per_s": round(imap_rate),
        "graph_msgs_per_s": round(graph_rate), "ratio": round(ratio, 3),
        "graph_requests_per_message": round(requests / n, 2),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
