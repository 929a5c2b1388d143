"""Acknowledgements go out from the address the customer wrote to, through its outgoing route (semantics.md §3.2)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from fakes import Host, Mailbox, MemorySender, MemorySource, make_message

from enate_routing._loading import parse_config
from enate_routing._model import Config, Connector
from enate_routing._router import Router
from enate_routing.ingest import AckState, Backoff, Ingestor, SQLiteLedger, _configured, sending_connector

TARGET = {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}

BASE: dict[str, Any] = {
    "connectors": [
        {
            "name": "Support", "service": "other", "username": "support@acme.example", "password": "pw",
            "primary_address": "support@acme.example", "use_for": "both",
            "incoming": {"protocol": "imap", "host": "mail.acme.example", "port": 993, "security": "ssl"},
            "outgoing": {"host": "mail.acme.example", "port": 587, "security": "starttls",
                         "auth": "username-password"},
        },
        {
            "name": "Relay", "service": "other", "username": "relay@acme.example", "password": "pw",
            "primary_address": "noreply@acme.example", "use_for": "outgoing",
            "outgoing": {"host": "relay.acme.example", "port": 587, "security": "starttls",
                         "auth": "username-password"},
        },
        {
            "name": "Other relay", "service": "other", "username": "other@acme.example", "password": "pw",
            "primary_address": "other@acme.example", "use_for": "outgoing",
            "outgoing": {"host": "other.acme.example", "port": 587, "security": "starttls",
                         "auth": "username-password"},
        },
    ],
    "routes": [
        {"connector": "Support", "name": "Billing", "address": "billing@acme.example", "target": TARGET,
         "send_automated_emails": True},
    ],
    "fallbacks": [
        {"connector": "Support", "address": "support@acme.example", "target": TARGET, "send_automated_emails": True},
    ],
    "outgoing_routes": [
        {"name": "Billing replies", "address": "billing@acme.example", "connector": "Relay"},
    ],
}


def config_with(**changes: Any) -> Config:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return parse_config(data)


def incoming_only(data: dict[str, Any]) -> dict[str, Any]:
    """The same configuration with Support reading mail only (it can send nothing itself)."""
    support = data["connectors"][0]
    support["use_for"] = "incoming"
    del support["outgoing"]
    return data


Run = Callable[[Config], tuple[Host, dict[str, MemorySender], SQLiteLedger]]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Ingest one mail to billing@ and one to support@ through ``from_config``, senders in memory."""

    def go(config: Config) -> tuple[Host, dict[str, MemorySender], SQLiteLedger]:
        box = Mailbox()
        box.deliver(make_message(1, to="billing@acme.example"))
        box.deliver(make_message(2, to="support@acme.example"))
        senders: dict[str, MemorySender] = {}

        def open_sender(connector: Connector, access: Any = None) -> MemorySender:
            return senders.setdefault(connector.name, MemorySender())

        monkeypatch.setattr(_configured, "open_sender", open_sender)
        monkeypatch.setattr(_configured, "open_source", lambda *args, **kwargs: MemorySource(box))
        store = SQLiteLedger(tmp_path / f"ledger-{len(list(tmp_path.iterdir()))}.db")
        host = Host()
        ingestor = Ingestor.from_config(
            config, "Support", router=Router.compile(config), store=store, handler=host,
            backoff=Backoff(base=0, cap=0, max_failures=5), sleep=lambda _: None,
        )
        ingestor.run_once()
        assert box.unprocessed() == []
        return host, senders, store

    return go


def sent_from(sender: MemorySender) -> list[tuple[str, str, tuple[str, ...]]]:
    """(envelope sender, From header, recipients) of every message the sender sent."""
    return [(envelope_from, str(message_from_bytes(raw)["From"]), to) for envelope_from, to, raw in sender.sent]


def test_mail_for_billing_is_acknowledged_from_billing_through_its_outgoing_route(run: Run) -> None:
    """billing@ mail: From and envelope sender billing@, sent by the connector of billing@'s outgoing route."""
    host, senders, store = run(config_with())
    assert {item.decision.address for item in host.items.values()} == {"billing@acme.example", "support@acme.example"}
    assert sent_from(senders["Relay"]) == [("billing@acme.example", "billing@acme.example", ("customer@example.net",))]
    # support@ has no outgoing route: the connector itself (used for both) sends, from support@.
    assert sent_from(senders["Support"]) == [
        ("support@acme.example", "support@acme.example", ("customer@example.net",))
    ]
    store.close()


