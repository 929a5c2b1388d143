"""Reference tokens are tried in order until one names existing work (docs/semantics.md §3.4).

Subject first, then the body when ``search_body`` is on; each reference looked up once, at most
LINK_TOKEN_LOOKUPS per email; without a lookup the first token links. Both routers, compiled and reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from routing_helpers import HELP, eml, mail, make_config, route

from enate_routing._envelope import Envelope
from enate_routing._link_pattern import LINK_SUBJECT_CHARS
from enate_routing._loading import parse_config
from enate_routing._lookup_bound import LINK_TOKEN_LOOKUPS, MESSAGE_ID_LOOKUPS
from enate_routing._model import Config
from enate_routing._router import Router
from enate_routing.testing import InMemoryWorkItems, ReferenceRouter
from enate_routing.testing.strategies import config_data, envelopes, work_items

ROUTERS: dict[str, Callable[..., Any]] = {"compiled": Router.compile, "reference": ReferenceRouter}


@pytest.fixture(params=sorted(ROUTERS))
def build(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ROUTERS[request.param]


class CountingWorkItems(InMemoryWorkItems):
    """An in-memory lookup that records every ``work_item_exists`` question, in order."""

    def __init__(self, items: tuple[str, ...] = ("T-000123",)) -> None:
        super().__init__(items)
        self.asked: list[str] = []

    def work_item_exists(self, reference: str) -> bool:
        self.asked.append(reference)
        return super().work_item_exists(reference)


def configured(**linking: Any) -> Config:
    return make_config(route("Help", HELP), linking=linking)


def with_body(subject: str, body: str) -> Envelope:
    return Envelope.from_bytes(eml({"From": "ann@fabrikam.example", "To": HELP, "Subject": subject,
                                    "Message-ID": "<t@fabrikam.example>"}, body + "\r\n"))


def linked(result: Any) -> tuple[str, str | None, str | None]:
    decision = result.decisions[0]
    return decision.action, decision.link, decision.reason


def test_a_later_subject_token_links_when_the_first_names_no_work(build: Callable[..., Any]) -> None:
    """A forwarded reply carrying an old system's token first links by the later, known token."""
    lookup = CountingWorkItems()
    result = build(configured(), lookup=lookup).route(mail(subject="Fwd: [REF:T-000999] Re: [REF:T-000123]"))
    assert linked(result) == ("link", "T-000123", "subject token [REF:T-000123]")
    assert lookup.asked == ["T-000999", "T-000123"]


def test_a_later_body_token_links_after_unknown_subject_and_body_tokens(build: Callable[..., Any]) -> None:
    """Subject tokens first, then the body's, in order; the first known one links."""
    envelope = with_body("Re: [REF:T-000404]", "old [REF:T-000999], new [REF:T-000123], [REF:T-000555]")
    lookup = CountingWorkItems()
    assert linked(build(configured(search_body=True), lookup=lookup).route(envelope)) == (
        "link", "T-000123", "body token [REF:T-000123]")
    assert lookup.asked == ["T-000404", "T-000999", "T-000123"]
    assert build(configured(), lookup=CountingWorkItems()).route(envelope).decisions[0].action == "create"


def test_without_a_lookup_the_first_token_links(build: Callable[..., Any]) -> None:
    """With no lookup the host checks on receipt, so the first token links, as before."""
    result = build(configured()).route(mail(subject="Fwd: [REF:T-000999] Re: [REF:T-000123]"))
    assert linked(result)[:2] == ("link", "T-000999")


def test_a_repeated_token_is_looked_up_once(build: Callable[..., Any]) -> None:
    """The same unknown reference fifty times in the subject and again in the body costs one lookup."""
    envelope = with_body("[REF:T-000404] " * 50, "[REF:T-000404] [REF:T-000123]")
    lookup = CountingWorkItems()
    assert linked(build(configured(search_body=True), lookup=lookup).route(envelope))[:2] == ("link", "T-000123")
    assert lookup.asked == ["T-000404", "T-000123"]


