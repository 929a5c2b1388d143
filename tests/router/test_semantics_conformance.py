"""Conformance cases found by reviewing docs/semantics.md §3–§4 against both routers, compiled and reference.

Each test pins one rule where the two routers, or the routers and the docs, once disagreed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from routing_helpers import BILLING, HELP, SUPPORT, TICKET, connector, eml, mail, make_config, route

from enate_routing._directory import ConfiguredCompanies
from enate_routing._envelope import Envelope
from enate_routing._matcher import MatchCounters
from enate_routing._model import Config
from enate_routing._router import Router
from enate_routing.errors import ConfigError
from enate_routing.testing import ReferenceRouter

ROUTERS: dict[str, Callable[..., Any]] = {"compiled": Router.compile, "reference": ReferenceRouter}
SALES = "sales@contoso.example"
ORDERS = "orders@contoso.example"


@pytest.fixture(params=sorted(ROUTERS))
def build(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ROUTERS[request.param]


def test_an_empty_host_directory_replaces_the_configured_companies(build: Callable[..., Any]) -> None:
    """§3.3: a host's directory replaces [companies] even when it knows no company (it is empty, so falsy)."""
    config = make_config(route("Globex", HELP, rules={"sender_companies": "Globex"}),
                         companies={"Globex": ["*globex.example"]})
    decision = build(config, companies=ConfiguredCompanies({})).route(mail("ann@globex.example")).decisions[0]
    assert decision.fallback
    assert build(config).route(mail("ann@globex.example")).decisions[0].route == "Globex"


class NfdDirectory(ConfiguredCompanies):
    """A host directory whose database hands names back decomposed (NFD), as some do."""

    def company_of(self, address: str) -> str | None:
        name = super().company_of(address)
        return None if name is None else unicodedata.normalize("NFD", name)


def test_a_company_name_written_either_way_is_the_same_company(build: Callable[..., Any]) -> None:
    """§3 "case-insensitive everywhere": a company typed "Café" in the file and handed back as "Cafe" + U+0301
    by the host's directory is one company (canonical caseless form, as for subject words)."""
    config = make_config(route("Cafe", HELP, rules={"sender_companies": "CAFÉ"}))
    directory = NfdDirectory({"Café": ("*cafe.example",)})
    assert build(config, companies=directory).route(mail("ann@cafe.example")).decisions[0].route == "Cafe"
    nfd = make_config(route("Cafe", HELP, rules={"sender_companies": unicodedata.normalize("NFD", "Café")}),
                      companies={"Café": ["*cafe.example"]})
    assert build(nfd).route(mail("ann@cafe.example")).decisions[0].route == "Cafe"


@pytest.mark.parametrize(("keyword", "subject", "held"), [
    ("résumé", unicodedata.normalize("NFD", "Résumé attached"), True),  # macOS mail writes NFD
    ("re", unicodedata.normalize("NFD", "Résumé attached"), False),
    ("über", unicodedata.normalize("NFD", "ÜBER uns"), True),
    ("ber", unicodedata.normalize("NFD", "Über uns"), False),
    ("हिन्दी", "हिन्दी सहायता", True),  # Devanagari vowel signs are combining marks, inside the word
    ("ह", "हिन्दी सहायता", False),
    ("ด่วน", "งาน ด่วน", True),  # a Thai tone mark too
    ("วน", "งาน ด่วน", False),
    ("stanbul", "İstanbul office", False),  # İ case-folds to i and a combining dot
])
def test_combining_marks_belong_to_their_word(build: Callable[..., Any], keyword: str, subject: str,
                                              held: bool) -> None:
    """§3 keywords: a letter's combining marks are part of its word, and canonically equivalent text (NFC or
    NFD) has the same words, so no keyword matches part of a word and none misses an accented one."""
    config = make_config(route("Keyword", HELP, rules={"subject_keywords": [keyword]}))
    decision = build(config).route(mail(subject=subject)).decisions[0]
    assert (decision.route == "Keyword") is held


