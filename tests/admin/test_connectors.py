"""The connector life cycle and outgoing routes through the admin API (docs/semantics.md §2 `enabled`, §3.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from admin.helpers import INCIDENT
from enate_routing._loading import dump_config, parse_config
from enate_routing.admin import Administration, FieldChange, HistorySubject
from enate_routing.errors import (
    ConcurrentEditError,
    ConfigError,
    ConnectorLiveError,
    NotFoundError,
    NotTestedError,
)
from enate_routing.transports._base import ConnectionTestResult

NEW_CONNECTOR = {
    "name": "Help", "service": "other", "username": "help@acme.example", "password": "help-pw",
    "primary_address": "help@acme.example", "use_for": "incoming",
    "incoming": {"protocol": "imap", "host": "imap.acme.example", "port": 993, "security": "ssl"},
}
HELP_FALLBACK = {"target": dict(INCIDENT)}


@dataclass(frozen=True)
class ProbeResult:
    """Stands in for the transports' typed result: only ``ok`` is read."""

    ok: bool
    detail: str = ""


def add_help(admin: Administration) -> int:
    return admin.add_connector(NEW_CONNECTOR, fallback=HELP_FALLBACK, actor="ann", expected_version=1).version


def test_new_connector_starts_disabled_with_its_fallback(admin: Administration) -> None:
    """A connector added through the admin API is disabled, and its fallback sits on its primary address."""
    version = add_help(admin)
    config = admin.config
    assert config.connector("Help").enabled is False
    assert config.fallback_of("Help").address == "help@acme.example"
    assert version == 2


def test_new_connector_cannot_be_added_enabled(admin: Administration) -> None:
    """Asking for a new connector to start enabled is refused: it has never been tested (docs/semantics.md §2)."""
    with pytest.raises(NotTestedError, match="starts disabled"):
        admin.add_connector({**NEW_CONNECTOR, "enabled": True}, fallback=HELP_FALLBACK, actor="ann",
                            expected_version=1)


def test_incoming_connector_needs_a_fallback(admin: Administration) -> None:
    """An incoming connector added without a fallback is the configuration error check reports (semantics.md §3.1)."""
    with pytest.raises(ConfigError) as caught:
        admin.add_connector(NEW_CONNECTOR, actor="ann", expected_version=1)
    assert caught.value.where == "connector 'Help'"
    assert caught.value.field == "fallbacks"


def test_enabling_untested_connector_is_refused(admin: Administration) -> None:
    """A connector with no passed connection test cannot be enabled."""
    version = add_help(admin)
    with pytest.raises(NotTestedError, match="passed connection test"):
        admin.set_connector_enabled("Help", True, actor="ann", expected_version=version)
    assert admin.config.connector("Help").enabled is False


def test_enabling_after_failed_test_is_refused(admin: Administration) -> None:
    """A failed test does not allow enabling, and it forgets an earlier pass."""
    version = add_help(admin)
    admin.record_connection_test("Help", True, actor="ann", expected_version=version)
    admin.record_connection_test("Help", ProbeResult(ok=False), actor="ann", expected_version=version)
    with pytest.raises(NotTestedError):
        admin.set_connector_enabled("Help", True, actor="ann", expected_version=version)


def test_enable_after_passed_test(admin: Administration) -> None:
    """After a passed test of its current settings a connector can be enabled; recording keeps the version."""
    version = add_help(admin)
    revision = admin.record_connection_test("Help", ProbeResult(ok=True), actor="ann", expected_version=version)
    assert revision.version == version
    assert admin.is_tested("Help")
    revision = admin.set_connector_enabled("Help", True, actor="ann", expected_version=version)
    assert revision.config.connector("Help").enabled is True


def test_settings_change_disables_until_tested_again(admin: Administration) -> None:
    """Changing the host of an enabled connector disables it; enabling needs a new passed test (semantics.md §2)."""
    version = add_help(admin)
    admin.record_connection_test("Help", True, actor="ann", expected_version=version)
    version = admin.set_connector_enabled("Help", True, actor="ann", expected_version=version).version
    revision = admin.edit_connector("Help", {"incoming": {"host": "imap2.acme.example"}}, actor="ann",
                                    expected_version=version)
    help_connector = revision.config.connector("Help")
    assert help_connector.enabled is False
    assert help_connector.incoming is not None and help_connector.incoming.host == "imap2.acme.example"
    assert help_connector.incoming.port == 993
    with pytest.raises(NotTestedError):
        admin.set_connector_enabled("Help", True, actor="ann", expected_version=revision.version)
    admin.record_connection_test("Help", True, actor="ann", expected_version=revision.version)
    assert admin.set_connector_enabled("Help", True, actor="ann", expected_version=revision.version).config.connector(
        "Help").enabled


