"""The router's hot-path shortcuts give exactly what the plain code gives (issue 15; docs/routing.md, Benchmark).

Each shortcut is compared with the straightforward computation it replaces: a key hashed from the connector's
copied SHA-256 state with the whole text hashed at once, the positional ``Decision._make`` and the unfrozen-twin
construction with the keyword constructor, the remembered address keys with a fresh derivation (and the table
stays bounded under hostile input), the literal-prefix test of a linking pattern with a plain bounded search,
and the per-group compiled matcher (narrow and wide) with the plain loop over rule kinds.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import unicodedata
from dataclasses import FrozenInstanceError, fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from routing_helpers import BILLING, HELP, NOREPLY, SUPPORT, mail, make_config, route

from enate_routing._decision import ConnectorKeys, Decision, RoutingResult, idempotency_key, message_reference
from enate_routing._delivery import Delivery, Target
from enate_routing._directory import ConfiguredCompanies
from enate_routing._email_keys import (
    _REMEMBER_KEYS_UP_TO,
    _REMEMBERED_ADDRESSES,
    _REMEMBERED_KEYS,
    COMPANIES,
    RECIPIENTS,
    SENDERS,
    EmailFacts,
    KeyTables,
    _derive_keys,
    address_keys,
    company_keys,
    keys_of_address,
)
from enate_routing._envelope import Envelope, Recipient
from enate_routing._link_pattern import LINK_SUBJECT_CHARS, _bounded, link_search
from enate_routing._matcher import MatchCounters, compile_group, compiled_route, listed_keys
from enate_routing._model import Config
from enate_routing._patterns import (
    LONGEST_REMEMBERED_LIST,
    _normalize_address,
    _normalize_domain,
    _remembered_address,
    _remembered_domain,
    forget_normalised,
    normalize_address,
    normalize_domain,
    subject_words,
)
from enate_routing._router import _REMEMBERED_SENDERS, Router
from enate_routing.testing import synthetic_config, synthetic_envelopes
from enate_routing.testing.strategies import configs, envelopes

texts = st.text(st.characters(codec="utf-8"), max_size=80)


@given(connector=texts, reference=texts, scope=texts)
def test_idempotency_key_is_the_documented_sha256(connector: str, reference: str, scope: str) -> None:
    """docs/semantics.md §4: sha256 of the NUL-joined parts, first 32 hex digits."""
    text = "\0".join(("enate-routing/1", connector, reference, scope))
    expected = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    assert idempotency_key(connector, reference, scope) == expected


@pytest.mark.parametrize(("connector", "reference", "scope"), [
    ("Support\ud83d", "\ude00id:a@b", "mailbox"),  # a surrogate pair split across the parts
    ("\udcff", "sha256:00", "\ud800"),  # lone surrogates, as surrogateescape'd headers carry
])
def test_a_key_hashes_the_parts_as_one_text_when_surrogates_meet_at_a_boundary(
        connector: str, reference: str, scope: str) -> None:
    """The router hashes the connector's part once and the rest per key (``ConnectorKeys``): the same bytes."""
    text = "\0".join(("enate-routing/1", connector, reference, scope))
    expected = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    keys = ConnectorKeys(connector)
    assert keys.key(reference, scope) == expected
    assert keys.key(reference, scope) == expected  # the connector's state is copied, never consumed


def test_idempotency_keys_never_change_between_releases() -> None:
    """A host stores keys: the same message must give the same key after an upgrade (a key pinned when made)."""
    assert idempotency_key("Support", "id:a@b.example", "mailbox") == "897b5d3769dcc5ef1dab0f4374b797a2"


@given(raw=st.binary(max_size=300))
def test_the_reference_of_a_message_without_id_is_hashlibs_digest(raw: bytes) -> None:
    assert message_reference(None, raw) == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_positional_make_builds_the_same_decision_as_the_constructor() -> None:
    target = Target(customer="Acme", contract="Main", service="IT", process="Incident", kind="ticket")
    delivery = Delivery(target=target, ticket_category="Standard", send_automated_emails=True)
    by_keyword = Decision(connector="Support", action="create", address="help@x.example", idempotency_key="k",
                          route="Invoices", fallback=True, delivery=delivery, acknowledge=("a@y.example",),
                          suppressed="rate limit", link="T-1", reason="because")
    made = Decision._make("Support", "create", "help@x.example", "k", "Invoices", True, delivery,
                          ("a@y.example",), "rate limit", "T-1", "because")
    assert made == by_keyword and repr(made) == repr(by_keyword) and hash(made) == hash(by_keyword)
    result = RoutingResult._make("Support", "id", (made,))
    assert result == RoutingResult("Support", "id", (by_keyword,))
    # _make builds through an unfrozen twin class; what it returns is the frozen class itself, and stays frozen.
    for built in (made, result):
        assert type(built) in (Decision, RoutingResult)
        with pytest.raises(FrozenInstanceError):
            built.connector = "Other"  # type: ignore[misc]
        with pytest.raises(FrozenInstanceError):
            del built.connector  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(built)) == built  # noqa: S301  # our own bytes
    assert replace(made, route="Other").route == "Other" and type(replace(made, route="Other")) is Decision


