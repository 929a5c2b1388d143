"""The JSON objects the commands print (docs/json-output.md): decisions, traces, replays."""

from __future__ import annotations

import dataclasses
from typing import Any

from enate_routing._decision import Decision, RoutingResult, Trace
from enate_routing._envelope import Envelope

__all__ = ["FORMAT_VERSION", "decision_record", "explain_record", "result_records"]

FORMAT_VERSION = 1
"""Bumped when a field changes meaning or disappears; new fields may appear at any time."""


def decision_record(decision: Decision, message: str | None) -> dict[str, Any]:
    """Every field of a decision (docs/semantics.md §5 plus ``for_attention`` and ``reason``), in a fixed order."""
    for_attention = None if decision.delivery is None else decision.delivery.for_attention
    record: dict[str, Any] = {}
    for key, value in decision.to_json(message).items():
        record[key] = value
        if key == "test_mode":
            record.setdefault("for_attention", for_attention)
        elif key == "link":
            record.setdefault("reason", decision.reason)
    record.setdefault("for_attention", for_attention)
    record.setdefault("reason", decision.reason)
    return record


def result_records(result: RoutingResult, message: str | None) -> list[dict[str, Any]]:
    return [decision_record(decision, message) for decision in result.decisions]


def explain_record(name: str, envelope: Envelope, trace: Trace) -> dict[str, Any]:
    """The whole explanation as data: the email's facts, every step, every route and rule considered."""
    return {
        "format": FORMAT_VERSION,
        "message": name,
        "message_id": envelope.message_id,
        "sender": envelope.sender,
        "subject": envelope.subject,
        "parser_notes": list(envelope.defects),
        "connector": trace.connector,
        "steps": list(trace.steps),
        "addresses": [dataclasses.asdict(group) for group in trace.addresses],
        "decisions": result_records(trace.result, name),
    }
