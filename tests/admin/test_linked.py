"""Routes pointing at a deleted customer, contract, service or process (docs/semantics.md §7)."""

from __future__ import annotations

import pytest

from enate_routing._loading import dump_config, parse_config
from enate_routing.admin import Administration, HistorySubject, RouteRow


def keys(rows: tuple[RouteRow, ...]) -> list[tuple[str, str]]:
    return [(row.connector, row.name) for row in rows]


def test_lists_routes_and_fallbacks_of_a_deleted_customer(admin: Administration) -> None:
    """A deleted customer lists every incoming route and fallback targeting it, in priority order."""
    rows = admin.linked_routes("customer", "globex")
    assert keys(rows) == [("Support", "A1"), ("Support", "A2"), ("Support", "W2"), ("Sales", "Fallback")]


def test_process_can_be_qualified_by_customer(admin: Administration) -> None:
    """'Incident' of customer Acme is A3 only; unqualified, every customer's Incident process is listed."""
    assert keys(admin.linked_routes("process", "Incident", customer="Acme")) == [("Support", "A3")]
    assert keys(admin.linked_routes("process", "Incident")) == [("Support", "A3"), ("Support", "W1"), ("Support", "W2")]
    assert keys(admin.linked_routes("contract", "Internal", customer="Acme")) == [
        ("Support", "A3"), ("Support", "Fallback"), ("Sales", "S1"), ("Sales", "S2")]
    assert keys(admin.linked_routes("service", "Nothing")) == []


def test_customer_is_not_qualified_by_customer(admin: Administration) -> None:
    """Qualifying a customer by a customer is a caller mistake (ValueError)."""
    with pytest.raises(ValueError, match="customer"):
        admin.linked_routes("customer", "Acme", customer="Acme")


def test_disable_linked_routes_reports_fallbacks_as_needing_update(admin: Administration) -> None:
    """Disabling links of a deleted customer disables its routes in one edit; its fallbacks need an update."""
    report = admin.disable_linked_routes("customer", "Globex", actor="ann", expected_version=1)
    assert report.revision.version == 2
    assert keys(report.disabled) == [("Support", "A1"), ("Support", "A2"), ("Support", "W2")]
    assert keys(report.needs_update) == [("Sales", "Fallback")]
    config = report.revision.config
    assert [r.name for r in config.routes if not r.enabled] == ["A1", "A2", "W2"]
    assert config.fallback_of("Sales").enabled is True
    (entry,) = admin.history(HistorySubject("route", "Support", "A2"))
    assert (entry.action, entry.note) == ("disabled", "customer 'Globex' was deleted")
    assert parse_config(dump_config(config, include_secrets=True)) == config


def test_disable_linked_routes_skips_already_disabled(admin: Administration) -> None:
    """A route already disabled is listed but not edited again; nothing to disable means no new version."""
    admin.set_route_enabled("Sales", "S2", False, actor="ann", expected_version=1)
    report = admin.disable_linked_routes("process", "Quote", actor="ann", expected_version=2)
    assert keys(report.routes) == [("Sales", "S2")]
    assert report.disabled == ()
    assert report.revision.version == 2
