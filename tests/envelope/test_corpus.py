"""Real mail from tests/corpus: every message parses; mime4j's expectations and our golden files agree.

Golden files in ``golden/`` hold only the corpus-relative path and the expected facts (imap_tools' habit: one
loop test over a folder of expectations).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from email import policy
from email.message import EmailMessage
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest

from corpus_files import CORPUS, corpus_messages
from enate_routing._envelope import Envelope
from enate_routing._patterns import normalize_address

GOLDEN = Path(__file__).parent / "golden"
MESSAGE_TYPES = ("message/rfc822", "message/global")


# mime4j ships these two expectation files broken (not well-formed XML); their messages are still parsed by
# test_every_corpus_message_parses, and test_broken_mime4j_expectations_are_really_broken keeps this list honest.
BROKEN_MIME4J_EXPECTATIONS = {"2002_06_12_doublebound.xml", "twopart.xml"}


def mime4j_messages() -> list[Path]:
    return [
        p for p in corpus_messages()
        if p.suffix == ".msg" and p.with_suffix(".xml").is_file()
        and p.with_suffix(".xml").name not in BROKEN_MIME4J_EXPECTATIONS
    ]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(CORPUS)) for p in paths]


def envelope_facts(envelope: Envelope) -> dict[str, Any]:
    """Every fact of an envelope as JSON-friendly data (what golden files store), plus derived answers."""
    return {
        "message_id": envelope.message_id,
        "sender": envelope.sender,
        "sender_name": envelope.sender_name,
        "recipients": [[r.address, r.source] for r in envelope.recipients],
        "subject": envelope.subject,
        "attachments": list(envelope.attachments),
        "important": envelope.important,
        "in_reply_to": list(envelope.in_reply_to),
        "references": list(envelope.references),
        "auto_submitted": envelope.auto_submitted,
        "precedence": envelope.precedence,
        "x_autoreply": envelope.x_autoreply,
        "x_auto_response_suppress": envelope.x_auto_response_suppress,
        "list_id": envelope.list_id,
        "return_path": envelope.return_path,
        "x_loop": list(envelope.x_loop),
        "is_delivery_report": envelope.is_delivery_report,
        "size": envelope.size,
        "defects": list(envelope.defects),
        "quarantine_reason": envelope.quarantine_reason,
        "automatic_reason": envelope.automatic_reason,
        "plain_text_start": envelope.plain_text()[:60],
    }


def test_the_corpus_is_in_the_repository() -> None:
    """A fresh clone tests everything: the corpus is there, with its licence notices."""
    assert len(corpus_messages()) >= 180
    assert {p.name for p in CORPUS.rglob("*LICENSE*")} >= {"LICENSE.apache-2.0.txt", "MIT-LICENSE.txt"}


@pytest.mark.parametrize("path", corpus_messages(), ids=_ids(corpus_messages()))
def test_every_corpus_message_parses(path: Path) -> None:
    """Every corpus message (broken ones included) gives an envelope: no exception, no quarantine."""
    raw = path.read_bytes()
    envelope = Envelope.from_bytes(raw)
    assert envelope.raw == raw
    assert envelope.quarantine_reason is None
    assert not any(defect.startswith("parser error") for defect in envelope.defects)
    assert isinstance(envelope.plain_text(), str)


# --- mime4j: expected header fields and MIME structure from its .xml files ------------------------------


def _fields(entity: ET.Element) -> list[tuple[str, str]]:
    """The (name, value) header fields of a mime4j <message> or <body-part>, as written (folded)."""
    header = entity.find("header")
    fields = []
    for element in header.findall("field") if header is not None else []:
        name, _, value = (element.text or "").lstrip("\r\n").partition(":")
        fields.append((name.strip().lower(), value))
    return fields


def _header(fields: list[tuple[str, str]], name: str) -> str | None:
    """The first ``name`` field decoded by the standard library's policy.default header classes."""
    for key, value in fields:
        if key == name:
            return str(policy.default.header_factory(name, "".join(value.lstrip(" \t").splitlines())))
    return None


def _addresses(fields: list[tuple[str, str]], name: str) -> list[str]:
    result: list[str] = []
    for key, value in fields:
        if key == name:
            header = policy.default.header_factory(name, "".join(value.lstrip(" \t").splitlines()))
            for address in getattr(header, "addresses", ()):
                normal = normalize_address(address.addr_spec)
                if normal is not None and normal not in result:
                    result.append(normal)
    return result


