"""Moving routes within their connector's tier (docs/semantics.md §3.1, §7): permissions, grid sort, tiers, fallback."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from admin.helpers import FakeClock, Grant, base_data, names
from enate_routing._envelope import Envelope, Recipient
from enate_routing._loading import dump_config, parse_config
from enate_routing._model import Config
from enate_routing.admin import PRIORITY_ASCENDING, Administration, AllowAll, GridSort, HistorySubject, route_rows
from enate_routing.errors import PermissionDeniedError, ReorderRefusedError


def test_move_within_address_tier(admin: Administration) -> None:
    """Moving A3 to position 1 makes it the first address route; other connectors' routes keep their slots."""
    before = [r.name for r in admin.config.routes]
    revision = admin.move_route("Support", "A3", 1, sort=PRIORITY_ASCENDING, actor="ann", expected_version=1)
    assert names(revision.config, "Support") == ["A3", "A1", "A2", "W1", "W2"]
    after = [r.name for r in revision.config.routes]
    sales_slots = [i for i, n in enumerate(before) if n.startswith("S")]
    assert [i for i, n in enumerate(after) if n.startswith("S")] == sales_slots
    assert names(revision.config, "Sales") == ["S1", "S2"]


def test_move_within_wildcard_tier(admin: Administration) -> None:
    """Moving W2 to position 1 of the wildcard tier swaps the wildcard routes and leaves address routes alone."""
    revision = admin.move_route("Support", "W2", 1, sort=PRIORITY_ASCENDING, actor="ann", expected_version=1)
    assert names(revision.config, "Support") == ["A1", "A2", "A3", "W2", "W1"]


def test_move_to_same_position_is_a_noop(admin: Administration) -> None:
    """A move to the route's own position changes nothing, not even the version."""
    revision = admin.move_route("Support", "A2", 2, sort=PRIORITY_ASCENDING, actor="ann", expected_version=1)
    assert revision.version == 1


def test_move_needs_permission(config: Config) -> None:
    """Without the host's can_reorder grant a move raises PermissionDeniedError naming actor and connector."""
    admin = Administration(config, permissions=Grant("ann"), clock=FakeClock(), environ={})
    with pytest.raises(PermissionDeniedError, match="'bob' may not reorder the routes of connector 'Support'"):
        admin.move_route("Support", "A3", 1, sort=PRIORITY_ASCENDING, actor="bob", expected_version=1)
    assert admin.version == 1
    admin.move_route("Support", "A3", 1, sort=PRIORITY_ASCENDING, actor="ann", expected_version=1)
    assert admin.version == 2


@pytest.mark.parametrize(
    ("sort", "why"),
    [
        (GridSort("priority", "desc"), "sorted by priority descending"),
        (GridSort("address", "asc"), "sorted by address ascending"),
        (GridSort("name", "desc"), "sorted by name descending"),
    ],
)
def test_move_refused_unless_grid_sorted_by_priority_ascending(
    admin: Administration, sort: GridSort, why: str
) -> None:
    """A move is refused while the grid is sorted otherwise, and the refusal says how it is sorted."""
    with pytest.raises(ReorderRefusedError, match=why):
        admin.move_route("Support", "A3", 1, sort=sort, actor="ann", expected_version=1)


def test_grid_sort_column_is_case_insensitive(admin: Administration) -> None:
    """'Priority' ascending is the priority sort, whatever the column's capitalisation."""
    admin.move_route("Support", "A3", 1, sort=GridSort("Priority"), actor="ann", expected_version=1)
    assert admin.version == 2


@pytest.mark.parametrize(("name", "position"), [("A1", 4), ("W1", 3), ("A1", 0), ("W2", -1)])
def test_move_across_tiers_is_refused(admin: Administration, name: str, position: int) -> None:
    """A position outside the route's tier (which would cross into another tier) is refused."""
    with pytest.raises(ReorderRefusedError, match="moves only within its tier"):
        admin.move_route("Support", name, position, sort=PRIORITY_ASCENDING, actor="ann", expected_version=1)


def test_fallback_cannot_move(admin: Administration) -> None:
    """The fallback never moves (docs/semantics.md §3.1)."""
    with pytest.raises(ReorderRefusedError, match="fallback"):
        admin.move_route("Support", "Fallback", 1, sort=PRIORITY_ASCENDING, actor="ann", expected_version=1)


def test_move_is_recorded_with_old_and_new_priority(admin: Administration) -> None:
    """The history of a moved route holds a 'moved' entry with priority old → new."""
    admin.move_route("Support", "A3", 1, sort=PRIORITY_ASCENDING, actor="ann", expected_version=1)
    (entry,) = admin.history(HistorySubject("route", "Support", "A3"))
    assert entry.action == "moved"
    change = entry.change("priority")
    assert change is not None and (change.old, change.new) == (3, 1)


# --- properties -----------------------------------------------------------------------------------------------


