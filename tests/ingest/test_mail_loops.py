"""Mail loops: an auto-responder answering every acknowledgement, and two instances acknowledging each other.

The acknowledgements really go out through aiosmtpd; a "relay" step delivers each one into the recipient's
Dovecot mailbox (as the peer's mail system would), and the peers' answers come back the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest
from fakes import Host
from ingest_rig import append, connector_config

from enate_routing._loading import parse_config
from enate_routing._router import Router
from enate_routing.ingest import Backoff, Ingestor, SQLiteLedger
from enate_routing.transports._factory import ConnectorAccess
from mailrig.dovecot import ALICE, BOB, Dovecot
from mailrig.smtp import SmtpServers

pytestmark = pytest.mark.servers

AUTO_HEADERS = re.compile(rb"^(Auto-Submitted|X-Auto-Response-Suppress|Precedence):[^\r\n]*\r?\n", re.I | re.M)


def instance(dovecot: Dovecot, smtp: SmtpServers, user: object, name: str, tmp_path: Path) -> tuple[Ingestor, Host]:
    data = connector_config("imap", dovecot.ports.imap, smtp.ports["open"], user=user, name=name)  # type: ignore[arg-type]
    config = parse_config(data)
    host = Host()
    ingestor = Ingestor.from_config(
        config, name, router=Router.compile(config), store=SQLiteLedger(tmp_path / f"{name}.db"), handler=host,
        access=ConnectorAccess(timeout=10), backoff=Backoff(base=0.01, cap=0.05),
    )
    return ingestor, host


def first_mail(sender: str, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, to, "Printer broken", "<first@example.net>"
    msg.set_content("Please help.\n")
    return msg.as_bytes()


def naive_reply(ack: bytes, n: int, *, keep_x_loop: bool = False) -> bytes:
    """What a badly behaved auto-responder sends back: no Auto-Submitted, no Precedence, a fresh id; with
    ``keep_x_loop``, the X-Loop of the mail it answers copied (as procmail-style responders and forwarders do)."""
    msg = EmailMessage()
    msg["From"], msg["To"] = "robot@example.net", ALICE.login
    msg["Subject"], msg["Message-ID"] = f"I am away (reply {n})", f"<away-{n}@example.net>"
    if keep_x_loop:
        for value in message_from_bytes(ack).get_all("X-Loop", []):
            msg["X-Loop"] = value
    msg.set_content("I am out of the office.\n")
    return msg.as_bytes()


def test_naive_auto_responder_is_stopped_by_the_rate_limit(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path
) -> None:
    """An auto-responder answering every acknowledgement gets at most the hourly limit (10) of them."""
    ingestor, host = instance(mailboxes, smtp_inbox, ALICE, "Alice", tmp_path)
    append(mailboxes, ALICE, [first_mail("robot@example.net", ALICE.login)])
    relayed = 0
    for round_ in range(30):  # noqa: B007 — read after the loop: did it stop early?
        ingestor.run_once()
        acks = smtp_inbox.received("open")
        new = acks[relayed:]
        if not new:
            break
        append(mailboxes, ALICE, [naive_reply(m.data, relayed + i) for i, m in enumerate(new)])
        relayed = len(acks)
    assert round_ < 29, "the exchange did not stop"
    assert len(smtp_inbox.received("open")) == 10
    assert len(host.items) == 11  # every mail still became work; only the acknowledgements stopped


def test_auto_responder_keeping_our_x_loop_is_acknowledged_once(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path
) -> None:
    """A responder without RFC 3834 headers that keeps our X-Loop gets one acknowledgement, not the hourly
    limit: its reply still becomes work, but names our address in X-Loop and is never answered (§3.5)."""
    ingestor, host = instance(mailboxes, smtp_inbox, ALICE, "Alice", tmp_path)
    append(mailboxes, ALICE, [first_mail("robot@example.net", ALICE.login)])
    relayed = 0
    for _ in range(30):
        ingestor.run_once()
        acks = smtp_inbox.received("open")
        new = acks[relayed:]
        if not new:
            break
        append(mailboxes, ALICE, [naive_reply(m.data, relayed + i, keep_x_loop=True) for i, m in enumerate(new)])
        relayed = len(acks)
    [ack] = smtp_inbox.received("open")
    assert message_from_bytes(ack.data)["X-Loop"] == ALICE.login
    assert len(host.items) == 2  # the first mail and the reply: both processed, only the first answered


def exchange(
    mailboxes: Dovecot, smtp: SmtpServers, peers: tuple[Ingestor, Ingestor], rounds: int,
    relay: Callable[[bytes, int], bytes] = lambda data, _: data,
) -> bool:
    """Run both instances and deliver each acknowledgement (through ``relay``) to its recipient's mailbox,
    until a round sends nothing: True when that happened within ``rounds`` rounds."""
    relayed = 0
    for _ in range(rounds):
        for peer in peers:
            peer.run_once()
        sent = smtp.received("open")
        new = sent[relayed:]
        if not new:
            return True
        for i, m in enumerate(new):
            data = relay(m.data, relayed + i)
            for rcpt in m.rcpt_tos:
                append(mailboxes, ALICE if rcpt == ALICE.login else BOB, [data])
        relayed = len(sent)
    return False


def test_two_instances_acknowledging_each_other_stop(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path
) -> None:
    """Two instances acknowledge each other once: the acknowledgement is automatic (RFC 3834), never answered."""
    alice, _ = instance(mailboxes, smtp_inbox, ALICE, "Alice", tmp_path)
    bob, _ = instance(mailboxes, smtp_inbox, BOB, "Bob", tmp_path)
    append(mailboxes, ALICE, [first_mail(BOB.login, ALICE.login)])
    assert exchange(mailboxes, smtp_inbox, (alice, bob), 30)
    assert len(smtp_inbox.received("open")) == 1


def strip_automatic_headers(data: bytes, n: int) -> bytes:
    """A relay that drops Auto-Submitted / Precedence / X-Auto-Response-Suppress and renames the message."""
    return AUTO_HEADERS.sub(b"", data).replace(b"Message-ID: <ack-", f"Message-ID: <r{n}-".encode())


def test_two_instances_behind_a_header_stripping_relay_stop_within_the_limit(
    mailboxes: Dovecot, smtp_inbox: SmtpServers, tmp_path: Path
) -> None:
    """Even if a relay strips Auto-Submitted, the per-sender rate limit ends the exchange (≤ 10 each way)."""
    alice, _ = instance(mailboxes, smtp_inbox, ALICE, "Alice", tmp_path)
    bob, _ = instance(mailboxes, smtp_inbox, BOB, "Bob", tmp_path)
    append(mailboxes, ALICE, [first_mail(BOB.login, ALICE.login)])
    assert exchange(mailboxes, smtp_inbox, (alice, bob), 59, strip_automatic_headers), "the exchange did not stop"
    to_bob = [m for m in smtp_inbox.received("open") if BOB.login in m.rcpt_tos]
    to_alice = [m for m in smtp_inbox.received("open") if ALICE.login in m.rcpt_tos]
    # The router may stop it earlier still (a reply chain it recognises as its own); never later.
    assert 1 <= len(to_bob) <= 10 and 1 <= len(to_alice) <= 10
