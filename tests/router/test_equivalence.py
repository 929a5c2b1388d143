"""Differential and metamorphic properties of the compiled router."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from enate_routing._analysis import may_overlap
from enate_routing._decision import RoutingResult
from enate_routing._directory import ConfiguredCompanies
from enate_routing._envelope import Envelope
from enate_routing._model import Config
from enate_routing._router import Router
from enate_routing.testing import DictCompanies, InMemoryWorkItems, ReferenceRouter
from enate_routing.testing.strategies import configs, envelopes, work_items


def incoming(config: Config) -> list[str]:
    return [c.name for c in config.connectors if c.uses_incoming]


def limiter(sender: str) -> bool:
    """A deterministic rate limit: senders at initech are over their limit."""
    return not sender.endswith("initech.example")


def route_all(router: Router | ReferenceRouter, config: Config, envelope: Envelope,
              allowed: Callable[[str], bool] | None = limiter) -> list[RoutingResult]:
    return [router.route(envelope, name, acknowledgement_allowed=allowed) for name in incoming(config)]


# What a host may pass besides the configuration: its own company directory (an empty one included, which
# still replaces [companies]), or none; no lookup (the first plus tag or token links unchecked); no rate limit.
HOST_DIRECTORIES = st.sampled_from([None, None, ConfiguredCompanies({}),
                                    DictCompanies({"*globex.example": "Initech", "bob@acme.example": "Globex"})])


# The oracle test is the one that finds bugs: give it several times the profile's examples.
@settings(max_examples=max(300, settings().max_examples * 4))
@given(data=st.data(), config=configs())
def test_compiled_router_agrees_with_reference_router(data: st.DataObject, config: Config) -> None:
    """On any configuration and email, the compiled and the reference router give identical results."""
    lookup = data.draw(st.none() | work_items(config) | work_items(config))
    companies = data.draw(HOST_DIRECTORIES)
    allowed = data.draw(st.sampled_from([limiter, limiter, None]))
    envelope = data.draw(envelopes(config))
    compiled = Router.compile(config, lookup=lookup, companies=companies)
    reference = ReferenceRouter(config, lookup=lookup, companies=companies)
    assert route_all(compiled, config, envelope, allowed) == route_all(reference, config, envelope, allowed)


@given(data=st.data(), config=configs())
def test_explain_agrees_with_route(data: st.DataObject, config: Config) -> None:
    """explain() carries exactly the result route() returns, and names the chosen route of each decision."""
    lookup = data.draw(work_items(config))
    envelope = data.draw(envelopes(config))
    router = Router.compile(config, lookup=lookup)
    for name in incoming(config):
        result = router.route(envelope, name, acknowledgement_allowed=limiter)
        trace = router.explain(envelope, name, acknowledgement_allowed=limiter)
        assert trace.result == result
        chosen = {group.chosen for group in trace.addresses if group.chosen}
        created = {d.route for d in result.decisions if d.action == "create" and not d.fallback}
        assert created <= chosen
        for group in trace.addresses:
            held = [check.route for check in group.routes if check.held]
            assert held == ([group.chosen] if group.chosen else [])
            assert all(check.held == all(rule.held for rule in check.rules) for check in group.routes
                       if check.enabled)


@given(data=st.data(), config=configs(max_routes=6))
def test_adding_a_disabled_route_changes_nothing(data: st.DataObject, config: Config) -> None:
    """A disabled route, wherever it is inserted, never changes any decision."""
    envelope = data.draw(envelopes(config))
    name = data.draw(st.sampled_from(incoming(config)))
    primary = config.connector(name).primary_address
    address = data.draw(st.sampled_from(sorted(config.own_addresses(name))))
    rules = data.draw(st.sampled_from([{}, {"senders": "*globex.example"}, {"subject_keywords": "urgent"}]))
    position = data.draw(st.integers(0, len(config.routes)))
    extra = {"connector": name, "name": "Disabled extra", "address": address, "enabled": False, "rules": rules,
             "target": {"customer": "X", "contract": "X", "service": "X", "process": "X", "kind": "ticket"}}
    routes = [r.model_dump() for r in config.routes]
    routes.insert(position, extra)
    changed = Config.model_validate({**config.model_dump(), "routes": routes})
    assert primary in changed.own_addresses(name)
    lookup = InMemoryWorkItems()
    before = Router.compile(config, lookup=lookup).route(envelope, name)
    after = Router.compile(changed, lookup=lookup).route(envelope, name)
    assert before == after


@given(data=st.data(), config=configs())
def test_moving_a_route_below_one_it_cannot_overlap_changes_nothing(data: st.DataObject, config: Config) -> None:
    """Swapping two neighbouring routes of one connector and tier that no email can both match changes nothing."""
    envelope = data.draw(envelopes(config))
    routes = list(config.routes)
    swaps = []
    for name in incoming(config):
        ordered = config.routes_of(name)
        for upper, lower in itertools.pairwise(ordered):
            if upper.is_wildcard == lower.is_wildcard and not may_overlap(upper.rules, lower.rules):
                swaps.append((routes.index(upper), routes.index(lower)))
    if not swaps:
        return
    i, j = data.draw(st.sampled_from(swaps))
    routes[i], routes[j] = routes[j], routes[i]
    moved = config.model_copy(update={"routes": tuple(routes)})
    for name in incoming(config):
        assert Router.compile(config).route(envelope, name) == Router.compile(moved).route(envelope, name)
