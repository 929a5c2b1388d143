"""The routing procedure of docs/semantics.md §3.1, §3.5 and the idempotency keys of §4, with hand-written cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from routing_helpers import BILLING, HELP, NOREPLY, SUPPORT, connector, mail, make_config, route

from enate_routing._decision import RoutingResult
from enate_routing._envelope import Envelope
from enate_routing._loading import parse_config
from enate_routing._router import Router
from enate_routing.errors import ConfigError, UnknownConnectorError
from enate_routing.testing import ReferenceRouter

ROUTERS: dict[str, Callable[..., Any]] = {"compiled": Router.compile, "reference": ReferenceRouter}


@pytest.fixture(params=sorted(ROUTERS))
def build(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ROUTERS[request.param]


def summary(result: RoutingResult) -> list[tuple[str, str, str | None]]:
    return [(d.action, d.address, d.route) for d in result.decisions]


STANDARD = (
    route("Help", HELP),
    route("Billing", BILLING, rules={"subject_keywords": "invoice"}),
    route("Support desk", SUPPORT),
)


# --- step 1: own mail --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", [SUPPORT, HELP, "help+t-1@contoso.example", NOREPLY, "replies@contoso.example"])
def test_mail_from_the_systems_own_addresses_is_ignored(build: Callable[..., Any], sender: str) -> None:
    """Mail from C's own addresses, an outgoing connector or an outgoing route address is ignored (§3.1 step 1)."""
    config = make_config(*STANDARD, outgoing_routes=[
        {"name": "Replies", "address": "replies@contoso.example", "connector": "Support"}])
    result = build(config).route(mail(sender))
    assert [d.action for d in result.decisions] == ["ignore"]
    assert result.decisions[0].reason and sender in result.decisions[0].reason


# --- step 2: addresses --------------------------------------------------------------------------------------


def test_two_routed_addresses_give_two_decisions_in_order_of_appearance(build: Callable[..., Any]) -> None:
    """To: billing@, Cc: help@ gives one decision per address, in order of first appearance (§3.1 step 2)."""
    result = build(make_config(*STANDARD)).route(mail(to=(BILLING, "x@y.example"), cc=(HELP,), subject="Invoice"))
    assert summary(result) == [("create", BILLING, "Billing"), ("create", HELP, "Help")]
    assert len({d.idempotency_key for d in result.decisions}) == 2


def test_an_address_whose_routes_fail_gives_no_decision(build: Callable[..., Any]) -> None:
    """With To: help@, billing@ and billing's rule failing, only help@ decides; the fallback is not added."""
    result = build(make_config(*STANDARD)).route(mail(to=(HELP, BILLING), subject="Hello"))
    assert summary(result) == [("create", HELP, "Help")]


def test_delivered_to_is_ignored_when_to_or_cc_names_the_connector(build: Callable[..., Any]) -> None:
    """Servers add Delivered-To for the mailbox itself; it must not double aliased mail (§3.1 step 2)."""
    result = build(make_config(*STANDARD)).route(mail(to=(HELP,), delivered_to=(SUPPORT,)))
    assert summary(result) == [("create", HELP, "Help")]


def test_bcc_mail_is_routed_by_delivered_to_then_x_original_to(build: Callable[..., Any]) -> None:
    """Without an address of C in To/Cc, Delivered-To, X-Original-To and envelope recipients route the mail."""
    config = make_config(*STANDARD)
    result = build(config).route(mail(to=("team@fabrikam.example",), x_original_to=(BILLING,), subject="Invoice"))
    assert summary(result) == [("create", BILLING, "Billing")]
    result = build(config).route(mail(to=("team@fabrikam.example",), envelope_to=(HELP,)))
    assert summary(result) == [("create", HELP, "Help")]


def test_bcc_delivery_yields_one_decision(build: Callable[..., Any]) -> None:
    """A Bcc'd copy naming two addresses of C decides once, for the first address with a route that holds."""
    config = make_config(*STANDARD)
    result = build(config).route(mail(to=("t@fabrikam.example",), delivered_to=(SUPPORT,), x_original_to=(HELP,)))
    assert summary(result) == [("create", SUPPORT, "Support desk")]


def test_plus_address_routes_as_its_base_address_when_not_linked(build: Callable[..., Any]) -> None:
    """help+anything@ is routed as help@ when no link is made (plus addressing off)."""
    result = build(make_config(*STANDARD)).route(mail(to=("help+newsletter@contoso.example",)))
    assert summary(result) == [("create", HELP, "Help")]


