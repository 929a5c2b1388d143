"""Benchmark: ``Envelope.from_bytes`` against a full ``BytesParser(policy=policy.default)`` parse.

Builds four synthetic messages in-process (4 KB plain, 20 KB multipart, 450 KB with three attachments,
1.4 MB with one attachment), times both parsers in interleaved rounds, and prints medians, the ratios, and
one JSON line. The standard-library side extracts the same facts (:func:`stdlib_facts`), and the benchmark
checks they are identical to the envelope's. Hostile messages (deep nesting, huge headers) are timed for
``from_bytes`` only: the standard library recurses or takes seconds on them.

Targets (issue 3): ≥5× faster at 20 KB, ≥30× at 1.4 MB, and the 1.4 MB cost ≤ 2.5× the 20 KB cost.

Side by side with the standard library's *bare* parse (issue 15): ``email.message_from_bytes(raw,
policy=compat32)``, which extracts no facts at all, at 1 KB, 2 KB, 20 KB, 200 KB, 2 MB and 25 MB (25 MB in
the full run only). Target: ``from_bytes`` faster at every size (ratio > 1).

    python benchmarks/bench_envelope.py                    # full run
    python benchmarks/bench_envelope.py --quick            # a few seconds, for CI
    python benchmarks/bench_envelope.py --json out.json    # also write the report
"""

from __future__ import annotations

import argparse
import base64
import email
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

from enate_routing._envelope import Envelope
from enate_routing._patterns import normalize_address

MESSAGE_TYPES = ("message/rfc822", "message/global")


def _stdlib_attachments(part: Message, names: list[str]) -> None:
    """docs/semantics.md §3 attachments, read from a standard-library parse (recursion is fine on benign mail)."""
    content_type = part.get_content_type()
    if content_type.startswith("multipart/") and part.is_multipart():
        for sub in part.get_payload():
            _stdlib_attachments(sub, names)
    elif content_type in MESSAGE_TYPES:
        names.append(part.get_filename() or "")
    elif name := part.get_filename():
        names.append(name)


def _stdlib_addresses(message: EmailMessage, name: str) -> list[str]:
    result: list[str] = []
    for header in message.get_all(name) or []:
        for address in header.addresses:
            normal = normalize_address(address.addr_spec)
            if normal is not None and normal not in result:
                result.append(normal)
    return result


def stdlib_facts(raw: bytes) -> dict[str, Any]:
    """The facts the envelope compares on, from ``BytesParser(policy=policy.default)``.

    Only meaningful for well-formed mail (the standard library's answers on broken mail are not a
    reference). Recipients are deduplicated as the envelope does: an address in To is not listed in Cc.
    """
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    senders = _stdlib_addresses(message, "from")
    message_id = message["message-id"]
    to = _stdlib_addresses(message, "to")
    names: list[str] = []
    _stdlib_attachments(message, names)
    return {
        "message_id": str(message_id).strip().strip("<>") if message_id is not None else None,
        "sender": senders[0] if len(senders) == 1 else None,
        "subject": str(message["subject"] or ""),
        "to": to,
        "cc": [address for address in _stdlib_addresses(message, "cc") if address not in to],
        "attachments": names,
    }


def envelope_facts(envelope: Envelope) -> dict[str, Any]:
    """The same facts, read from an :class:`Envelope`."""
    return {
        "message_id": envelope.message_id,
        "sender": envelope.sender,
        "subject": envelope.subject,
        "to": [r.address for r in envelope.recipients if r.source == "to"],
        "cc": [r.address for r in envelope.recipients if r.source == "cc"],
        "attachments": list(envelope.attachments),
    }


# --- synthetic messages -------------------------------------------------------------------------------

_HEADERS = (
    "Return-Path: <alice@example.org>\r\n"
    "Received: from mx.example.org (mx.example.org [192.0.2.1]) by mail.contoso.example with ESMTPS\r\n"
    "\tid 4XyZ123; Mon, 3 Jun 2024 10:00:00 +0000\r\n"
    "Received: from client (client [198.51.100.7]) by mx.example.org with ESMTPSA id 77ab\r\n"
    "\tfor <help@contoso.example>; Mon, 3 Jun 2024 09:59:59 +0000\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s1;\r\n"
    "\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
    "\tb=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6\r\n"
    "From: =?utf-8?q?Alice_M=C3=BCller?= <Alice@Example.org>\r\n"
    "To: Help Desk <help@contoso.example>, \"Doe, John\" <john.doe@contoso.example>\r\n"
    "Cc: billing@contoso.example, Help@Contoso.example\r\n"
    "Subject: =?utf-8?B?UGFzc3dvcmQgcmVzZXQg4oCTIGRyaW5nZW5k?= [REF:T-000123]\r\n"
    "Date: Mon, 3 Jun 2024 09:59:58 +0000\r\n"
    "Message-ID: <20240603095958.4711@example.org>\r\n"
    "In-Reply-To: <prev.1@contoso.example>\r\n"
    "References: <root.0@contoso.example> <prev.1@contoso.example>\r\n"
    "Importance: High\r\n"
    "MIME-Version: 1.0\r\n"
)