@pytest.mark.parametrize(
    "changes",
    [
        {"incoming": {"port": 143, "security": "starttls"}},
        {"username": "other@acme.example"},
        {"password": "a-new-password"},
    ],
    ids=["port+security", "login", "password"],
)
def test_each_connection_setting_disables(admin: Administration, changes: dict[str, object]) -> None:
    """Port, security, login and password changes each disable a connector enabled from the file (semantics.md §2)."""
    assert admin.config.connector("Sales").enabled is True
    revision = admin.edit_connector("Sales", changes, actor="ann", expected_version=1)
    assert revision.config.connector("Sales").enabled is False


def test_settings_change_with_explicit_enable_is_refused(admin: Administration) -> None:
    """Changing settings and asking to stay enabled in one edit raises NotTestedError; nothing changes."""
    with pytest.raises(NotTestedError):
        admin.edit_connector("Sales", {"incoming": {"host": "pop2.acme.example"}, "enabled": True}, actor="ann",
                             expected_version=1)
    assert admin.version == 1


def test_rewriting_the_same_settings_keeps_enabled(admin: Administration) -> None:
    """Re-entering the same host and password is no change: the connector stays enabled, no new version."""
    revision = admin.edit_connector("Sales", {"incoming": {"host": "pop.acme.example"}, "password": "sales-pw"},
                                    actor="ann", expected_version=1)
    assert revision.config.connector("Sales").enabled is True
    assert revision.version == 1


def test_test_of_other_settings_does_not_count(admin: Administration) -> None:
    """A test recorded against an older version is refused, so a pass never covers settings it did not test."""
    version = add_help(admin)
    version = admin.edit_connector("Help", {"incoming": {"host": "imap3.acme.example"}}, actor="bob",
                                   expected_version=version).version
    with pytest.raises(ConcurrentEditError):
        admin.record_connection_test("Help", True, actor="ann", expected_version=version - 1)
    assert not admin.is_tested("Help")


def test_connector_cannot_be_renamed(admin: Administration) -> None:
    """Renaming a connector is refused with a located error (history and tests refer to it by name)."""
    with pytest.raises(ConfigError) as caught:
        admin.edit_connector("Sales", {"name": "Sales 2"}, actor="ann", expected_version=1)
    assert (caught.value.where, caught.value.field) == ("connector 'Sales'", "name")


def test_primary_address_change_moves_the_fallback(admin: Administration) -> None:
    """The fallback follows the connector's primary address (docs/semantics.md §3.1)."""
    revision = admin.edit_connector("Sales", {"primary_address": "Deals@Acme.example"}, actor="ann",
                                    expected_version=1)
    assert revision.config.fallback_of("Sales").address == "deals@acme.example"


def test_unknown_connector(admin: Administration) -> None:
    """Operations on a connector that does not exist raise NotFoundError."""
    with pytest.raises(NotFoundError):
        admin.record_connection_test("Nope", True, actor="ann", expected_version=1)
    with pytest.raises(NotFoundError):
        admin.set_connector_enabled("Nope", False, actor="ann", expected_version=1)


# --- outgoing routes ------------------------------------------------------------------------------------------


def test_outgoing_route_enable_before_test_is_refused(admin: Administration) -> None:
    """An outgoing route cannot be enabled while its connector has no passed test (docs/semantics.md §3.2)."""
    with pytest.raises(NotTestedError, match="Relay"):
        admin.set_outgoing_route_enabled("Notifications", True, actor="ann", expected_version=1)


def test_outgoing_route_enable_after_test(admin: Administration) -> None:
    """After a passed test of its connector an outgoing route can be enabled."""
    admin.record_connection_test("Relay", ProbeResult(ok=True), actor="ann", expected_version=1)
    revision = admin.set_outgoing_route_enabled("Notifications", True, actor="ann", expected_version=1)
    assert revision.config.outgoing_routes[1].enabled is True


def test_new_outgoing_route_starts_disabled(admin: Administration) -> None:
    """An outgoing route added without 'enabled' starts disabled; adding it enabled needs a tested connector."""
    data = {"name": "Alerts", "address": "alerts@acme.example", "connector": "Relay"}
    revision = admin.add_outgoing_route(data, actor="ann", expected_version=1)
    assert revision.config.outgoing_routes[-1].enabled is False
    with pytest.raises(NotTestedError):
        admin.add_outgoing_route({**data, "name": "Alerts 2", "enabled": True}, actor="ann", expected_version=2)


def test_moving_enabled_outgoing_route_to_untested_connector(admin: Administration) -> None:
    """Pointing an enabled outgoing route at a connector with no passed test is refused."""
    with pytest.raises(NotTestedError):
        admin.edit_outgoing_route("Support replies", {"connector": "Relay"}, actor="ann", expected_version=1)


def test_outgoing_route_edit_and_delete(admin: Administration) -> None:
    """Outgoing routes can be edited (description) and deleted."""
    revision = admin.edit_outgoing_route("Support replies", {"description": "answers"}, actor="ann",
                                         expected_version=1)
    assert revision.config.outgoing_routes[0].description == "answers"
    revision = admin.delete_outgoing_route("Support replies", actor="ann", expected_version=2)
    assert [r.name for r in revision.config.outgoing_routes] == ["Notifications"]


