"""Start-with search over the routes grid (docs/semantics.md §7): examples, and the index equals a linear filter."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enate_routing._loading import parse_config
from enate_routing.admin import COLUMNS, Administration, RouteIndex, linear_search, route_rows


def found(admin: Administration, filters: dict[str, str], connector: str | None = None) -> list[str]:
    return [row.name for row in admin.search(filters, connector=connector)]


def test_start_with_not_contains(admin: Administration) -> None:
    """'bill' finds billing@…; 'acme' (inside every address) finds nothing: start-with, not contains."""
    assert found(admin, {"address": "bill"}) == ["A2"]
    assert found(admin, {"address": "acme"}) == []


def test_search_is_case_insensitive(admin: Administration) -> None:
    """Queries and cells compare case-folded."""
    assert found(admin, {"process": "INVOICE"}) == ["A1"]
    assert found(admin, {"ticket_category": "urg"}) == ["A2"]


def test_booleans_search_as_yes_and_no(admin: Administration) -> None:
    """Boolean columns read "Yes"/"No": 'y' finds true cells, 'n' false ones, 'ye' too, 'yes!' nothing."""
    assert found(admin, {"test_mode": "y"}) == ["A3"]
    assert found(admin, {"send_automated_emails": "YE"}) == ["A2"]
    assert found(admin, {"enabled": "yes!"}) == []
    assert len(found(admin, {"enabled": "n"})) == 0
    assert len(found(admin, {"test_mode": "no"})) == len(route_rows(admin.config)) - 1


def test_results_are_in_priority_order_with_fallback_last(admin: Administration) -> None:
    """Results follow connector, tier and priority order: address routes, wildcard routes, then the fallback."""
    assert found(admin, {}, connector="Support") == ["A1", "A2", "A3", "W1", "W2", "Fallback"]
    assert found(admin, {"process": "incident"}) == ["A3", "W1", "W2"]


def test_filters_combine_and_connector_filters(admin: Administration) -> None:
    """Several columns must all match, and the connector filter restricts to one connector's rows."""
    assert found(admin, {"address": "support", "process": "i"}) == ["A1", "A3"]
    assert found(admin, {"process": "general"}) == ["Fallback", "Fallback"]
    assert found(admin, {"process": "general"}, connector="Sales") == ["Fallback"]
    assert found(admin, {}, connector="Nobody") == []
    assert found(admin, {"for_attention": "d"}) == ["W2"]


def test_index_follows_edits(admin: Administration) -> None:
    """A search after an edit sees the new configuration (the index is rebuilt per version)."""
    assert found(admin, {"for_attention": "ann"}) == []
    admin.edit_route("Sales", "S2", {"for_attention": "Anna"}, actor="ann", expected_version=1)
    assert found(admin, {"for_attention": "ann"}) == ["S2"]


def test_unknown_column_is_refused(admin: Administration) -> None:
    """Searching a column the grid does not have raises ValueError listing the searchable ones."""
    with pytest.raises(ValueError, match="searchable columns"):
        admin.search({"password": "x"})


# --- the index equals the linear filter on generated route sets ------------------------------------------------

WORDS = ["Ab", "ab", "Abc", "b", "ß", "SS", "İ", "x\U0010ffff", "x", "\U0010ffff", "é", "E\u0301"]
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map("".join)


@st.composite
def configurations(draw: st.DrawFn) -> dict[str, Any]:
    connectors = draw(st.integers(1, 3))
    data: dict[str, Any] = {"connectors": [], "routes": [], "fallbacks": []}
    target = {"customer": "C", "contract": "K", "service": "S", "kind": "ticket"}
    for c in range(connectors):
        name = f"C{c}"
        data["connectors"].append({
            "name": name, "service": "other", "username": "u", "primary_address": f"box{c}@acme.example",
            "use_for": "incoming", "incoming": {"protocol": "imap", "host": "h", "port": 993, "security": "ssl"},
        })
        data["fallbacks"].append({"connector": name, "address": f"box{c}@acme.example",
                                  "target": {**target, "process": draw(text)}})
    for i in range(draw(st.integers(0, 25))):
        wildcard = draw(st.booleans())
        local = draw(st.sampled_from(["ab", "abc", "b", "ss", "x"]))
        route: dict[str, Any] = {
            "connector": f"C{draw(st.integers(0, connectors - 1))}", "name": f"R{i}",
            "address": "*" if wildcard else f"{local}{i % 3}@acme.example",
            "target": {**target, "process": draw(text)},
            "ticket_category": draw(st.none() | text), "for_attention": draw(st.none() | text),
            "send_automated_emails": draw(st.booleans()), "test_mode": draw(st.booleans()),
            "enabled": draw(st.booleans()),
        }
        if wildcard:
            route["rules"] = {"senders": "*globex.example"}
        data["routes"].append(route)
    return data


queries = st.dictionaries(
    st.sampled_from(COLUMNS),
    st.sampled_from(["", "a", "A", "ab", "s", "ss", "ß", "i", "i̇", "x", "x\U0010ffff", "\U0010ffff", "y", "n", "no",
                     "e", "é", "*", "b", "box", "r1", "fall"]) | text,
    max_size=3,
)


@given(data=configurations(), filters=queries, connector=st.none() | st.sampled_from(["C0", "C1", "C2", "C9"]))
def test_index_equals_linear_filter(data: dict[str, Any], filters: dict[str, str], connector: str | None) -> None:
    """For any generated routes and queries, the indexed search returns exactly the linear filter's rows, in order."""
    config = parse_config(data)
    index = RouteIndex(config)
    assert index.search(filters, connector=connector) == linear_search(index.rows, filters, connector=connector)


def test_prefix_ranges_at_the_top_of_unicode() -> None:
    """Prefix ranges stay exact next to U+10FFFF and with case folds that change length (ß → ss, İ → i̇)."""
    processes = ["x", "x\U0010ffff", "x\U0010ffffy", "xy", "\U0010ffff", "\U0010ffff\U0010ffff", "ß", "ss", "İ", "i"]
    data = {
        "connectors": [{"name": "C", "service": "other", "username": "u", "primary_address": "c@acme.example",
                        "use_for": "incoming",
                        "incoming": {"protocol": "imap", "host": "h", "port": 993, "security": "ssl"}}],
        "routes": [{"connector": "C", "name": f"R{i}", "address": "c@acme.example",
                    "target": {"customer": "C", "contract": "K", "service": "S", "process": p, "kind": "ticket"}}
                   for i, p in enumerate(processes)],
        "fallbacks": [{"connector": "C", "address": "c@acme.example",
                       "target": {"customer": "C", "contract": "K", "service": "S", "process": "z", "kind": "ticket"}}],
    }
    index = RouteIndex(parse_config(data))
    for prefix in ["x", "x\U0010ffff", "\U0010ffff", "\U0010ffff\U0010ffff", "s", "ss", "ß", "i", "i̇", "İ"]:
        expected = linear_search(index.rows, {"process": prefix})
        assert expected, prefix
        assert index.search({"process": prefix}) == expected, prefix