def test_a_configuration_change_keeps_the_key_only_within_its_scope(build: Callable[..., Any]) -> None:
    """§4 keys and docs/routing.md: another route for the same To/Cc address keeps the key; the move of that
    address's mail to the fallback changes its scope (address → mailbox), and so its key."""
    first = make_config(route("Help", HELP), route("Help too", HELP))
    other_route = make_config(route("Help", HELP, enabled=False), route("Help too", HELP))
    fallback = make_config(route("Help", HELP, enabled=False))
    envelope = mail(to=(HELP,))
    keys = [build(config).route(envelope).decisions[0].idempotency_key for config in (first, other_route, fallback)]
    assert keys[0] == keys[1] != keys[2]


def two_mailboxes(sales_use_for: str) -> Config:
    """Support (both-way, help@ alias) and a second mailbox Sales (orders@ alias) of the given use_for."""
    return make_config(
        route("Help", HELP),
        {**route("Orders", ORDERS), "connector": "Sales"},
        connectors=[connector("Support", SUPPORT), connector("Sales", SALES, sales_use_for)],
        fallbacks=[{"connector": name, "address": primary, "target": TICKET}
                   for name, primary in (("Support", SUPPORT), ("Sales", SALES))])


@pytest.mark.parametrize("sender", [HELP, "help+t-1@contoso.example", SUPPORT])
def test_mail_from_any_address_of_an_outgoing_connector_is_ignored(build: Callable[..., Any], sender: str) -> None:
    """§3.1 step 1: mail from any address of a connector that sends — its route addresses too, which its
    acknowledgements are sent from — is ignored by another connector, not made into work."""
    result = build(two_mailboxes("incoming")).route(mail(sender, to=(ORDERS,)), "Sales")
    assert [d.action for d in result.decisions] == ["ignore"]
    assert result.decisions[0].reason == f"mail from an address the system sends from ({sender})"


def test_mail_from_an_incoming_only_connectors_alias_is_routed(build: Callable[..., Any]) -> None:
    """§3.1 step 1 names the addresses of outgoing connectors: an incoming-only mailbox's alias is a sender
    like any other for a different connector (it is never acknowledged: it is an address of the system)."""
    config = two_mailboxes("incoming")
    decision = build(config).route(mail(ORDERS, to=(HELP,)), "Support").decisions[0]
    assert (decision.action, decision.route) == ("create", "Help")


@pytest.mark.parametrize("written", [".", "pdf; .", ["..", "pdf"]])
def test_an_attachment_type_that_names_no_extension_is_an_error(written: str | list[str]) -> None:
    """§3: an item of attachment_types that is only dots is no extension: an error naming the route, the rule
    and the item — not dropped like an empty item, which turned a rule of "." off (matching every email)."""
    with pytest.raises(ConfigError) as raised:
        make_config(route("PDF", HELP, rules={"attachment_types": written}))
    message = str(raised.value)
    assert "route 'PDF'" in message and "rules.attachment_types" in message and "not a file extension" in message


def test_the_reference_router_takes_the_routers_route_arguments() -> None:
    """docs/routing.md: ReferenceRouter has Router.route's signature — a caller's content digest names a message
    without a Message-ID alike, and counters see the routes the reference checks one by one."""
    config = make_config(route("Help", HELP, rules={"subject_keywords": "urgent"}))
    envelope = mail(message_id=None, subject="urgent", raw=b"raw bytes")
    digest = "ab" * 32
    compiled = Router.compile(config).route(envelope, content_digest=digest)
    counters = MatchCounters()
    assert ReferenceRouter(config).route(envelope, content_digest=digest, counters=counters) == compiled
    assert compiled != Router.compile(config).route(envelope)  # the digest given is the one used
    assert (counters.emails, counters.full_rule_checks) == (1, 1)


def test_to_addresses_come_before_cc_addresses_whatever_the_header_order(build: Callable[..., Any]) -> None:
    """§3.1 step 2, docs/routing.md: the decisions follow To, then Cc — also when the Cc field comes first."""
    config = make_config(route("Help", HELP), route("Billing", BILLING))
    raw = eml({"From": "ann@fabrikam.example", "Cc": HELP, "To": BILLING, "Subject": "x", "Message-ID": "<o@f>"})
    result = build(config).route(Envelope.from_bytes(raw))
    assert [d.address for d in result.decisions] == [BILLING, HELP]
