"""Benchmark: cost growth of hostile input at 1×, 10× and 100× (issue 13 — every path linear).

Each case builds the same kind of hostile message (or subject) at three sizes, times ``Envelope.from_bytes``
(plus ``Router.route`` for the linking cases; the token cases fill 1 %, 10 % and all of the searched part of
a subject or body with tokens that the lookup does not know, so every token is read) and prints the curve and
the ratio of the 100× cost to the 1× cost, in CPU time. Linear code gives about 100; quadratic code 10,000.
Target: ratio ≤ 150 for every case. The tests (tests/envelope/test_envelope_growth.py) build the same
messages and check what comes out, never the time.

Linear with a big constant can still cost seconds at the default limits, and a worker handles one message at
a time: the worst-case section builds the most expensive messages found within ``ParseLimits()`` (each case
once slow) and prints the seconds per message of the stage that was slow (target: about 0.1 s or less).

    python benchmarks/bench_growth.py                  # full run
    python benchmarks/bench_growth.py --quick          # one round, for CI
    python benchmarks/bench_growth.py --json out.json  # also write the report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from enate_routing._envelope import Envelope
from enate_routing._header_block import forget_field_names
from enate_routing._link_pattern import LINK_BODY_CHARS, LINK_SUBJECT_CHARS
from enate_routing._loading import parse_config
from enate_routing._parse_limits import ParseLimits
from enate_routing._patterns import forget_normalised
from enate_routing._router import Router
from enate_routing.testing import InMemoryWorkItems

SCALES = (1, 10, 100)
TARGET_RATIO = 150
# Limits wide enough that the 100x messages are parsed to the end: the curve measures the parsing paths
# themselves, not the early quarantine that the default limits give (the tests check both).
WIDE = ParseLimits(
    max_message_bytes=1 << 30, max_header_bytes=1 << 30, max_ids_per_header=10**7, max_mime_parts=10**6,
    max_addresses_per_header=10**7,
)
HEAD = b"Message-ID: <g@example.org>\r\nFrom: Alice <alice@example.org>\r\nTo: help@contoso.example\r\n"


# --- the hostile messages, by scale (tests import these) ---------------------------------------------------


def references(scale: int) -> bytes:
    """References with 1,000 × scale distinct ids (the stdlib-style list membership was quadratic)."""
    ids = " ".join(f"<id{n}@example.org>" for n in range(1000 * scale))
    return HEAD + f"Subject: ids\r\nReferences: {ids}\r\n\r\nbody\r\n".encode()


def in_reply_to(scale: int) -> bytes:
    """In-Reply-To with 1,000 × scale bare tokens containing '@' (no angle brackets)."""
    ids = " ".join(f"id{n}@example.org" for n in range(1000 * scale))
    return HEAD + f"Subject: ids\r\nIn-Reply-To: {ids}\r\n\r\nbody\r\n".encode()


def unbalanced_parameter(scale: int) -> bytes:
    """A Content-Type boundary with an unbalanced quote and 2,000 × scale ';' (stdlib _parseparam: quadratic)."""
    junk = ";a" * (1000 * scale)
    return HEAD + f'Content-Type: multipart/mixed; boundary="x{junk}\r\n\r\n--x\r\n\r\nbody\r\n'.encode()


def unbalanced_filename(scale: int) -> bytes:
    """An attachment whose Content-Disposition filename has an unbalanced quote and 1,000 × scale ';'."""
    junk = ";a" * (1000 * scale)
    return HEAD + (
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        f'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="r.pdf{junk}\r\n\r\n'
        "data\r\n--B--\r\n"
    ).encode()


def invalid_cc(scale: int) -> bytes:
    """1,000 × scale distinct invalid Cc addresses, in Cc headers of 1,000 (the limit) each."""
    count = 1000 * scale
    headers = []
    for start in range(0, count, 1000):
        entries = ", ".join(f"user{n}@bad_{n}.example" for n in range(start, min(count, start + 1000)))
        headers.append(f"Cc: {entries}\r\n")
    return HEAD + ("Subject: cc\r\n" + "".join(headers) + "\r\nbody\r\n").encode()


def many_fields(scale: int) -> bytes:
    """1,000 × scale header fields (each lookup of a header name used to scan all of them)."""
    fields = "".join(f"X-F{n}: v\r\n" for n in range(1000 * scale))
    return HEAD + f"Subject: fields\r\n{fields}\r\n".encode()


def single_encoded_word(scale: int) -> bytes:
    """One encoded word of 2,000 × scale characters: a single word, decoded in linear time."""
    return HEAD + b"Subject: =?utf-8?q?" + b"a" * (2000 * scale) + b"?=\r\n\r\nbody\r\n"


def spaces_in_an_address(scale: int) -> bytes:
    """``To: a``, 2,000 × scale spaces, ``b``: the address patterns once split such a run every way (cubic)."""
    return HEAD + b"To: a" + b" " * (2000 * scale) + b"b\r\n\r\nbody\r\n"


def dots_in_an_address(scale: int) -> bytes:
    """A local part of 1,000 × scale ``a.`` before the ``@``: each start position was tried again (quadratic)."""
    return HEAD + b"To: " + b"a." * (1000 * scale) + b"@b.example\r\n\r\nbody\r\n"


def long_unicode_domain(scale: int) -> bytes:
    """A domain of 1,000 × scale ``é``: too long to be one, so never IDNA-encoded (~6 µs a character)."""
    return HEAD + b"To: a@" + "é".encode() * (1000 * scale) + b"\r\n\r\nbody\r\n"


def escaped_quotes_in_addresses(scale: int) -> bytes:
    """``To: \\", \\", ...`` (250 × scale): each escaped quote was a quoted string scanned to the end (quadratic)."""
    return HEAD + b"To: " + b'\\", ' * (250 * scale) + b"\r\n\r\nbody\r\n"


def escaped_parentheses_in_addresses(scale: int) -> bytes:
    """``To: (\\(, \\(, ... (`` (250 × scale): the same with comments, stopped by a bare ``(``."""
    return HEAD + b"To: (" + b"\\(, " * (250 * scale) + b"(\r\n\r\nbody\r\n"


def bracket_entries_in_a_group(scale: int) -> bytes:
    """1,000 × scale entries ``a]`` in To fields ``G:a]a]...`` of 1,000 each (found by fuzzing; over the limit
    together at the default limits): getaddresses copies a group's list for each entry, so one To of 32,000
    took 7 s before they counted."""
    return HEAD + (b"To: G:" + b"a]" * 1000 + b"\r\n") * scale + b"\r\nbody\r\n"


def angles_behind_a_skipped_quote(scale: int) -> bytes:
    """1,000 × scale '<' in To fields ``<b@c" G: <<<...`` of 1,000 each (found by fuzzing): getaddresses skips
    the quote, so every '<' is an entry of the group, which the address count (quotes skipped) did not see."""
    return HEAD + (b'To: <b@c.example" G: ' + b"<" * 1000 + b">\r\n") * scale + b"\r\nbody\r\n"


def spaces_before_junk(scale: int) -> bytes:
    """``Cc: a@b.example,`` then 1,000 × scale spaces and junk (found by fuzzing): the entry pattern let an empty
    display name's white space and the entry's leading white space share the run, one split per space."""
    return HEAD + b"Cc: a@b.example," + b" " * (1000 * scale) + b"x\r\n\r\nbody\r\n"


def linking_subject(scale: int) -> bytes:
    """A subject of 1,000 × scale letters: what a reference pattern without a literal start backtracks on."""
    return HEAD + b"Subject: " + b"A" * (1000 * scale) + b"\r\n\r\nbody\r\n"


def linking_body(scale: int) -> bytes:
    """A plain-text body of 1,000 × scale lines of 1,000 letters, searched when search_body is on."""
    return HEAD + b"Subject: x\r\n\r\n" + (b"A" * 999 + b"\r\n") * (10 * scale)


def link_tokens_subject(scale: int) -> bytes:
    """A subject of ``T-9 `` repeated over scale % of LINK_SUBJECT_CHARS: every token read, one lookup."""
    return HEAD + b"Subject: " + b"T-9 " * (LINK_SUBJECT_CHARS * scale // 400) + b"\r\n\r\nbody\r\n"


def link_tokens_body(scale: int) -> bytes:
    """A body of lines of twenty ``T-9 `` over scale % of LINK_BODY_CHARS (subject: the same token)."""
    return HEAD + b"Subject: T-9\r\n\r\n" + (b"T-9 " * 20 + b"\r\n") * max(1, LINK_BODY_CHARS * scale // 8200)


def link_tokens_over_long(scale: int) -> bytes:
    """A body of lines ``T-`` + 70 digits (past the repetition bound: dropped, the walk resumes after it)
    and a short token ``A1``, over scale % of LINK_BODY_CHARS."""
    line = b"T-" + b"9" * 70 + b" A1\r\n"
    return HEAD + b"Subject: x\r\n\r\n" + line * max(1, LINK_BODY_CHARS * scale // (100 * len(line)))


def parameters_after_a_boundary(scale: int) -> bytes:
    """A multipart boundary followed by 1,000 × scale ``;a=b``: each parameter was decoded (2.6 µs) and the
    split matched a regex per field after the quoted boundary."""
    params = ";a=b" * (1000 * scale)
    return HEAD + f'Content-Type: multipart/mixed; boundary="B"{params}\r\n\r\n--B\r\n\r\nx\r\n--B--\r\n'.encode()


CASES: dict[str, Callable[[int], bytes]] = {
    "References ids": references,
    "In-Reply-To bare ids": in_reply_to,
    "unbalanced boundary parameter": unbalanced_parameter,
    "unbalanced filename parameter": unbalanced_filename,
    "distinct invalid Cc addresses": invalid_cc,
    "header fields": many_fields,
    "single encoded word": single_encoded_word,
    "spaces in an address": spaces_in_an_address,
    "dots in an address": dots_in_an_address,
    "long Unicode domain": long_unicode_domain,
    "escaped quotes in addresses": escaped_quotes_in_addresses,
    "escaped parentheses in addresses": escaped_parentheses_in_addresses,
    "parameters after a boundary": parameters_after_a_boundary,
    "bracket entries in a group": bracket_entries_in_a_group,
    "angles behind a skipped quote": angles_behind_a_skipped_quote,
    "spaces before junk in Cc": spaces_before_junk,
}
LINKING_CASES: dict[str, Callable[[int], bytes]] = {
    "linking pattern on subject": linking_subject,
    "linking pattern on body": linking_body,
}
TOKEN_CASES: dict[str, Callable[[int], bytes]] = {
    "link tokens in a subject": link_tokens_subject,
    "link tokens in a body": link_tokens_body,
    "over-long link tokens in a body": link_tokens_over_long,
}
# A pattern that passes `check` but has no literal start, so every position of the text is a start.
HOSTILE_LINK_PATTERN = r"(?P<ref>[A-Z]+-?\d+)"


def linking_router(lookup: InMemoryWorkItems | None = None) -> Router:
    """The demo configuration with body search on and the hostile (but safe) reference pattern."""
    import tomllib

    text = (resources.files("enate_routing") / "data" / "demo.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    data["linking"] = {"subject_pattern": HOSTILE_LINK_PATTERN, "search_body": True}
    return Router.compile(parse_config(data), lookup=lookup)


# --- the worst cases at the default limits (each message within ParseLimits()) ---------------------------


def text_parameters_at_the_limit() -> bytes:
    """A text/plain Content-Type of 260,000 ``;a=b`` (1 MB header block): plain_text decoded every one."""
    return HEAD + b"Content-Type: text/plain" + b";a=b" * 260_000 + b"\r\n\r\nbody\r\n"


def boundary_parameters_at_the_limit() -> bytes:
    """parameters_after_a_boundary at 260,000 parameters (1 MB header block)."""
    return parameters_after_a_boundary(260)


def part_parameters_at_the_limit() -> bytes:
    """999 attachments, each with 2,000 ``;a=b`` in Content-Type and in Content-Disposition (16 MB)."""
    junk = ";a=b" * 2000
    part = (f"--B\r\nContent-Type: application/pdf{junk};name=x.pdf\r\n"
            f"Content-Disposition: attachment{junk}; filename=f.pdf\r\n\r\nx\r\n")
    return HEAD + ('Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + part * 999 + "--B--\r\n").encode()


def skipped_quotes_at_the_limit() -> bytes:
    """From, To, Cc, Delivered-To, X-Original-To and Return-Path, each ``<b@c" G:`` and 7,990 '<' (just within
    the 8,000 entry ends per header): a group of 7,990 entries each for getaddresses (quadratic in them)."""
    field = b': <b@c.example" G: ' + b"<" * 7990 + b">\r\n"
    names = (b"From", b"To", b"Cc", b"Delivered-To", b"X-Original-To", b"Return-Path")
    return b"Message-ID: <w@example.org>\r\n" + b"".join(name + field for name in names) + b"\r\nbody\r\n"


def _report(returned: str, part: str = "message/rfc822") -> bytes:
    """A delivery report from a mailer daemon returning 999 messages with these header fields."""
    parts = f"--B\r\nContent-Type: {part}\r\n\r\n{returned}\r\nx\r\n" * 999
    return (b"Message-ID: <b@example.org>\r\nFrom: MAILER-DAEMON@mx.example\r\nTo: help@contoso.example\r\n"
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            + (parts + "--B--\r\n").encode())


def report_of_cc_blocks() -> bytes:
    """A report returning 999 messages, each with 1,000 Cc addresses (19 MB): each was parsed whole."""
    return _report("Cc: " + ", ".join(f"u{n}@d{n}.example" for n in range(1000)) + "\r\nSubject: x\r\n")


def report_of_reference_blocks() -> bytes:
    """A report returning 999 messages, each with 1,000 References (the id bound spent by the first)."""
    ids = " ".join(f"<r{n}@example.org>" for n in range(1000))
    return _report(f"Message-ID: <o@contoso.example>\r\nReferences: {ids}\r\n")


# name → (builder, the stage that was slow: "from_bytes", "plain_text" or "route" with the demo configuration)
WORST_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "text/plain with 260,000 parameters": (text_parameters_at_the_limit, "plain_text"),
    "boundary and 260,000 parameters": (boundary_parameters_at_the_limit, "from_bytes"),
    "999 parts with 4,000 parameters": (part_parameters_at_the_limit, "from_bytes"),
    "report of 999 Cc header blocks": (report_of_cc_blocks, "route"),
    "report of 999 References blocks": (report_of_reference_blocks, "route"),
    "6 address headers of 7,990 entries behind a skipped quote": (skipped_quotes_at_the_limit, "from_bytes"),
}


def run_worst(rounds: int) -> dict[str, Any]:
    """Seconds per message (best of ``rounds``) of each worst case's slow stage, at the default limits."""
    import tomllib

    text = (resources.files("enate_routing") / "data" / "demo.toml").read_text(encoding="utf-8")
    router = Router.compile(parse_config(tomllib.loads(text)), lookup=InMemoryWorkItems(["T-1"]))
    results: dict[str, Any] = {}
    for name, (build, stage) in WORST_CASES.items():
        raw = build()
        envelope = Envelope.from_bytes(raw)
        work: Callable[[], object] = {
            "from_bytes": lambda raw=raw: Envelope.from_bytes(raw),
            "plain_text": envelope.plain_text,
            "route": lambda envelope=envelope: router.route(envelope),
        }[stage]
        results[name] = {"bytes": len(raw), "stage": stage, "seconds": round(_seconds(work, rounds), 4),
                         "quarantine_reason": envelope.quarantine_reason}
    return results


# --- timing -------------------------------------------------------------------------------------------------


def _cold() -> None:
    """Empty the address and field-name tables: otherwise 1× (1,000 addresses or names) is mostly table hits
    and 100× mostly misses, which reads as growth."""
    forget_normalised()
    forget_field_names()


def _seconds(function: Callable[[], object], rounds: int) -> float:
    """The best CPU time of ``rounds`` cold calls: on a shared machine, wall time penalises long runs."""
    best = float("inf")
    for _ in range(rounds):
        _cold()
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


def run(quick: bool) -> dict[str, Any]:
    rounds = 1 if quick else 5
    without_lookup = linking_router()
    knowing_none = linking_router(InMemoryWorkItems(["T-1"]))  # none of the tokens: each one is tried
    routers = {**dict.fromkeys(LINKING_CASES, without_lookup), **dict.fromkeys(TOKEN_CASES, knowing_none)}
    results: dict[str, Any] = {}
    every = {**CASES, **LINKING_CASES, **TOKEN_CASES}
    for name, build in every.items():
        curve = {}
        outcome = ""
        for scale in SCALES:
            raw = build(scale)
            if name in routers:
                envelope = Envelope.from_bytes(raw)

                def work(envelope: Envelope = envelope, router: Router = routers[name]) -> object:
                    return router.route(envelope)
            else:

                def work(raw: bytes = raw) -> object:
                    return Envelope.from_bytes(raw, limits=WIDE)
            work()  # warm caches (compiled patterns, normalised addresses) outside the timing
            curve[scale] = _seconds(work, rounds)
            envelope = Envelope.from_bytes(raw, limits=WIDE)
            outcome = envelope.quarantine_reason or f"parsed, {len(envelope.defects)} defects"
        ratio = curve[100] / max(curve[1], 1e-9)
        results[name] = {
            "ms": {f"{scale}x": round(curve[scale] * 1e3, 3) for scale in SCALES},
            "ratio_100x_over_1x": round(ratio, 1),
            "linear": ratio <= TARGET_RATIO,
            "outcome_at_100x_wide_limits": outcome,
        }
    return {"benchmark": "growth", "quick": quick, "target_ratio": TARGET_RATIO, "cases": results,
            "all_linear": all(row["linear"] for row in results.values()), "worst_case": run_worst(1 if quick else 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round per size, for CI")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)
    report = run(args.quick)
    print(f"{'case':<32}{'1x ms':>10}{'10x ms':>10}{'100x ms':>10}{'100x/1x':>9}  outcome at 100x (wide limits)")
    for name, row in report["cases"].items():
        ms = row["ms"]
        print(f"{name:<32}{ms['1x']:>10}{ms['10x']:>10}{ms['100x']:>10}{row['ratio_100x_over_1x']:>9}  "
              f"{row['outcome_at_100x_wide_limits']}")
    print(f"every case within {TARGET_RATIO}x: {report['all_linear']}")
    print(f"\n{'worst case at the default limits':<40}{'bytes':>11}  {'stage':<11}{'s/message':>10}")
    for name, row in report["worst_case"].items():
        print(f"{name:<40}{row['bytes']:>11}  {row['stage']:<11}{row['seconds']:>10}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
