"""Routing keys are bounded: hostile addresses and file names cost linear memory and are never domain-matched."""

from __future__ import annotations

import tracemalloc

import pytest
from routing_helpers import HELP, eml, mail, make_config, route

from enate_routing._envelope import Envelope
from enate_routing._model import Config
from enate_routing._patterns import MAX_ADDRESS_OCTETS, MAX_FILE_NAME_CHARS
from enate_routing._router import Router
from enate_routing.testing import ReferenceRouter

PEAK_LIMIT = 4 * 1024 * 1024  # a few copies of a 60 KB header at most; the defect cost 1.77 GB


def hostile_config() -> Config:
    return make_config(
        route("By domain", rules={"senders": "*example.com"}),
        route("By company", rules={"sender_companies": "Example"}),
        route("By pdf", rules={"attachment_types": "pdf"}),
        companies={"Example": ["*example.com"]},
        blocked=[{"address": "*example.com", "action": "reject"}],
    )


def routed_with_peak(config: Config, envelope: Envelope) -> tuple[list[str | None], int]:
    router = Router.compile(config)
    tracemalloc.start()
    try:
        result = router.route(envelope)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result == ReferenceRouter(config).route(envelope)
    return [d.route for d in result.decisions], peak


def attachment_mail(file_name: str, sender: str = "ann@fabrikam.example") -> bytes:
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nHello.\r\n--b\r\nContent-Type: application/pdf\r\n"
            f'Content-Disposition: attachment; filename="{file_name}"\r\n\r\nJVBERi0=\r\n--b--\r\n')
    return eml({"From": sender, "To": HELP, "Subject": "Invoice", "Message-ID": "<m1@fabrikam.example>",
                "MIME-Version": "1.0", "Content-Type": 'multipart/mixed; boundary="b"'}, body)


@pytest.mark.parametrize("labels", [30_000, 120_000])
def test_a_from_address_with_thousands_of_labels_is_never_domain_matched(labels: int) -> None:
    """A From with 30,000 (or 120,000) labels routes to the fallback in little memory, as the reference says."""
    sender = "ann@" + "a." * labels + "example.com"
    raw = eml({"From": sender, "To": HELP, "Subject": "Hello", "Message-ID": "<m1@x.example>"})
    envelope = Envelope.from_bytes(raw)
    assert envelope.sender == sender
    routes, peak = routed_with_peak(hostile_config(), envelope)
    assert routes == ["General"]
    assert peak < PEAK_LIMIT


def test_an_attachment_name_with_thousands_of_dots_is_never_type_matched() -> None:
    """``"a." * 30000 + "pdf"`` is no pdf: the attachment rule does not hold and key derivation stays small."""
    name = "a." * 30_000 + "pdf"
    envelope = Envelope.from_bytes(attachment_mail(name))
    assert envelope.attachments == (name,)
    routes, peak = routed_with_peak(hostile_config(), envelope)
    assert routes == ["General"]
    assert peak < PEAK_LIMIT


def test_the_address_bound_is_254_octets() -> None:
    """An address of exactly 254 octets is domain-matched; one octet more is a defect no ``*domain`` matches."""
    config = make_config(route("By domain", rules={"senders": "*example.com"}))
    domain = "example.com"
    for length, expected in ((MAX_ADDRESS_OCTETS, "By domain"), (MAX_ADDRESS_OCTETS + 1, "General")):
        local = "a" * (length - len(domain) - 1 - 60)
        sender = f"{local}@{'b' * 59}.{domain}"
        assert len(sender) == length
        routes, _ = routed_with_peak(config, mail(sender))
        assert routes == [expected]


def test_the_file_name_bound_is_255_characters() -> None:
    """A 255-character ``….pdf`` is a pdf; a 256-character one is a defect no attachment type matches."""
    config = make_config(route("By pdf", rules={"attachment_types": "pdf"}))
    for length, expected in ((MAX_FILE_NAME_CHARS, "By pdf"), (MAX_FILE_NAME_CHARS + 1, "General")):
        name = "a" * (length - 4) + ".pdf"
        routes, _ = routed_with_peak(config, mail(attachments=(name,)))
        assert routes == [expected]


def test_exact_rules_still_match_an_overlong_address() -> None:
    """Only domain patterns ignore an overlong address: an exact sender entry names it and still holds."""
    sender = "ann@" + "a." * 200 + "example.com"
    config = make_config(route("Exact", rules={"senders": sender}),
                         route("By domain", rules={"senders": "*example.com"}))
    routes, _ = routed_with_peak(config, mail(sender))
    assert routes == ["Exact"]


def test_multi_label_extensions_still_match_after_bounding() -> None:
    """Bounding suffixes by the longest configured extension keeps ``tar.gz`` and ``gz`` matching."""
    config = make_config(route("Archive", rules={"attachment_types": "tar.gz"}),
                         route("Gzip", rules={"attachment_types": "gz"}))
    assert routed_with_peak(config, mail(attachments=("backup.TAR.GZ",)))[0] == ["Archive"]
    assert routed_with_peak(config, mail(attachments=("x.gz",)))[0] == ["Gzip"]
    assert routed_with_peak(config, mail(attachments=("x.tgz",)))[0] == ["General"]


@pytest.mark.parametrize(("subject", "expected"), [
    ("the server down now", "server down now"),    # the longest phrase is the first route: all three are found
    ("server down", "server down"),
    ("down now please", "down now"),
    ("server server down now", "server down now"),  # a phrase starting at the second 'server'
    ("server now down", "General"),
])
def test_overlapping_keyword_phrases_route_as_the_reference_does(subject: str, expected: str) -> None:
    config = make_config(*(route(phrase, rules={"subject_keywords": phrase})
                           for phrase in ("server down now", "server down", "down now")))
    envelope = mail(subject=subject)
    routes = [d.route for d in Router.compile(config).route(envelope, "Support").decisions]
    assert routes == [expected] == [d.route for d in ReferenceRouter(config).route(envelope, "Support").decisions]


def test_a_repeated_first_word_of_many_phrases_is_one_probe_per_word() -> None:
    """2,000 phrases share the first word 'urgent', and the subject is that word 5,000 times: each repetition
    looks up the next word once in the phrase trie (the phrases filed under 'urgent' were each compared at
    every repetition: 10 million comparisons). Counted, not timed."""
    config = make_config(*(route(f"r{i}", rules={"subject_keywords": f"urgent w{i}x"}) for i in range(2000)))
    router = Router.compile(config)
    probes = 0
    node = router._tables.multi["urgent"]
    original = node.next

    class Counting(dict[str, object]):
        def get(self, key: str, default: object = None) -> object:
            nonlocal probes
            probes += 1
            return original.get(key, default)

    node.next = Counting(original)  # type: ignore[assignment]
    envelope = mail(subject="urgent " * 5000 + "urgent w7x")
    assert [d.route for d in router.route(envelope, "Support").decisions] == ["r7"]
    assert probes == 5001