@pytest.mark.parametrize("known_at", [LINK_TOKEN_LOOKUPS, LINK_TOKEN_LOOKUPS + 1])
def test_at_most_the_bound_of_lookups_per_email(build: Callable[..., Any], known_at: int) -> None:
    """1,000 distinct unknown tokens (subject and body) cost LINK_TOKEN_LOOKUPS lookups; a known token links
    only when it comes within that many."""
    tokens = [f"[REF:T-{n}]" for n in range(1, 1001)]
    tokens[known_at - 1] = "[REF:T-000123]"
    envelope = with_body(" ".join(tokens[:5]), " ".join(tokens[5:]))
    lookup = CountingWorkItems()
    result = build(configured(search_body=True), lookup=lookup).route(envelope)
    assert len(lookup.asked) == LINK_TOKEN_LOOKUPS
    expected = "link" if known_at <= LINK_TOKEN_LOOKUPS else "create"
    assert result.decisions[0].action == expected


def test_a_token_cut_by_the_subject_cap_is_not_tried(build: Callable[..., Any]) -> None:
    """After an unknown first token, a second one cut to T-12 by the cap is dropped, though T-12 exists."""
    subject = "T-404 " + "x" * (LINK_SUBJECT_CHARS - 6 - 4) + "T-12345"
    lookup = CountingWorkItems(("T-12", "T-12345"))
    config = configured(subject_pattern=r"(?P<ref>T-\d+)")
    assert build(config, lookup=lookup).route(mail(subject=subject)).decisions[0].action == "create"
    assert lookup.asked == ["T-404"]


def test_an_over_long_token_is_skipped_whole(build: Callable[..., Any]) -> None:
    """A token past the repetition bound is dropped and its tail is no token; the next token links."""
    subject = "REF T-" + "1" * 70 + " REF T-000123"
    lookup = CountingWorkItems(("T-000123", "T-111111"))
    result = build(configured(subject_pattern=r"REF (?P<ref>T-\d+)"), lookup=lookup).route(mail(subject=subject))
    assert linked(result)[:2] == ("link", "T-000123")
    assert lookup.asked == ["T-000123"]


def test_explain_names_each_token_tried() -> None:
    """The trace says which tokens named no work item before the one that linked, and when the bound stopped."""
    router = Router.compile(configured(), lookup=CountingWorkItems())
    steps = router.explain(mail(subject="Fwd: [REF:T-000999] [REF:T-000998] Re: [REF:T-000123]")).steps
    assert "reference T-000999 names no existing work item" in steps
    assert "reference T-000998 names no existing work item" in steps
    many = " ".join(f"[REF:T-{n}]" for n in range(1, 30))
    steps = router.explain(mail(subject=many)).steps
    assert sum("names no existing work item" in step for step in steps) == LINK_TOKEN_LOOKUPS
    assert f"{LINK_TOKEN_LOOKUPS} references looked up, none known: no further token is tried" in steps


# A body of n distinct unknown tokens (around the lookup bound), a known one (T-1), then a few of any kind.
BODY_TOKENS = st.builds(lambda n, tail: " ".join([f"[REF:ZZ-{i}]" for i in range(n)] + ["[REF:T-1]"] + tail),
                        st.integers(0, LINK_TOKEN_LOOKUPS + 2),
                        st.lists(st.sampled_from(["[REF:T-1]", "[REF:T-2]", "[REF:ZZ-9]", "[ref:t-1]", "see", "\r\n"]),
                                 max_size=4))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), plain=config_data(), body=BODY_TOKENS)
def test_both_routers_try_body_tokens_alike(data: st.DataObject, plain: dict[str, Any], body: str) -> None:
    """The hypothesis emails (several subject tokens, an unknown one often first) with a body of tokens, the
    body searched: the compiled and the reference router link (or not) alike, the lookup bound included."""
    plain["linking"] = {**plain["linking"], "plus_addressing": "off", "search_body": True,
                        "subject_pattern": r"\[REF:(?P<ref>[A-Z]+-\d+)\]"}
    config = parse_config(plain)
    lookup = data.draw(work_items(config))
    lookup.add("T-1")
    envelope = replace(data.draw(envelopes(config)), raw=b"\r\n" + body.encode(), in_reply_to=(), references=())
    names = [c.name for c in config.connectors if c.uses_incoming]
    compiled, reference = Router.compile(config, lookup=lookup), ReferenceRouter(config, lookup=lookup)
    assert [compiled.route(envelope, n) for n in names] == [reference.route(envelope, n) for n in names]