def test_the_keyword_constructor_builds_the_frozen_class_itself_and_subclasses_through_their_slots() -> None:
    """``direct_init``'s ``__init__`` builds an unfrozen twin and then takes the real class; a subclass (which
    may add slots) is set through each slot's descriptor. Both give exactly the fields asked for."""
    values = {field.name: f"v-{field.name}" for field in fields(Envelope)}

    class Extended(Envelope):
        __slots__ = ("extra",)

    for kind in (Envelope, Extended):
        built = kind(**values)
        assert type(built) is kind
        assert {name: getattr(built, name) for name in values} == values
        with pytest.raises(FrozenInstanceError):
            built.subject = "other"  # type: ignore[misc]
    assert Envelope(**values) == Envelope(**values) and Envelope(subject="s").sender is None


addresses = st.from_regex(r"[a-z0-9.+-]{1,12}@([a-z0-9-]{1,8}\.){0,6}[a-z]{2,4}", fullmatch=True)


@settings(max_examples=300)
@given(address=addresses)
def test_remembered_keys_equal_a_fresh_derivation(address: str) -> None:
    assert keys_of_address(address) == _derive_keys(address)
    assert keys_of_address(address) == _derive_keys(address)  # the second call may come from the table


def test_the_remembered_keys_stay_bounded_under_a_flood_of_addresses() -> None:
    for number in range(_REMEMBERED_ADDRESSES * 3):
        keys_of_address(f"user{number}@host{number}.example")
    assert len(_REMEMBERED_KEYS) <= _REMEMBERED_ADDRESSES
    deep = "x@" + ".".join(["a"] * 100) + ".example"  # 100 domain keys: derived every time, never kept
    assert len(keys_of_address(deep)) > _REMEMBER_KEYS_UP_TO and deep not in _REMEMBERED_KEYS
    overlong = "x" * 300 + "@example.org"  # past the octet bound
    assert keys_of_address(overlong) == (overlong,) and overlong not in _REMEMBERED_KEYS


@settings(max_examples=100)
@given(listed=st.lists(addresses, min_size=1, max_size=3), padding=st.integers(0, 2 * LONGEST_REMEMBERED_LIST))
def test_the_keys_of_a_long_recipient_list_are_the_same_and_not_remembered(listed: list[str], padding: int) -> None:
    """Past LONGEST_REMEMBERED_LIST addresses the keys are derived afresh, in the same order, and not kept: one
    message of thousands of recipients does not empty the table the mailbox and its customers are in."""
    padded = [*listed, *(f"pad{n}@list{n}.example" for n in range(padding))]
    _REMEMBERED_KEYS.clear()
    expected = tuple(dict.fromkeys(key for address in padded for key in _derive_keys(address)))
    assert address_keys(padded) == expected
    if len(padded) > LONGEST_REMEMBERED_LIST:
        assert not _REMEMBERED_KEYS
    else:
        assert set(_REMEMBERED_KEYS) == {a for a in padded if len(_derive_keys(a)) <= _REMEMBER_KEYS_UP_TO}


PATTERNS = [r"\[REF:(?P<ref>[A-Z]+-\d+)\]", r"#(\d+)", r"(?i)\[ref:(\d+)\]", r"^T-(\d+)", r"Ticket ([0-9]+)"]


def test_the_literal_prefix_is_what_every_match_starts_with() -> None:
    assert [link_search(re.compile(p)).prefix for p in PATTERNS] == ["[REF:", "#", "", "", "Ticket "]


@settings(max_examples=400)
@given(pattern=st.sampled_from(PATTERNS), head=texts, token=st.sampled_from(
    ["[REF:T-12]", "[REF:", "#7", "#", "[ref:42]", "T-9", "Ticket 5", "Ticket x", ""]), tail=texts,
    long=st.booleans())
