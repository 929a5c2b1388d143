"""Hypothesis strategies for configurations and envelopes, to property-test routing set-ups.

``configs()`` draws small valid configurations whose routes share addresses, domains, keywords and
extensions, so that rules overlap and the first-match order matters; ``envelopes(config)`` draws emails aimed
at such a configuration (its addresses, plus addresses, look-alike domains, subjects with tokens, marks and
decomposed accents, automatic mail, bounces); ``work_items()`` draws a lookup of earlier mail. Typical use::

    from hypothesis import given
    from enate_routing.testing.strategies import configs, envelopes

    @given(data=st.data(), config=configs())
    def test_my_host(data, config):
        envelope = data.draw(envelopes(config))
        ...

This is the one module of the package that imports hypothesis (an optional dependency, docs/semantics.md §1).
"""

from __future__ import annotations

import dataclasses
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImportError(
        "enate_routing.testing.strategies needs hypothesis: install enate-routing[testing]"
    ) from exc

from enate_routing._envelope import Envelope, Recipient, RecipientSource
from enate_routing._loading import parse_config
from enate_routing._model import Config, IncomingRoute
from enate_routing.testing._fakes import InMemoryWorkItems

__all__ = ["DOMAINS", "KEYWORDS", "configs", "envelopes", "work_items"]

# Look-alikes on purpose: badglobex is not globex (label boundaries), eu.globex is (a subdomain), and the
# punycode domain is bücher.example (IDNA, docs/semantics.md §3).
DOMAINS = ("acme.example", "globex.example", "eu.globex.example", "badglobex.example", "initech.example",
           "xn--bcher-kva.example")
LOCALS = ("alice", "bob", "cfo", "ceo")
# Also: a keyword written decomposed (NFD) and one with Devanagari vowel signs (combining marks belong to their
# word), and one with no word at all (it never matches, docs/routing.md).
KEYWORDS = ("urgent", "reset", "password reset", "invoice", "outage", "re", "straße", "Über", "new starter",
            "new", "re\u0301sume\u0301", "हिन्दी", "?!")
FILLER = ("please", "help", "resetting", "invoices", "passwords", "password", "starter", "q3", "strasse", "uber",
          "fw", "résumé", "RÉSUMÉ", "sume", "ह", "न्द", "U\u0308ber")
SEPARATORS = (" ", "-", "_", ", ", "! ", ": ", " / ")
EXTENSIONS = ("pdf", ".PDF", "tar.gz", "gz", "xlsx", ".docx")
FILES = ("report.pdf", "scan.PDF", "notpdf", "archive.tar.gz", "data.gz", "sheet.xlsx", "x.docx", "pdf", ".pdf",
         "photo.jpg")
# An exact address beats a domain, the most specific domain wins, and of two companies naming the very same
# domain the first in the file does (docs/semantics.md §3.3, docs/routing.md).
COMPANIES = {"Globex": ["*globex.example", "ceo@initech.example"], "EU Globex": ["*eu.globex.example"],
             "Initech": ["*initech.example"], "Globex Holdings": ["*@globex.example", "bob@eu.globex.example"]}
# X-Loop values that are no address of anyone: plain words, an address with a comment, upper case as written.
X_LOOP_JUNK = ("yes", "loop-1", "support@acme.example (helpdesk)", "Support@ACME.example", "")
MESSAGE_IDS = ("m1@mail.example", "m2@mail.example", "gen1@acme.example", "gen2@acme.example")

# Connector name → (primary address, aliases).
CONNECTORS = {
    "Support": ("support@acme.example", ("help@acme.example", "billing@acme.example")),
    "Sales": ("sales@acme.example", ("orders@acme.example",)),
}
TARGETS = (
    {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "Incident", "kind": "ticket"},
    {"customer": "Globex", "contract": "2026", "service": "Finance", "process": "Invoice query", "kind": "case"},
    {"customer": "Initech", "contract": "Main", "service": "HR", "process": "General", "kind": "ticket"},
)


