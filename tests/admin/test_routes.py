"""Incoming routes, fallbacks and outgoing routes through the admin API (docs/semantics.md §3, §3.2, §7)."""

from __future__ import annotations

import threading

import pytest

from admin.helpers import INCIDENT, names
from enate_routing._loading import dump_config, parse_config
from enate_routing._model import Config, IncomingRoute
from enate_routing.admin import Administration
from enate_routing.errors import ConcurrentEditError, ConfigError, NotFoundError


def new_route(name: str = "New", address: str = "support@acme.example") -> dict[str, object]:
    return {"connector": "Support", "name": name, "address": address, "target": dict(INCIDENT)}


def route(config: Config, connector: str, name: str) -> IncomingRoute:
    return next(r for r in config.routes if r.connector == connector and r.name == name)


def test_add_route_goes_last_in_its_tier_and_bumps_the_version(admin: Administration) -> None:
    """An added address route is the last address route of its connector; the version goes up by one."""
    revision = admin.add_route(new_route(), actor="ann", expected_version=1)
    assert revision.version == 2 == admin.version
    assert names(revision.config, "Support") == ["A1", "A2", "A3", "New", "W1", "W2"]


def test_add_wildcard_route_goes_last_among_wildcards(admin: Administration) -> None:
    """An added wildcard route is last of the wildcard tier, still before the fallback."""
    data = {**new_route("Any", "*"), "rules": {"senders": "*hooli.example"}}
    revision = admin.add_route(data, actor="ann", expected_version=1)
    assert names(revision.config, "Support") == ["A1", "A2", "A3", "W1", "W2", "Any"]


def test_edit_route_changes_only_the_given_fields(admin: Administration) -> None:
    """A partial edit changes the named fields; target and rules merge; other fields keep their values."""
    revision = admin.edit_route(
        "Support", "A2", {"ticket_category": "Billing", "target": {"process": "Dunning"}},
        actor="ann", expected_version=1,
    )
    edited = route(revision.config, "Support", "A2")
    assert edited.ticket_category == "Billing"
    assert edited.target.process == "Dunning"
    assert edited.target.customer == "Globex"
    assert edited.send_automated_emails is True
    assert names(revision.config, "Support") == ["A1", "A2", "A3", "W1", "W2"]


def test_edit_leaves_the_previous_configuration_untouched(admin: Administration, config: Config) -> None:
    """Each edit yields a new configuration; the one read before is unchanged (immutability)."""
    before = admin.revision
    admin.edit_route("Support", "A1", {"test_mode": True}, actor="ann", expected_version=1)
    assert before.config == config
    assert route(before.config, "Support", "A1").test_mode is False
    assert route(admin.config, "Support", "A1").test_mode is True


def test_edit_into_the_wildcard_tier_goes_last_there(admin: Administration) -> None:
    """A route whose address becomes '*' joins the wildcard tier as its last route."""
    revision = admin.edit_route(
        "Support", "A1", {"address": "*"}, actor="ann", expected_version=1
    )
    assert names(revision.config, "Support") == ["A2", "A3", "W1", "W2", "A1"]


def test_invalid_edit_names_route_field_and_item(admin: Administration) -> None:
    """An invalid edit raises ConfigError naming the route, the field and the item; nothing changes."""
    with pytest.raises(ConfigError) as caught:
        admin.edit_route("Support", "A2", {"rules": {"senders": "not a pattern"}}, actor="ann", expected_version=1)
    assert caught.value.where == "route 'A2' of connector 'Support'"
    assert caught.value.field == "rules.senders"
    assert caught.value.item == "not a pattern"
    assert admin.version == 1


def test_case_route_with_category_is_refused_like_check(admin: Administration) -> None:
    """A ticket category on a case route is the same located error that loading reports."""
    with pytest.raises(ConfigError) as caught:
        admin.edit_route("Support", "A1", {"ticket_category": "X"}, actor="ann", expected_version=1)
    assert (caught.value.where, caught.value.field, caught.value.item) == (
        "route 'A1' of connector 'Support'", "ticket_category", "X")


def test_duplicate_name_on_add_is_a_cross_check_error(admin: Administration) -> None:
    """Adding a route with a name its connector already has is refused by the configuration's cross-checks."""
    with pytest.raises(ConfigError, match="duplicate route name"):
        admin.add_route(new_route("a1"), actor="ann", expected_version=1)


def test_unknown_field_is_refused(admin: Administration) -> None:
    """A field the model does not know is an 'unknown field' error on that route."""
    with pytest.raises(ConfigError) as caught:
        admin.edit_route("Support", "A1", {"colour": "red"}, actor="ann", expected_version=1)
    assert caught.value.field == "colour"
    assert caught.value.issues[0].problem == "unknown field"


