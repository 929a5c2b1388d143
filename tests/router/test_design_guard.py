"""CI's design guard for the compiled matcher: work and memory per email, not wall-clock time."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from enate_routing._envelope import Envelope
from enate_routing._router import Router
from enate_routing.testing import MatchCounters, ReferenceRouter, synthetic_config, synthetic_envelopes


@pytest.fixture(scope="module")
def big() -> tuple[Router, list[Envelope]]:
    config = synthetic_config(10_000, seed=7)
    return Router.compile(config), synthetic_envelopes(config, 2_000, seed=7)


def test_full_rule_checks_per_email_at_10000_routes(big: tuple[Router, list[Envelope]]) -> None:
    """At 10,000 routes the compiled router checks on average at most 0.5 routes' rules one by one per email."""
    router, envelopes = big
    counters = MatchCounters()
    for envelope in envelopes:
        router.route(envelope, counters=counters)
    assert counters.emails == len(envelopes)
    assert counters.full_rule_checks / counters.emails <= 0.5


def test_index_probes_do_not_grow_with_the_route_count(big: tuple[Router, list[Envelope]]) -> None:
    """Index probes per email stay small and nearly flat from 100 to 10,000 routes (no hidden scan)."""
    router, envelopes = big
    counters = MatchCounters()
    for envelope in envelopes:
        router.route(envelope, counters=counters)
    at_10000 = counters.probes / counters.emails
    small_config = synthetic_config(100, seed=7)
    small = Router.compile(small_config)
    small_counters = MatchCounters()
    for envelope in synthetic_envelopes(small_config, 2_000, seed=7):
        small.route(envelope, counters=small_counters)
    at_100 = small_counters.probes / small_counters.emails
    assert at_10000 <= 20 and at_10000 <= 2 * at_100


def test_the_counter_sees_a_linear_scan() -> None:
    """The instrumentation can fail: the reference router's one-by-one checks are counted in the hundreds."""
    config = synthetic_config(1_000, seed=7)
    reference = ReferenceRouter(config)
    envelopes = synthetic_envelopes(config, 20, seed=7)
    for envelope in envelopes:
        reference.route(envelope)
    assert reference.full_rule_checks / len(envelopes) > 50


def test_retained_bytes_per_compiled_route_under_1kb() -> None:
    """Router.compile of 10,000 routes retains less than 1 KB per route (tracemalloc)."""
    config = synthetic_config(10_000, seed=8)
    gc.collect()
    tracemalloc.start()
    try:
        router = Router.compile(config)
        retained = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert router.connectors == ("Support",)
    assert retained / len(config.routes) < 1024


def test_counting_is_off_by_default_and_the_router_holds_no_counters() -> None:
    """A compiled router has no mutable counters; only a MatchCounters passed to route() is told the work."""
    config = synthetic_config(100, seed=7)
    router = Router.compile(config)
    assert not hasattr(router, "counters")
    envelopes = synthetic_envelopes(config, 50, seed=7)
    uncounted = [router.route(envelope) for envelope in envelopes]
    counters = MatchCounters()
    assert [router.route(envelope, counters=counters) for envelope in envelopes] == uncounted
    assert counters.emails == 50 and counters.groups >= 1 and counters.probes >= 1