def _addresses() -> st.SearchStrategy[str]:
    return st.builds(lambda local, domain: f"{local}@{domain}", st.sampled_from(LOCALS), st.sampled_from(DOMAINS))


# The three spellings of a domain pattern, and the Unicode form of the punycode domain (docs/semantics.md §3).
_DOMAIN_SPELLINGS = ("*{}", "*@{}", "*.{}", " *{} ")


def _domain_pattern(domain: str, spelling: str) -> str:
    return spelling.format("bücher.example" if domain == "xn--bcher-kva.example" and "@" in spelling else domain)


def _patterns() -> st.SearchStrategy[list[str]]:
    pattern = st.one_of(_addresses(), st.builds(_domain_pattern, st.sampled_from(DOMAINS),
                                                st.sampled_from(_DOMAIN_SPELLINGS)),
                        _addresses().map(str.upper))
    return st.lists(pattern, min_size=1, max_size=3)


def _written(items: list[str], draw: st.DrawFn) -> str | list[str]:
    """A rule's list as a user writes it: an array, or a ``;`` string, at times with blanks and empty items."""
    how = draw(st.integers(0, 3))
    if how == 0:
        return items
    return (" ; ;" if how == 1 else "; ").join(items)


@st.composite
def _rules(draw: st.DrawFn, *, need_senders: bool) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if draw(st.booleans()) and draw(st.booleans()):
        rules["important"] = True
    if need_senders or draw(st.integers(0, 2)) == 0:
        rules["senders"] = _written(draw(_patterns()), draw)
    if draw(st.integers(0, 4)) == 0:
        rules["recipients"] = _written(draw(_patterns()), draw)
    if draw(st.integers(0, 2)) == 0:
        rules["subject_keywords"] = _written(draw(st.lists(st.sampled_from(KEYWORDS), min_size=1, max_size=3)), draw)
    if draw(st.integers(0, 3)) == 0:
        rules["attachment_types"] = _written(draw(st.lists(st.sampled_from(EXTENSIONS), min_size=1, max_size=2)),
                                             draw)
    if draw(st.integers(0, 4)) == 0:
        rules["sender_companies"] = _written(draw(st.lists(st.sampled_from([*COMPANIES, "globex"]), min_size=1,
                                                           max_size=2)), draw)
    return rules


@st.composite
def config_data(draw: st.DrawFn, *, max_routes: int = 8) -> dict[str, Any]:
    """The plain data of a valid configuration (what a TOML file would hold)."""
    names = draw(st.sampled_from([("Support",), ("Support", "Sales")]))
    connectors: list[dict[str, Any]] = []
    for name in names:
        primary, _ = CONNECTORS[name]
        # Sales may be incoming only: its addresses are then no addresses the system sends from (§3.1 step 1).
        use_for = "both" if name == "Support" else draw(st.sampled_from(("both", "incoming")))
        mailbox: dict[str, Any] = {
            "name": name, "service": "other", "primary_address": primary, "use_for": use_for, "username": primary,
            "incoming": {"protocol": "imap", "host": "mail.acme.example", "port": 993, "security": "ssl"}}
        if use_for == "both":
            mailbox["outgoing"] = {"host": "mail.acme.example", "port": 587, "security": "starttls", "auth": "none"}
        connectors.append(mailbox)
    if draw(st.booleans()):
        connectors.append({"name": "Relay", "service": "other", "primary_address": "noreply@acme.example",
                           "use_for": "outgoing", "outgoing": {"host": "relay.acme.example", "port": 25,
                                                               "security": "starttls", "auth": "none"}})
    routes: list[dict[str, Any]] = []
    for index in range(draw(st.integers(0, max_routes))):
        connector = draw(st.sampled_from(names))
        primary, aliases = CONNECTORS[connector]
        address = draw(st.sampled_from((primary, *aliases, "*")))
        target = draw(st.sampled_from(TARGETS))
        route: dict[str, Any] = {"connector": connector, "name": f"R{index}", "address": address,
                                 "target": target, "rules": draw(_rules(need_senders=address == "*"))}
        if target["kind"] == "ticket" and draw(st.booleans()):
            route["ticket_category"] = "Urgent"
        route["send_automated_emails"] = draw(st.booleans())
        route["test_mode"] = draw(st.booleans())
        route["enabled"] = draw(st.integers(0, 4)) != 0
        routes.append(route)
    fallbacks = [{"connector": name, "address": CONNECTORS[name][0], "target": TARGETS[0],
                  "send_automated_emails": draw(st.booleans())} for name in names]
    blocked = draw(st.lists(st.fixed_dictionaries({
        "address": st.one_of(_addresses(), st.sampled_from(DOMAINS).map(lambda d: "*" + d)),
        "action": st.sampled_from(("reject", "no-automated-emails"))}), max_size=3))
    # Often all of them, in any order: the file order decides ties (Globex and Globex Holdings).
    order = draw(st.permutations(list(COMPANIES)))
    companies = {name: COMPANIES[name] for name in order[:len(order) if draw(st.booleans()) else
                                                         draw(st.integers(0, len(order)))]}
    outgoing = []
    if draw(st.booleans()):
        outgoing.append({"name": "Replies", "address": "replies@acme.example", "connector": "Support"})
    linking = {"plus_addressing": draw(st.sampled_from(("off", "mixed", "plus-only"))),
               "subject_pattern": draw(st.sampled_from((r"\[REF:(?P<ref>[A-Z]+-\d+)\]", ""))),
               "search_body": draw(st.booleans())}
    return {"connectors": connectors, "routes": routes, "fallbacks": fallbacks, "blocked": blocked,
            "companies": companies, "outgoing_routes": outgoing, "linking": linking}


