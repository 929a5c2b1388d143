"""The benchmarks' plain-scan baseline chooses exactly the routes the compiled router chooses."""

from __future__ import annotations

import pytest

from enate_routing._envelope import Envelope
from enate_routing._router import Router
from enate_routing.testing import PlainScan, synthetic_config
from synthetic_mail import raw_messages


@pytest.mark.parametrize("routes", [10, 300])
def test_plain_scan_and_compiled_router_choose_the_same_routes(routes: int) -> None:
    """On seeded raw mail (about 30% to the fallback), both name the same (address, route) per decision."""
    config = synthetic_config(routes, seed=routes)
    router = Router.compile(config)
    scan = PlainScan(config, "Support")
    fallbacks = 0
    for raw in raw_messages(config, 400, seed=routes):
        envelope = Envelope.from_bytes(raw)
        decisions = router.route(envelope, "Support").decisions
        assert [(d.address, d.route) for d in decisions] == scan.chosen(scan.facts(envelope))
        fallbacks += decisions[0].fallback
    assert 0 < fallbacks < 400
