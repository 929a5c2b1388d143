"""Conformance cases found by reviewing docs/semantics.md §3–§4 against both routers, compiled and reference.

Each test pins one rule where the two routers, or the routers and the docs, once disagreed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from routing_helpers import HELP, mail, make_config, route

from enate_routing._directory import ConfiguredCompanies
from enate_routing._router import Router
from enate_routing.testing import ReferenceRouter

ROUTERS: dict[str, Callable[..., Any]] = {"compiled": Router.compile, "reference": ReferenceRouter}


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
