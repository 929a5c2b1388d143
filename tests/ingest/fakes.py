"""In-memory mailboxes, senders, routers and hosts for the ingestion tests (no servers)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from enate_routing._decision import Decision, RoutingResult, idempotency_key, message_reference
from enate_routing._delivery import Delivery, Target
from enate_routing._envelope import Envelope
from enate_routing.errors import ConnectError, MessageGoneError
from enate_routing.ingest import WorkItem
from enate_routing.transports._base import MessageRef

TARGET = Target(customer="Acme", contract="Internal", service="IT", process="General", kind="ticket")


def make_message(
    n: int,
    *,
    sender: str = "customer@example.net",
    to: str = "help@acme.example",
    subject: str | None = None,
    message_id: str | None = None,
    extra: dict[str, str] | None = None,
    body: str = "Hello\n",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject if subject is not None else f"Message {n}"
    msg["Message-ID"] = message_id or f"<m{n}@example.net>"
    for key, value in (extra or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


@dataclass
class Mailbox:
    """A server-side folder: UID -> raw bytes, a UIDVALIDITY, and the processed set."""

    name: str = "INBOX"
    uidvalidity: int = 1
    messages: dict[int, bytes] = field(default_factory=dict)
    processed: set[int] = field(default_factory=set)
    next_uid: int = 1
    marks: int = 0

    def deliver(self, raw: bytes) -> int:
        uid = self.next_uid
        self.next_uid += 1
        self.messages[uid] = raw
        return uid

    def renumber(self, uidvalidity: int) -> None:
        """What a server restore does: same messages, new UIDs, new UIDVALIDITY (flags kept)."""
        old = sorted(self.messages)
        new_messages: dict[int, bytes] = {}
        new_processed: set[int] = set()
        for uid in old:
            fresh = self.next_uid
            self.next_uid += 1
            new_messages[fresh] = self.messages[uid]
            if uid in self.processed:
                new_processed.add(fresh)
        self.messages, self.processed, self.uidvalidity = new_messages, new_processed, uidvalidity

    def unprocessed(self) -> list[int]:
        return [u for u in sorted(self.messages) if u not in self.processed]


class MemorySource:
    """A MailSource over a :class:`Mailbox` that can fail on the N-th operation."""

    marks_committed_on_close = False  # IMAP-like: a mark is done when the call returns

    def __init__(self, box: Mailbox, *, fail_at: set[int] | None = None, counter: list[int] | None = None,
                 truncate: bool = False) -> None:
        self.box = box
        self.fail_at = fail_at or set()
        self.counter = counter if counter is not None else [0]
        self.truncate = truncate
        self.closed = False

    def _op(self) -> None:
        self.counter[0] += 1
        if self.counter[0] in self.fail_at:
            raise ConnectError("connection closed by the server during command", server="memory")

    def list_new(self) -> list[MessageRef]:
        self._op()
        return [MessageRef(self.box.name, uid=u, uidvalidity=self.box.uidvalidity) for u in self.box.unprocessed()]

    def fetch(self, ref: MessageRef) -> bytes:
        self._op()
        if ref.uidvalidity != self.box.uidvalidity or ref.uid not in self.box.messages:
            raise MessageGoneError(f"UID {ref.uid} gone", server="memory")
        assert ref.uid is not None
        return self.box.messages[ref.uid]

    def mark_processed(self, ref: MessageRef) -> None:
        self._op()
        if ref.uid not in self.box.messages:
            raise MessageGoneError(f"UID {ref.uid} gone", server="memory")
        assert ref.uid is not None
        self.box.processed.add(ref.uid)
        self.box.marks += 1

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class PartialFetchSource(MemorySource):
    """Cuts the download of every ``every``-th fetch short: the connection drops mid-literal."""

    def __init__(self, box: Mailbox, every: int, counter: list[int]) -> None:
        super().__init__(box, counter=counter)
        self.every = every

    def fetch(self, ref: MessageRef) -> bytes:
        raw = super().fetch(ref)
        if self.counter[0] % self.every == 0:
            _ = raw[: len(raw) // 2]  # what had arrived when the connection dropped: never returned
            raise ConnectError("connection closed by the server during command", server="memory")
        return raw


@dataclass
class MemorySender:
    sent: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)
    fail: Exception | None = None

    def send(self, from_addr: str, to_addrs: list[str] | tuple[str, ...], message: bytes) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append((from_addr, tuple(to_addrs), message))

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeRouter:
    """Routes like docs/semantics.md §3.1 in miniature: subject "routed" → a route on the To address, else fallback.

    Acknowledges the sender when the route sends automated emails and the mail is not automatic.
    """

    def __init__(self, *, own: frozenset[str] = frozenset({"help@acme.example"}), acks: bool = True,
                 routed_word: str = "routed", fail_on: str | None = None) -> None:
        self.own = own
        self.acks = acks
        self.routed_word = routed_word
        self.fail_on = fail_on
        self.calls = 0

    def route(self, envelope: Envelope, connector: str, *,
              acknowledgement_allowed: Callable[[str], bool] | None = None,
              content_digest: str | None = None) -> RoutingResult:
        self.calls += 1
        if self.fail_on is not None and self.fail_on in envelope.subject:
            raise RuntimeError("router bug")
        ref = message_reference(envelope.message_id, envelope.raw, digest=content_digest)
        if envelope.sender in self.own:
            key = idempotency_key(connector, ref, "mailbox")
            return RoutingResult(connector, envelope.message_id, (
                Decision(connector=connector, action="ignore", address="help@acme.example", idempotency_key=key,
                         reason="own address"),))
        routed = self.routed_word in envelope.subject.casefold()
        address = next((r.address for r in envelope.recipients if r.address in self.own), "help@acme.example")
        scope = address if routed else "mailbox"
        key = idempotency_key(connector, ref, scope)
        acknowledge: tuple[str, ...] = ()
        suppressed = None
        if self.acks and envelope.sender:
            if envelope.automatic_reason:
                suppressed = envelope.automatic_reason
            elif acknowledgement_allowed is not None and not acknowledgement_allowed(envelope.sender):
                suppressed = "rate limit"
            else:
                acknowledge = (envelope.sender,)
        decision = Decision(
            connector=connector, action="create", address=address, idempotency_key=key,
            route="Routed" if routed else "Fallback", fallback=not routed,
            delivery=Delivery(target=TARGET, send_automated_emails=self.acks), acknowledge=acknowledge,
            suppressed=suppressed,
        )
        return RoutingResult(connector, envelope.message_id, (decision,))


class Host:
    """A host that creates work items idempotently (a set of keys) and counts every handler call."""

    def __init__(self, path: Path | None = None, fail: Callable[[WorkItem], Exception | None] | None = None) -> None:
        self.calls: list[str] = []
        self.items: dict[str, WorkItem] = {}
        self.path = path
        self.fail = fail

    def __call__(self, item: WorkItem) -> None:
        self.calls.append(item.idempotency_key)
        if self.fail is not None:
            error = self.fail(item)
            if error is not None:
                raise error
        if item.idempotency_key in self.items:
            return
        self.items[item.idempotency_key] = item
        if self.path is not None:
            with self.path.open("a") as out:
                out.write(json.dumps({"key": item.idempotency_key, "message_id": item.envelope.message_id}) + "\n")
                out.flush()
                os.fsync(out.fileno())


def jsonl_keys(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