def test_disabled_routes_are_skipped(build: Callable[..., Any]) -> None:
    """A disabled route never holds; the next enabled route does."""
    config = make_config(route("Off", HELP, enabled=False), route("On", HELP))
    assert summary(build(config).route(mail())) == [("create", HELP, "On")]


# --- steps 3 and 4: wildcard tier, fallback -------------------------------------------------------------------


def test_wildcard_tier_comes_after_every_address_route(build: Callable[..., Any]) -> None:
    """A wildcard route earlier in the file still loses to an address route that holds (§3.1 tiers)."""
    config = make_config(route("Catch Fabrikam", "*", rules={"senders": "*fabrikam.example"}), route("Help", HELP))
    assert summary(build(config).route(mail())) == [("create", HELP, "Help")]
    bcc = mail(to=("team@fabrikam.example",))
    assert summary(build(config).route(bcc)) == [("create", SUPPORT, "Catch Fabrikam")]


def test_no_route_held_is_the_fallback_decision(build: Callable[..., Any]) -> None:
    """When nothing holds, the connector's fallback decides, on its primary address, marked fallback."""
    config = make_config(route("Billing", BILLING, rules={"subject_keywords": "invoice"}))
    result = build(config).route(mail(to=(BILLING,), subject="Hello"))
    decision, = result.decisions
    assert (decision.action, decision.route, decision.fallback, decision.address) == (
        "create", "General", True, SUPPORT)
    assert decision.delivery is not None and decision.delivery.target.process == "General"


def test_mail_without_sender_or_recipients_still_gets_a_decision(build: Callable[..., Any]) -> None:
    """An envelope with nothing in it routes to the fallback, never raises."""
    result = build(make_config(*STANDARD)).route(Envelope())
    assert [d.fallback for d in result.decisions] == [True]


def test_quarantined_mail_is_never_routed(build: Callable[..., Any]) -> None:
    """An envelope past the parsing limits is ignored with its quarantine reason (docs/semantics.md §3.1.1)."""
    envelope = Envelope(sender="a@b.example", quarantine_reason="too deep")
    decision, = build(make_config(*STANDARD)).route(envelope).decisions
    assert decision.action == "ignore" and decision.reason == "quarantined: too deep"


# --- connectors -----------------------------------------------------------------------------------------------


def two_connectors() -> Any:
    return parse_config({
        "connectors": [connector("Support", SUPPORT), connector("Sales", "sales@contoso.example", "incoming")],
        "fallbacks": [{"connector": "Support", "address": SUPPORT, "target": route("x")["target"]},
                      {"connector": "Sales", "address": "sales@contoso.example", "target": route("x")["target"]}],
    })


def test_connector_may_be_omitted_only_with_one_incoming_connector(build: Callable[..., Any]) -> None:
    """route() without a connector works for one incoming connector and is a typed error for two."""
    assert build(make_config(*STANDARD)).route(mail()).connector == "Support"
    with pytest.raises(UnknownConnectorError, match="name the connector"):
        build(two_connectors()).route(mail())
    assert build(two_connectors()).route(mail(), "Sales").connector == "Sales"


@pytest.mark.parametrize("name", ["Nope", "Relay"])
def test_unknown_or_outgoing_connector_is_a_typed_error(build: Callable[..., Any], name: str) -> None:
    """Naming a connector that does not receive mail raises UnknownConnectorError (a ConfigError, a LookupError)."""
    with pytest.raises(UnknownConnectorError) as caught:
        build(make_config(*STANDARD)).route(mail(), name)
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, LookupError)
    assert name in str(caught.value)
    assert "(incoming connectors: 'Support')" in str(caught.value)  # the names that would have worked


# --- §3.5 blocked senders and acknowledgements --------------------------------------------------------------


BLOCKED = [{"address": "*spam.example", "action": "reject"},
           {"address": "ok@spam.example", "action": "no-automated-emails"},
           {"address": "*quiet.example", "action": "no-automated-emails"}]


def test_blocked_sender_is_rejected(build: Callable[..., Any]) -> None:
    """A sender under a reject entry gives one reject decision with reason 'blocked'."""
    decision, = build(make_config(*STANDARD, blocked=BLOCKED)).route(mail("x@eu.spam.example")).decisions
    assert (decision.action, decision.reason, decision.route) == ("reject", "blocked", None)