def _text(size: int, seed: int) -> str:
    rng = random.Random(seed)
    words = ["invoice", "password", "reset", "please", "urgent", "server", "the", "and", "Grüße", "ticket"]
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(11))
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def _attachment(name: str, size: int, seed: int, boundary: str) -> str:
    data = random.Random(seed).randbytes(size)
    encoded = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    return (
        f"--{boundary}\r\n"
        f'Content-Type: application/octet-stream; name="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{name}"\r\n\r\n{encoded}'
    )


def plain_message(size: int) -> bytes:
    """A text/plain message of about ``size`` bytes."""
    body = _text(size - len(_HEADERS) - 80, 1)
    head = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    return (_HEADERS + head + body).encode("utf-8")


def multipart_message(attachment_sizes: tuple[int, ...], text_size: int) -> bytes:
    """multipart/mixed: a multipart/alternative (text + html), then base64 attachments of these sizes."""
    outer, inner = "=_outer_8c1f2", "=_alt_77d0e"
    text = _text(text_size, 2)
    html = "<html><body><p>" + text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
    parts = [
        f"Content-Type: multipart/mixed; boundary=\"{outer}\"\r\n\r\nThis is a MIME message.\r\n",
        f"--{outer}\r\nContent-Type: multipart/alternative; boundary=\"{inner}\"\r\n\r\n",
        f"--{inner}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}",
        f"--{inner}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}",
        f"--{inner}--\r\n",
    ]
    for index, size in enumerate(attachment_sizes):
        parts.append(_attachment(f"report-{index + 1}.pdf", size, 10 + index, outer))
    parts.append(f"--{outer}--\r\n")
    return (_HEADERS + "".join(parts)).encode("utf-8")


def messages() -> dict[str, bytes]:
    """The four benchmark messages, by name."""
    return {
        "4KB plain": plain_message(4 * 1024),
        "20KB multipart": multipart_message((9 * 1024,), 3 * 1024),
        "450KB 3 attachments": multipart_message((110 * 1024, 110 * 1024, 110 * 1024), 4 * 1024),
        "1.4MB 1 attachment": multipart_message((1030 * 1024,), 4 * 1024),
    }


def hostile_messages() -> dict[str, bytes]:
    """Messages the standard library cannot parse quickly (or at all); all are quarantined."""
    nested = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(1000))
    subject = " ".join(f"=?utf-8?b?{base64.b64encode(b'word %d' % i).decode()}?=" for i in range(9000))
    to = ", ".join(f"user{i}@example.org" for i in range(8000))
    huge = "X-Padding: " + "a" * 1_100_000
    return {
        "1000-deep nesting": b"From: a@example.org\r\nSubject: deep\r\n" + nested,
        "200KB encoded subject": f"From: a@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n".encode(),
        "8000-address To": f"From: a@example.org\r\nTo: {to}\r\n\r\nbody\r\n".encode(),
        "1.1MB header": f"From: a@example.org\r\n{huge}\r\n\r\nbody\r\n".encode(),
        "300KB of quotes in To": b"From: a@example.org\r\nTo: " + b'"' * 300_000 + b"\r\n\r\nbody\r\n",
    }


def bare_sizes(quick: bool) -> dict[str, bytes]:
    """Messages of 1 KB to 25 MB for the comparison with the bare compat32 parse."""
    sizes = {
        "1KB": plain_message(1024),
        "2KB": plain_message(2 * 1024),
        "20KB": multipart_message((9 * 1024,), 3 * 1024),
        "200KB": multipart_message((95 * 1024, 95 * 1024), 4 * 1024),
        "2MB": multipart_message((1024 * 1024, 450 * 1024), 4 * 1024),
    }
    if not quick:
        sizes["25MB"] = multipart_message((18_000 * 1024,), 4 * 1024)
    return sizes


def _bare(raw: bytes) -> Callable[[], object]:
    return lambda: email.message_from_bytes(raw, policy=policy.compat32)


def _bare_parse(raw: bytes) -> Callable[[], object]:
    return lambda: Envelope.from_bytes(raw)


def run_bare(quick: bool) -> dict[str, Any]:
    """``Envelope.from_bytes`` against ``message_from_bytes(compat32)``, interleaved, CPU time minima.

    The minimum of many rounds: on a loaded machine every other statistic measures the neighbours too.
    """
    rounds = 3 if quick else 21
    budget = 0.02 if quick else 0.15
    results: dict[str, Any] = {}
    for name, raw in bare_sizes(quick).items():
        ours_once, theirs_once = _cpu(_bare_parse(raw), 1), _cpu(_bare(raw), 1)
        ours_repeat = max(1, int(budget / max(ours_once, 1e-7)))
        theirs_repeat = max(1, int(budget / max(theirs_once, 1e-7)))
        ours_samples, theirs_samples = [], []
        for _ in range(rounds):
            ours_samples.append(_cpu(_bare_parse(raw), ours_repeat))
            theirs_samples.append(_cpu(_bare(raw), theirs_repeat))
        ours, theirs = min(ours_samples), min(theirs_samples)
        results[name] = {
            "bytes": len(raw),
            "envelope_us": round(ours * 1e6, 1),
            "compat32_bare_us": round(theirs * 1e6, 1),
            "ratio": round(theirs / ours, 2),
        }
    return results


