"""What the host supplies to routing (docs/semantics.md §3.3, §3.4): a company directory and a work-item lookup.

Both are ``typing.Protocol``s, so a host passes any object with the right method. The built-in
:class:`ConfiguredCompanies` is compiled from the configuration's ``[companies]`` table; in-memory fakes of
both live in ``enate_routing.testing``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from enate_routing._patterns import AddressPattern, domain_and_parents, domain_matchable

__all__ = ["CompanyDirectory", "ConfiguredCompanies", "KnownMessage", "WorkItemLookup"]


@runtime_checkable
class CompanyDirectory(Protocol):
    """Maps a sender's normalised address to the name of the company it belongs to (docs/semantics.md §3.3)."""

    def company_of(self, address: str) -> str | None:
        """The company name of ``address`` (already case-folded, IDNA domain), or None when unknown."""
        ...


@dataclass(frozen=True, slots=True)
class KnownMessage:
    """What the host knows about an earlier message id (docs/semantics.md §3.4).

    ``work_item`` is the reference of the work the earlier mail belongs to; ``address`` the mailbox address
    that earlier mail was addressed to (for mail the system sent: the address it was sent from, where the
    replies arrive); ``generated`` is true when the system itself sent that mail (an acknowledgement, an
    update), which makes an automatic reply to it be ignored rather than linked.
    """

    work_item: str
    address: str
    generated: bool = False


@runtime_checkable
class WorkItemLookup(Protocol):
    """The host's memory of earlier mail and of its work items (docs/semantics.md §3.4)."""

    def find_message(self, message_id: str) -> KnownMessage | None:
        """What the host knows about ``message_id`` (without angle brackets), or None."""
        ...

    def work_item_exists(self, reference: str) -> bool:
        """True when ``reference`` (from a plus address or a subject / body token) names existing work."""
        ...


class ConfiguredCompanies:
    """The built-in directory, from ``[companies]``: company name → addresses and ``*domain`` patterns.

    docs/semantics.md §3.3: an exact address entry wins over a domain entry, and the most specific domain wins; the
    domain is walked label by label from the most specific (``a.eu.globex.example``, ``eu.globex.example``,
    ``globex.example``), so a lookup costs one dict probe per label. When two companies list the very same
    address or domain, the first in the file wins (``check`` users see it as the table's order).
    """

    __slots__ = ("_addresses", "_by_key", "_domains")

    def __init__(self, companies: Mapping[str, tuple[str, ...]]) -> None:
        addresses: dict[str, str] = {}
        domains: dict[str, str] = {}
        by_key: dict[str, str] = {}
        for company, patterns in companies.items():
            for text in patterns:
                pattern = AddressPattern.parse(text)
                table = domains if pattern.is_domain else addresses
                table.setdefault(pattern.value, company)
                by_key.setdefault(str(pattern), company)
        self._addresses = addresses
        self._domains = domains
        self._by_key = by_key

    def companies_by_key(self) -> dict[str, str]:
        """Company names by address key (``a@b``, ``*b``): probed with an address's keys, most specific first,
        the first hit is :meth:`company_of` — the router derives the sender's keys anyway."""
        return dict(self._by_key)

    def company_of(self, address: str) -> str | None:
        company = self._addresses.get(address)
        if company is not None:
            return company
        if not self._domains or not domain_matchable(address):
            return None
        for domain in domain_and_parents(address.rpartition("@")[2]):
            company = self._domains.get(domain)
            if company is not None:
                return company
        return None

    def __len__(self) -> int:
        return len(self._addresses) + len(self._domains)
