"""Bounces join the work item of the mail that bounced (docs/semantics.md §3.4, docs/routing.md step 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from routing_helpers import HELP, make_config, route

from enate_routing._bounces import find_bounce, is_bounce
from enate_routing._envelope import Envelope, returned_ids
from enate_routing._lookup_bound import LINK_TOKEN_LOOKUPS, MESSAGE_ID_LOOKUPS
from enate_routing._router import Router
from enate_routing.testing import InMemoryWorkItems, ReferenceRouter

ROUTERS: dict[str, Callable[..., Any]] = {"compiled": Router.compile, "reference": ReferenceRouter}
CONFIG = make_config(route("Help", HELP, send_automated_emails=True),
                     linking={"subject_pattern": r"\[REF:(?P<ref>[A-Z]+-\d+)\]"})


def lookup() -> InMemoryWorkItems:
    items = InMemoryWorkItems(["T-000123"])
    items.remember("ack-9@contoso.example", "T-000888", HELP, generated=True)
    items.remember("customer-1@fabrikam.example", "T-000777", HELP)
    return items


def dsn(original: str, *, part: str = "text/rfc822-headers", sender: str = "MAILER-DAEMON@mx.fabrikam.example",
        report: bool = True) -> bytes:
    top = ('multipart/report; report-type=delivery-status; boundary="b"' if report
           else 'multipart/mixed; boundary="b"')
    return (f"From: {sender}\r\nTo: {HELP}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: <dsn-1@mx.fabrikam.example>\r\nMIME-Version: 1.0\r\nContent-Type: {top}\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
            "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.fabrikam.example\r\n\r\n"
            "Final-Recipient: rfc822; gone@fabrikam.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            f"--b\r\nContent-Type: {part}\r\n\r\n{original}\r\n--b--\r\n").encode()


ACK_HEADERS = (f"From: {HELP}\r\nTo: gone@fabrikam.example\r\nSubject: We received your request\r\n"
               "Message-ID: <ack-9@contoso.example>\r\n")


@pytest.fixture(params=sorted(ROUTERS))
def build(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ROUTERS[request.param]


def decide(build: Callable[..., Any], raw: bytes, items: InMemoryWorkItems | None = None) -> tuple[str, str, str]:
    decision = build(CONFIG, lookup=items).route(Envelope.from_bytes(raw)).decisions[0]
    return decision.action, decision.link or decision.route or "", decision.reason or ""


def test_dsn_of_an_acknowledgement_links_to_its_work_item(build: Callable[..., Any]) -> None:
    """An RFC 3464 report returning our acknowledgement's headers links to the acknowledged work item."""
    assert decide(build, dsn(ACK_HEADERS), lookup()) == (
        "link", "T-000888", "bounce of <ack-9@contoso.example> (work item T-000888)")


def test_returned_message_attached_whole_links_too(build: Callable[..., Any]) -> None:
    """A message/rfc822 part (the whole returned message) is read like returned headers."""
    raw = dsn(ACK_HEADERS + "\r\nWe received your request.", part="message/rfc822")
    assert decide(build, raw, lookup())[:2] == ("link", "T-000888")


def test_bounce_found_through_the_message_it_answered(build: Callable[..., Any]) -> None:
    """An unknown returned message that answered a known one links to that one's work item."""
    headers = ("From: help@contoso.example\r\nSubject: Re: your order\r\nMessage-ID: <reply-4@contoso.example>\r\n"
               "In-Reply-To: <customer-1@fabrikam.example>\r\n")
    assert decide(build, dsn(headers), lookup()) == (
        "link", "T-000777",
        "bounce of <reply-4@contoso.example>, which answers <customer-1@fabrikam.example> (work item T-000777)")


def test_bounce_found_through_the_subject_token(build: Callable[..., Any]) -> None:
    """The returned acknowledgement's subject token links when the host knows the work item."""
    headers = "Subject: [REF:T-000123] We received your request\r\nMessage-ID: <ack-77@contoso.example>\r\n"
    assert decide(build, dsn(headers), lookup())[:2] == ("link", "T-000123")


