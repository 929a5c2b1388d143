"""Follow-ups link to existing work before routing (docs/semantics.md §3.4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from routing_helpers import BILLING, HELP, SUPPORT, eml, mail, make_config, route

from enate_routing._envelope import Envelope
from enate_routing._model import Config
from enate_routing._router import Router
from enate_routing.testing import InMemoryWorkItems, ReferenceRouter

ROUTERS: dict[str, Callable[..., Any]] = {"compiled": Router.compile, "reference": ReferenceRouter}


@pytest.fixture(params=sorted(ROUTERS))
def build(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ROUTERS[request.param]


def configured(mode: str = "off", **linking: Any) -> Config:
    return make_config(route("Help", HELP, send_automated_emails=True), route("Billing", BILLING),
                       linking={"plus_addressing": mode, **linking})


def lookup() -> InMemoryWorkItems:
    items = InMemoryWorkItems(["T-000123"])
    items.remember("orig@fabrikam.example", "T-000777", HELP)
    items.remember("ack@contoso.example", "T-000888", HELP, generated=True)
    return items


def outcome(result: Any) -> tuple[str, str | None, str]:
    decision = result.decisions[0]
    return decision.action, decision.link, decision.address


def test_in_reply_to_links_when_the_mailbox_address_is_still_a_recipient(build: Callable[..., Any]) -> None:
    """In-Reply-To naming a known message links to its work item while its mailbox address is a recipient."""
    router = build(configured(), lookup=lookup())
    assert outcome(router.route(mail(cc=(HELP,), to=("x@y.example",), in_reply_to=("orig@fabrikam.example",)))) == (
        "link", "T-000777", HELP)


def test_in_reply_to_does_not_link_when_the_mailbox_was_dropped(build: Callable[..., Any]) -> None:
    """A reply that no longer includes the original mailbox address is routed as new work."""
    router = build(configured(), lookup=lookup())
    result = router.route(mail(to=(BILLING,), in_reply_to=("orig@fabrikam.example",)))
    assert [(d.action, d.route) for d in result.decisions] == [("create", "Billing")]


def test_references_are_searched_from_the_most_recent(build: Callable[..., Any]) -> None:
    """Without a known In-Reply-To, References link, the last (most recent) known id first."""
    items = lookup()
    items.remember("later@fabrikam.example", "T-000999", HELP)
    router = build(configured(), lookup=items)
    envelope = mail(in_reply_to=("unknown@x",), references=("orig@fabrikam.example", "later@fabrikam.example"))
    assert outcome(router.route(envelope))[1] == "T-000999"


def test_without_a_lookup_in_reply_to_cannot_link(build: Callable[..., Any]) -> None:
    """With no lookup given, message ids are unknown and the mail is routed."""
    result = build(configured()).route(mail(in_reply_to=("orig@fabrikam.example",)))
    assert result.decisions[0].action == "create"


@pytest.mark.parametrize(("mode", "expected"), [("off", ("create", None)), ("mixed", ("link", "t-000123")),
                                                 ("plus-only", ("link", "t-000123"))])
def test_plus_addressing_modes(build: Callable[..., Any], mode: str, expected: tuple[str, str | None]) -> None:
    """help+T-000123@ links in mixed and plus-only modes (reference case-folded, like the address)."""
    router = build(configured(mode), lookup=lookup())
    result = router.route(mail(to=("help+T-000123@contoso.example".lower(),)))
    assert outcome(result)[:2] == expected
    assert result.decisions[0].address == HELP


def test_plus_address_naming_unknown_work_routes_as_its_base_address(build: Callable[..., Any]) -> None:
    """A plus tag that the lookup does not know is not a link; the mail routes as help@."""
    router = build(configured("mixed"), lookup=lookup())
    result = router.route(mail(to=("help+newsletter@contoso.example",)))
    assert [(d.action, d.route, d.address) for d in result.decisions] == [("create", "Help", HELP)]


@pytest.mark.parametrize(("mode", "action"), [("off", "link"), ("mixed", "link"), ("plus-only", "create")])
def test_subject_token_links_except_in_plus_only_mode(build: Callable[..., Any], mode: str, action: str) -> None:
    """[REF:T-000123] in the subject links; in plus-only mode only plus addresses link."""
    router = build(configured(mode), lookup=lookup())
    result = router.route(mail(subject="Re: your ticket [REF:T-000123] thanks"))
    assert result.decisions[0].action == action


def test_in_reply_to_wins_over_a_subject_token(build: Callable[..., Any]) -> None:
    """Follow-up evidence is taken in the documented order: In-Reply-To before the subject token."""
    router = build(configured(), lookup=lookup())
    result = router.route(mail(subject="[REF:T-000123]", in_reply_to=("orig@fabrikam.example",)))
    assert outcome(result)[1] == "T-000777"


def test_subject_token_for_unknown_work_does_not_link(build: Callable[..., Any]) -> None:
    """With a lookup, a token naming no existing work item is ignored and the mail is routed."""
    result = build(configured(), lookup=lookup()).route(mail(subject="[REF:T-000404]"))
    assert result.decisions[0].action == "create"


def test_subject_pattern_with_one_unnamed_group_and_off(build: Callable[..., Any]) -> None:
    """A custom pattern with one group links; an empty pattern turns subject tokens off."""
    custom = configured(subject_pattern=r"#(\d{4})")
    assert outcome(build(custom).route(mail(subject="About #1234")))[:2] == ("link", "1234")
    off = configured(subject_pattern="")
    assert build(off).route(mail(subject="[REF:T-000123]")).decisions[0].action == "create"


def test_body_token_links_only_when_search_body_is_on(build: Callable[..., Any]) -> None:
    """A token in the plain-text body links only with linking.search_body = true."""
    raw = eml({"From": "ann@fabrikam.example", "To": HELP, "Subject": "More info", "Message-ID": "<b@f>"},
              "See [REF:T-000123] for details.\r\n")
    envelope = Envelope.from_bytes(raw)
    assert build(configured(search_body=True), lookup=lookup()).route(envelope).decisions[0].link == "T-000123"
    assert build(configured(), lookup=lookup()).route(envelope).decisions[0].action == "create"


def test_automatic_reply_to_generated_mail_is_ignored(build: Callable[..., Any]) -> None:
    """An out-of-office answering the system's own acknowledgement is ignored, not linked (§3.4)."""
    router = build(configured(), lookup=lookup())
    decision, = router.route(mail(in_reply_to=("ack@contoso.example",), auto_submitted="auto-replied")).decisions
    assert decision.action == "ignore" and decision.reason is not None and "auto-replied" in decision.reason
    human = router.route(mail(in_reply_to=("ack@contoso.example",)))
    assert outcome(human)[:2] == ("link", "T-000888")


