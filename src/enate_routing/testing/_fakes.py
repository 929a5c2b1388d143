"""In-memory stand-ins for what a host supplies (docs/semantics.md §3.3, §3.4), for tests of the host's own code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from enate_routing._directory import KnownMessage
from enate_routing._patterns import AddressPattern, domain_and_parents, domain_matchable

__all__ = ["DictCompanies", "InMemoryWorkItems"]


class InMemoryWorkItems:
    """A :class:`~enate_routing._directory.WorkItemLookup` kept in two dicts.

    ``remember(message_id, work_item, address, generated=...)`` records mail the host has seen or sent;
    ``add(reference)`` records a work item. Every message id remembered also makes its work item exist.
    References compare case-insensitively, because plus addresses reach the router case-folded.
    """

    def __init__(self, items: Iterable[str] = ()) -> None:
        self.messages: dict[str, KnownMessage] = {}
        self.items: set[str] = {item.casefold() for item in items}

    def add(self, reference: str) -> None:
        self.items.add(reference.casefold())

    def remember(self, message_id: str, work_item: str, address: str, *, generated: bool = False) -> None:
        self.messages[message_id] = KnownMessage(work_item, address, generated)
        self.add(work_item)

    def find_message(self, message_id: str) -> KnownMessage | None:
        return self.messages.get(message_id)

    def work_item_exists(self, reference: str) -> bool:
        return reference.casefold() in self.items


class DictCompanies:
    """A :class:`~enate_routing._directory.CompanyDirectory` from ``{address or *domain: company}``."""

    def __init__(self, entries: Mapping[str, str]) -> None:
        self.addresses: dict[str, str] = {}
        self.domains: dict[str, str] = {}
        for text, company in entries.items():
            pattern = AddressPattern.parse(text)
            (self.domains if pattern.is_domain else self.addresses)[pattern.value] = company

    def company_of(self, address: str) -> str | None:
        if address in self.addresses:
            return self.addresses[address]
        if not domain_matchable(address):
            return None
        for domain in domain_and_parents(address.rpartition("@")[2]):
            if domain in self.domains:
                return self.domains[domain]
        return None
