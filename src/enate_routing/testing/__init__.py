"""Helpers for testing routing set-ups and the hosts that embed enate_routing.

* :class:`ReferenceRouter` — a linear-scan router written for obviousness; the oracle for the compiled one.
* :class:`InMemoryWorkItems`, :class:`DictCompanies` — in-memory work-item lookup and company directory.
* :func:`synthetic_config`, :func:`synthetic_envelopes` — seeded large route sets and emails (benchmarks).
* ``enate_routing.testing.strategies`` — hypothesis strategies (needs ``enate-routing[testing]``); not
  imported here, so this package works without hypothesis.

Nothing in the library imports this package.
"""

from enate_routing.testing.fakes import DictCompanies, InMemoryWorkItems
from enate_routing.testing.reference import ReferenceCompanies, ReferenceRouter
from enate_routing.testing.synthetic import synthetic_config, synthetic_envelopes

__all__ = [
    "DictCompanies",
    "InMemoryWorkItems",
    "ReferenceCompanies",
    "ReferenceRouter",
    "synthetic_config",
    "synthetic_envelopes",
]
