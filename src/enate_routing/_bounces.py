"""Bounces join the work item of the mail that bounced (docs/semantics.md §3.4).

A delivery status notification (RFC 3464: ``multipart/report; report-type=delivery-status``), or an
automatic message from a mailer daemon carrying the original's headers (``text/rfc822-headers``,
``message/rfc822`` and their RFC 6533 ``global`` forms), is about mail the system sent: usually an
acknowledgement. Creating a ticket from it would open new work for a message nobody wrote; linking it to
the original's work item tells the agent that the customer did not receive the reply.

The original is found by its own Message-ID among the messages the host knows (its sent acknowledgements
and work items, :class:`~enate_routing._directory.WorkItemLookup`), then by the ids it answered
(In-Reply-To, References, most recent first), then by the reference token in its subject. A bounce whose
original is not found is routed like any other mail.

Only mail that looks like a bounce is parsed, with the standard library and only its header blocks, so
routing ordinary mail costs one attribute check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from enate_routing._directory import WorkItemLookup
from enate_routing._envelope import Envelope
from enate_routing._link_pattern import link_search

__all__ = ["Bounce", "find_bounce", "from_daemon", "is_bounce"]

# RFC 3464 §2 / RFC 6522: where a report carries the returned message or its headers.
_HEADER_PARTS = frozenset({"text/rfc822-headers", "message/global-headers"})
_MESSAGE_PARTS = frozenset({"message/rfc822", "message/global"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True, slots=True)
class Bounce:
    """The work item a bounce belongs to; ``address`` is the mailbox address the original was about."""

    work_item: str
    address: str | None
    reason: str


def is_bounce(envelope: Envelope, daemon: bool | None = None) -> bool:
    """A delivery report, or mail from a mailer daemon / with a null return path (RFC 5321 §4.5.5).

    ``daemon`` is :func:`from_daemon` of the sender when the caller has it already (the router remembers it).
    """
    if envelope.is_delivery_report or envelope.return_path == "":
        return True
    return from_daemon(envelope.sender) if daemon is None else daemon


def from_daemon(sender: str | None) -> bool:
    """Whether ``sender``'s local part is a mailer daemon's (``MAILER-DAEMON@``, ``postmaster@``)."""
    return sender is not None and sender.rpartition("@")[0].casefold() in _DAEMONS


def find_bounce(
    envelope: Envelope, lookup: WorkItemLookup | None, token: re.Pattern[str] | None
) -> Bounce | None:
    """The work item of the message ``envelope`` reports as undelivered, or None (see the module doc).

    ``token`` is the configured reference pattern (``linking.subject_pattern``); a token found in the
    original's subject links when ``lookup`` knows the work item, or when there is no lookup (the host then
    checks on receipt, as for any token, docs/semantics.md §3.4).
    """
    if not envelope.raw or envelope.quarantine_reason is not None or not is_bounce(envelope):
        return None
    for original in _returned_headers(envelope.raw):
        found = _by_message_id(original, lookup) or _by_token(original, lookup, token)
        if found is not None:
            return found
    return None


def _returned_headers(raw: bytes) -> Iterator[Message]:
    """The header blocks of the returned messages, in the order they appear. Never raises."""
    try:
        message = message_from_bytes(raw, policy=compat32)
        for part in message.walk():
            content_type = part.get_content_type()
            if content_type in _MESSAGE_PARTS:
                payload = part.get_payload()
                if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                    yield payload[0]
            elif content_type in _HEADER_PARTS:
                text = part.get_payload(decode=True)
                if isinstance(text, bytes):
                    yield HeaderParser(policy=compat32).parsestr(text.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 — a report that cannot be read is routed like any other mail
        return


def _ids(original: Message, name: str) -> list[str]:
    return [ident for value in original.get_all(name) or [] for ident in _MESSAGE_ID.findall(str(value))]


def _by_message_id(original: Message, lookup: WorkItemLookup | None) -> Bounce | None:
    if lookup is None:
        return None
    own = _ids(original, "Message-ID")[:1]
    answered = _ids(original, "In-Reply-To") + _ids(original, "References")[::-1]
    for message_id in own + answered:
        known = lookup.find_message(message_id)
        if known is None:
            continue
        what = f"<{message_id}>" if message_id in own else f"<{own[0]}>" if own else "a message"
        via = "" if message_id in own else f", which answers <{message_id}>"
        return Bounce(known.work_item, known.address, f"bounce of {what}{via} (work item {known.work_item})")
    return None


def _by_token(original: Message, lookup: WorkItemLookup | None, token: re.Pattern[str] | None) -> Bounce | None:
    if token is None:
        return None
    subject = _decoded(original.get("Subject"))
    match = link_search(token).search(subject)  # bounded, as every subject search (docs/semantics.md §3.4)
    if match is None:
        return None
    reference = match.group("ref") if "ref" in match.re.groupindex else match.group(1)
    if not reference or (lookup is not None and not lookup.work_item_exists(reference)):
        return None
    own = _ids(original, "Message-ID")[:1]
    what = f"<{own[0]}>" if own else "a message"
    return Bounce(reference, None, f"bounce of {what} with subject token {match.group(0)} (work item {reference})")


def _decoded(value: object) -> str:
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # noqa: BLE001 — an undecodable subject has no token to find
        return str(value)