@pytest.mark.parametrize(("known", "links"), [(LINK_TOKEN_LOOKUPS, True), (LINK_TOKEN_LOOKUPS + 1, False)])
def test_plus_tags_are_looked_up_once_each_and_at_most_the_bound(build: Callable[..., Any], known: int,
                                                                 links: bool) -> None:
    """A mail to 50 plus addresses of the mailbox (each tag twice) asks the host about at most
    LINK_TOKEN_LOOKUPS distinct tags: the known one links only within the bound."""
    user, _, domain = HELP.partition("@")
    tags = [f"t-{n}" for n in range(1, 51)]
    to = ", ".join(f"{user}+{tag}@{domain}" for tag in tags for _ in range(2))
    envelope = Envelope.from_bytes(eml({"From": "ann@fabrikam.example", "To": to, "Subject": "no token",
                                        "Message-ID": "<p@fabrikam.example>"}, "text\r\n"))
    lookup = CountingWorkItems((f"t-{known}",))
    result = build(configured(plus_addressing="mixed"), lookup=lookup).route(envelope)
    assert lookup.asked == tags[:min(known, LINK_TOKEN_LOOKUPS)]
    assert (result.decisions[0].action == "link") is links


class CountingMessages(InMemoryWorkItems):
    """An in-memory lookup that records every ``find_message`` question."""

    def __init__(self) -> None:
        super().__init__(("T-000123",))
        self.asked: list[str] = []

    def find_message(self, message_id: str) -> Any:
        self.asked.append(message_id)
        return super().find_message(message_id)


@pytest.mark.parametrize(("back", "links"), [(MESSAGE_ID_LOOKUPS - 1, True), (MESSAGE_ID_LOOKUPS, False)])
def test_at_most_the_bound_of_message_ids_is_looked_up(build: Callable[..., Any], back: int, links: bool) -> None:
    """In-Reply-To, then References from the most recent back: at most MESSAGE_ID_LOOKUPS ids are asked about,
    so a known id ``back`` places behind In-Reply-To links only within the bound."""
    ids = [f"<r{n}@fabrikam.example>" for n in range(300)]
    lookup = CountingMessages()
    lookup.remember(ids[-back].strip("<>"), "T-000123", HELP)
    envelope = Envelope.from_bytes(eml({"From": "ann@fabrikam.example", "To": HELP, "Subject": "no token",
                                        "Message-ID": "<m@fabrikam.example>", "In-Reply-To": "<irt@fabrikam.example>",
                                        "References": " ".join(ids)}, "text\r\n"))
    result = build(configured(), lookup=lookup).route(envelope)
    assert len(lookup.asked) <= MESSAGE_ID_LOOKUPS
    assert lookup.asked[:2] == ["irt@fabrikam.example", "r299@fabrikam.example"]
    assert (result.decisions[0].action == "link") is links


def test_a_repeated_message_id_is_asked_about_once(build: Callable[..., Any]) -> None:
    """The bound counts distinct ids: a References repeating one unknown id 300 times does not hide the known
    id behind it (each id asked once, as tags and tokens are)."""
    lookup = CountingMessages()
    lookup.remember("root@fabrikam.example", "T-000123", HELP)
    references = " ".join(["<root@fabrikam.example>"] + ["<loop@fabrikam.example>"] * 300)
    envelope = Envelope.from_bytes(eml({"From": "ann@fabrikam.example", "To": HELP, "Subject": "no token",
                                        "Message-ID": "<m@fabrikam.example>", "References": references}, "text\r\n"))
    result = build(configured(), lookup=lookup).route(envelope)
    assert lookup.asked == ["loop@fabrikam.example", "root@fabrikam.example"]
    assert result.decisions[0].action == "link"
