"""Seeded synthetic route sets and emails, shared by the benchmark and the design-guard tests.

``synthetic_config(n_routes, seed)`` gives one incoming connector whose routes look like a large real
set-up: routes spread over the mailbox's aliases, each with one to three rules drawn from a realistic mix —
sender domains of customers, short sender lists, subject keywords and phrases, attachment types, companies,
a few recipient rules and importance flags, some wildcard routes, a few disabled routes.
``synthetic_envelopes(config, n, seed)`` gives emails of which roughly half match some route. The same seed
gives the same data, so every router in a benchmark sees the same emails.
"""

from __future__ import annotations

import random
from typing import Any

from enate_routing._envelope import Envelope, Recipient
from enate_routing._loading import parse_config
from enate_routing._model import Config

__all__ = ["MAILBOX", "synthetic_config", "synthetic_envelopes"]

MAILBOX = "support@corp.example"
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "de", "gu", "fi", "bo", "ha", "je")
_EXTENSIONS = ("pdf", "xlsx", "docx", "csv", "zip", "tar.gz", "png", "jpg", "msg", "xml", "eml", "txt")
_TARGETS = (
    {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "Incident", "kind": "ticket"},
    {"customer": "Globex", "contract": "2026", "service": "Finance", "process": "Invoice query", "kind": "case"},
    {"customer": "Initech", "contract": "Main", "service": "HR", "process": "Onboarding", "kind": "ticket"},
    {"customer": "Umbrella", "contract": "Gold", "service": "Support", "process": "Question", "kind": "case"},
)


def _vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class _World:
    """The customers, words and aliases a synthetic set-up is made of (derived from the route count)."""

    def __init__(self, n_routes: int, seed: int, addresses: int | None) -> None:
        rng = random.Random(f"world-{seed}-{n_routes}")
        self.customers = [f"cust{i}.example" for i in range(max(4, n_routes // 2))]
        self.words = _vocabulary(max(50, n_routes // 2), rng)
        self.filler = _vocabulary(300, random.Random(f"filler-{seed}"))
        count = addresses if addresses is not None else 1 + n_routes // 250
        self.aliases = [MAILBOX] + [f"team{i}@corp.example" for i in range(1, count)]


def _rules(rng: random.Random, world: _World, wildcard: bool) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    kinds = rng.sample(("senders", "sender_list", "keywords", "attachments", "companies", "recipients", "important"),
                       k=rng.choice((1, 1, 2, 2, 3)))
    if wildcard and "senders" not in kinds and "sender_list" not in kinds:
        kinds.append("senders")
    for kind in kinds:
        if kind == "senders":
            rules["senders"] = "*" + rng.choice(world.customers)
        elif kind == "sender_list":
            domain = rng.choice(world.customers)
            rules["senders"] = [f"user{rng.randint(0, 20)}@{domain}" for _ in range(rng.randint(1, 4))]
        elif kind == "keywords":
            keywords = [rng.choice(world.words) for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.3:
                keywords.append(f"{rng.choice(world.words)} {rng.choice(world.words)}")
            rules["subject_keywords"] = keywords
        elif kind == "attachments":
            rules["attachment_types"] = rng.sample(_EXTENSIONS, k=rng.randint(1, 2))
        elif kind == "companies":
            rules["sender_companies"] = [f"Company {rng.randrange(len(world.customers))}"]
        elif kind == "recipients":
            rules["recipients"] = [f"desk{rng.randint(0, 30)}@corp.example"]
        else:
            rules["important"] = True
    return rules


def synthetic_config(n_routes: int, seed: int = 0, *, addresses: int | None = None) -> Config:
    """One incoming connector with ``n_routes`` routes over ``addresses`` aliases (default 1 per 250 routes)."""
    rng = random.Random(f"config-{seed}-{n_routes}")
    world = _World(n_routes, seed, addresses)
    routes = []
    for index in range(n_routes):
        wildcard = rng.random() < 0.03
        target = rng.choice(_TARGETS)
        route: dict[str, Any] = {
            "connector": "Support", "name": f"route {index}",
            "address": "*" if wildcard else rng.choice(world.aliases), "target": target,
            "rules": _rules(rng, world, wildcard), "send_automated_emails": rng.random() < 0.5,
            "enabled": rng.random() >= 0.05,
        }
        if target["kind"] == "ticket" and rng.random() < 0.3:
            route["ticket_category"] = "Standard"
        routes.append(route)
    companies = {f"Company {i}": [f"*{domain}"] for i, domain in enumerate(world.customers)}
    return parse_config({
        "connectors": [{"name": "Support", "service": "other", "primary_address": MAILBOX, "use_for": "both",
                        "username": MAILBOX, "password_env": "SUPPORT_PASSWORD",
                        "incoming": {"protocol": "imap", "host": "mail.corp.example", "port": 993, "security": "ssl"},
                        "outgoing": {"host": "mail.corp.example", "port": 587, "security": "starttls",
                                     "auth": "none"}}],
        "routes": routes,
        "fallbacks": [{"connector": "Support", "address": MAILBOX, "target": _TARGETS[0]}],
        "companies": companies,
        "blocked": [{"address": "*spam.example", "action": "reject"}],
    })


def synthetic_envelopes(config: Config, count: int, seed: int = 0) -> list[Envelope]:
    """``count`` emails for ``config`` (made by :func:`synthetic_config` with the same route count)."""
    n_routes = len(config.routes)
    aliases = sorted({r.address for r in config.routes if r.address != "*"} | {MAILBOX})
    world = _World(n_routes, seed, len(aliases))
    rng = random.Random(f"mail-{seed}-{n_routes}")
    envelopes = []
    for index in range(count):
        domain = rng.choice(world.customers) if rng.random() < 0.7 else f"other{rng.randint(0, 999)}.example"
        sender = f"user{rng.randint(0, 25)}@{domain}"
        words = [rng.choice(world.words if rng.random() < 0.25 else world.filler) for _ in range(rng.randint(2, 9))]
        subject = rng.choice(("", "Re: ", "Fwd: ", "RE: ")) + rng.choice((" ", " - ", ", ")).join(words)
        shape = rng.random()
        if shape < 0.8:
            recipients = [Recipient(rng.choice(aliases), "to")]
            if rng.random() < 0.2:
                recipients.append(Recipient(f"colleague{rng.randint(0, 9)}@{domain}", "cc"))
        elif shape < 0.9:
            recipients = [Recipient(rng.choice(aliases), "to"), Recipient(rng.choice(aliases), "cc")]
        else:  # Bcc: only the server's Delivered-To names the mailbox
            recipients = [Recipient(f"someone@{domain}", "to"), Recipient(MAILBOX, "delivered-to")]
        seen: dict[str, Recipient] = {}
        for recipient in recipients:
            seen.setdefault(recipient.address, recipient)
        unique = tuple(seen.values())
        attachments = tuple(f"file{i}.{rng.choice(_EXTENSIONS)}" for i in range(rng.choice((0, 0, 0, 1, 1, 2))))
        envelopes.append(Envelope(
            message_id=f"{seed}.{index}@{domain}", sender=sender, recipients=unique, subject=subject,
            attachments=attachments, important=rng.random() < 0.1,
        ))
    return envelopes