def test_route_cannot_change_connector(admin: Administration) -> None:
    """Editing a route's connector is refused: routes never cross connector groups (docs/semantics.md §7)."""
    with pytest.raises(ConfigError) as caught:
        admin.edit_route("Support", "A1", {"connector": "Sales"}, actor="ann", expected_version=1)
    assert caught.value.field == "connector"
    assert caught.value.item == "Sales"


def test_delete_route(admin: Administration) -> None:
    """A deleted route is gone and the rest keep their order."""
    revision = admin.delete_route("Support", "A2", actor="ann", expected_version=1)
    assert names(revision.config, "Support") == ["A1", "A3", "W1", "W2"]
    assert names(revision.config, "Sales") == ["S1", "S2"]


def test_unknown_route_is_not_found(admin: Administration) -> None:
    """Editing, deleting or disabling a route that does not exist raises NotFoundError."""
    with pytest.raises(NotFoundError):
        admin.delete_route("Support", "Nope", actor="ann", expected_version=1)
    with pytest.raises(NotFoundError, match="edit_fallback"):
        admin.edit_route("Support", "Fallback", {"test_mode": True}, actor="ann", expected_version=1)


def test_disable_and_enable_route(admin: Administration) -> None:
    """set_route_enabled flips enabled and nothing else."""
    revision = admin.set_route_enabled("Sales", "S2", False, actor="ann", expected_version=1)
    assert route(revision.config, "Sales", "S2").enabled is False
    revision = admin.set_route_enabled("Sales", "S2", True, actor="ann", expected_version=2)
    assert route(revision.config, "Sales", "S2").enabled is True
    assert revision.config == parse_config(dump_config(admin.revision.config, include_secrets=True))


def test_noop_edit_keeps_the_version(admin: Administration) -> None:
    """An edit that changes nothing creates no version and no history."""
    revision = admin.set_route_enabled("Sales", "S2", True, actor="ann", expected_version=1)
    assert revision.version == 1
    assert admin.history_store.entries() == ()


def test_stale_version_is_refused(admin: Administration) -> None:
    """An edit made against an old version raises ConcurrentEditError and changes nothing."""
    admin.set_route_enabled("Sales", "S2", False, actor="ann", expected_version=1)
    with pytest.raises(ConcurrentEditError, match="version 1, now 2"):
        admin.edit_route("Sales", "S2", {"test_mode": True}, actor="bob", expected_version=1)
    assert admin.version == 2
    assert route(admin.config, "Sales", "S2").test_mode is False


def test_concurrent_admins_one_wins(admin: Administration) -> None:
    """Of many threads editing from the same version, exactly one succeeds; the others get ConcurrentEditError."""
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def edit(i: int) -> None:
        barrier.wait()
        try:
            admin.edit_route("Support", "A1", {"for_attention": f"admin {i}"}, actor=f"a{i}", expected_version=1)
            outcomes.append("ok")
        except ConcurrentEditError:
            outcomes.append("stale")

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["stale"] * 7
    assert admin.version == 2


def test_edit_fallback_and_fallback_cannot_be_disabled(admin: Administration) -> None:
    """The fallback's target can be edited; disabling it is a located error (docs/semantics.md §3.1)."""
    revision = admin.edit_fallback("Sales", {"target": {"process": "Triage"}}, actor="ann", expected_version=1)
    assert revision.config.fallback_of("Sales").target.process == "Triage"
    with pytest.raises(ConfigError) as caught:
        admin.edit_fallback("Sales", {"enabled": False}, actor="ann", expected_version=2)
    assert (caught.value.where, caught.value.field) == ("fallback of connector 'Sales'", "enabled")


def test_fallback_must_stay_on_the_primary_address(admin: Administration) -> None:
    """Moving the fallback off the primary address is the cross-check error that names the address."""
    with pytest.raises(ConfigError) as caught:
        admin.edit_fallback("Support", {"address": "billing@acme.example"}, actor="ann", expected_version=1)
    assert caught.value.field == "address"
    assert caught.value.item == "billing@acme.example"


def test_edited_config_survives_dump_and_parse(admin: Administration) -> None:
    """After a sequence of admin edits, dump_config → parse_config gives an equal configuration (semantics.md §7)."""
    v = admin.add_route(new_route(), actor="ann", expected_version=1).version
    v = admin.edit_route("Support", "W2", {"rules": {"subject_keywords": "refund"}}, actor="ann",
                         expected_version=v).version
    v = admin.set_route_enabled("Sales", "S1", False, actor="ann", expected_version=v).version
    v = admin.edit_fallback("Support", {"send_automated_emails": True}, actor="ann", expected_version=v).version
    config = admin.config
    assert parse_config(dump_config(config, include_secrets=True)) == config
