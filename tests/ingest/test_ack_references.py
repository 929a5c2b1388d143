"""Acknowledgements built after the hand-off from the reference the host's handler returned (issue 14 item 1).

The loop runs on an in-memory mailbox with the real compiled Router and the SQLite ledger; the reply to an
acknowledgement is routed through the same Router and must link by the subject token.
"""

from __future__ import annotations

import sqlite3
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from fakes import Mailbox, MemorySender, MemorySource, make_message

from enate_routing._envelope import Envelope
from enate_routing._loading import parse_config
from enate_routing._model import Config
from enate_routing._router import Router
from enate_routing.errors import ConfigError
from enate_routing.ingest import Backoff, Ingestor, SQLiteLedger, WorkItem
from enate_routing.ingest._configured import ack_wording

TARGET = {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}


def config_data(**linking: str) -> dict[str, Any]:
    return {
        "connectors": [{
            "name": "Support", "service": "other", "username": "help@acme.example", "password": "pw",
            "primary_address": "help@acme.example", "use_for": "both",
            "incoming": {"protocol": "imap", "host": "127.0.0.1", "port": 1, "security": "ssl"},
            "outgoing": {"host": "127.0.0.1", "port": 1, "security": "ssl", "auth": "none"},
        }],
        "routes": [{
            "connector": "Support", "name": "Billing", "address": "billing@acme.example", "target": TARGET,
            "send_automated_emails": True,
            "acknowledgement": {"subject": "[{route}] {subject}",
                                "text": "Dear {sender}, your invoice question is {reference}.\n"},
        }],
        "fallbacks": [{"connector": "Support", "address": "help@acme.example", "target": TARGET,
                       "send_automated_emails": True}],
        "linking": linking,
    }


class ReferencingHost:
    """Creates one work item per key and returns its reference, like a helpdesk would."""

    def __init__(self, returns: Any = "auto") -> None:
        self.returns = returns
        self.references: dict[str, Any] = {}

    def __call__(self, item: WorkItem) -> Any:
        if self.returns != "auto":
            return self.returns
        return self.references.setdefault(item.idempotency_key, f"T-{len(self.references) + 4711:06d}")


def run(config: Config, ledger: SQLiteLedger, box: Mailbox, host: Any, **options: Any) -> MemorySender:
    sender = MemorySender()
    ingestor = Ingestor(
        connector="Support", mailbox="INBOX", source_factory=lambda: MemorySource(box), router=Router.compile(config),
        store=ledger, handler=host, sender_factory=lambda: sender, ack_wording=ack_wording(config, "Support"),
        backoff=Backoff(base=0.0, cap=0.0), sleep=lambda _: None, **options,
    )
    ingestor.run_once()
    return sender


def acks(sender: MemorySender) -> list[Message]:
    return [message_from_bytes(raw) for _, _, raw in sender.sent]


def test_reference_goes_into_the_subject_token_and_the_ledger(ledger: SQLiteLedger, box: Mailbox) -> None:
    """The handler's reference is recorded with the hand-off and the acknowledgement subject carries [REF:…]."""
    box.deliver(make_message(1, subject="Printer broken"))
    sender = run(parse_config(config_data()), ledger, box, ReferencingHost())
    [ack] = acks(sender)
    assert ack["Subject"] == "Re: Printer broken [REF:T-004711]"
    assert "T-004711" in ack.get_payload(decode=True).decode()
    assert [w.reference for w in ledger.work_of(1)] == ["T-004711"]


def test_reply_to_the_acknowledgement_links_through_the_router(ledger: SQLiteLedger, box: Mailbox) -> None:
    """A reply keeping the acknowledgement's subject is routed as `link` to the work item (subject token)."""
    config = parse_config(config_data())
    box.deliver(make_message(1, subject="Printer broken"))
    [ack] = acks(run(config, ledger, box, ReferencingHost()))
    reply = make_message(2, subject=f"Re: {ack['Subject']}")
    [decision] = Router.compile(config).route(Envelope.from_bytes(reply), "Support").decisions
    assert decision.action == "link" and decision.link == "T-004711"


def test_without_a_reference_the_acknowledgement_is_as_before(ledger: SQLiteLedger, box: Mailbox) -> None:
    """A handler returning nothing: no token, the old text (nothing promised about a reference)."""
    box.deliver(make_message(1, subject="Printer broken"))
    [ack] = acks(run(parse_config(config_data()), ledger, box, ReferencingHost(returns=None)))
    assert ack["Subject"] == "Re: Printer broken"
    assert "REF" not in ack.as_string() and ledger.work_of(1)[0].reference is None


def test_a_resumed_acknowledgement_uses_the_recorded_reference(ledger: SQLiteLedger, box: Mailbox) -> None:
    """Crash after the hand-off, before the acknowledgement: the restart does not call the handler again and
    the acknowledgement still carries the reference recorded with the hand-off."""

    class Crash(BaseException):
        pass

    def crash(point: str, index: int) -> None:
        if point == "before_ack":
            raise Crash

    config = parse_config(config_data())
    box.deliver(make_message(1, subject="Printer broken"))
    with pytest.raises(Crash):
        run(config, ledger, box, ReferencingHost(), hook=crash)
    [ack] = acks(run(config, ledger, box, ReferencingHost(returns="T-999999")))
    assert ack["Subject"] == "Re: Printer broken [REF:T-004711]"


