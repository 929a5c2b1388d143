"""Seeded raw messages for the router benchmarks: about 70% aimed at some route, about 30% at none.

``raw_messages(config, count, seed)`` renders RFC 5322 bytes (multipart when there is an attachment) for a
configuration made by ``enate_routing.testing.synthetic_config``. Each aimed message is built from one
randomly chosen enabled route so that the route's rules hold (its address, a sender it lists or of its
company, its keyword in the subject, its attachment type, a Cc recipient it names, the importance flag);
an earlier route may still take it, which is routing working. The others come from unknown domains with
filler subjects and reach the fallback unless a route happens to catch them. The same seed gives the same
bytes, so every router in a run sees the same mail.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from enate_routing._model import Config, IncomingRoute
from enate_routing.testing._synthetic import MAILBOX

__all__ = ["raw_messages"]

_FILLER = ("hello", "question", "about", "the", "report", "meeting", "update", "please", "see", "attached",
           "thanks", "regarding", "status", "monday", "help")


def _sender_for(route: IncomingRoute, config: Config, rng: random.Random) -> str:
    senders = route.rules.senders
    if senders:
        pattern = rng.choice(senders)
        return f"user{rng.randint(0, 25)}@{pattern[1:]}" if pattern.startswith("*") else pattern
    if route.rules.sender_companies:
        company = route.rules.sender_companies[0].casefold()
        for name, patterns in config.companies.items():
            if name.casefold() == company and patterns:
                domain = patterns[0].lstrip("*")
                return f"user{rng.randint(0, 25)}@{domain}"
    return f"someone{rng.randint(0, 99)}@cust{rng.randint(0, 9)}.example"


def _render(*, sender: str, to: str, cc: Sequence[str], subject: str, attachment: str | None,
            important: bool, message_id: str) -> bytes:
    headers = [f"From: {sender}", f"To: {to}"]
    if cc:
        headers.append(f"Cc: {', '.join(cc)}")
    headers += [f"Subject: {subject}", f"Message-ID: <{message_id}>", "Date: Mon, 30 Nov 2026 10:00:00 +0000",
                "MIME-Version: 1.0"]
    if important:
        headers.append("Importance: high")
    text = "Hello,\r\n\r\nplease have a look.\r\n\r\nRegards\r\n"
    if attachment is None:
        headers.append("Content-Type: text/plain; charset=utf-8")
        body = text
    else:
        headers.append('Content-Type: multipart/mixed; boundary="part"')
        body = (f"--part\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}--part\r\n"
                "Content-Type: application/octet-stream\r\n"
                f'Content-Disposition: attachment; filename="{attachment}"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--part--\r\n")
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")


def raw_messages(config: Config, count: int, seed: int = 0, *, aimed: float = 0.7) -> list[bytes]:
    """``count`` raw messages for ``config``; about ``aimed`` of them built to satisfy some route."""
    rng = random.Random(f"raw-{seed}-{len(config.routes)}")
    routes = [r for r in config.routes if r.enabled]
    aliases = sorted({r.address for r in config.routes if not r.is_wildcard} | {MAILBOX})
    messages: list[bytes] = []
    for index in range(count):
        if routes and rng.random() < aimed:
            route = rng.choice(routes)
            rules = route.rules
            words = [rng.choice(_FILLER) for _ in range(rng.randint(1, 4))]
            if rules.subject_keywords:
                words.insert(rng.randint(0, len(words)), rng.choice(rules.subject_keywords))
            extension = rng.choice(rules.attachment_types) if rules.attachment_types else None
            messages.append(_render(
                sender=_sender_for(route, config, rng), to=MAILBOX if route.is_wildcard else route.address,
                cc=[r for r in rules.recipients[:1] if not r.startswith("*")], subject=" ".join(words).capitalize(),
                attachment=None if extension is None else f"document{index}.{extension}",
                important=rules.important, message_id=f"{seed}.{index}@bench.example"))
        else:
            subject = " ".join(rng.choice(_FILLER) for _ in range(rng.randint(2, 7))).capitalize()
            attachment = f"scan{index}.tiff" if rng.random() < 0.2 else None
            messages.append(_render(
                sender=f"user{rng.randint(0, 99)}@elsewhere{rng.randint(0, 999)}.example", to=rng.choice(aliases),
                cc=(), subject=subject, attachment=attachment, important=False,
                message_id=f"{seed}.{index}@bench.example"))
    return messages
