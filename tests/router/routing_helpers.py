"""Small builders for the router tests: a configuration around one mailbox, and envelopes."""

from __future__ import annotations

from typing import Any

from enate_routing._envelope import Envelope, Recipient, RecipientSource
from enate_routing._loading import parse_config
from enate_routing._model import Config

SUPPORT = "support@contoso.example"
HELP = "help@contoso.example"
BILLING = "billing@contoso.example"
NOREPLY = "noreply@contoso.example"
TICKET = {"customer": "Contoso", "contract": "Internal", "service": "IT", "process": "Incident", "kind": "ticket"}
CASE = {"customer": "Fabrikam", "contract": "2026", "service": "Finance", "process": "Invoice query", "kind": "case"}


def route(name: str, address: str = HELP, **fields: Any) -> dict[str, Any]:
    """One [[routes]] entry of connector Support; ``rules`` and the other fields as keyword arguments."""
    data: dict[str, Any] = {"connector": "Support", "name": name, "address": address, "target": TICKET}
    data.update(fields)
    return data


def connector(name: str, primary: str, use_for: str = "both") -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "service": "other", "username": primary, "primary_address": primary,
                            "use_for": use_for}
    if use_for != "outgoing":
        data["incoming"] = {"protocol": "imap", "host": "mail.contoso.example", "port": 993, "security": "ssl"}
    if use_for != "incoming":
        data["outgoing"] = {"host": "mail.contoso.example", "port": 587, "security": "starttls", "auth": "none"}
    return data


def make_config(*routes: dict[str, Any], fallback_acks: bool = False, **sections: Any) -> Config:
    """Connector Support (primary support@, both) and an outgoing-only Relay (noreply@), plus ``routes``."""
    data: dict[str, Any] = {
        "connectors": [connector("Support", SUPPORT), connector("Relay", NOREPLY, "outgoing")],
        "routes": list(routes),
        "fallbacks": [{"connector": "Support", "address": SUPPORT, "name": "General",
                       "target": {**TICKET, "process": "General"}, "send_automated_emails": fallback_acks}],
    }
    data.update(sections)
    return parse_config(data)


def mail(
    sender: str | None = "ann@fabrikam.example",
    to: tuple[str, ...] = (HELP,),
    *,
    cc: tuple[str, ...] = (),
    delivered_to: tuple[str, ...] = (),
    x_original_to: tuple[str, ...] = (),
    envelope_to: tuple[str, ...] = (),
    message_id: str | None = "m1@fabrikam.example",
    **fields: Any,
) -> Envelope:
    """An envelope as Envelope.from_bytes would build it: recipients ranked by source, each address once."""
    seen: dict[str, Recipient] = {}
    sources: list[tuple[RecipientSource, tuple[str, ...]]] = [
        ("to", to), ("cc", cc), ("delivered-to", delivered_to), ("x-original-to", x_original_to),
        ("envelope", envelope_to)]
    for source, addresses in sources:
        for address in addresses:
            seen.setdefault(address, Recipient(address, source))
    return Envelope(message_id=message_id, sender=sender, recipients=tuple(seen.values()), **fields)


def eml(headers: dict[str, str], body: str = "Hello.\r\n") -> bytes:
    """A minimal RFC 5322 message."""
    lines = [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")
