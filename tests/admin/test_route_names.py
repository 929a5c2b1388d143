"""Route names are unique per connector the way a person reads them (docs/administration.md)."""

from __future__ import annotations

import unicodedata

import pytest

from admin.helpers import INCIDENT
from enate_routing.admin import Administration
from enate_routing.errors import ConfigError

COMPOSED = "Café"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


@pytest.mark.parametrize(("first", "second"), [(COMPOSED, DECOMPOSED), (DECOMPOSED, COMPOSED.upper())])
def test_names_differing_only_in_unicode_normal_form_are_duplicates(admin: Administration, first: str,
                                                                    second: str) -> None:
    """"Café" typed on one keyboard (é) and another (e + combining accent) is one name: a second route of
    the connector with it is refused, so the grid never shows two routes that look the same."""
    route = {"connector": "Support", "address": "support@acme.example", "target": INCIDENT}
    admin.add_route({**route, "name": first}, actor="ann", expected_version=1)
    with pytest.raises(ConfigError, match="duplicate route name in this connector"):
        admin.add_route({**route, "name": second}, actor="ann", expected_version=2)
    with pytest.raises(ConfigError, match="duplicate route name in this connector"):
        admin.edit_route("Support", "A1", {"name": second}, actor="ann", expected_version=2)
    assert admin.version == 2


def test_outgoing_route_names_compare_in_one_normal_form(admin: Administration) -> None:
    admin.edit_outgoing_route("Support replies", {"name": COMPOSED}, actor="ann", expected_version=1)
    with pytest.raises(ConfigError, match="duplicate outgoing route name"):
        admin.add_outgoing_route({"name": DECOMPOSED, "address": "x@acme.example", "connector": "Support"},
                                 actor="ann", expected_version=2)