def test_the_most_specific_blocked_entry_wins(build: Callable[..., Any]) -> None:
    """An exact no-automated-emails entry inside a rejected domain lets the mail through without acks."""
    config = make_config(route("Help", HELP, send_automated_emails=True), blocked=BLOCKED)
    decision, = build(config).route(mail("ok@spam.example")).decisions
    assert (decision.action, decision.acknowledge, decision.suppressed) == ("create", (), "blocked")


@pytest.mark.parametrize(("sender", "acknowledged"), [
    ("ok@spam.example", ((), "blocked")),  # a blocked sender
    ("ann\x7f@fabrikam.example", ((), "no recipient")),  # an address no mailbox can have
    ("ann@fabrikam.example", (("ann@fabrikam.example",), None)),
])
def test_a_senders_acknowledgement_is_the_same_on_every_email(build: Callable[..., Any], sender: str,
                                                              acknowledged: tuple[object, ...]) -> None:
    """The router remembers why a sender is never acknowledged: the second email from it is answered as the first."""
    router = build(make_config(route("Help", HELP, send_automated_emails=True), blocked=BLOCKED))
    for _ in range(2):
        decision, = router.route(mail(sender)).decisions
        assert (decision.acknowledge, decision.suppressed) == acknowledged


def test_acknowledgement_goes_to_sender_and_cc_minus_system_blocked_and_duplicates(build: Callable[..., Any]) -> None:
    """Acks: sender + Cc, minus C's addresses, outgoing addresses, blocked addresses and duplicates (§3.5)."""
    config = make_config(route("Help", HELP, send_automated_emails=True), blocked=BLOCKED)
    envelope = mail("ann@fabrikam.example", to=(HELP, "to-only@fabrikam.example"),
                    cc=(SUPPORT, NOREPLY, "bob@fabrikam.example", "x@quiet.example", "ANN@fabrikam.example".lower(),
                        "help+t-9@contoso.example", "carol@fabrikam.example"))
    decision, = build(config).route(envelope).decisions
    assert decision.acknowledge == ("ann@fabrikam.example", "bob@fabrikam.example", "carol@fabrikam.example")
    assert decision.suppressed is None


def test_no_acknowledgement_when_the_route_sends_none(build: Callable[..., Any]) -> None:
    """A route with send_automated_emails = false acknowledges nobody and reports no suppression."""
    decision, = build(make_config(route("Help", HELP))).route(mail(cc=("bob@x.example",))).decisions
    assert decision.delivery is not None
    assert (decision.acknowledge, decision.suppressed, decision.delivery.send_automated_emails) == ((), None, False)


def test_automatic_mail_is_not_acknowledged(build: Callable[..., Any]) -> None:
    """Auto-Submitted mail is routed but its acknowledgement is suppressed with the reason (§3.5)."""
    config = make_config(route("Help", HELP, send_automated_emails=True))
    decision, = build(config).route(mail(auto_submitted="auto-replied")).decisions
    expected = ("create", (), "auto-submitted: auto-replied")
    assert (decision.action, decision.acknowledge, decision.suppressed) == expected


OUTGOING = [{"name": "Replies", "address": "replies@contoso.example", "connector": "Support"}]


@pytest.mark.parametrize("loop", [HELP, SUPPORT, "help+t-1@contoso.example", NOREPLY, "replies@contoso.example"])
def test_x_loop_naming_the_system_suppresses_the_acknowledgement(build: Callable[..., Any], loop: str) -> None:
    """An X-Loop naming an address of the system (a plus form by its base) is routed, never acknowledged (§3.5)."""
    config = make_config(route("Help", HELP, send_automated_emails=True), outgoing_routes=OUTGOING)
    asked: list[str] = []
    envelope = mail(x_loop=("loop-1", loop))
    decision, = build(config).route(envelope, acknowledgement_allowed=lambda s: asked.append(s) or True).decisions
    assert (decision.action, decision.route) == ("create", "Help")
    assert (decision.acknowledge, decision.suppressed) == ((), f"x-loop: {loop}")
    assert asked == [], "suppressed before the rate limit is asked: the loop spends none of the sender's budget"


@pytest.mark.parametrize("loop", [(), ("ann@fabrikam.example",), ("helpdesk@other.example", "yes"),
                                  ("Help@contoso.example (auto)",), ("",)])
def test_x_loop_naming_someone_else_or_junk_is_acknowledged(build: Callable[..., Any], loop: tuple[str, ...]) -> None:
    """An X-Loop of another system, or text that is no address, does not stop the acknowledgement."""
    config = make_config(route("Help", HELP, send_automated_emails=True), outgoing_routes=OUTGOING)
    decision, = build(config).route(mail(x_loop=loop)).decisions
    assert (decision.acknowledge, decision.suppressed) == (("ann@fabrikam.example",), None)


