"""Each routing rule of docs/semantics.md §3, with its traps, through the compiled and the reference router."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from routing_helpers import HELP, eml, mail, make_config, route

from enate_routing._envelope import Envelope
from enate_routing._model import Config
from enate_routing._router import Router
from enate_routing.testing import DictCompanies, ReferenceRouter

ROUTERS: dict[str, Callable[..., Any]] = {"compiled": Router.compile, "reference": ReferenceRouter}


@pytest.fixture(params=sorted(ROUTERS))
def chosen(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ROUTERS[request.param]


def first_route(build: Callable[..., Any], config: Config, envelope: Envelope, **kwargs: Any) -> str | None:
    decisions = build(config, **kwargs).route(envelope).decisions
    return None if decisions[0].fallback else decisions[0].route


def only(rules: dict[str, Any], **fields: Any) -> Config:
    return make_config(route("R", rules=rules, **fields))


@pytest.mark.parametrize(("pattern", "sender", "held"), [
    ("*example.com", "a@example.com", True),
    ("*example.com", "a@eu.example.com", True),
    ("*@example.com", "a@deep.eu.example.com", True),
    ("*.example.com", "a@example.com", True),
    ("*example.com", "a@badexample.com", False),
    ("*example.com", "a@example.com.evil.test", False),
    ("cfo@fabrikam.example", "cfo@fabrikam.example", True),
    ("CFO@Fabrikam.EXAMPLE", "cfo@fabrikam.example", True),
    ("cfo@fabrikam.example", "cfo@eu.fabrikam.example", False),
    ("*bücher.example", "a@xn--bcher-kva.example", True),
])
def test_senders(chosen: Callable[..., Any], pattern: str, sender: str, held: bool) -> None:
    """A full address matches exactly; *domain matches the domain and subdomains on label boundaries, IDNA."""
    config = only({"senders": pattern})
    assert (first_route(chosen, config, mail(sender)) == "R") is held


def test_sender_matching_on_parsed_mail_is_case_insensitive_and_idna(chosen: Callable[..., Any]) -> None:
    """From: headers in upper case or with a Unicode domain match the normalised patterns."""
    config = only({"senders": "*bücher.example; CFO@FABRIKAM.example"})
    for sender in ("Ann <ANN@BÜCHER.example>", "CFO@Fabrikam.Example"):
        envelope = Envelope.from_bytes(eml({"From": sender, "To": HELP, "Subject": "x", "Message-ID": "<a@b>"}))
        assert first_route(chosen, config, envelope) == "R", sender


@pytest.mark.parametrize(("keyword", "subject", "held"), [
    ("reset", "Password-reset please", True),
    ("reset", "resetting my password", False),
    ("reset", "RESET", True),
    ("password reset", "Password-Reset please", True),
    ("password reset", "password, reset", True),
    ("password reset", "reset password", False),
    ("password reset", "password  resetting", False),
    ("reset", "password_reset", True),
    ("snake_case", "snake case", True),
    ("straße", "STRASSE closed", True),
    ("Über", "über uns", True),
    ("q3", "Q3 report", True),
    ("q", "Q3 report", False),
])
def test_subject_keywords_are_whole_words(chosen: Callable[..., Any], keyword: str, subject: str, held: bool) -> None:
    """Keywords match whole words, case-folded; phrases match consecutive words whatever separates them."""
    config = only({"subject_keywords": [keyword]})
    assert (first_route(chosen, config, mail(subject=subject)) == "R") is held


def test_keyword_list_is_alternatives(chosen: Callable[..., Any]) -> None:
    """Items of one rule are alternatives (OR): any one keyword is enough."""
    config = only({"subject_keywords": "urgent; outage"})
    assert first_route(chosen, config, mail(subject="Big outage")) == "R"
    assert first_route(chosen, config, mail(subject="Nothing")) is None


def test_encoded_subject_is_decoded_before_matching(chosen: Callable[..., Any]) -> None:
    """An RFC 2047 encoded subject matches on its decoded words."""
    config = only({"subject_keywords": "zurücksetzen"})
    raw = eml({"From": "ann@fabrikam.example", "To": HELP, "Message-ID": "<e@x>",
               "Subject": "=?utf-8?q?Passwort_zur=C3=BCcksetzen?="})
    assert first_route(chosen, config, Envelope.from_bytes(raw)) == "R"


@pytest.mark.parametrize(("extensions", "names", "held"), [
    (".pdf", ("Invoice.PDF",), True),
    ("pdf", ("invoice.pdf",), True),
    ("pdf", ("notpdf",), False),
    ("pdf", ("pdf",), False),
    ("pdf", ("x.pdf.exe",), False),
    (".tar.gz", ("backup.tar.gz",), True),
    ("gz", ("backup.tar.gz",), True),
    ("tar.gz", ("backup.gz",), False),
    ("tar.gz", ("mytar.gz",), False),
    ("xlsx; pdf", ("a.doc", "b.XLSX"), True),
])
def test_attachment_types(chosen: Callable[..., Any], extensions: str, names: tuple[str, ...], held: bool) -> None:
    """An attachment's name ends with an extension on a '.' boundary; `.pdf` and `pdf` are the same."""
    config = only({"attachment_types": extensions})
    assert (first_route(chosen, config, mail(attachments=names)) == "R") is held


