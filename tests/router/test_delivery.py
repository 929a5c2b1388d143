"""One shape for delivery data: the configuration's Target and Delivery are what decisions and grid rows carry."""

from __future__ import annotations

import dataclasses

import pytest
from routing_helpers import HELP, TICKET, mail, make_config, route

from enate_routing._decision import Decision
from enate_routing._delivery import Delivery, Target
from enate_routing._router import Router
from enate_routing.admin import route_rows


def test_the_validated_target_is_the_runtime_target() -> None:
    """The configuration validates (and strips) a Target in place; decisions and grid rows carry that type."""
    config = make_config(route("Help", HELP, target={**TICKET, "customer": "  Contoso  "}, ticket_category="Sales",
                               send_automated_emails=True, for_attention="Ann"))
    configured = config.routes[0]
    assert type(configured.target) is Target and configured.target.customer == "Contoso"
    decision = Router.compile(config).route(mail()).decisions[0]
    expected = Delivery(target=configured.target, ticket_category="Sales", send_automated_emails=True,
                        for_attention="Ann")
    assert decision.delivery == expected
    row = next(r for r in route_rows(config) if r.name == "Help")
    assert row.delivery == expected and row.text("process") == "Incident" and row.text("for_attention") == "Ann"


def test_delivery_json_round_trips_and_decision_json_stays_flat() -> None:
    """Decision.to_json keeps the flat docs/semantics.md §5 fields; Delivery.from_json rebuilds the delivery."""
    delivery = Delivery(target=Target(customer="A", contract="B", service="C", process="D", kind="case"),
                        test_mode=True, for_attention="Bob")
    decision = Decision(connector="Support", action="create", address=HELP, idempotency_key="k", route="R",
                        delivery=delivery)
    data = decision.to_json("m")
    assert list(data) == ["message", "connector", "action", "address", "route", "fallback", "target",
                          "ticket_category", "send_automated_emails", "test_mode", "acknowledge", "suppressed",
                          "link", "idempotency_key"]
    assert data["target"]["kind"] == "case" and data["test_mode"] is True
    assert Delivery.from_json({**data, "for_attention": "Bob"}) == delivery
    assert Delivery.from_json(Decision(connector="S", action="ignore", address=HELP,
                                       idempotency_key="k").to_json()) is None


@pytest.mark.parametrize("kind", [Decision, Delivery, Target])
def test_delivery_data_is_keyword_only_frozen_and_slotted(kind: type) -> None:
    """No positional construction, no mutation, no __dict__."""
    fields = dataclasses.fields(kind)
    assert all(f.kw_only for f in fields)
    with pytest.raises(TypeError):
        kind(*["x"] * len(fields))
    assert "__slots__" in kind.__dict__ and kind.__dataclass_params__.frozen  # type: ignore[attr-defined]
