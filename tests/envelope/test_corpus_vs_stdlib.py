"""On every corpus message, the envelope's facts are never worse than the standard library's full parse.

Sender, subject, Message-ID, To, Cc and attachment names are compared field by field with
``BytesParser(policy=policy.default)`` (bench_envelope.stdlib_facts). Every disagreement must be listed
below with the reason the envelope's answer is the better (or the deliberate) one; the test prints and
fails on any other, and on a listed one that has gone away.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench_envelope import envelope_facts, stdlib_facts
from corpus_files import CORPUS, corpus_messages
from enate_routing._envelope import Envelope

# relative path → {fact: why our answer differs and is no worse}
ALLOWED: dict[str, dict[str, str]] = {
    "mikel-mail/attachment_emails/attachment_with_base64_encoded_name.eml": {
        "attachments": "an unquoted RFC 2047 name; mail readers show it decoded, policy.default finds none"},
    "mikel-mail/attachment_emails/attachment_with_unquoted_name.eml": {
        "attachments": "name=This is a test.txt unquoted: compat32 keeps the whole value, policy.default cuts it"},
    "mikel-mail/error_emails/invalid_subject_characters.eml": {
        "subject": "raw 8-bit latin-1 subject read as latin-1; policy.default gives replacement characters"},
    "mikel-mail/mime_emails/raw_email_with_binary_encoded.eml": {
        "attachments": "the part's file name is read; policy.default's parse of the binary part loses it"},
    "mikel-mail/plain_emails/raw_email_double_at_in_header.eml": {
        "message_id": "the id between the angle brackets is kept whole; policy.default cuts it at the second '@'"},
    "mikel-mail/plain_emails/raw_email_incorrect_header.eml": {
        "message_id": "a junk line before the header block is skipped (issue 15); policy.default reads no headers",
        "sender": "same", "subject": "same", "to": "same"},
    "mikel-mail/plain_emails/raw_email_multiple_from.eml": {
        "to": "'a@x b@y' is read as the two addresses it lists; policy.default keeps only the first"},
    "mikel-mail/plain_emails/raw_email_with_at_display_name.eml": {
        "sender": "a From list of two mailboxes gives its first (RFC 5322 §3.6.2); policy.default gives none",
        "to": "policy.default drops an address that follows a display name holding '@'"},
    "mikel-mail/rfc2822/example13.eml": {
        "sender": "obsolete syntax (RFC 5322 §4.4: white space and comments inside the address) is read"},
    "mikel-mail/rfc6532/utf8_headers.eml": {
        "sender": "RFC 6532 UTF-8 addresses are read (IDNA domain); policy.default rejects them",
        "to": "same"},
    "mime4j/mimetools-testmsgs/multi-2evil.msg": {
        "attachments": "backslashes kept (compat32 unquoting, Windows paths) and encoded words decoded"},
    "mime4j/mimetools-testmsgs/russian.msg": {
        "attachments": "filename==?koi8-r?B?...?= (unquoted encoded word) decoded, as mime4j and mail readers do"},
    "mime4j/testmsgs/russian-headers.msg": {"attachments": "same as russian.msg"},
    "mime4j/testmsgs/malformedHeader-nocrlfcrlf.msg": {
        "subject": "a line without leading white space between two fields is joined as a broken fold (issue 15)"},
    "mime4j/testmsgs/malformedHeaderStartsBody-nocrlfcrlf.msg": {"subject": "same message as above"},
    "mime4j/testmsgs/obsolete.msg": {
        "subject": "'Subject :' with white space before the colon (RFC 5322 §4.5.3) is a field"},
}


def disagreements(path: Path) -> dict[str, tuple[Any, Any]]:
    """The facts on which the envelope and the standard library's full parse differ: (ours, theirs)."""
    raw = path.read_bytes()
    ours = envelope_facts(Envelope.from_bytes(raw))
    theirs = stdlib_facts(raw)
    return {key: (ours[key], theirs[key]) for key in ours if ours[key] != theirs[key]}


MESSAGES = corpus_messages()


@pytest.mark.parametrize("path", MESSAGES, ids=[str(p.relative_to(CORPUS)) for p in MESSAGES])
def test_facts_never_worse_than_the_standard_library(path: Path) -> None:
    """Every difference from the stdlib's full parse is a documented one."""
    name = str(path.relative_to(CORPUS))
    found = disagreements(path)
    allowed = ALLOWED.get(name, {})
    undocumented = {key: value for key, value in found.items() if key not in allowed}
    assert undocumented == {}, f"{name}: undocumented disagreements (ours, stdlib): {undocumented}"
    gone = set(allowed) - set(found)
    assert not gone, f"{name}: documented disagreements that no longer occur: {gone}"


def test_every_documented_message_exists() -> None:
    """The table names corpus messages that exist."""
    names = {str(p.relative_to(CORPUS)) for p in MESSAGES}
    assert set(ALLOWED) <= names