def test_recipients_rule_sees_cc_and_delivered_to(chosen: Callable[..., Any]) -> None:
    """The recipients rule looks at every recipient: To, Cc, Delivered-To, X-Original-To, envelope."""
    config = only({"recipients": "*partner.example"})
    assert first_route(chosen, config, mail(cc=("x@partner.example",))) == "R"
    assert first_route(chosen, config, mail(delivered_to=("x@eu.partner.example",))) == "R"
    assert first_route(chosen, config, mail(cc=("x@notpartner.example",))) is None


def test_important(chosen: Callable[..., Any]) -> None:
    """important = true holds only for mail flagged important; important = false sets no condition."""
    assert first_route(chosen, only({"important": True}), mail(important=True)) == "R"
    assert first_route(chosen, only({"important": True}), mail(important=False)) is None
    assert first_route(chosen, only({"important": False}), mail(important=False)) == "R"


def test_important_from_headers(chosen: Callable[..., Any]) -> None:
    """X-Priority 1 parsed by Envelope.from_bytes makes the important rule hold."""
    raw = eml({"From": "ann@fabrikam.example", "To": HELP, "Subject": "x", "X-Priority": "1 (Highest)"})
    assert first_route(chosen, only({"important": True}), Envelope.from_bytes(raw)) == "R"


COMPANIES = {"Fabrikam": ["*fabrikam.example"], "Fabrikam Europe": ["*eu.fabrikam.example"],
             "Contractors": ["boss@eu.fabrikam.example"]}


@pytest.mark.parametrize(("sender", "company"), [
    ("a@fabrikam.example", "Fabrikam"),
    ("a@eu.fabrikam.example", "Fabrikam Europe"),
    ("a@x.eu.fabrikam.example", "Fabrikam Europe"),
    ("boss@eu.fabrikam.example", "Contractors"),
    ("a@badfabrikam.example", None),
])
def test_sender_companies_exact_beats_domain_and_specific_domain_wins(
        chosen: Callable[..., Any], sender: str, company: str | None) -> None:
    """docs/semantics.md §3.3: an exact address entry beats a domain entry; the most specific domain wins."""
    routes = [route(f"for {name}", rules={"sender_companies": name.upper()}) for name in COMPANIES]
    config = make_config(*routes, companies=COMPANIES)
    expected = None if company is None else f"for {company}"
    assert first_route(chosen, config, mail(sender)) == expected


def test_host_company_directory_replaces_the_configured_one(chosen: Callable[..., Any]) -> None:
    """A directory passed to compile() is asked instead of [companies]."""
    config = make_config(route("R", rules={"sender_companies": "Northwind"}), companies=COMPANIES)
    directory = DictCompanies({"*fabrikam.example": "Northwind"})
    assert first_route(chosen, config, mail("a@fabrikam.example"), companies=directory) == "R"
    assert first_route(chosen, config, mail("a@fabrikam.example")) is None


def test_a_host_directory_is_asked_per_email_so_its_changes_count(chosen: Callable[..., Any]) -> None:
    """The router remembers senders, but not a host directory's answers: the host may reassign a sender."""
    config = make_config(route("R", rules={"sender_companies": "Northwind"}))
    directory = DictCompanies({})
    router = chosen(config, companies=directory)
    decisions = router.route(mail("a@fabrikam.example")).decisions
    assert decisions[0].fallback
    directory.domains["fabrikam.example"] = "Northwind"
    assert router.route(mail("a@fabrikam.example")).decisions[0].route == "R"


def test_all_rules_must_hold(chosen: Callable[..., Any]) -> None:
    """Every rule that is set must hold (AND)."""
    config = only({"senders": "*fabrikam.example", "subject_keywords": "invoice", "attachment_types": "pdf"})
    assert first_route(chosen, config, mail(subject="Invoice", attachments=("a.pdf",))) == "R"
    assert first_route(chosen, config, mail(subject="Invoice", attachments=("a.doc",))) is None
    assert first_route(chosen, config, mail("a@other.example", subject="Invoice", attachments=("a.pdf",))) is None


def test_first_route_in_priority_order_wins(chosen: Callable[..., Any]) -> None:
    """Of several routes that hold, the first in the file wins; a failing first route falls through."""
    config = make_config(route("Specific", rules={"senders": "cfo@fabrikam.example"}),
                         route("Domain", rules={"senders": "*fabrikam.example"}),
                         route("Anything"))
    assert first_route(chosen, config, mail("cfo@fabrikam.example")) == "Specific"
    assert first_route(chosen, config, mail("ann@fabrikam.example")) == "Domain"
    assert first_route(chosen, config, mail("ann@other.example")) == "Anything"