def configs(*, max_routes: int = 8) -> st.SearchStrategy[Config]:
    """Valid configurations with one or two incoming connectors and up to ``max_routes`` routes."""
    return config_data(max_routes=max_routes).map(parse_config)


_SOURCES: tuple[RecipientSource, ...] = ("to", "cc", "delivered-to", "x-original-to", "envelope")


def _config_addresses(config: Config) -> list[str]:
    found = {c.primary_address for c in config.connectors}
    found.update(r.address for r in config.routes if r.address != "*")
    found.update(o.address for o in config.outgoing_routes)
    return sorted(found)


def _config_vocabulary_of(patterns: tuple[str, ...]) -> list[str]:
    """Addresses that ``patterns`` match: exact ones as written, and two addresses per ``*domain``."""
    found: list[str] = []
    for pattern in patterns:
        found += [f"bob@{pattern[1:]}", f"ann@eu.{pattern[1:]}"] if pattern.startswith("*") else [pattern]
    return found


def _config_vocabulary(config: Config | None) -> tuple[list[str], list[str], list[str]]:
    """Senders, subject words and file names that the configuration's own rules mention."""
    senders: set[str] = set()
    keywords: set[str] = set()
    files: set[str] = set()
    for route in config.routes if config is not None else ():
        senders.update(_config_vocabulary_of((*route.rules.senders, *route.rules.recipients)))
        keywords.update(route.rules.subject_keywords)
        files.update(f"file.{ext}" for ext in route.rules.attachment_types)
    return sorted(senders), sorted(keywords), sorted(files)


