"""Shadowed routes and mail loops found at configuration time (docs/semantics.md §5 check)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from routing_helpers import BILLING, HELP, NOREPLY, SUPPORT, TICKET, connector, mail, make_config, route

from bench_check import pairwise as pairwise_shadowed
from enate_routing._analysis import find_loops, find_shadowed, may_overlap, rules_cover
from enate_routing._model import Config, RoutingRules
from enate_routing._router import Router
from enate_routing.errors import ConfigError
from enate_routing.testing import synthetic_config
from enate_routing.testing.strategies import configs


def rules(**fields: Any) -> RoutingRules:
    return RoutingRules.model_validate(fields)


@pytest.mark.parametrize(("first", "later"), [
    ({"senders": "*fabrikam.example"}, {"senders": "cfo@fabrikam.example"}),
    ({"senders": "*fabrikam.example"}, {"senders": "*eu.fabrikam.example; a@fabrikam.example"}),
    ({}, {"subject_keywords": "anything"}),
    ({"subject_keywords": "reset"}, {"subject_keywords": "password reset"}),
    ({"attachment_types": "gz"}, {"attachment_types": "tar.gz"}),
    ({"sender_companies": "Fabrikam; Globex"}, {"sender_companies": "fabrikam"}),
    ({"senders": "*fabrikam.example"}, {"senders": "a@fabrikam.example", "important": True}),
])
def test_rules_cover(first: dict[str, Any], later: dict[str, Any]) -> None:
    """The first rule set holds whenever the later one does."""
    assert rules_cover(rules(**first), rules(**later))


@pytest.mark.parametrize(("first", "later"), [
    ({"senders": "cfo@fabrikam.example"}, {"senders": "*fabrikam.example"}),
    ({"senders": "*fabrikam.example"}, {"senders": "a@badfabrikam.example"}),
    ({"subject_keywords": "password reset"}, {"subject_keywords": "reset"}),
    ({"attachment_types": "tar.gz"}, {"attachment_types": "gz"}),
    ({"important": True}, {}),
    ({"senders": "*fabrikam.example"}, {"sender_companies": "Fabrikam"}),
    ({"recipients": "*partner.example"}, {"senders": "*partner.example"}),
])
def test_rules_do_not_cover(first: dict[str, Any], later: dict[str, Any]) -> None:
    """Some email satisfies the later rule set but not the first."""
    assert not rules_cover(rules(**first), rules(**later))


def test_find_shadowed_names_both_routes_per_address_and_tier() -> None:
    """A covered route on the same address is reported with the route that covers it; other addresses are not."""
    config = make_config(
        route("Fabrikam", HELP, rules={"senders": "*fabrikam.example"}),
        route("CFO", HELP, rules={"senders": "cfo@fabrikam.example"}),
        route("CFO billing", BILLING, rules={"senders": "cfo@fabrikam.example"}),
        route("Disabled catch-all", BILLING, enabled=False),
        route("Billing rest", BILLING),
        route("Catch all", SUPPORT),
        route("After catch all", SUPPORT, rules={"subject_keywords": "x"}),
        route("Wild", "*", rules={"senders": "*fabrikam.example"}),
        route("Wild CFO", "*", rules={"senders": "cfo@fabrikam.example"}),
    )
    found = [(s.route, s.by) for s in find_shadowed(config)]
    assert found == [("CFO", "Fabrikam"), ("After catch all", "Catch all"), ("Wild CFO", "Wild")]
    assert "route 'CFO' of connector 'Support' is shadowed by route 'Fabrikam'" in str(find_shadowed(config)[0])


def test_shadowed_route_really_never_fires() -> None:
    """A route reported as shadowed loses to its shadow on the emails that match it."""
    config = make_config(route("Fabrikam", HELP, rules={"senders": "*fabrikam.example"}),
                         route("CFO", HELP, rules={"senders": "cfo@fabrikam.example"}))
    assert Router.compile(config).route(mail("cfo@fabrikam.example")).decisions[0].route == "Fabrikam"


def test_find_loops_reports_an_address_sent_from_and_routed_by_another_connector() -> None:
    """noreply@ sends through Relay and is routed by Support: a loop; Support's own both-way address is not."""
    config = make_config(route("Noreply", NOREPLY), route("Help", HELP), outgoing_routes=[
        {"name": "From help", "address": HELP, "connector": "Support"},
        {"name": "Via relay", "address": BILLING, "connector": "Relay"}])
    loops = find_loops(config)
    assert [(loop.address, loop.connector) for loop in loops] == [(NOREPLY, "Support")]
    assert "mail loop: noreply@contoso.example" in str(loops[0])
    assert find_loops(make_config(route("Help", HELP))) == []


def test_may_overlap() -> None:
    """Disjoint senders or companies exclude each other; keywords and attachments never do."""
    assert not may_overlap(rules(senders="a@x.example"), rules(senders="*y.example"))
    assert may_overlap(rules(senders="a@eu.x.example"), rules(senders="*x.example"))
    assert not may_overlap(rules(sender_companies="A"), rules(sender_companies="B"))
    assert may_overlap(rules(subject_keywords="a"), rules(subject_keywords="b"))
    assert not may_overlap(rules(subject_keywords="!!!"), rules())