def _cpu(function: Callable[[], object], repeat: int) -> float:
    """CPU seconds per call: on a shared machine, wall time measures the neighbours too."""
    start = time.process_time()
    for _ in range(repeat):
        function()
    return (time.process_time() - start) / repeat


# --- timing -------------------------------------------------------------------------------------------


def _per_call(function: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat


def _ours(raw: bytes) -> Callable[[], object]:
    return lambda: envelope_facts(Envelope.from_bytes(raw))


def _theirs(raw: bytes) -> Callable[[], object]:
    return lambda: stdlib_facts(raw)


def run(quick: bool) -> dict[str, Any]:
    """Time every message; return the results (also what the JSON line holds)."""
    rounds = 3 if quick else 15
    budget = 0.02 if quick else 0.2  # seconds per measurement, to pick a repeat count
    results: dict[str, Any] = {}
    identical = True
    samples: dict[str, tuple[list[float], list[float]]] = {}
    corpus = messages()
    repeats: dict[str, tuple[int, int]] = {}
    for name, raw in corpus.items():
        identical &= envelope_facts(Envelope.from_bytes(raw)) == stdlib_facts(raw)
        ours, theirs = _per_call(_ours(raw), 1), _per_call(_theirs(raw), 1)
        repeats[name] = (max(1, int(budget / max(ours, 1e-7))), max(1, int(budget / max(theirs, 1e-7))))
        samples[name] = ([], [])
    for _ in range(rounds):  # interleaved: every message, both parsers, each round
        for name, raw in corpus.items():
            ours_repeat, theirs_repeat = repeats[name]
            samples[name][0].append(_per_call(_ours(raw), ours_repeat))
            samples[name][1].append(_per_call(_theirs(raw), theirs_repeat))
    for name, raw in corpus.items():
        ours, theirs = (statistics.median(values) for values in samples[name])
        results[name] = {
            "bytes": len(raw),
            "envelope_us": round(ours * 1e6, 1),
            "stdlib_us": round(theirs * 1e6, 1),
            "speedup": round(theirs / ours, 1),
        }
    hostile: dict[str, Any] = {}
    for name, raw in hostile_messages().items():
        envelope = Envelope.from_bytes(raw)
        hostile[name] = {
            "bytes": len(raw),
            "envelope_ms": round(min(_per_call(_ours(raw), 1) for _ in range(3)) * 1e3, 2),
            "quarantine_reason": envelope.quarantine_reason,
        }
    bare = run_bare(quick)
    small, large = results["20KB multipart"], results["1.4MB 1 attachment"]
    growth = round(large["envelope_us"] / small["envelope_us"], 2)
    return {
        "benchmark": "envelope",
        "quick": quick,
        "facts_identical": identical,
        "messages": results,
        "cost_1.4MB_over_20KB": growth,
        "targets_met": {
            "speedup_20KB_ge_5": small["speedup"] >= 5,
            "speedup_1.4MB_ge_30": large["speedup"] >= 30,
            "cost_1.4MB_le_2.5x_20KB": growth <= 2.5,
            "faster_than_compat32_bare_at_every_size": all(row["ratio"] > 1 for row in bare.values()),
        },
        "versus_compat32_bare": bare,
        "hostile": hostile,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, for CI (a few seconds)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)
    report = run(args.quick)
    print(f"{'message':<22}{'bytes':>10}{'envelope µs':>14}{'stdlib µs':>12}{'speedup':>9}")
    for name, row in report["messages"].items():
        print(
            f"{name:<22}{row['bytes']:>10}{row['envelope_us']:>14}{row['stdlib_us']:>12}{row['speedup']:>8}×"
        )
    print(f"cost at 1.4 MB / cost at 20 KB: {report['cost_1.4MB_over_20KB']}×")
    for name, row in report["hostile"].items():
        print(f"hostile {name:<24}{row['bytes']:>9} B {row['envelope_ms']:>8} ms  {row['quarantine_reason']}")
    print(f"{'size':<8}{'bytes':>10}{'envelope µs':>14}{'compat32 bare µs':>18}{'ratio':>8}")
    for name, row in report["versus_compat32_bare"].items():
        print(f"{name:<8}{row['bytes']:>10}{row['envelope_us']:>14}{row['compat32_bare_us']:>18}{row['ratio']:>7}×")
    print(f"facts identical: {report['facts_identical']}; targets met: {report['targets_met']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2, ensure_ascii=False)
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["facts_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
