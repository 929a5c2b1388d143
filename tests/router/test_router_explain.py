"""Router.explain: the same run as route(), recording every route considered (docs/semantics.md §4)."""

from __future__ import annotations

import dataclasses

import pytest
from routing_helpers import HELP, SUPPORT, mail, make_config, route

from enate_routing._decision import Decision
from enate_routing._router import Router
from enate_routing.testing._synthetic import synthetic_config, synthetic_envelopes

CONFIG = make_config(
    route("Off", HELP, enabled=False),
    route("Invoices", HELP, rules={"senders": "*fabrikam.example", "attachment_types": "pdf"}),
    route("Urgent", HELP, rules={"subject_keywords": "urgent; outage", "important": True}),
    route("Help", HELP),
    route("Never reached", HELP),
)


def test_trace_lists_routes_in_order_up_to_the_winner_with_each_rule() -> None:
    """Each route before the winner is listed with each rule held/failed and why; later routes are not."""
    trace = Router.compile(CONFIG).explain(mail(subject="Network OUTAGE", attachments=("a.doc",)))
    group, = trace.addresses
    assert (group.address, group.source, group.chosen) == (HELP, "to", "Help")
    assert [(c.route, c.enabled, c.held) for c in group.routes] == [
        ("Off", False, False), ("Invoices", True, False), ("Urgent", True, False), ("Help", True, True)]
    invoices = {rule.rule: rule for rule in group.routes[1].rules}
    assert invoices["senders"].held and "'*fabrikam.example'" in invoices["senders"].why
    assert not invoices["attachment_types"].held and "'a.doc'" in invoices["attachment_types"].why
    urgent = {rule.rule: rule.held for rule in group.routes[2].rules}
    assert urgent == {"important": False, "subject_keywords": True}
    assert [c.priority for c in group.routes] == [1, 2, 3, 4]


def test_trace_result_is_the_route_result() -> None:
    """explain().result equals route() for the same email."""
    router = Router.compile(CONFIG)
    envelope = mail(subject="hello")
    assert router.explain(envelope).result == router.route(envelope)


def test_trace_reads_for_a_person() -> None:
    """format() names the connector, each route, each rule with a tick or a cross, and the decision."""
    text = Router.compile(CONFIG).explain(mail(subject="urgent", important=True)).format()
    assert "'Urgent': HOLDS" in text and "✓ important" in text and "skipped (disabled)" in text
    assert "create via route 'Urgent'" in text


def test_trace_of_fallback_and_of_early_exits() -> None:
    """A fallback run says no route held; an ignored email says why and considers no route."""
    router = Router.compile(make_config(route("Billing", "billing@contoso.example", rules={"senders": "a@b.example"})))
    trace = router.explain(mail(to=("billing@contoso.example",)))
    assert trace.addresses[0].chosen is None
    assert any("fallback" in step for step in trace.steps)
    ignored = router.explain(mail(SUPPORT))
    assert ignored.addresses == () and "ignore" in ignored.steps[-1]


def test_trace_says_why_an_x_loop_is_not_acknowledged() -> None:
    """explain shows the X-Loop suppression in its decision line, as for other automatic mail."""
    router = Router.compile(make_config(route("Help", HELP, send_automated_emails=True)))
    text = router.explain(mail(x_loop=(SUPPORT,))).format()
    assert "create via route 'Help'" in text and f"no acknowledgement (x-loop: {SUPPORT})" in text


@pytest.mark.parametrize("seed", [1, 2])
def test_explain_agrees_with_route_on_synthetic_mail(seed: int) -> None:
    """On a few hundred synthetic emails over 300 routes, explain() and route() give the same decisions."""
    config = synthetic_config(300, seed)
    router = Router.compile(config)
    for envelope in synthetic_envelopes(config, 300, seed):
        trace = router.explain(envelope)
        assert trace.result == router.route(envelope)
        for group in trace.addresses:
            assert [c.route for c in group.routes if c.held] == ([group.chosen] if group.chosen else [])


def test_decisions_are_frozen_and_slotted() -> None:
    """Decisions are immutable value objects without a __dict__ (docs/semantics.md §4)."""
    decision = Router.compile(CONFIG).route(mail()).decisions[0]
    assert isinstance(decision, Decision) and not hasattr(decision, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.action = "ignore"  # type: ignore[misc]