def test_outgoing_route_needs_outgoing_connector(admin: Administration) -> None:
    """An outgoing route on an incoming-only connector is the located cross-check error."""
    with pytest.raises(ConfigError) as caught:
        admin.add_outgoing_route({"name": "X", "address": "x@acme.example", "connector": "Sales"}, actor="ann",
                                 expected_version=1)
    assert (caught.value.where, caught.value.field, caught.value.item) == ("outgoing route 'X'", "connector", "Sales")


def test_live_outgoing_connector_cannot_switch_to_incoming(admin: Administration) -> None:
    """An enabled connector used by an enabled outgoing route cannot be switched to incoming (semantics.md §3.2)."""
    with pytest.raises(ConnectorLiveError, match="live"):
        admin.edit_connector("Support", {"use_for": "incoming", "outgoing": None}, actor="ann", expected_version=1)
    assert admin.config.connector("Support").use_for == "both"


def test_idle_outgoing_connector_can_switch_to_incoming(admin: Administration) -> None:
    """Once its outgoing routes are gone, a connector may become incoming (given its fallback)."""
    version = admin.delete_outgoing_route("Support replies", actor="ann", expected_version=1).version
    revision = admin.edit_connector("Support", {"use_for": "incoming", "outgoing": None}, actor="ann",
                                    expected_version=version)
    assert revision.config.connector("Support").use_for == "incoming"
    assert revision.config.connector("Support").enabled is False  # use_for is part of the tested settings


def test_connector_edits_survive_dump_and_parse(admin: Administration) -> None:
    """A configuration after connector edits and tests round-trips through dump_config/parse_config."""
    version = add_help(admin)
    admin.record_connection_test("Help", True, actor="ann", expected_version=version)
    admin.set_connector_enabled("Help", True, actor="ann", expected_version=version)
    config = admin.config
    assert parse_config(dump_config(config, include_secrets=True)) == config


def _result(protocol: Literal["imap", "pop3", "smtp"], ok: bool) -> ConnectionTestResult:
    return ConnectionTestResult(ok=ok, protocol=protocol, server="mail.acme.example:993", detail="", elapsed=0.0,
                                error=None if ok else "AuthenticationError")


def test_record_accepts_the_sequence_check_connection_returns(admin: Administration) -> None:
    """Both directions passed: the sequence from check_connection is a pass."""
    admin.record_connection_test("Support", (_result("imap", True), _result("smtp", True)),
                                 actor="ann", expected_version=1)
    assert admin.is_tested("Support")
    assert admin.history(HistorySubject("connector", "Support"))[-1].note == "connection test passed"


@pytest.mark.parametrize(
    ("results", "note"),
    [
        ((_result("imap", True), _result("smtp", False)), "connection test failed (smtp failed)"),
        ((_result("imap", True),), "connection test failed (outgoing not tested)"),
        ((), "connection test failed (no direction was tested)"),
    ],
)
def test_record_fails_unless_every_direction_passed(
    admin: Administration, results: tuple[ConnectionTestResult, ...], note: str
) -> None:
    """A `both` connector is not tested while its sending side failed or was never tested (semantics.md §2)."""
    admin.record_connection_test("Support", True, actor="ann", expected_version=1)
    admin.record_connection_test("Support", results, actor="ann", expected_version=1)
    assert not admin.is_tested("Support")
    assert admin.history(HistorySubject("connector", "Support"))[-1].note == note


def test_smtp_failed_then_imap_passed_does_not_enable_both(admin: Administration) -> None:
    """Recording the directions one at a time: a later IMAP pass alone does not cover the failed SMTP side."""
    admin.record_connection_test("Support", _result("smtp", False), actor="ann", expected_version=1)
    admin.record_connection_test("Support", _result("imap", True), actor="ann", expected_version=1)
    assert not admin.is_tested("Support")


def test_incoming_connector_can_switch_to_outgoing_once_its_routes_are_gone(admin: Administration) -> None:
    """Its fallback (which cannot be deleted on its own, docs/semantics.md §3.1) goes with the incoming side:
    before, every such switch was the ConfigError 'a fallback needs incoming mail', a dead end."""
    outgoing = {"host": "smtp.acme.example", "port": 587, "security": "starttls", "auth": "username-password"}
    switch = {"use_for": "outgoing", "incoming": None, "outgoing": outgoing}
    with pytest.raises(ConfigError, match="routes need incoming mail"):  # its routes first
        admin.edit_connector("Sales", switch, actor="ann", expected_version=1)
    admin.delete_route("Sales", "S1", actor="ann", expected_version=1)
    admin.delete_route("Sales", "S2", actor="ann", expected_version=2)
    revision = admin.edit_connector("Sales", switch, actor="ann", expected_version=3)
    assert revision.config.connector("Sales").use_for == "outgoing"
    assert [f.connector for f in revision.config.fallbacks] == ["Support"]
    deleted = admin.history(HistorySubject("fallback", "Sales"))[-1]
    assert (deleted.action, deleted.version, deleted.change("target.process")) == (
        "deleted", 4, FieldChange("target.process", "General", None))
    assert parse_config(dump_config(revision.config, include_secrets=True)) == revision.config
