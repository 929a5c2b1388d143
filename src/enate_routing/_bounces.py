"""Bounces join the work item of the mail that bounced (docs/semantics.md §3.4).

A delivery status notification (RFC 3464: ``multipart/report; report-type=delivery-status``), or an
automatic message from a mailer daemon carrying the original's headers (``text/rfc822-headers``,
``message/rfc822`` and their RFC 6533 ``global`` forms), is about mail the system sent: usually an
acknowledgement. Creating a ticket from it would open new work for a message nobody wrote; linking it to
the original's work item tells the agent that the customer did not receive the reply.

The original is found by its own Message-ID among the messages the host knows (its sent acknowledgements
and work items, :class:`~enate_routing._directory.WorkItemLookup`), then by the ids it answered
(In-Reply-To, References, most recent first), then by the reference tokens in its subject, in order. A
report may return many messages: the lookups for all of them together are bounded as for any email
(:mod:`._lookup_bound`). A bounce whose original is not found is routed like any other mail.

Only mail that looks like a bounce is parsed again, so routing ordinary mail costs one attribute check. The
report is walked by the envelope's own MIME scanner and, of each returned header block, only the ids and
subject are read, as ``Envelope.from_bytes`` reads them; the walk stops once every lookup allowed was made.
Linear, like every other parse (the standard library's parser is quadratic in ``;`` parameters and in
encoded words, which a report's returned headers may hold).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from enate_routing import _mime
from enate_routing._directory import WorkItemLookup
from enate_routing._envelope import Envelope, returned_ids, scan_again
from enate_routing._link_pattern import link_search
from enate_routing._lookup_bound import LINK_TOKEN_LOOKUPS, MESSAGE_ID_LOOKUPS, at_most, bound_reached

__all__ = ["Bounce", "find_bounce", "from_daemon", "is_bounce"]

# RFC 3464 §2 / RFC 6522: where a report carries the returned message or its headers.
_HEADER_PARTS = frozenset({"text/rfc822-headers", "message/global-headers"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})


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
    """Whether ``sender``'s local part, without a plus tag, is a mailer daemon's (``MAILER-DAEMON@``,
    ``postmaster+bounces@``), as for ``Envelope.automatic_reason``."""
    return sender is not None and sender.rpartition("@")[0].partition("+")[0].casefold() in _DAEMONS


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
    ids_asked: set[str] = set()  # across every returned message: one bound per email
    tokens_asked: set[str] = set()

    def spent() -> bool:
        """Every lookup allowed was made: the returned messages left cannot be found, so are not read."""
        return not ids_wanted() and not tokens_wanted()

    def ids_wanted() -> bool:
        return lookup is not None and not bound_reached(ids_asked, MESSAGE_ID_LOOKUPS)

    def tokens_wanted() -> bool:
        return token is not None and not bound_reached(tokens_asked, LINK_TOKEN_LOOKUPS)

    if spent():
        return None
    for block in _returned_headers(envelope.raw):
        # What a spent bound would not look up is not read (ids of 999 returned messages, 1,000 each).
        original = returned_ids(block, ids=ids_wanted(), subject=tokens_wanted())
        found = _by_message_id(original, lookup, ids_asked) or _by_token(original, lookup, token, tokens_asked)
        if found is not None or spent():
            return found
    return None


def _returned_headers(raw: bytes) -> Iterator[bytes]:
    """The header blocks of the returned messages, in the order they appear (read by :func:`returned_ids`).
    Never raises."""
    try:
        skeleton = scan_again(raw)
        blocks: list[tuple[int, int, _mime.Entity | None]] = [(start, end, None) for start, end in skeleton.messages]
        blocks += [(leaf.body_start, leaf.body_end, leaf) for leaf in skeleton.leaves
                   if leaf.content_type in _HEADER_PARTS]
        for start, end, leaf in sorted(blocks, key=lambda block: block[0]):
            if leaf is not None:  # a text part of headers: its transfer encoding undone, its charset read
                yield _mime.decode_body(raw, leaf).encode()
            else:  # an attached message: its header block alone (its body is not needed)
                header_end = _mime.split_header_block(raw, start, end, end - start).end
                yield raw[start:header_end]
    except Exception:  # noqa: BLE001 — a report that cannot be read is routed like any other mail
        return


def _by_message_id(original: Envelope, lookup: WorkItemLookup | None, asked: set[str]) -> Bounce | None:
    if lookup is None:
        return None
    own = [original.message_id] if original.message_id else []
    answered = [*original.in_reply_to, *reversed(original.references)]
    for message_id, _ in at_most(((i, None) for i in own + answered), MESSAGE_ID_LOOKUPS, seen=asked):
        known = lookup.find_message(message_id)
        if known is None:
            continue
        what = f"<{message_id}>" if message_id in own else f"<{own[0]}>" if own else "a message"
        via = "" if message_id in own else f", which answers <{message_id}>"
        return Bounce(known.work_item, known.address, f"bounce of {what}{via} (work item {known.work_item})")
    return None


def _by_token(original: Envelope, lookup: WorkItemLookup | None, token: re.Pattern[str] | None,
              asked: set[str]) -> Bounce | None:
    """The first reference token of the original's subject that names existing work (the first, without a
    lookup), searched as every subject is (§3.4: bounded, linear)."""
    if token is None:
        return None
    references = link_search(token).references(original.subject)
    for reference, match in at_most(references, LINK_TOKEN_LOOKUPS, seen=asked):
        if lookup is None or lookup.work_item_exists(reference):
            what = f"<{original.message_id}>" if original.message_id else "a message"
            return Bounce(reference, None,
                          f"bounce of {what} with subject token {match.group(0)} (work item {reference})")
    return None
