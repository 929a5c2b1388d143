"""`check` catches settings that validate but can never work or never match, each located (semantics.md §5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from enate_routing._cli import main
from enate_routing._dead_settings import find_dead_settings
from enate_routing._loading import parse_config

BASE = '''
[[connectors]]
name = "Support"
service = "other"
username = "support@acme.example"
{secret}
primary_address = "support@acme.example"
use_for = "{use_for}"
{extra}
incoming = {{ protocol = "imap", host = "mail.acme.example", port = {port}, security = "{security}" }}
{outgoing}

[[routes]]
connector = "Support"
name = "Urgent"
address = "support@acme.example"
target = {{ customer = "Acme", contract = "Internal", service = "IT", process = "Incident", kind = "ticket" }}
rules = {{ {rules} }}

[[fallbacks]]
connector = "Support"
address = "support@acme.example"
target = {{ customer = "Acme", contract = "Internal", service = "IT", process = "General", kind = "ticket" }}
{companies}
'''
SMTP = 'outgoing = { host = "mail.acme.example", port = 587, security = "starttls", auth = "username-password" }'


PASSWORD_REFERENCE = 'password_env = "SUPPORT_PW"'


def config_text(*, secret: str = PASSWORD_REFERENCE, use_for: str = "incoming", extra: str = "",
                security: str = "ssl", port: int = 993, outgoing: str = "", rules: str = 'senders = "*globex.example"',
                companies: str = "") -> str:
    return BASE.format(secret=secret, use_for=use_for, extra=extra, security=security, port=port,
                       outgoing=outgoing, rules=rules, companies=companies)


def check(capsys: pytest.CaptureFixture[str], path: Path, *options: str) -> tuple[int, list[str]]:
    code = main(["check", str(path), *options])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out.splitlines()


def check_json(capsys: pytest.CaptureFixture[str], path: Path, *options: str) -> tuple[int, dict[str, Any]]:
    code = main(["check", str(path), "--format", "json", *options])
    out = capsys.readouterr().out
    (line,) = out.splitlines()
    return code, json.loads(line)


def test_clean_file_is_ok_with_plural_forms(write_config: Callable[[str], Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A file with nothing dead is OK; counts use the singular for one ("1 connector")."""
    path = write_config(config_text())
    code, lines = check(capsys, path, "--strict")
    assert code == 0
    assert lines == [f"{path}: OK — 1 connector, 2 incoming routes, 0 outgoing routes"]


