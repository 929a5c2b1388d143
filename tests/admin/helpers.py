"""Helpers for the administration tests: a small configuration, a fake clock, permissions."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from enate_routing._model import Config
from enate_routing.admin import HistoryEntry, MemoryHistoryStore
from enate_routing.errors import StoreError

SUPPORT_PASSWORD = "s3cret-support-pw"

BASE: dict[str, Any] = {
    "connectors": [
        {
            "name": "Support", "service": "other", "username": "support@acme.example",
            "password": SUPPORT_PASSWORD, "primary_address": "support@acme.example", "use_for": "both",
            "incoming": {"protocol": "imap", "host": "mail.acme.example", "port": 993, "security": "ssl"},
            "outgoing": {"host": "mail.acme.example", "port": 587, "security": "starttls",
                         "auth": "username-password"},
        },
        {
            "name": "Sales", "service": "other", "username": "sales@acme.example", "password": "sales-pw",
            "primary_address": "sales@acme.example", "use_for": "incoming",
            "incoming": {"protocol": "pop3", "host": "pop.acme.example", "port": 995, "security": "ssl"},
        },
        {
            "name": "Relay", "service": "office365-smtp-relay", "primary_address": "noreply@acme.example",
            "use_for": "outgoing", "outgoing": {"host": "acme.mail.protection.outlook.com", "auth": "none"},
        },
    ],
    # File order interleaves connectors and tiers on purpose: priority is per connector and tier.
    "routes": [
        {"connector": "Support", "name": "A1", "address": "support@acme.example",
         "target": {"customer": "Globex", "contract": "2026", "service": "Finance", "process": "Invoice query",
                    "kind": "case"}, "rules": {"senders": "*globex.example"}},
        {"connector": "Sales", "name": "S1", "address": "sales@acme.example",
         "target": {"customer": "Acme", "contract": "Internal", "service": "Sales", "process": "Lead",
                    "kind": "ticket"}, "ticket_category": "Leads"},
        {"connector": "Support", "name": "W1", "address": "*",
         "target": {"customer": "Initech", "contract": "Main", "service": "IT", "process": "Incident",
                    "kind": "ticket"}, "rules": {"senders": "*initech.example"}},
        {"connector": "Support", "name": "A2", "address": "billing@acme.example",
         "target": {"customer": "Globex", "contract": "2026", "service": "Finance", "process": "Billing",
                    "kind": "ticket"}, "ticket_category": "Urgent", "send_automated_emails": True},
        {"connector": "Sales", "name": "S2", "address": "sales@acme.example",
         "target": {"customer": "Acme", "contract": "Internal", "service": "Sales", "process": "Quote",
                    "kind": "ticket"}, "rules": {"subject_keywords": "quote"}},
        {"connector": "Support", "name": "A3", "address": "support@acme.example",
         "target": {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "Incident",
                    "kind": "ticket"}, "rules": {"subject_keywords": "urgent; outage"}, "test_mode": True},
        {"connector": "Support", "name": "W2", "address": "*",
         "target": {"customer": "Globex", "contract": "2026", "service": "IT", "process": "Incident",
                    "kind": "case"}, "rules": {"senders": "*globex.example"}, "for_attention": "Dana"},
    ],
    "fallbacks": [
        {"connector": "Support", "address": "support@acme.example",
         "target": {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "General",
                    "kind": "ticket"}},
        {"connector": "Sales", "address": "sales@acme.example",
         "target": {"customer": "Globex", "contract": "2026", "service": "Sales", "process": "General",
                    "kind": "ticket"}},
    ],
    "outgoing_routes": [
        {"name": "Support replies", "address": "support@acme.example", "connector": "Support"},
        {"name": "Notifications", "address": "noreply@acme.example", "connector": "Relay", "enabled": False},
    ],
}

INCIDENT = {"customer": "Acme", "contract": "Internal", "service": "IT", "process": "Incident", "kind": "ticket"}


def base_data() -> dict[str, Any]:
    return copy.deepcopy(BASE)


class FakeClock:
    """A clock that starts at a fixed instant and moves one minute per reading."""

    def __init__(self) -> None:
        self.start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return self.start + timedelta(minutes=self.calls - 1)


class Grant:
    """Permissions that grant reordering to the named actors only."""

    def __init__(self, *actors: str) -> None:
        self.actors = set(actors)

    def can_reorder(self, actor: str, connector: str) -> bool:
        return actor in self.actors


def names(config: Config, connector: str) -> list[str]:
    """The route names of ``connector`` in priority order (address tier, then wildcard tier)."""
    return [r.name for r in config.routes_of(connector)]


class BrokenStore(MemoryHistoryStore):
    """A history store whose disk is full: every append fails."""

    def append(self, entries: Sequence[HistoryEntry]) -> tuple[HistoryEntry, ...]:
        raise StoreError("disk full")