def test_without_a_route_for_the_address_the_connector_itself_sends_from_that_address(run: Run) -> None:
    """Fallback 2: no outgoing route for billing@ → the connector itself (outgoing/both), From still billing@."""
    _, senders, store = run(config_with(outgoing_routes=[
        {"name": "Support replies", "address": "support@acme.example", "connector": "Other relay"},
    ]))
    assert set(senders) == {"Support", "Other relay"}
    assert sent_from(senders["Support"]) == [
        ("billing@acme.example", "billing@acme.example", ("customer@example.net",))
    ]
    assert sent_from(senders["Other relay"]) == [
        ("support@acme.example", "support@acme.example", ("customer@example.net",))
    ]
    store.close()


def test_a_disabled_outgoing_route_is_passed_over(run: Run) -> None:
    """Only enabled outgoing routes choose a sender."""
    _, senders, store = run(config_with(outgoing_routes=[
        {"name": "Billing replies", "address": "billing@acme.example", "connector": "Relay", "enabled": False},
    ]))
    assert set(senders) == {"Support"}
    assert [f for f, _, _ in sent_from(senders["Support"])] == ["billing@acme.example", "support@acme.example"]
    store.close()


def test_an_incoming_only_connector_falls_back_to_the_primary_address_choice(run: Run) -> None:
    """Fallback 3: no route for billing@, the connector cannot send → the primary address's outgoing route."""
    data = incoming_only(copy.deepcopy(BASE))
    data["outgoing_routes"] = [
        {"name": "Support replies", "address": "support@acme.example", "connector": "Other relay"},
    ]
    _, senders, store = run(parse_config(data))
    assert set(senders) == {"Other relay"}
    assert sent_from(senders["Other relay"]) == [
        ("billing@acme.example", "billing@acme.example", ("customer@example.net",)),
        ("support@acme.example", "support@acme.example", ("customer@example.net",)),
    ]
    store.close()


def test_no_sender_at_all_records_no_sender(run: Run) -> None:
    """Nothing can send for the address (no route, incoming-only, no route for the primary): no-sender."""
    data = incoming_only(copy.deepcopy(BASE))
    data["outgoing_routes"] = []
    host, senders, store = run(parse_config(data))
    assert senders == {} and len(host.items) == 2
    assert {w.ack_state for m in (1, 2) for w in store.work_of(m)} == {AckState.NO_SENDER}
    store.close()


def test_a_disabled_sending_connector_sends_nothing(run: Run) -> None:
    """The outgoing route names a disabled connector: that acknowledgement is recorded as no-sender."""
    data = copy.deepcopy(BASE)
    data["connectors"][1]["enabled"] = False
    _, senders, store = run(parse_config(data))
    assert set(senders) == {"Support"}
    states = {store.get(m).decisions[0]["address"]: store.work_of(m)[0].ack_state for m in (1, 2)}
    assert states == {"billing@acme.example": AckState.NO_SENDER, "support@acme.example": AckState.SENT}
    store.close()


def test_sending_connector_order() -> None:
    """The documented order: route for the address; the connector itself; the primary address's choice."""
    config = config_with(outgoing_routes=[
        {"name": "Billing replies", "address": "billing@acme.example", "connector": "Relay"},
        {"name": "Support replies", "address": "support@acme.example", "connector": "Other relay"},
    ])
    support = config.connector("Support")
    pick = lambda address: getattr(sending_connector(config, support, address), "name", None)  # noqa: E731
    assert pick("billing@acme.example") == "Relay"  # 1. its outgoing route
    assert pick("BILLING@acme.example") == "Relay"  # addresses compare without case
    assert pick("support@acme.example") == "Other relay"  # the primary address: its route first
    assert pick(None) == "Other relay"
    without_billing = config_with(outgoing_routes=[
        {"name": "Support replies", "address": "support@acme.example", "connector": "Other relay"},
    ])
    support = without_billing.connector("Support")
    assert sending_connector(without_billing, support, "billing@acme.example") is support  # 2. itself
    data = incoming_only(copy.deepcopy(BASE))
    data["outgoing_routes"] = [{"name": "Support replies", "address": "support@acme.example", "connector": "Relay"}]
    reader = parse_config(data)
    chosen = sending_connector(reader, reader.connector("Support"), "billing@acme.example")
    assert chosen is not None and chosen.name == "Relay"  # 3. the primary address's choice
    data["outgoing_routes"] = []
    reader = parse_config(data)
    assert sending_connector(reader, reader.connector("Support"), "billing@acme.example") is None