def test_the_prefix_test_never_changes_a_search(pattern: str, head: str, token: str, tail: str, long: bool) -> None:
    """With or without the prefix shortcut, the same match (or none) — also across the subject cut."""
    compiled = re.compile(pattern)
    text = (head + token + tail) if not long else "x" * (LINK_SUBJECT_CHARS - len(token) // 2) + token + tail
    end = min(LINK_SUBJECT_CHARS, len(text))
    plain = _bounded(compiled).search(text, 0, end)
    if plain is not None and len(text) > LINK_SUBJECT_CHARS and plain.end() == end:
        plain = None
    found = link_search(compiled).search(text)
    assert (found and (found.span(), found.group(0))) == (plain and (plain.span(), plain.group(0)))


def test_normalised_addresses_are_remembered_only_at_deliverable_length() -> None:
    """A megabyte-long "address" is normalised like any other and then forgotten: the tables stay small."""
    forget_normalised()
    short, long_local = "Alice@Example.ORG", "A" * 100_000 + "@Example.ORG"
    assert normalize_address(short) == _normalize_address(short) == "alice@example.org"
    assert normalize_address(long_local) == _normalize_address(long_local) == "a" * 100_000 + "@example.org"
    assert normalize_domain("X." * 50_000 + "org") == _normalize_domain("X." * 50_000 + "org")
    assert _remembered_address.cache_info().currsize == 1
    assert _remembered_domain.cache_info().currsize == 1  # example.org, through the short address


def plain_words(text: str) -> tuple[str, ...]:
    """docs/semantics.md §3 written out character by character: the canonical caseless form of ``text``, cut
    at every character that is neither a letter or digit nor a combining mark (``_`` included)."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())
    words: list[str] = []
    current = ""
    for char in folded:
        if (char.isalnum() and char != "_") or unicodedata.category(char).startswith("M"):
            current += char
        elif current:
            words.append(current)
            current = ""
    return (*words, current) if current else tuple(words)


MARKED = st.text(st.sampled_from("ae iİ_-\u0301\u0308\u0307\u093f\u0939\u0e48\u0e14 ÉéÜ1²"), max_size=40)


@settings(max_examples=500)
@given(text=st.text(st.characters(max_codepoint=0x7F), max_size=120) | texts | MARKED)
def test_subject_words_equal_the_plain_definition(text: str) -> None:
    """docs/semantics.md §3: the maximal runs of letters, digits and combining marks, in canonical caseless
    form — the ASCII shortcut and the regex of marks included."""
    assert subject_words(text) == plain_words(text)


@pytest.mark.parametrize("padding", [0, 40], ids=["narrow", "wide"])
@settings(max_examples=200, deadline=None)
@given(data=st.data(), config=configs(max_routes=12))
def test_the_compiled_group_matcher_equals_the_loop(data: st.DataObject, config: Config, padding: int) -> None:
    """``RouteGroup.match`` (unrolled per group shape) picks what ``first_match`` (the plain loop) picks.

    ``padding`` disabled routes first move the generated routes past the first 30 bits: the wide shape.
    """
    routes = [compiled_route(route, priority) for priority, route in enumerate(config.routes, 1)]
    if routes:
        routes = [replace(routes[0], enabled=False)] * padding + routes
    group = compile_group(routes)
    tables = KeyTables(listed_keys([group]), ConfiguredCompanies(config.companies), 8)
    assert group.enabled == 0 or (group.enabled.bit_length() > 30) == (padding > 0)
    for _ in range(5):
        envelope = data.draw(envelopes(config))
        assert group.match(EmailFacts(envelope, tables)) is group.first_match(EmailFacts(envelope, tables))


def test_the_compiled_matcher_reads_postings_stored_as_positions() -> None:
    """A big group keeps a rare key's routes as positions (``_postings``); both paths still agree."""
    config = synthetic_config(2_000, seed=7, addresses=1)
    router = Router.compile(config)
    (group,) = router._connectors["Support"].groups.values()
    assert any(type(p) is tuple for index in group.indexes if index for p in index.values())
    tables = router._tables
    for envelope in synthetic_envelopes(config, 300, seed=7):
        assert group.match(EmailFacts(envelope, tables)) is group.first_match(EmailFacts(envelope, tables))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), config=configs(max_routes=12))
