"""Names and text a host passes in (docs/administration.md): unique as a person reads them, storable."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from admin.helpers import INCIDENT, base_data
from enate_routing import save_config
from enate_routing._loading import parse_config
from enate_routing.admin import Administration, AllowAll, SQLiteHistoryStore
from enate_routing.errors import AdminError, ConfigError

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


LONE_SURROGATE = "Dana \ud800"  # what json.loads makes of the escape "\ud800" a browser may send


@pytest.mark.parametrize("changes", [{"for_attention": LONE_SURROGATE}, {"ticket_category": LONE_SURROGATE},
                                     {"target": {"process": LONE_SURROGATE}}])
def test_text_no_file_can_hold_is_a_located_config_error(tmp_path: Path, changes: dict[str, object]) -> None:
    """A lone surrogate passed every text field but the names, then broke the SQLite history (a raw
    UnicodeEncodeError) or, with another store, every later save; it is refused like any invalid value."""
    with SQLiteHistoryStore(tmp_path / "history.sqlite") as store:
        admin = Administration(parse_config(base_data()), permissions=AllowAll(), history=store, environ={})
        with pytest.raises(ConfigError) as caught:
            admin.edit_route("Support", "A2", changes, actor="ann", expected_version=1)
        assert str(caught.value).startswith("route 'A2' of connector 'Support': ")
        assert "surrogate" in str(caught.value)
        assert admin.version == 1 and store.entries() == ()
    save_config(admin.config, tmp_path / "routing.toml")  # still saves


@pytest.mark.parametrize("query", [True, 3, None])
def test_a_search_query_that_is_not_text_is_a_value_error(admin: Administration, query: object) -> None:
    """A grid filter posted as JSON (`{"enabled": true}`) is refused naming the column, not an AttributeError;
    None, like the empty text, sets no condition."""
    if query is None:
        assert admin.search({"enabled": query}) == admin.search()  # type: ignore[dict-item]
        return
    with pytest.raises(ValueError, match="'enabled' must be text"):
        admin.search({"enabled": query})  # type: ignore[dict-item]


def test_an_unknown_target_kind_is_a_value_error(admin: Administration) -> None:
    with pytest.raises(ValueError, match="customer, contract, service or process"):
        admin.linked_routes("project", "Incident")  # type: ignore[arg-type]


def test_an_actor_no_store_can_hold_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """An actor with a lone surrogate (a user name decoded from JSON) made the SQLite history raise a raw
    UnicodeEncodeError; it is an AdminError, and nothing is written."""
    with SQLiteHistoryStore(tmp_path / "history.sqlite") as store:
        admin = Administration(parse_config(base_data()), permissions=AllowAll(), history=store, environ={})
        with pytest.raises(AdminError, match="actor"):
            admin.set_route_enabled("Support", "A2", False, actor="ann\ud800", expected_version=1)
        with pytest.raises(AdminError, match="actor"):
            admin.record_connection_test("Sales", True, actor="ann\udc80", expected_version=1)
        assert admin.version == 1 and store.entries() == ()