def _part_message(fields: list[tuple[str, str]], default_type: str) -> EmailMessage:
    text = "".join(f"{name}:{value}\n" for name, value in fields) + "\n"
    message = HeaderParser(policy=policy.default).parsestr(text)
    assert isinstance(message, EmailMessage)
    message.set_default_type(default_type)
    return message


def _expected_attachments(entity: ET.Element, default_type: str, names: list[str]) -> None:
    """docs/semantics.md §3 attachments from mime4j's parsed structure and the stdlib's parameter decoding."""
    part = _part_message(_fields(entity), default_type)
    multipart = entity.find("multipart")
    if multipart is not None:
        child_default = "message/rfc822" if part.get_content_type() == "multipart/digest" else "text/plain"
        for body_part in multipart.findall("body-part"):
            _expected_attachments(body_part, child_default, names)
    elif part.get_content_type() in MESSAGE_TYPES:
        names.append(part.get_filename() or "")
    elif name := part.get_filename():
        names.append(name)


def mime4j_expected(path: Path) -> dict[str, Any]:
    """Subject, sender, To, Message-ID and attachments as mime4j's .xml expresses them."""
    root = ET.parse(path.with_suffix(".xml")).getroot()  # noqa: S314 — trusted test data from the corpus
    fields = _fields(root)
    senders = _addresses(fields, "from")
    message_id = _header(fields, "message-id")
    names: list[str] = []
    _expected_attachments(root, "text/plain", names)
    return {
        "subject": _header(fields, "subject") or "",
        "sender": senders[0] if len(senders) == 1 else None,
        "to": _addresses(fields, "to"),
        "message_id": message_id.strip().strip("<>") or None if message_id is not None else None,
        "attachments": names,
    }


# Where the envelope deliberately differs from the stdlib's reading of mime4j's fields, and why.
MIME4J_DIFFERENCES: dict[str, set[str]] = {
    # filename="/evil/because:of\path\3d-=?ISO-8859-1?Q?=63?=om...": policy.default drops the backslashes
    # (RFC 5322 quoted-pair) and leaves the encoded words; compat32's unquoting keeps backslashes (Windows
    # paths arrive unescaped) and we decode the words, as mail readers do. The extension is the same.
    "multi-2evil.msg": {"attachments"},
    # filename==?koi8-r?B?89DJ08/LLmRvYw==?= (an unquoted encoded word): policy.default finds no file name;
    # mime4j and mail readers show "Список.doc", and so do we.
    "russian.msg": {"attachments"},
    "russian-headers.msg": {"attachments"},
    # "This is an invalid header" between Subject and another field: mime4j drops the line; we read it as
    # a fold that lost its leading white space and join it to the Subject (issue 15, real-world recovery).
    "malformedHeader-nocrlfcrlf.msg": {"subject"},
    # The same message read in mime4j's "malformed header starts the body" mode; mime4j's two modes disagree.
    "malformedHeaderStartsBody-nocrlfcrlf.msg": {"subject"},
}


@pytest.mark.parametrize("name", sorted(BROKEN_MIME4J_EXPECTATIONS))
def test_broken_mime4j_expectations_are_really_broken(name: str) -> None:
    """The expectation files left out of the comparison are indeed not well-formed XML."""
    (path,) = CORPUS.rglob(name)
    with pytest.raises(ET.ParseError):
        ET.parse(path)  # noqa: S314 — trusted test data from the corpus


@pytest.mark.parametrize("path", mime4j_messages(), ids=_ids(mime4j_messages()))
def test_mime4j_header_facts(path: Path) -> None:
    """Subject, From, To, Message-ID and attachment names agree with mime4j's expected .xml."""
    envelope = Envelope.from_bytes(path.read_bytes())
    actual = {
        "subject": envelope.subject,
        "sender": envelope.sender,
        "to": [r.address for r in envelope.recipients if r.source == "to"],
        "message_id": envelope.message_id,
        "attachments": list(envelope.attachments),
    }
    expected = mime4j_expected(path)
    for key in MIME4J_DIFFERENCES.get(path.name, set()):
        del actual[key], expected[key]
    assert actual == expected


# --- golden files -----------------------------------------------------------------------------------


def golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("*.json"))


@pytest.mark.parametrize("golden", golden_files(), ids=[p.stem for p in golden_files()])
def test_golden(golden: Path) -> None:
    """The envelope of each chosen corpus message equals its reviewed golden expectation."""
    data = json.loads(golden.read_text(encoding="utf-8"))
    raw = (CORPUS / data["path"]).read_bytes()
    assert envelope_facts(Envelope.from_bytes(raw, envelope_recipients=data.get("envelope_recipients", ()))) == (
        data["expected"]
    )