@st.composite
def envelopes(draw: st.DrawFn, config: Config | None = None) -> Envelope:
    """Emails aimed at ``config``: its own addresses (and plus forms, and often two of them), the senders,
    keywords and attachment types its rules name, look-alikes, tokens in the subject and the body, automatic
    mail of every kind, and bounces returning mail the system knows or does not."""
    own = _config_addresses(config) if config is not None else []
    plus = [a.replace("@", "+t-1@", 1) for a in own] + [a.replace("@", "+zz-9@", 1) for a in own]
    mentioned, keywords, files = _config_vocabulary(config)
    pools = [_addresses(), *(st.sampled_from(p) for p in (own, plus, mentioned) if p)]
    address = st.one_of(*pools)
    # Mostly mail that routing has to think about: from someone the rules mention, to one of the
    # configuration's addresses; own-address, sender-less and stray mail less often.
    kind = draw(st.integers(0, 9))
    if kind == 0:
        sender = None
    elif kind == 1:
        sender = draw(address)
    else:
        sender = draw(st.sampled_from(mentioned) if mentioned and kind < 7 else _addresses())
    chosen: dict[str, RecipientSource] = {}
    aimed = draw(st.sampled_from(config.routes)) if config is not None and config.routes and kind > 3 else None
    if aimed is not None:  # an email made to satisfy one route's rules (others may hold too, or first)
        rules = aimed.rules
        if rules.senders:
            sender = draw(st.sampled_from(_config_vocabulary_of(rules.senders)))
        elif rules.sender_companies:  # someone of a named company, as [companies] (or another directory) has it
            named = {c.casefold() for c in rules.sender_companies}
            members = ["*" + p.lstrip("*@.") if p.startswith("*") else p
                       for name, patterns in COMPANIES.items() if name.casefold() in named for p in patterns]
            sender = draw(st.sampled_from(_config_vocabulary_of(tuple(members)) or [sender or "bob@acme.example"]))
        if aimed.address != "*":
            chosen[aimed.address] = draw(st.sampled_from(("to", "to", "cc", "delivered-to", "x-original-to")))
        if rules.recipients:
            chosen.setdefault(draw(st.sampled_from(_config_vocabulary_of(rules.recipients))), "cc")
    elif own and draw(st.integers(0, 4)) != 0:
        chosen[draw(st.sampled_from(own))] = draw(st.sampled_from(("to", "to", "cc", "delivered-to", "envelope")))
    # A second route of the same mailbox, on another address, whose rules the email meets where it can: mail
    # to two routed addresses yields a decision for each (docs/semantics.md §3.1 step 2).
    others = [] if aimed is None or config is None else [
        r for r in config.routes if r.connector == aimed.connector and r.address not in ("*", aimed.address)
        and not r.rules.senders and not r.rules.sender_companies]  # (the sender is the aimed route's)
    also: IncomingRoute | None = None
    if len(others) > 0 and draw(st.booleans()):
        also = draw(st.sampled_from(others))
    if also is not None:
        chosen.setdefault(also.address, draw(st.sampled_from(("to", "cc"))))
    elif own and draw(st.integers(0, 3)) == 0:  # a second address of the system
        chosen.setdefault(draw(st.sampled_from(own)), draw(st.sampled_from(("to", "cc", "cc", "x-original-to"))))
    for recipient, source in draw(st.lists(st.tuples(address, st.sampled_from(_SOURCES)), max_size=4)):
        chosen.setdefault(recipient, source)
    # Envelope.from_bytes lists recipients ranked by source, each address once (envelope.py).
    recipients = tuple(sorted((Recipient(a, s) for a, s in chosen.items()), key=lambda r: _SOURCES.index(r.source)))
    vocabulary = sorted(set(KEYWORDS + FILLER) | set(keywords))
    words = draw(st.lists(st.sampled_from(vocabulary), max_size=6))
    for route in (aimed, also):
        if route is not None and route.rules.subject_keywords:
            words.insert(draw(st.integers(0, len(words))), draw(st.sampled_from(route.rules.subject_keywords)))
    separators = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)))
    subject = "".join(w + s for w, s in zip(words, separators, strict=True))
    if draw(st.integers(0, 5)) == 0:
        # One token or several, an unknown one (ZZ-9) among them, at times first: each is tried in order (§3.4).
        subject += " ".join(draw(st.lists(st.sampled_from(("[REF:T-1]", "[REF:ZZ-9]", "[ref:t-1]", "[REF:T-2]")),
                                          min_size=1, max_size=3)))
    message_id = draw(st.one_of(st.none(), st.sampled_from(("a@x", "b@x", "c@x"))))
    attachments = draw(st.lists(st.sampled_from(sorted(set(FILES) | set(files))), max_size=3))
    for route in (aimed, also):
        if route is not None and route.rules.attachment_types:
            attachments.append("Attached." + draw(st.sampled_from(route.rules.attachment_types)).upper())
    automatic = draw(st.integers(0, 5)) == 0
    # The other signs of automatic mail (docs/semantics.md §3.5), bounces among them (docs/routing.md step 4).
    signal: dict[str, Any] = {}
    if draw(st.integers(0, 5)) == 0:
        signal = dict(draw(st.sampled_from(_SIGNALS)))
    if signal.get("sender") == "daemon":
        signal["sender"] = "mailer-daemon@" + (sender or "mx.example").rpartition("@")[2]
    # A body with tokens, an unknown one first (searched when [linking] search_body is on, §3.4).
    raw = draw(st.sampled_from((b"", b"raw one", b"raw two", b"\r\nsee [REF:ZZ-9] and [REF:T-2]\r\n")))
    if len(signal) > 0 and draw(st.booleans()):  # a report returning mail the system knows, or mail it does not
        raw = _report(draw(st.sampled_from(own or ["support@acme.example"])), draw(st.sampled_from(MESSAGE_IDS)),
                      draw(st.sampled_from(("no token", "[REF:T-1]", "[REF:ZZ-9] [REF:T-2]"))))
    # X-Loop (docs/semantics.md §3.5): mostly none; else a system address, a plus form, someone else, junk.
    loops = st.one_of(st.sampled_from(own or ["support@acme.example"]), st.sampled_from(plus or ["x+y@z"]),
                      _addresses(), st.sampled_from(X_LOOP_JUNK))
    x_loop = tuple(draw(st.lists(loops, min_size=1, max_size=2))) if draw(st.integers(0, 4)) == 0 else ()
    envelope = Envelope(
        message_id=message_id,
        sender=sender,
        recipients=recipients,
        subject=subject,
        attachments=tuple(attachments),
        important=draw(st.booleans()) or any(r is not None and r.rules.important for r in (aimed, also)),
        in_reply_to=tuple(draw(st.lists(st.sampled_from(MESSAGE_IDS), max_size=1))) if kind % 3 == 0 else (),
        references=tuple(draw(st.lists(st.sampled_from(MESSAGE_IDS), max_size=2))) if kind % 4 == 0 else (),
        auto_submitted="auto-replied" if automatic else draw(st.sampled_from((None, "no"))),
        x_loop=x_loop,
        raw=raw,
    )
    return dataclasses.replace(envelope, **signal) if signal else envelope