def test_non_standard_bounce_from_a_mailer_daemon(build: Callable[..., Any]) -> None:
    """Not a multipart/report, but from a mailer daemon with the original attached: still a bounce."""
    raw = dsn(ACK_HEADERS, part="message/rfc822", report=False, sender="postmaster@mx.fabrikam.example")
    assert decide(build, raw, lookup())[:2] == ("link", "T-000888")
    tagged = dsn(ACK_HEADERS, part="message/rfc822", report=False, sender="MAILER-DAEMON+bounces@mx.fabrikam.example")
    assert decide(build, tagged, lookup())[:2] == ("link", "T-000888")  # a plus tag, as automatic_reason reads it


def test_unmatched_bounce_follows_the_routes(build: Callable[..., Any]) -> None:
    """A bounce of mail nobody knows is routed as today (no acknowledgement: it is automatic)."""
    headers = "Subject: Lunch?\r\nMessage-ID: <personal@contoso.example>\r\n"
    result = build(CONFIG, lookup=lookup()).route(Envelope.from_bytes(dsn(headers)))
    (decision,) = result.decisions
    assert (decision.action, decision.route, decision.acknowledge) == ("create", "Help", ())


def test_forwarded_message_from_a_person_is_not_a_bounce(build: Callable[..., Any]) -> None:
    """A person forwarding our acknowledgement as an attachment creates work; it did not bounce."""
    raw = dsn(ACK_HEADERS, part="message/rfc822", report=False, sender="ann@fabrikam.example")
    assert decide(build, raw, lookup())[:2] == ("create", "Help")