def test_keys_no_route_lists_are_dropped_without_changing_any_match(data: st.DataObject, config: Config) -> None:
    """An email gets no sender, company or recipient keys of a kind when none of them is listed by any route:
    each group then picks what it picks with every key (``first_match``, plain loop, unfiltered facts)."""
    router = Router.compile(config)
    tables = router._tables
    for _ in range(5):
        envelope = data.draw(envelopes(config))
        sender = envelope.sender
        every_key = EmailFacts(envelope, tables, keys_of_address(sender) if sender else (),
                               company_keys(sender, keys_of_address(sender), tables) if sender else ())
        every_key.cached[RECIPIENTS] = address_keys([r.address for r in envelope.recipients])
        for connector in router._connectors.values():
            for group in (*connector.groups.values(), connector.wildcard):
                if group is not None:
                    assert group.match(EmailFacts(envelope, tables)) is group.first_match(every_key)


def test_an_email_whose_keys_no_route_lists_probes_no_index() -> None:
    """A sender, company and mailbox address that no rule names cost no dict probe; one listed key keeps all."""
    config = synthetic_config(200, seed=5)
    router = Router.compile(config)
    stranger = Envelope(message_id="1@stranger.example", sender="someone@stranger.example",
                        recipients=(Recipient("support@corp.example", "to"),))
    counters = MatchCounters()
    decision = router.route(stranger, counters=counters).decisions[0]
    assert (counters.groups, counters.probes, decision.fallback) == (2, 0, True)  # its address's and the wildcard
    facts = EmailFacts(stranger, router._tables)
    assert [facts.keys(kind) for kind in (SENDERS, RECIPIENTS, COMPANIES)] == [(), (), ()]
    listed_domain = next(key for key in router._tables.listed[SENDERS] if key.startswith("*"))
    customer = replace(stranger, sender=f"someone@{listed_domain[1:]}")
    assert EmailFacts(customer, router._tables).keys(SENDERS) == (f"someone@{listed_domain[1:]}", listed_domain)


def test_the_remembered_senders_stay_bounded_and_equal_a_fresh_router() -> None:
    """A flood of new senders empties the table instead of growing it; over-long senders are not kept."""
    config = synthetic_config(50, seed=3)
    router, fresh = Router.compile(config), Router.compile(config)
    template = synthetic_envelopes(config, 1, seed=3)[0]
    for number in range(_REMEMBERED_SENDERS + 10):
        envelope = replace(template, sender=f"flood{number}@spam{number % 7}.example", message_id=f"{number}@x")
        router.route(envelope, "Support")
        assert len(router._senders) <= _REMEMBERED_SENDERS
    long_sender = "x" * 300 + "@spam.example"
    envelope = replace(template, sender=long_sender)
    assert router.route(envelope, "Support") == fresh.route(envelope, "Support")
    assert long_sender not in router._senders
    for envelope in synthetic_envelopes(config, 200, seed=4):  # remembered answers are the fresh ones
        assert router.route(envelope, "Support") == fresh.route(envelope, "Support")
        assert router.route(envelope, "Support") == fresh.route(envelope, "Support")


def test_a_mailbox_address_alone_takes_its_recipient_keys_from_the_compiled_table() -> None:
    """Mail to one of the system's own addresses alone reads its narrowed recipient keys from ``KeyTables``:
    the same keys a derivation gives, and the table is what is read (a wrong entry shows through)."""
    config = make_config(route("Cc support", rules={"recipients": ["*contoso.example"]}),
                         route("Other", BILLING, rules={"recipients": ["someone@fabrikam.example"]}))
    router = Router.compile(config)
    tables = router._tables
    assert set(tables.recipient_keys) == router._system_addresses >= {SUPPORT, HELP, BILLING, NOREPLY}
    for address in (SUPPORT, HELP, BILLING, "someone@fabrikam.example", "x@elsewhere.example"):
        derived = tables.listed_only(RECIPIENTS, keys_of_address(address))
        assert EmailFacts(mail(to=(address,)), tables).keys(RECIPIENTS) == derived
    assert tables.recipient_keys[HELP] == (HELP, "*contoso.example")
    tables.recipient_keys[HELP] = ("wrong",)
    assert EmailFacts(mail(to=(HELP,)), tables).keys(RECIPIENTS) == ("wrong",)
    assert EmailFacts(mail(to=(HELP, SUPPORT)), tables).keys(RECIPIENTS) == address_keys([HELP, SUPPORT])