# Automatic mail other than Auto-Submitted; "daemon" stands for a mailer daemon at the sender's domain.
_SIGNALS: tuple[dict[str, Any], ...] = (
    {"precedence": "bulk"}, {"list_id": "<list.acme.example>"}, {"x_autoreply": True}, {"return_path": ""},
    {"sender": "no-reply@globex.example"}, {"is_delivery_report": True}, {"sender": "daemon"},
    {"is_delivery_report": True, "return_path": ""},
)


def _report(returned_from: str, message_id: str, subject: str) -> bytes:
    """A delivery status notification (RFC 3464) returning the headers of mail sent from ``returned_from``."""
    return (
        "From: MAILER-DAEMON@mx.globex.example\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.globex.example\r\n\r\n"
        "Final-Recipient: rfc822; gone@globex.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {returned_from}\r\nTo: gone@globex.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n\r\n--b--\r\n"
    ).encode()


@st.composite
def work_items(draw: st.DrawFn, config: Config | None = None) -> InMemoryWorkItems:
    """A lookup that knows some of ``MESSAGE_IDS`` (addressed to the configuration's addresses) and items."""
    own = _config_addresses(config) if config is not None else ["support@acme.example"]
    lookup = InMemoryWorkItems(draw(st.lists(st.sampled_from(("T-1", "T-2")), max_size=2)))
    for message_id in draw(st.lists(st.sampled_from(MESSAGE_IDS), max_size=3, unique=True)):
        lookup.remember(message_id, draw(st.sampled_from(("T-1", "T-2", "C-7"))), draw(st.sampled_from(own)),
                        generated=message_id.startswith("gen"))
    return lookup