@settings(max_examples=max(200, settings().max_examples * 2))
@given(config=configs(max_routes=12))
def test_indexed_shadowing_equals_the_pairwise_definition(config: Config) -> None:
    """On any configuration the indexed analysis reports exactly what comparing every pair reports."""
    assert find_shadowed(config) == pairwise_shadowed(config)


@pytest.mark.parametrize(("routes", "addresses"), [(400, 1), (600, 3)])
def test_indexed_shadowing_equals_the_pairwise_definition_on_large_sets(routes: int, addresses: int) -> None:
    """Hundreds of realistic routes on few addresses: the same findings, and some shadowing is found."""
    config = synthetic_config(routes, seed=routes, addresses=addresses)
    found = find_shadowed(config)
    assert found == pairwise_shadowed(config)
    assert found


def test_shadowing_of_subdomains_extensions_and_phrases_is_found_through_the_index() -> None:
    """Each way of covering (parent domain, dotted extension, word run, company subset, catch-all) is found."""
    config = make_config(
        route("Domain", HELP, rules={"senders": "*fabrikam.example", "subject_keywords": "urgent"}),
        route("Subdomain", HELP, rules={"senders": "*eu.fabrikam.example", "subject_keywords": "very urgent"}),
        route("Gz", HELP, rules={"attachment_types": "gz"}),
        route("Tar gz", HELP, rules={"attachment_types": "tar.gz", "important": True}),
        route("Companies", HELP, rules={"sender_companies": "A; B"}),
        route("Company A", HELP, rules={"sender_companies": "a"}),
        route("Important", HELP, rules={"important": True}),
        route("Important invoices", HELP, rules={"important": True, "subject_keywords": "invoice"}),
        route("Everything", HELP),
        route("Anything after", HELP, rules={"recipients": "x@y.example"}),
    )
    assert [(s.route, s.by) for s in find_shadowed(config)] == [
        ("Subdomain", "Domain"), ("Tar gz", "Gz"), ("Company A", "Companies"),
        ("Important invoices", "Important"), ("Anything after", "Everything")]


def test_a_first_value_every_route_shares_does_not_make_every_route_a_candidate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """2,000 routes with senders ``*x.example; u{i}@y.example``: each later route is compared only with the
    routes filed under the coverers of its rarest value (none), not with every earlier route (2 million
    comparisons, 29 s). Counted, not timed; the result is the pairwise one."""
    config = make_config(*(route(f"r{i}", rules={"senders": f"*x.example; u{i}@y.example"}) for i in range(2000)),
                         route("covered", rules={"senders": "*x.example; u7@y.example"}))
    compared = 0

    def counting(first: RoutingRules, later: RoutingRules) -> bool:
        nonlocal compared
        compared += 1
        return rules_cover(first, later)

    monkeypatch.setattr("enate_routing._analysis.rules_cover", counting)
    assert [(s.route, s.by) for s in find_shadowed(config)] == [("covered", "r7")]
    assert compared == 1


def test_long_keyword_lists_are_compared_as_sets() -> None:
    """Each later keyword needs a wide phrase among its runs of words; 4,000 against 4,000 in one call."""
    first = rules(subject_keywords=[f"word{i}" for i in range(4000)] + ["server down"])
    assert rules_cover(first, rules(subject_keywords=[f"word{i}" for i in range(3999, -1, -1)]))
    assert rules_cover(first, rules(subject_keywords=["the server down now", "word7 again"]))
    assert not rules_cover(first, rules(subject_keywords=["server now down"]))


def test_a_keyword_has_at_most_32_words() -> None:
    make_config(route("ok", rules={"subject_keywords": " ".join(f"w{i}" for i in range(32))}))
    with pytest.raises(ConfigError, match="subject_keywords: a keyword has at most 32 words"):
        make_config(route("long", rules={"subject_keywords": " ".join(f"w{i}" for i in range(33))}))


def test_find_loops_counts_every_address_a_both_way_connector_sends_from() -> None:
    """Support (both ways) acknowledges from its route address billing@, so another connector routing billing@
    is a loop too (the router ignores that mail as the system's own: docs/semantics.md §3.1 step 1)."""
    sales = connector("Sales", "sales@contoso.example", "incoming")
    config = make_config(route("Billing", BILLING), {**route("Sales billing", BILLING), "connector": "Sales"},
                         connectors=[connector("Support", SUPPORT), connector("Relay", NOREPLY, "outgoing"), sales],
                         fallbacks=[{"connector": "Support", "address": SUPPORT, "target": TICKET},
                                    {"connector": "Sales", "address": "sales@contoso.example", "target": TICKET}])
    loops = find_loops(config)
    assert [(loop.address, loop.connector) for loop in loops] == [(BILLING, "Sales")]
    assert "connector 'Support'" in str(loops[0])
