"""The bundled demo mailbox is a golden corpus: each message's expected decisions."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from enate_routing._directory import KnownMessage
from enate_routing._envelope import Envelope
from enate_routing._loading import load_config
from enate_routing._router import Router
from enate_routing.testing import InMemoryWorkItems, ReferenceRouter

DATA = Path(str(resources.files("enate_routing") / "data"))

# message → [(action, route or link or reason)] with the demo's work items known.
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "01-urgent-outage": [("create", "Urgent outages")],
    "02-password-reset": [("create", "Password resets")],
    "03-resetting-is-not-reset": [("create", "Help desk")],
    "04-fabrikam-invoice-pdf": [("create", "Fabrikam invoices")],
    "05-fabrikam-billing-no-attachment": [("create", "Billing questions")],
    "06-lookalike-domain": [("create", "Billing questions")],
    "07-fabrikam-subdomain-xlsx": [("create", "Fabrikam invoices")],
    "08-northwind-important": [("create", "Northwind VIP")],
    "09-northwind-normal": [("create", "Help desk")],
    "10-northwind-ceo-gmail": [("create", "Northwind VIP")],
    "11-two-routed-addresses": [("create", "Help desk"), ("create", "Fabrikam invoices")],
    "12-bcc-alias-x-original-to": [("create", "Billing questions")],
    "13-bcc-wildcard": [("create", "Fabrikam by Bcc")],
    "14-bcc-unknown-sender": [("create", "Triage")],
    "15-encoded-subject-q": [("create", "Urgent outages")],
    "16-encoded-subject-base64": [("create", "Password resets")],
    "17-auto-reply-to-our-ack": [("ignore", "automatic reply to mail the system sent (auto-submitted: auto-replied)")],
    "18-mailing-list": [("create", "Help desk")],
    "19-blocked-spammer": [("reject", "blocked")],
    "20-newsletter-no-ack": [("create", "Help desk")],
    "21-follow-up-subject-token": [("link", "T-000123")],
    "22-follow-up-in-reply-to": [("link", "C-000077")],
    "23-follow-up-plus-address": [("link", "t-000456")],
    "24-own-address": [("ignore", "mail from the connector's own address support@contoso.example")],
    "25-from-relay": [("ignore", "mail from an address the system sends from (noreply@contoso.example)")],
    "26-hr-new-starter": [("create", "New starters")],
    "27-hr-contract-docx": [("create", "HR documents")],
    "28-upper-case-addresses": [("create", "Help desk")],
    "29-idna-sender": [("create", "Bücher orders")],
    "30-bounce": [("link", "T-001002")],
    "31-partner-cc": [("create", "Partner escalations")],
    "32-follow-up-body-token": [("link", "T-000789")],
    "33-log-bundle-tar-gz": [("create", "Log bundles")],
    "34-printer-disabled-route": [("create", "Help desk")],
    "35-forwarded-message-attachment": [("create", "Triage")],
    "36-bounce-of-unknown-mail": [("create", "Help desk")],
    "37-reply-to-acknowledgement": [("link", "T-001002")],
}


def demo_lookup() -> InMemoryWorkItems:
    data = json.loads((DATA / "demo_work_items.json").read_text(encoding="utf-8"))
    items = InMemoryWorkItems(data["work_items"])
    for message_id, entry in data["messages"].items():
        items.messages[message_id] = KnownMessage(entry["work_item"], entry["address"], entry["generated"])
    return items


def test_corpus_is_complete() -> None:
    """Every bundled message has an expectation and the mailbox has at least 30 messages."""
    names = sorted(path.stem for path in (DATA / "demo_mail").glob("*.eml"))
    assert names == sorted(EXPECTED) and len(names) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_demo_message_routes_as_expected(name: str) -> None:
    """Each demo message gets its expected decisions from the compiled and the reference router."""
    config = load_config(DATA / "demo.toml", verify_certificates=False)
    envelope = Envelope.from_bytes((DATA / "demo_mail" / f"{name}.eml").read_bytes())
    assert envelope.quarantine_reason is None
    for router in (Router.compile(config, lookup=demo_lookup()), ReferenceRouter(config, lookup=demo_lookup())):
        got = [(d.action, d.route if d.action == "create" else d.link or d.reason or "")
               for d in router.route(envelope).decisions]
        assert got == EXPECTED[name]