def test_reply_to_generated_mail_carrying_our_x_loop_is_ignored(build: Callable[..., Any]) -> None:
    """A reply to the system's own acknowledgement whose X-Loop names the system is ignored like an
    auto-reply; an X-Loop of someone else still links, and so does our X-Loop on a reply to a customer's mail."""
    router = build(configured(), lookup=lookup())
    decision, = router.route(mail(in_reply_to=("ack@contoso.example",), x_loop=("help+t-1@contoso.example",))).decisions
    assert (decision.action, decision.reason) == (
        "ignore", "automatic reply to mail the system sent (x-loop: help+t-1@contoso.example)")
    other = router.route(mail(in_reply_to=("ack@contoso.example",), x_loop=("desk@fabrikam.example",)))
    assert outcome(other)[:2] == ("link", "T-000888")
    customer = router.route(mail(in_reply_to=("orig@fabrikam.example",), x_loop=(HELP,)))
    assert outcome(customer)[:2] == ("link", "T-000777")


def test_automatic_reply_with_a_token_is_ignored(build: Callable[..., Any]) -> None:
    """Tokens are written only into generated mail, so an auto-reply carrying one is ignored."""
    router = build(configured(), lookup=lookup())
    decision, = router.route(mail(subject="Automatic reply: [REF:T-000123]", precedence="bulk")).decisions
    assert decision.action == "ignore"


def test_automatic_reply_to_a_customers_mail_still_links(build: Callable[..., Any]) -> None:
    """An automatic mail replying to a customer's (not generated) message links normally."""
    router = build(configured(), lookup=lookup())
    result = router.route(mail(in_reply_to=("orig@fabrikam.example",), auto_submitted="auto-replied"))
    assert outcome(result)[:2] == ("link", "T-000777")


def test_follow_up_checks_come_after_own_mail_and_blocked_senders(build: Callable[..., Any]) -> None:
    """Own mail is ignored and blocked senders rejected even when they carry a reference."""
    config = make_config(route("Help", HELP), blocked=[{"address": "*spam.example", "action": "reject"}])
    router = build(config, lookup=lookup())
    assert router.route(mail(SUPPORT, subject="[REF:T-000123]")).decisions[0].action == "ignore"
    assert router.route(mail("x@spam.example", subject="[REF:T-000123]")).decisions[0].action == "reject"


def test_link_key_is_the_mailbox_key(build: Callable[..., Any]) -> None:
    """A link decision's idempotency key is the per-message mailbox key: retries and copies agree."""
    router = build(configured(), lookup=lookup())
    one = router.route(mail(to=(HELP,), subject="[REF:T-000123]")).decisions[0]
    two = router.route(mail(to=(BILLING,), subject="[REF:T-000123]")).decisions[0]
    assert one.idempotency_key == two.idempotency_key
    assert one.address == HELP and two.address == BILLING
