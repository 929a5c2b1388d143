"""Follow-ups (docs/semantics.md §3.4): does an email continue existing work, before it is routed as new work?

In order: In-Reply-To, then References from the most recent back, known to the host's
:class:`~enate_routing._directory.WorkItemLookup` and addressed to the same mailbox address; a plus address
(``help+T-1@``) of the connector; a token matched by ``[linking] subject_pattern`` in the subject, then in
the body when ``search_body`` is on — every token in order until one names existing work, each reference
looked up once and at most LINK_TOKEN_LOOKUPS per email. :class:`FollowUps` is compiled once per router from
``[linking]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from enate_routing._bounces import Bounce, find_bounce
from enate_routing._directory import KnownMessage, WorkItemLookup
from enate_routing._envelope import Envelope
from enate_routing._link_pattern import LINK_TOKEN_LOOKUPS, LinkSearch, link_search
from enate_routing._model import Linking

__all__ = ["MESSAGE_ID_LOOKUPS", "FollowUps", "Link", "plus_base"]

# Message ids asked about per email: In-Reply-To, then References from the most recent back. A real thread's
# References is far shorter (mail clients trim it); 2,000 hostile ids must not become 2,000 database calls.
MESSAGE_ID_LOOKUPS = 100


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

    __slots__ = ("_lookup", "_mode", "_named", "_search", "_search_body")

    def __init__(self, linking: Linking, lookup: WorkItemLookup | None) -> None:
        self._lookup = lookup
        self._mode = linking.plus_addressing
        self._search_body = linking.search_body
        self._search = link_search(re.compile(linking.subject_pattern)) if linking.subject_pattern else None
        self._named: str | int = "ref" if self._search and "ref" in self._search.pattern.groupindex else 1

    def bounce(self, envelope: Envelope) -> Bounce | None:
        """The returned mail this email reports the bounce of, when it is one the host knows (docs/routing.md)."""
        return find_bounce(envelope, self._lookup, None if self._search is None else self._search.pattern)

    def find(self, envelope: Envelope, own: frozenset[str], mailbox: str, steps: list[str] | None) -> Link | None:
        """The first link to existing work; None when the email is new work. ``own``: the connector's
        addresses; ``mailbox``: the address a token link names; ``steps`` collects an explanation."""
        mode = self._mode
        lookup = self._lookup
        if mode != "plus-only" and lookup is not None and (envelope.in_reply_to or envelope.references):
            recipients = {r.address for r in envelope.recipients}
            # In-Reply-To first, then References from the most recent (the last) back (RFC 5322 §3.6.4).
            candidates = [("In-Reply-To", i) for i in envelope.in_reply_to]
            candidates += [("References", i) for i in reversed(envelope.references)]
            if len(candidates) > MESSAGE_ID_LOOKUPS and steps is not None:
                steps.append(f"only the {MESSAGE_ID_LOOKUPS} most recent message ids are looked up")
            for header, message_id in candidates[:MESSAGE_ID_LOOKUPS]:
                known: KnownMessage | None = lookup.find_message(message_id)
                if known is None:
                    continue
                if known.address in recipients:
                    return Link(known.work_item, known.address, f"{header} <{message_id}> is work item "
                                f"{known.work_item}", known.generated)
                if steps is not None:
                    steps.append(f"{header} <{message_id}> is work item {known.work_item}, but its mailbox "
                                 f"address {known.address} is no longer a recipient")
        if mode != "off":
            tags: set[str] = set()  # each tag looked up once, at most LINK_TOKEN_LOOKUPS (as tokens below)
            for recipient in envelope.recipients:
                if "+" not in recipient.address:  # most mail: no plus address, no call
                    continue
                unplussed = plus_base(recipient.address)
                if unplussed is None or unplussed[0] not in own or unplussed[1] in tags:
                    continue
                if len(tags) == LINK_TOKEN_LOOKUPS:
                    if steps is not None:
                        steps.append(f"{LINK_TOKEN_LOOKUPS} plus tags looked up, none known: no further one is tried")
                    break
                base, tag = unplussed
                tags.add(tag)
                if self._exists(tag, steps):
                    # Tokens are written only into mail the system sends, so an automatic reply carrying
                    # one answers generated mail (docs/semantics.md §3.4, last sentence).
                    return Link(tag, base, f"plus address {recipient.address}", True)
        search = self._search
        # (The subject's prefix test first: most mail has no token and no body to search.)
        if mode != "plus-only" and search is not None and (self._search_body or search.may_hold(envelope.subject)):
            link = self._token_link(search, envelope, mailbox, steps)
            if link is not None:
                return link
        if steps is not None:
            steps.append("no link to existing work (docs/semantics.md §3.4)")
        return None

    def _token_link(self, search: LinkSearch, envelope: Envelope, mailbox: str,
                    steps: list[str] | None) -> Link | None:
        """The first reference token, subject then body, that names existing work (docs/semantics.md §3.4).

        Each reference is looked up once, and at most LINK_TOKEN_LOOKUPS are looked up per email: a subject
        full of unknown tokens costs ten database calls, not a thousand. Without a lookup the first token links.
        """
        tried: set[str] = set()
        link = self._first_known(search, "subject", envelope.subject, tried, mailbox, steps)
        if link is None and self._search_body and len(tried) < LINK_TOKEN_LOOKUPS:
            link = self._first_known(search, "body", envelope.plain_text(), tried, mailbox, steps)
        return link

    def _first_known(self, search: LinkSearch, where: str, text: str, tried: set[str], mailbox: str,
                     steps: list[str] | None) -> Link | None:
        """The first token of ``text`` that names existing work; ``tried``: the references already asked about."""
        for match in search.tokens(text, body=where == "body"):
            token = match.group(self._named)
            if not token or token in tried:
                continue
            if self._exists(token, steps):
                return Link(token, mailbox, f"{where} token {match.group(0)}", True)
            tried.add(token)
            if len(tried) == LINK_TOKEN_LOOKUPS:
                if steps is not None:
                    steps.append(f"{LINK_TOKEN_LOOKUPS} references looked up, none known: no further token is tried")
                break
        return None

    def _exists(self, reference: str, steps: list[str] | None) -> bool:
        """A token links when the host's lookup knows it; without a lookup the host checks on receipt."""
        if self._lookup is None or self._lookup.work_item_exists(reference):
            return True
        if steps is not None:
            steps.append(f"reference {reference} names no existing work item")
        return False
