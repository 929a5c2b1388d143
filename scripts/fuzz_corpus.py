"""Mutate the corpus messages at random for a while; report every message that fails (docs/envelope.md).

    python scripts/fuzz_corpus.py --seconds 600 --seed 1      # writes failures to ./fuzz-failures/

Each round takes a message of tests/corpus, applies 1–12 random edits (tests/corpus_files.py: header syntax
inserted once or repeated up to 2,000 times, runs copied, spans deleted, random bytes), then parses, routes
and explains it with the demo configuration, and builds the acknowledgement of every decision that asks for
one (with a template using every placeholder). A failure is an exception, an internal error (the ``parser
error: …`` quarantine), a text fact UTF-8 cannot write, an acknowledgement whose header fields are not the
builder's own, or a message that takes longer than 50 ms plus 1 µs per byte; each is written to the output
folder as NAME.eml with the reason printed. Exit status 1 when any failed. The same edits run as a hypothesis
test in tests/envelope/test_corpus_mutations.py; this script runs them for as long as you like.
"""

from __future__ import annotations

import argparse
import email
import random
import sys
import time
import traceback
from importlib import resources
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests")]

from corpus_files import COPIES, REPEATS, SYNTAX, Edit, corpus_messages, mutated, unwritable_fact  # noqa: E402
from enate_routing._ack_template import AckTemplate  # noqa: E402
from enate_routing._envelope import Envelope  # noqa: E402
from enate_routing._loading import load_config  # noqa: E402
from enate_routing._router import Router  # noqa: E402
from enate_routing.ingest import build_acknowledgement, render_acknowledgement  # noqa: E402

EVERY_PLACEHOLDER = AckTemplate(subject="Re: {subject} [{route}] {sender} {reference}",
                                text="Dear {sender}, {subject} is {reference} ({route}).\n")
ACK_FIELDS = {"from", "to", "subject", "date", "message-id", "in-reply-to", "references", "auto-submitted",
              "x-auto-response-suppress", "x-loop", "content-type", "content-transfer-encoding", "mime-version"}


def random_edits(rng: random.Random) -> list[Edit]:
    edits: list[Edit] = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.4:
            edits.append(("insert", rng.random(), rng.choice(SYNTAX), rng.choice(REPEATS)))
        elif kind < 0.6:
            edits.append(("delete", rng.random(), rng.randint(1, 40), 1))
        elif kind < 0.8:
            edits.append(("copy", rng.random(), rng.randint(1, 200), rng.choice(COPIES)))
        else:
            edits.append(("insert", rng.random(), rng.randbytes(rng.randint(1, 8)), 1))
    return edits


def failure(raw: bytes, router: Router) -> str | None:
    """Why ``raw`` fails, or None."""
    started = time.process_time()
    try:
        envelope = Envelope.from_bytes(raw)
        unwritable = unwritable_fact(envelope)  # reads plain_text() too
        if unwritable is not None:
            return f"{unwritable} cannot be written as UTF-8"
        for connector in router.connectors:
            result = router.route(envelope, connector)
            router.explain(envelope, connector)
            for decision in result.decisions:
                if decision.acknowledge:
                    content = render_acknowledgement(envelope, decision, EVERY_PLACEHOLDER, "T-000123")
                    built = build_acknowledgement(envelope, decision, "help@contoso.example", decision.acknowledge,
                                                  content=content)
                    fields = [name.lower() for name in email.message_from_bytes(built.as_bytes())]  # its field names
                    if len(set(fields)) != len(fields) or not ACK_FIELDS.issuperset(fields):
                        return f"acknowledgement with the header fields {fields}"
    except Exception:  # noqa: BLE001 — reported, with its traceback
        return traceback.format_exc()
    seconds = time.process_time() - started
    if (envelope.quarantine_reason or "").startswith("parser error"):
        return envelope.quarantine_reason
    if seconds > 0.05 + len(raw) * 1e-6:
        return f"slow: {seconds:.3f} s CPU for {len(raw):,} bytes"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"), help="where failing messages go")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    messages = [path.read_bytes() for path in corpus_messages()]
    router = Router.compile(load_config(resources.files("enate_routing") / "data" / "demo.toml"))
    deadline = time.monotonic() + args.seconds
    rounds = failures = 0
    while time.monotonic() < deadline:
        raw = mutated(rng.choice(messages), random_edits(rng))
        rounds += 1
        reason = failure(raw, router)
        if reason is not None:
            failures += 1
            args.out.mkdir(parents=True, exist_ok=True)
            path = args.out / f"seed{args.seed}-{failures}.eml"
            path.write_bytes(raw)
            print(f"{path}: {reason.strip().splitlines()[-1]}", flush=True)
    print(f"{rounds:,} mutated messages, {failures} failures (seed {args.seed}, {args.seconds:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
