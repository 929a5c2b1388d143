"""Helpers for testing routing set-ups and the hosts that embed enate_routing.

* :class:`ReferenceRouter` — a linear-scan router written for obviousness; the oracle for the compiled one.
* :class:`PlainScan` — the matching part of routing as a plain scan over pre-extracted facts (the baseline
  the benchmarks compare against).
* :class:`InMemoryWorkItems`, :class:`DictCompanies` — in-memory work-item lookup and company directory.
* :func:`synthetic_config`, :func:`synthetic_envelopes` — seeded large route sets and emails (benchmarks).
* :class:`MatchCounters` — pass one to ``Router.route(..., counters=...)`` to count the work routing did.
* ``enate_routing.testing.strategies`` — hypothesis strategies (needs ``enate-routing[testing]``); not
  imported here, so this package works without hypothesis.

Nothing in the library imports this package.
"""

from enate_routing._matcher import MatchCounters
from enate_routing.testing._fakes import DictCompanies, InMemoryWorkItems
from enate_routing.testing._reference import PlainScan, ReferenceCompanies, ReferenceRouter
from enate_routing.testing._synthetic import synthetic_config, synthetic_envelopes

__all__ = [
    "DictCompanies",
    "InMemoryWorkItems",
    "MatchCounters",
    "PlainScan",
    "ReferenceCompanies",
    "ReferenceRouter",
    "synthetic_config",
    "synthetic_envelopes",
]