def _bigger_data(extra: int) -> dict[str, Any]:
    """The base configuration plus ``extra`` address and wildcard routes whose rules overlap, so order matters."""
    data = base_data()
    senders = ["*globex.example", "*initech.example", "boss@globex.example"]
    keywords = ["urgent", "quote", "refund"]
    for i in range(extra):
        connector = "Support" if i % 3 else "Sales"
        address = "*" if i % 4 == 0 else ("billing@acme.example" if i % 2 else f"{connector.lower()}@acme.example")
        rules: dict[str, str] = {"senders": senders[i % 3]} if address == "*" or i % 2 else {
            "subject_keywords": keywords[i % 3]}
        data["routes"].insert(i % (len(data["routes"]) + 1), {
            "connector": connector, "name": f"X{i}", "address": address, "rules": rules,
            "target": {"customer": f"C{i % 5}", "contract": "K", "service": "S", "process": f"P{i}", "kind": "ticket"},
        })
    return data


def _tiers(config: Config) -> dict[tuple[str, bool], list[str]]:
    tiers: dict[tuple[str, bool], list[str]] = {}
    for route in config.routes:
        tiers.setdefault((route.connector, route.is_wildcard), []).append(route.name)
    return tiers


def _from_scratch(config: Config, tiers: dict[tuple[str, bool], list[str]]) -> Config:
    """A configuration written anew: routes listed connector by connector, tier by tier, in the expected order."""
    by_name = {(r.connector, r.name): r for r in config.routes}
    data = dump_config(config, include_secrets=True)
    data["routes"] = [
        by_name[(connector, name)].model_dump(mode="json", exclude_defaults=True)
        for (connector, _), route_names in sorted(tiers.items()) for name in route_names
    ]
    return parse_config(data)


moves = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 12)), max_size=12)


def _apply(admin: Administration, model: dict[tuple[str, bool], list[str]], picks: list[tuple[int, int, int]]) -> None:
    """Apply valid moves to the admin and to a plain list model of each tier."""
    keys = sorted(model)
    for tier_pick, route_pick, position_pick in picks:
        key = keys[tier_pick % len(keys)]
        tier = model[key]
        name = tier[route_pick % len(tier)]
        position = 1 + position_pick % len(tier)
        admin.move_route(key[0], name, position, sort=PRIORITY_ASCENDING, actor="ann",
                         expected_version=admin.version)
        tier.remove(name)
        tier.insert(position - 1, name)


@given(extra=st.integers(0, 12), picks=moves)
def test_valid_moves_keep_tiers_in_order_and_fallback_last(extra: int, picks: list[tuple[int, int, int]]) -> None:
    """Any sequence of valid moves gives the list model's order per tier, keeps tiers in order and the fallback last,
    and equals a configuration written from scratch in that order (also after dump → parse)."""
    config = parse_config(_bigger_data(extra))
    admin = Administration(config, permissions=AllowAll(), clock=FakeClock(), environ={})
    model = _tiers(config)
    _apply(admin, model, picks)
    result = admin.config
    assert _tiers(result) == model
    for connector in ("Support", "Sales"):
        rows = [row for row in route_rows(result) if row.connector == connector]
        tiers = [row.tier for row in rows]
        assert tiers == sorted(tiers, key=["address", "wildcard", "fallback"].index)
        assert rows[-1].is_fallback and tiers.count("fallback") == 1
        assert [row.priority for row in rows if row.tier == "address"] == list(range(1, tiers.count("address") + 1))
    scratch = _from_scratch(result, model)
    for connector in ("Support", "Sales"):
        assert result.routes_of(connector) == scratch.routes_of(connector)
    assert parse_config(dump_config(result, include_secrets=True)) == result


SENDERS = ["a@globex.example", "boss@globex.example", "it@initech.example", "x@hooli.example"]
SUBJECTS = ["urgent: outage", "a quote please", "refund", "hello"]
RECIPIENTS = ["support@acme.example", "billing@acme.example", "sales@acme.example", "other@acme.example"]

envelopes = st.builds(
    lambda i, sender, subject, to: Envelope(
        message_id=f"<m{i}@test>", sender=sender, subject=subject,
        recipients=tuple(Recipient(address, "to") for address in dict.fromkeys(to)),
    ),
    st.integers(0, 10**6), st.sampled_from(SENDERS), st.sampled_from(SUBJECTS),
    st.lists(st.sampled_from(RECIPIENTS), max_size=2),
)


@given(extra=st.integers(0, 12), picks=moves, mails=st.lists(envelopes, min_size=1, max_size=8))
def test_router_of_moved_config_equals_router_from_scratch(
    extra: int, picks: list[tuple[int, int, int]], mails: list[Envelope]
) -> None:
    """After valid moves, the router compiled from the admin's configuration decides every generated envelope
    exactly as routers compiled from the dumped-and-reparsed configuration and from one written from scratch."""
    router_module = pytest.importorskip("enate_routing._router")
    config = parse_config(_bigger_data(extra))
    admin = Administration(config, permissions=AllowAll(), clock=FakeClock(), environ={})
    model = _tiers(config)
    _apply(admin, model, picks)
    routers = [
        router_module.Router.compile(c)
        for c in (admin.config, parse_config(dump_config(admin.config, include_secrets=True)),
                  _from_scratch(admin.config, model))
    ]
    for mail in mails:
        for connector in ("Support", "Sales"):
            first, *others = (router.route(mail, connector) for router in routers)
            assert all(other == first for other in others)
