"""Follow-ups (docs/semantics.md §3.4): does an email continue existing work, before it is routed as new work?

In order: In-Reply-To, then References from the most recent back, known to the host's
:class:`~enate_routing._directory.WorkItemLookup` and addressed to the same mailbox address; a plus address
(``help+T-1@``) of the connector; a token matched by ``[linking] subject_pattern`` in the subject, then in
the body when ``search_body`` is on — every token in order until one names existing work. Each message id,
tag and reference is looked up once, and at most a bounded number per email (:mod:`._lookup_bound`).
:class:`FollowUps` is compiled once per router from ``[linking]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from enate_routing._bounces import Bounce, find_bounce
from enate_routing._directory import WorkItemLookup
from enate_routing._envelope import Envelope, Recipient
from enate_routing._link_pattern import LinkSearch, link_search
from enate_routing._lookup_bound import LINK_TOKEN_LOOKUPS, MESSAGE_ID_LOOKUPS, at_most
from enate_routing._model import Linking

__all__ = ["FollowUps", "Link", "plus_base"]


def plus_base(address: str) -> tuple[str, str] | None:
    """``help+T-1@x.example`` → (``help@x.example``, ``t-1``); None when there is no plus tag (semantics.md §3.4)."""
    local, _, domain = address.rpartition("@")
    base, plus, tag = local.partition("+")
    if not plus or not base or not tag:
        return None
    return f"{base}@{domain}", tag


@dataclass(frozen=True, slots=True)
class Link:
    """Existing work an email continues: the work item, the mailbox address, why, and whether the system's
    own mail was answered (an automatic reply to it is ignored rather than linked)."""

    work_item: str
    address: str
    reason: str
    generated: bool


class FollowUps:
    """The ``[linking]`` settings and the host's lookup, compiled; :meth:`find` is the §3.4 procedure."""

    __slots__ = ("_lookup", "_mode", "_search", "_search_body")

    def __init__(self, linking: Linking, lookup: WorkItemLookup | None) -> None:
        self._lookup = lookup
        self._mode = linking.plus_addressing
        self._search_body = linking.search_body
        self._search = link_search(re.compile(linking.subject_pattern)) if linking.subject_pattern else None

    def bounce(self, envelope: Envelope) -> Bounce | None:
        """The returned mail this email reports the bounce of, when it is one the host knows (docs/routing.md)."""
        return find_bounce(envelope, self._lookup, None if self._search is None else self._search.pattern)

    def find(self, envelope: Envelope, own: frozenset[str], mailbox: str, steps: list[str] | None) -> Link | None:
        """The first link to existing work; None when the email is new work. ``own``: the connector's
        addresses; ``mailbox``: the address a token link names; ``steps`` collects an explanation."""
        mode = self._mode
        if mode != "plus-only" and self._lookup is not None and (envelope.in_reply_to or envelope.references):
            link = self._thread_link(envelope, self._lookup, steps)
            if link is not None:
                return link
        if mode != "off":
            for recipient in envelope.recipients:
                if "+" in recipient.address:  # most mail has no plus address: no walk, no call
                    link = self._plus_link(envelope.recipients, own, steps)
                    if link is not None:
                        return link
                    break
        search = self._search
        # (The subject's prefix test first: most mail has no token and no body to search.)
        if mode != "plus-only" and search is not None and (self._search_body or search.may_hold(envelope.subject)):
            link = self._token_link(search, envelope, mailbox, steps)
            if link is not None:
                return link
        if steps is not None:
            steps.append("no link to existing work (docs/semantics.md §3.4)")
        return None

    def _thread_link(self, envelope: Envelope, lookup: WorkItemLookup, steps: list[str] | None) -> Link | None:
        """In-Reply-To first, then References from the most recent (the last) back (RFC 5322 §3.6.4)."""
        recipients = {r.address for r in envelope.recipients}
        ids = [(i, "In-Reply-To") for i in envelope.in_reply_to]
        ids += [(i, "References") for i in reversed(envelope.references)]
        stopped = _noting(steps, f"only the {MESSAGE_ID_LOOKUPS} most recent message ids are looked up")
        for message_id, header in at_most(ids, MESSAGE_ID_LOOKUPS, stopped=stopped):
            known = lookup.find_message(message_id)
            if known is None:
                continue
            if known.address in recipients:
                return Link(known.work_item, known.address, f"{header} <{message_id}> is work item "
                            f"{known.work_item}", known.generated)
            if steps is not None:
                steps.append(f"{header} <{message_id}> is work item {known.work_item}, but its mailbox "
                             f"address {known.address} is no longer a recipient")
        return None

    def _plus_link(self, recipients: Sequence[Recipient], own: frozenset[str], steps: list[str] | None) -> Link | None:
        """The first plus address of the connector whose tag names existing work, in recipient order."""
        stopped = _noting(steps, f"{LINK_TOKEN_LOOKUPS} plus tags looked up, none known: no further one is tried")
        for tag, (base, address) in at_most(_plus_tags(recipients, own), LINK_TOKEN_LOOKUPS, stopped=stopped):
            if self._exists(tag, steps):
                # Tokens are written only into mail the system sends, so an automatic reply carrying
                # one answers generated mail (docs/semantics.md §3.4, last sentence).
                return Link(tag, base, f"plus address {address}", True)
        return None

    def _token_link(self, search: LinkSearch, envelope: Envelope, mailbox: str,
                    steps: list[str] | None) -> Link | None:
        """The first reference token, subject then body, that names existing work (docs/semantics.md §3.4).

        Without a lookup the first token links.
        """
        stopped = _noting(steps, f"{LINK_TOKEN_LOOKUPS} references looked up, none known: no further token is tried")
        for token, (where, match) in at_most(self._tokens(search, envelope), LINK_TOKEN_LOOKUPS, stopped=stopped):
            if self._exists(token, steps):
                return Link(token, mailbox, f"{where} token {match.group(0)}", True)
        return None

    def _tokens(self, search: LinkSearch, envelope: Envelope) -> Iterator[tuple[str, tuple[str, re.Match[str]]]]:
        """The subject's tokens, then (with ``search_body``) the body's: decoded only when the walk gets there."""
        for reference, match in search.references(envelope.subject):
            yield reference, ("subject", match)
        if self._search_body:
            for reference, match in search.references(envelope.plain_text(), body=True):
                yield reference, ("body", match)

    def _exists(self, reference: str, steps: list[str] | None) -> bool:
        """A token links when the host's lookup knows it; without a lookup the host checks on receipt."""
        if self._lookup is None or self._lookup.work_item_exists(reference):
            return True
        if steps is not None:
            steps.append(f"reference {reference} names no existing work item")
        return False


def _plus_tags(recipients: Sequence[Recipient], own: frozenset[str]) -> Iterator[tuple[str, tuple[str, str]]]:
    """(tag, (base address, plus address)) of each recipient that is a plus address of one of ``own``."""
    for recipient in recipients:
        unplussed = plus_base(recipient.address)
        if unplussed is not None and unplussed[0] in own:
            yield unplussed[1], (unplussed[0], recipient.address)


def _noting(steps: list[str] | None, step: str) -> partial[None] | None:
    """What tells the explanation that a bound stopped a walk (None on the route path: nothing to tell)."""
    return None if steps is None else partial(steps.append, step)