def test_route_and_fallback_templates(ledger: SQLiteLedger, box: Mailbox) -> None:
    """The route's template fills {route}, {subject}, {sender}, {reference}; the fallback keeps the default."""
    box.deliver(make_message(1, subject="Invoice 42", to="billing@acme.example", sender="ann@example.net"))
    box.deliver(make_message(2, subject="Hello", sender="bob@example.net"))
    by_to = {a["To"]: a for a in acks(run(parse_config(config_data()), ledger, box, ReferencingHost()))}
    billing, fallback = by_to["ann@example.net"], by_to["bob@example.net"]
    assert billing["Subject"] == "[Billing] Invoice 42 [REF:T-004711]"
    assert billing.get_payload(decode=True).decode() == "Dear ann@example.net, your invoice question is T-004711.\n"
    assert fallback["Subject"] == "Re: Hello [REF:T-004712]"


def test_values_are_sanitised_before_they_reach_a_header(ledger: SQLiteLedger, box: Mailbox) -> None:
    """A reference with CR/LF cannot inject a header into the acknowledgement."""
    box.deliver(make_message(1, subject="Printer broken"))
    [ack] = acks(run(parse_config(config_data()), ledger, box, ReferencingHost(returns="T-1\r\nBcc: x@evil.example")))
    assert ack["Bcc"] is None
    assert ack["Subject"] == "Re: Printer broken [REF:T-1 Bcc: x@evil.example]"


def test_custom_pattern_with_its_subject_token(ledger: SQLiteLedger, box: Mailbox) -> None:
    """A custom subject_pattern writes references with [linking] subject_token, and replies link."""
    config = parse_config(config_data(subject_pattern=r"\(#(?P<ref>\d+)\)", subject_token="(#{ref})"))
    box.deliver(make_message(1, subject="Printer broken"))
    [ack] = acks(run(config, ledger, box, ReferencingHost(returns="4711")))
    assert ack["Subject"] == "Re: Printer broken (#4711)"
    reply = make_message(2, subject=f"RE: {ack['Subject']}")
    [decision] = Router.compile(config).route(Envelope.from_bytes(reply), "Support").decisions
    assert decision.action == "link" and decision.link == "4711"


def test_custom_pattern_without_a_token_writes_none(ledger: SQLiteLedger, box: Mailbox) -> None:
    """A custom pattern that the default token form does not satisfy, and no subject_token: no token."""
    config = parse_config(config_data(subject_pattern=r"#(?P<ref>\d+)"))
    assert config.linking.reference_token() is None
    box.deliver(make_message(1, subject="Printer broken"))
    [ack] = acks(run(config, ledger, box, ReferencingHost(returns="4711")))
    assert ack["Subject"] == "Re: Printer broken"


@pytest.mark.parametrize(("where", "value", "expected"), [
    ("route", {"subject": "{ticket} {subject}"}, ["route 'Billing'", "acknowledgement", "{ticket}"]),
    ("route", {"text": "ref {reference!r}"}, ["route 'Billing'", "acknowledgement", "conversion"]),
    ("fallback", {"subject": "Re: {subject"}, ["fallback", "acknowledgement"]),
])
def test_template_errors_are_located(where: str, value: dict[str, str], expected: list[str]) -> None:
    """An unknown placeholder (or a broken template) is a configuration error naming the route and field."""
    data = config_data()
    (data["routes"] if where == "route" else data["fallbacks"])[0]["acknowledgement"] = value
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    message = str(caught.value)
    assert all(part in message for part in expected), message


@pytest.mark.parametrize("token", ["[{ref}]", "{id}", "(#{ref}) {ref}"])
def test_subject_token_must_match_the_pattern(token: str) -> None:
    """A subject_token that subject_pattern would not find, with the same reference, is refused at load."""
    with pytest.raises(ConfigError) as caught:
        parse_config(config_data(subject_pattern=r"\(#(?P<ref>\d+)\)", subject_token=token))
    assert "subject_token" in str(caught.value)


def test_ledger_of_an_earlier_version_gains_the_reference_column(tmp_path: Path) -> None:
    """Opening a ledger written before references adds the column; old rows read as no reference."""
    path = tmp_path / "old.db"
    SQLiteLedger(path).close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE work DROP COLUMN reference")
        db.execute("INSERT INTO messages (connector, mailbox, ref_key, sha256, size, raw, state, created_at, "
                   "updated_at) VALUES ('Support', 'INBOX', 'r', 'd', 1, x'00', 'routed', 0, 0)")
        db.execute("INSERT INTO work (connector, key, message, position, ack_state) VALUES ('Support', 'k', 1, 0, "
                   "'pending')")
    db.close()
    with SQLiteLedger(path) as ledger:
        assert ledger.work_of(1)[0].reference is None
        ledger.record_handed("Support", ["k"], references={"k": "T-000001"})
        assert ledger.work_of(1)[0].reference == "T-000001"


def test_the_fallback_has_its_own_template(ledger: SQLiteLedger, box: Mailbox) -> None:
    """A fallback's template words the acknowledgements of mail no route took; the token is still appended."""
    data = config_data()
    data["fallbacks"][0]["acknowledgement"] = {"subject": "Received by {route}: {subject}"}
    box.deliver(make_message(1, subject="Hello"))
    [ack] = acks(run(parse_config(data), ledger, box, ReferencingHost()))
    assert ack["Subject"] == "Received by Fallback: Hello [REF:T-004711]"
    assert "as T-004711" in ack.get_payload(decode=True).decode()  # the default text names the reference