def test_broken_report_is_routed_not_raised() -> None:
    """A report whose parts cannot be read finds no original and never raises."""
    envelope = Envelope.from_bytes(b"From: MAILER-DAEMON@x.example\r\nTo: help@contoso.example\r\n"
                                   b"Content-Type: multipart/report; boundary=\"z\"\r\n\r\n--z\r\n"
                                   b"Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                                   b"@@@not base64\r\n--z")
    assert is_bounce(envelope)
    assert find_bounce(envelope, lookup(), None) is None


def test_ordinary_mail_is_not_a_bounce() -> None:
    """Mail from a person with a return path is not a bounce and is never parsed for one."""
    envelope = Envelope.from_bytes(b"From: ann@fabrikam.example\r\nReturn-Path: <ann@fabrikam.example>\r\n"
                                   b"To: help@contoso.example\r\nSubject: hi\r\n\r\nhello")
    assert not is_bounce(envelope)


def test_the_returned_subject_is_searched_as_every_subject_is(build: Callable[..., Any]) -> None:
    """Bounded like the subject search (docs/semantics.md §3.4): the first 1,000 characters, quantifiers at most
    64 times. The configured pattern itself took 73 s on 60,000 letters with a pattern that check accepts."""
    near = ACK_HEADERS.replace("Message-ID: <ack-9@contoso.example>\r\n", "").replace(
        "We received your request", "[REF:T-000123] We received your request")
    far = near.replace("[REF:T-000123]", f"{'A' * 60_000} [REF:T-000123]")
    assert decide(build, dsn(near), lookup())[:2] == ("link", "T-000123")
    assert decide(build, dsn(far), lookup())[0] == "create"


def test_returned_headers_are_read_within_the_parse_limits(build: Callable[..., Any]) -> None:
    """The returned headers are read by the envelope's own parser, limits included: a subject of 3,000 encoded
    words (over the 2,000 of docs/envelope.md) is not read, so its token does not link. The standard
    library's parser, used before, is quadratic in them (74 s on 3.9 MB)."""
    word = "=?utf-8?q?x?="
    within = ACK_HEADERS.replace("Message-ID: <ack-9@contoso.example>\r\n", "").replace(
        "We received your request", f"[REF:T-000123] {word}")
    over = within.replace(word, " ".join([word] * 3000))
    assert decide(build, dsn(within), lookup())[:2] == ("link", "T-000123")
    assert decide(build, dsn(over), lookup())[0] == "create"


def test_a_returned_message_is_found_after_a_large_attachment(build: Callable[..., Any]) -> None:
    """Attached messages are located by the MIME scan (in document order), their header blocks alone read."""
    big = "--b\r\nContent-Type: application/octet-stream\r\n\r\n" + "A" * 2_000_000 + "\r\n"
    raw = dsn(ACK_HEADERS + "\r\nThe acknowledgement text.", part="message/rfc822").replace(
        b"--b\r\nContent-Type: message/rfc822", big.encode() + b"--b\r\nContent-Type: message/rfc822")
    assert decide(build, raw, lookup()) == (
        "link", "T-000888", "bounce of <ack-9@contoso.example> (work item T-000888)")


class Counting(InMemoryWorkItems):
    """The lookup above, recording every question asked of it."""

    def __init__(self) -> None:
        super().__init__(["T-000123"])
        self.ids: list[str] = []
        self.references: list[str] = []

    def find_message(self, message_id: str) -> Any:
        self.ids.append(message_id)
        return super().find_message(message_id)

    def work_item_exists(self, reference: str) -> bool:
        self.references.append(reference)
        return super().work_item_exists(reference)


def test_every_token_of_the_returned_subject_is_tried(build: Callable[..., Any]) -> None:
    """A forwarded reference before our own: the tokens are tried in order, as in any subject (§3.4)."""
    headers = ("Subject: Fwd: [REF:X-1] Re: [REF:T-000123] We received your request\r\n"
               "Message-ID: <ack-78@contoso.example>\r\n")
    items = Counting()
    assert decide(build, dsn(headers), items)[:2] == ("link", "T-000123")
    assert items.references == ["X-1", "T-000123"]


def test_lookups_for_a_report_of_many_returned_messages_are_bounded() -> None:
    """A report returning 50 messages, each answering 100 ids and carrying 20 tokens: one bound for the whole
    email, as for any mail (docs/routing.md), not 5,000 database calls."""
    parts = []
    for n in range(50):
        references = " ".join(f"<r{n}-{i}@fabrikam.example>" for i in range(100))
        tokens = " ".join(f"[REF:X-{n}{i}]" for i in range(20))
        parts.append(f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: {tokens}\r\n"
                     f"Message-ID: <m{n}@fabrikam.example>\r\nReferences: {references}\r\n")
    raw = (f"From: MAILER-DAEMON@mx.fabrikam.example\r\nTo: {HELP}\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
           + "".join(parts) + "--b--\r\n").encode()
    items = Counting()
    assert find_bounce(Envelope.from_bytes(raw), items, re.compile(CONFIG.linking.subject_pattern)) is None
    assert len(items.ids) == MESSAGE_ID_LOOKUPS and len(set(items.ids)) == len(items.ids)
    assert len(items.references) == LINK_TOKEN_LOOKUPS


def test_returned_messages_after_every_allowed_lookup_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the id and token bounds are spent, the walk stops: a later returned message the host knows is not
    linked (as when it was read and skipped), and its header block is never parsed (999 blocks of 1,000 Cc
    addresses took 2.9 s)."""
    import enate_routing._bounces as bounces

    spent = "Subject: " + " ".join(f"[REF:X-{i}]" for i in range(LINK_TOKEN_LOOKUPS)) + "\r\nReferences: " + " ".join(
        f"<r{i}@fabrikam.example>" for i in range(MESSAGE_ID_LOOKUPS)) + "\r\n"
    later = "Message-ID: <customer-1@fabrikam.example>\r\n"
    raw = (f"From: MAILER-DAEMON@mx.fabrikam.example\r\nTo: {HELP}\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
           f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{spent}\r\n"
           f"--b\r\nContent-Type: message/rfc822\r\n\r\n{later}\r\nbody\r\n--b--\r\n").encode()
    read: list[bytes] = []
    monkeypatch.setattr(bounces, "returned_ids",
                        lambda block, **only: read.append(block) or returned_ids(block, **only))
    token = re.compile(CONFIG.linking.subject_pattern)
    assert find_bounce(Envelope.from_bytes(raw), lookup(), token) is None
    assert len(read) == 1
    swapped = raw.replace(spent.encode(), b"X-Spent: no\r\n")  # the bounds not spent: the second is read, linked
    found = find_bounce(Envelope.from_bytes(swapped), lookup(), token)
    assert found is not None and found.work_item == "T-000777" and len(read) == 3