def test_positional_file_and_config_option_agree(write_config: Callable[[str], Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`check FILE` and `check --config FILE` are the same; two different files are refused without a traceback."""
    path = write_config(config_text())
    assert main(["check", "--config", str(path)]) == 0
    assert main(["check", str(path), "--config", str(path.with_name("other.toml"))]) == 1
    assert "two files named" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (config_text(secret=""),
         "error: {path}: connector 'Support': password: the incoming server logs in with username and password, "
         "but no password is given (password or password_env); every login would fail"),
        (config_text(secret="", use_for="both", outgoing=SMTP),
         "error: {path}: connector 'Support': password: the incoming and outgoing server logs in"),
        (config_text(security="none", port=143),
         "error: {path}: connector 'Support': incoming.security: a password is never sent over an unencrypted "
         "connection"),
        (config_text(rules='attachment_types = "*"'),
         "error: {path}: route 'Urgent' of connector 'Support': rules.attachment_types: attachment types are "
         "compared as written, so a wildcard never matches a file name"),
        (config_text(rules='subject_keywords = "*"'),
         "error: {path}: route 'Urgent' of connector 'Support': rules.subject_keywords: keywords are whole words "
         "and this one has no letter or digit, so it never matches"),
        (config_text(use_for="both", outgoing=SMTP.replace('security = "starttls", auth = "username-password"',
                                                            'security = "none", auth = "oauth2"')),
         "error: {path}: connector 'Support': outgoing.security: an OAuth token is never sent over an unencrypted"),
    ],
    ids=["no-password", "no-password-both", "secret-in-clear", "attachment-wildcard", "keyword-wildcard",
         "token-in-clear"],
)
def test_settings_that_can_never_work_are_errors(
    write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    """Each dead setting is a located error line and exit 1, even without --strict."""
    path = write_config(text)
    code, lines = check(capsys, path)
    assert code == 1
    assert lines[0].startswith(expected.format(path=path)), lines[0]
    assert lines[-1].startswith(f"{path}: FAILED — ") and lines[-1].endswith(", 1 error")


def test_plaintext_password_allowed_explicitly_is_not_reported(write_config: Callable[[str], Path],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """security = none with allow_plaintext_auth = true is a deliberate choice on a trusted network."""
    path = write_config(config_text(security="none", port=143, extra="allow_plaintext_auth = true"))
    assert check(capsys, path, "--strict")[0] == 0


def test_warnings_fail_only_with_strict(write_config: Callable[[str], Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown company and a wildcard inside a keyword may be deliberate: warnings, exit 1 only with --strict."""
    text = config_text(rules='sender_companies = "Globex; Initech", subject_keywords = "urgent*"',
                       companies='[companies]\nGlobex = "*globex.example"')
    path = write_config(text)
    code, lines = check(capsys, path)
    assert code == 0
    assert lines[:2] == [
        f"warning: {path}: route 'Urgent' of connector 'Support': rules.subject_keywords: a wildcard is not a "
        "word: this keyword matches the whole word 'urgent' only, not words starting with it: 'urgent*'",
        f"warning: {path}: route 'Urgent' of connector 'Support': rules.sender_companies: no [companies] entry "
        "has this name; the rule holds only if the host's own company directory knows it: 'Initech'",
    ]
    assert lines[-1].endswith("OK — 1 connector, 2 incoming routes, 0 outgoing routes, 2 warnings")
    code, lines = check(capsys, path, "--strict")
    # The verdict agrees with the exit code (and with --format json's "ok"): not "OK" when --strict fails.
    assert code == 1
    assert lines[-1] == f"{path}: FAILED — 1 connector, 2 incoming routes, 0 outgoing routes, 2 warnings (--strict)"


def test_empty_file_is_an_error(write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """An empty configuration file loads (it is valid TOML) but routes nothing: check fails."""
    path = write_config("")
    code, lines = check(capsys, path)
    assert code == 1 and lines[0] == f"error: {path}: the configuration has no connectors: it reads and routes no mail"


def test_password_env_value_over_50_characters(write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A password read from the environment is held to the same 50 characters; the value is never shown."""
    path = write_config(config_text())
    monkeypatch.setenv("SUPPORT_PW", "x" * 50)
    assert check(capsys, path, "--strict")[0] == 0
    monkeypatch.setenv("SUPPORT_PW", "s3cret" * 10)
    code, lines = check(capsys, path)
    assert code == 1
    assert lines[0] == (f"error: {path}: connector 'Support': password_env: the value of this environment variable "
                        "is 60 characters; a password has at most 50: 'SUPPORT_PW'")
    assert not any("s3cret" in line for line in lines)


def test_json_report(write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """check --format json: one object with counts, located errors and warnings, each with a stable code."""
    path = write_config(config_text(secret="", rules='sender_companies = "Initech"'))
    code, report = check_json(capsys, path)
    assert code == 1
    assert report["format"] == 1 and report["valid"] is True and report["ok"] is False
    assert report["counts"] == {"connectors": 1, "incoming_routes": 2, "outgoing_routes": 0}
    assert [(e["code"], e["where"], e["field"]) for e in report["errors"]] == [
        ("password-missing", "connector 'Support'", "password")]
    assert [(w["code"], w["item"]) for w in report["warnings"]] == [("company-unknown", "Initech")]
    assert report["errors"][0]["file"] == str(path)


def test_json_report_of_an_invalid_file(write_config: Callable[[str], Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A file that does not load is still one JSON object (valid false, code invalid), exit 1."""
    path = write_config(config_text(port=0))
    code, report = check_json(capsys, path)
    assert code == 1 and report["valid"] is False and report["counts"] is None
    assert report["errors"][0]["code"] == "invalid" and report["errors"][0]["field"] == "incoming.port"


def test_certificate_without_tls_is_an_error() -> None:
    """A client certificate is only ever presented over TLS: security none can never connect."""
    import tomllib

    text = config_text(use_for="both", extra='certificate = "relay.pfx"\ncertificate_password_env = "PFX_PW"',
                       outgoing=SMTP.replace('security = "starttls", auth = "username-password"',
                                             'security = "none", auth = "certificate"'))
    findings = find_dead_settings(parse_config(tomllib.loads(text)), environ={})
    assert [(f.severity, f.code, f.issue.field) for f in findings] == [
        ("error", "secret-in-clear", "outgoing.security")]


def test_unused_additional_mailbox_settings_are_warnings() -> None:
    """additional_access without a mailbox, or a mailbox on a connector that reads none, is never used."""
    import tomllib

    data = tomllib.loads(config_text(extra='additional_access = "delegate"'))
    findings = find_dead_settings(parse_config(data), environ={})
    assert [(f.severity, f.code, f.issue.field) for f in findings] == [
        ("warning", "additional-unused", "additional_access")]


def test_a_custom_pattern_without_a_token_to_write_is_a_warning() -> None:
    """Acknowledgements write the reference a reply links by; a custom pattern without subject_token leaves them
    none (docs/configuration.md ``token-not-written``). With subject_token, or without acknowledgements, no warning."""
    import tomllib

    acknowledging = 'send_automated_emails = true\n[linking]\nsubject_pattern = "#(\\\\d+)"\n'
    data = tomllib.loads(config_text(companies=acknowledging))
    findings = find_dead_settings(parse_config(data), environ={})
    assert [(f.severity, f.code, f.issue.where, f.issue.field) for f in findings] == [
        ("warning", "token-not-written", "[linking]", "subject_token")]
    with_token = tomllib.loads(config_text(companies=acknowledging + 'subject_token = "#{ref}"\n'))
    assert find_dead_settings(parse_config(with_token), environ={}) == ()
    silent = tomllib.loads(config_text(companies='[linking]\nsubject_pattern = "#(\\\\d+)"\n'))
    assert find_dead_settings(parse_config(silent), environ={}) == ()
    default = tomllib.loads(config_text(companies="send_automated_emails = true\n"))
    assert find_dead_settings(parse_config(default), environ={}) == ()