def test_the_envelopes_own_automatic_reason_comes_before_x_loop(build: Callable[..., Any]) -> None:
    """Auto-Submitted and X-Loop together: the RFC 3834 reason is the one given."""
    config = make_config(route("Help", HELP, send_automated_emails=True))
    decision, = build(config).route(mail(auto_submitted="auto-replied", x_loop=(HELP,))).decisions
    assert decision.suppressed == "auto-submitted: auto-replied"


def test_rate_limit_callback_suppresses_and_is_asked_once(build: Callable[..., Any]) -> None:
    """The host's rate limit is asked once per email with the sender; False suppresses with 'rate limit'."""
    config = make_config(route("Help", HELP, send_automated_emails=True),
                         route("Billing", BILLING, send_automated_emails=True))
    asked: list[str] = []

    def allowed(sender: str) -> bool:
        asked.append(sender)
        return False

    result = build(config).route(mail(to=(HELP, BILLING)), acknowledgement_allowed=allowed)
    assert [(d.acknowledge, d.suppressed) for d in result.decisions] == [((), "rate limit")] * 2
    assert asked == ["ann@fabrikam.example"]
    assert build(config).route(mail(), acknowledgement_allowed=lambda s: True).decisions[0].acknowledge == (
        "ann@fabrikam.example",)


def test_no_recipient_left_is_said(build: Callable[..., Any]) -> None:
    """Mail without a From and without Cc is not acknowledged, and the decision says so."""
    decision, = build(make_config(route("Help", HELP, send_automated_emails=True))).route(mail(None)).decisions
    assert (decision.acknowledge, decision.suppressed) == ((), "no recipient")


def test_fallback_acknowledges_too(build: Callable[..., Any]) -> None:
    """The fallback's send_automated_emails governs acknowledgements of fallback decisions."""
    decision, = build(make_config(fallback_acks=True)).route(mail(to=(SUPPORT,))).decisions
    assert decision.fallback and decision.acknowledge == ("ann@fabrikam.example",)


# --- §4 idempotency keys ------------------------------------------------------------------------------------


def test_idempotency_key_is_stable_across_retries_and_recompiles(build: Callable[..., Any]) -> None:
    """The same message through the same connector gets the same key, today and after a recompile."""
    config = make_config(*STANDARD)
    first = build(config).route(mail()).decisions[0].idempotency_key
    assert build(config).route(mail()).decisions[0].idempotency_key == first
    assert build(make_config(*STANDARD)).route(mail()).decisions[0].idempotency_key == first
    assert build(config).route(mail(message_id="other@x")).decisions[0].idempotency_key != first


def test_idempotency_key_without_message_id_digests_the_raw_bytes(build: Callable[..., Any]) -> None:
    """Without a Message-ID the key comes from the raw bytes: same bytes same key, other bytes other key."""
    router = build(make_config(*STANDARD))
    one = router.route(mail(message_id=None, raw=b"one")).decisions[0].idempotency_key
    assert router.route(mail(message_id=None, raw=b"one")).decisions[0].idempotency_key == one
    assert router.route(mail(message_id=None, raw=b"two")).decisions[0].idempotency_key != one


def test_two_bcc_copies_of_one_message_share_their_key(build: Callable[..., Any]) -> None:
    """One message Bcc'd to help@ and billing@ arrives twice; both copies carry one key (§3.1 step 2, §4)."""
    router = build(make_config(*STANDARD))
    help_copy = router.route(mail(to=("t@fabrikam.example",), x_original_to=(HELP,), subject="Invoice"))
    billing_copy = router.route(mail(to=("t@fabrikam.example",), x_original_to=(BILLING,), subject="Invoice"))
    assert summary(help_copy) != summary(billing_copy)
    assert help_copy.decisions[0].idempotency_key == billing_copy.decisions[0].idempotency_key


def test_result_serialises_to_exactly_the_spec_fields(build: Callable[..., Any]) -> None:
    """to_json() gives the docs/semantics.md §5 fields, in order, with JSON-ready values."""
    row, = build(make_config(*STANDARD)).route(mail()).to_json("a.eml")
    assert list(row) == ["message", "connector", "action", "address", "route", "fallback", "target",
                         "ticket_category", "send_automated_emails", "test_mode", "acknowledge", "suppressed",
                         "link", "idempotency_key"]
    assert row["message"] == "a.eml" and row["target"]["kind"] == "ticket"
