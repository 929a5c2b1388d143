"""What one `poll --out` line carries (docs/json-output.md): every decision field plus where the mail is."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from enate_routing._cli._poll import JsonlWriter
from enate_routing._decision import Decision
from enate_routing._delivery import Delivery, Target
from enate_routing._envelope import Envelope
from enate_routing.ingest import WorkItem

RAW = (b"From: Ann <ann@example.net>\r\nTo: help@acme.example\r\nSubject: Printer on fire\r\n"
       b"Message-ID: <p1@example.net>\r\n\r\nHelp\r\n")
TARGET = Target(customer="Acme", contract="Internal", service="IT", process="General", kind="ticket")

LINE_FIELDS = ["message", "connector", "action", "address", "route", "fallback", "target", "ticket_category",
               "send_automated_emails", "test_mode", "for_attention", "acknowledge", "suppressed", "link", "reason",
               "idempotency_key", "ledger_id", "message_id", "sender", "subject"]


def item(decision: Decision, key: str, message: int) -> WorkItem:
    return WorkItem(idempotency_key=key, decision=decision, envelope=Envelope.from_bytes(RAW), connector="Support",
                    mailbox="INBOX", ref="imap:INBOX:1:7", message=message)


def test_a_poll_line_has_every_decision_field_and_the_message(tmp_path: Path) -> None:
    """reason, for_attention, the ledger id, Message-ID, sender and subject are on every line, in order."""
    out = tmp_path / "out.jsonl"
    writer = JsonlWriter(out)
    create = Decision(connector="Support", action="create", address="help@acme.example", idempotency_key="k1",
                      route="Fires", delivery=Delivery(target=TARGET, for_attention="Facilities"))
    ignore = Decision(connector="Support", action="ignore", address="help@acme.example", idempotency_key="k2",
                      reason="own address")
    writer(item(create, "k1", 12))
    writer(item(ignore, "k2-g1", 13))
    writer.close()
    first, second = (json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())
    assert list(first) == LINE_FIELDS and list(second) == LINE_FIELDS
    assert first["for_attention"] == "Facilities" and first["ledger_id"] == 12
    assert (first["message_id"], first["sender"], first["subject"]) == ("p1@example.net", "ann@example.net",
                                                                        "Printer on fire")
    assert second["reason"] == "own address" and second["ledger_id"] == 13
    assert second["idempotency_key"] == "k2-g1"  # the work item's key (a reprocessed generation), not the decision's


def test_a_poison_subject_stays_on_its_line(tmp_path: Path) -> None:
    """Line separators and lone surrogates in a subject are escaped: one line per work item, read back as is."""
    subject = "a\u2028b\u2029c\x85d\udcff\x0ce"
    envelope = dataclasses.replace(Envelope.from_bytes(RAW), subject=subject)
    decision = Decision(connector="Support", action="create", address="help@acme.example", idempotency_key="k1",
                        route="Fires", delivery=Delivery(target=TARGET))
    out = tmp_path / "out.jsonl"
    writer = JsonlWriter(out)
    writer(WorkItem(idempotency_key="k1", decision=decision, envelope=envelope, connector="Support",
                    mailbox="INBOX", ref="r", message=1))
    writer.close()
    [line] = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["subject"] == subject
    assert JsonlWriter(out).keys == {"k1"}  # a restart finds the key again
