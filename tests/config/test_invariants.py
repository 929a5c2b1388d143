"""Each configuration invariant of semantics.md §2, §3, §3.1, §3.2 (valid, invalid) through load_config and check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from config_examples import DOC_EXAMPLE

from enate_routing import load_config
from enate_routing._cli import main
from enate_routing.errors import ConfigError

SECRET = "hunter2-Secret!"

GLOBEX_RULES = 'rules = { senders = "*globex.example", attachment_types = ".pdf; .xlsx" }'
URGENT_ADDRESS = 'name = "Urgent"\naddress = "support@acme.example"'

# (id, edit of the documented example, the words the one error line must contain)
INVALID: list[tuple[str, Callable[[str], str], tuple[str, ...]]] = [
    ("bare-word-pattern", lambda t: t.replace('senders = "*globex.example"', 'senders = "globex"'),
     ("route 'Invoices from Globex' of connector 'Support'", "rules.senders", "'globex'")),
    ("bare-star-pattern", lambda t: t.replace('senders = "*globex.example"', 'senders = "a@b.example; *"'),
     ("rules.senders", "'*'")),
    ("bad-recipient-pattern", lambda t: t.replace(GLOBEX_RULES, 'rules = { recipients = "*@" }'),
     ("rules.recipients", "'*@'")),
    ("category-on-case", lambda t: t.replace('send_automated_emails = true', 'ticket_category = "Billing"'),
     ("route 'Invoices from Globex'", "ticket_category", "only allowed on ticket routes")),
    ("no-fallback", lambda t: t.split("[[fallbacks]]")[0],
     ("connector 'Support'", "fallbacks", "exactly one")),
    ("two-fallbacks", lambda t: t.replace("[companies]", t[t.index("[[fallbacks]]"):t.index("[companies]")]
                                          + "[companies]"),
     ("connector 'Support'", "2 fallbacks")),
    ("fallback-not-primary", lambda t: t.replace(
        'connector = "Support"\naddress = "support@acme.example"\ntarget = { customer = "Acme", contract = '
        '"Internal", service = "IT", process = "General"',
        'connector = "Support"\naddress = "help@acme.example"\ntarget = { customer = "Acme", contract = '
        '"Internal", service = "IT", process = "General"'),
     ("fallback of connector 'Support'", "primary address", "'help@acme.example'")),
    ("fallback-with-rules", lambda t: t.replace("test_mode = false", 'test_mode = false\nrules = { important = true }'),
     ("fallback of connector 'Support'", "rules", "unknown field")),
    ("fallback-disabled", lambda t: t.replace("test_mode = false", "test_mode = false\nenabled = false"),
     ("fallback of connector 'Support'", "enabled")),
    ("wildcard-without-senders", lambda t: t.replace(URGENT_ADDRESS, 'name = "Urgent"\naddress = "*"'),
     ("route 'Urgent' of connector 'Support'", "rules.senders", "wildcard")),
    ("duplicate-route-name", lambda t: t.replace('name = "Urgent"', 'name = "Invoices from Globex"'),
     ("route 'Invoices from Globex' of connector 'Support'", "duplicate route name")),
    ("duplicate-connector-name", lambda t: t.replace('name = "Relay"', 'name = "Support"'),
     ("connector 'Support'", "duplicate connector name")),
    ("route-on-unknown-connector", lambda t: t.replace('connector = "Support"\nname = "Urgent"',
                                                       'connector = "Sales"\nname = "Urgent"'),
     ("route 'Urgent' of connector 'Sales'", "no connector has this name")),
    ("route-on-outgoing-connector", lambda t: t.replace('connector = "Support"\nname = "Urgent"',
                                                        'connector = "Relay"\nname = "Urgent"'),
     ("route 'Urgent' of connector 'Relay'", "incoming")),
    ("outgoing-route-on-incoming-only", lambda t: t.replace('use_for = "both"', 'use_for = "incoming"').replace(
        'outgoing = { host = "mail.acme.example", port = 587, security = "starttls", auth = "username-password" }',
        "") + '\n[[outgoing_routes]]\nname = "Replies"\naddress = "support@acme.example"\nconnector = "Support"\n',
     ("outgoing route 'Replies'", "outgoing or both connector")),
    ("password-too-long", lambda t: t.replace('password_env = "SUPPORT_PASSWORD"', f'password = "{SECRET * 5}"'),
     ("connector 'Support'", "password", "at most 50 characters")),
    ("unknown-service", lambda t: t.replace('service = "other"', 'service = "yahoo"'),
     ("connector 'Support'", "service", "'yahoo'")),
    ("other-needs-incoming", lambda t: t.replace(
        'incoming = { protocol = "imap", host = "mail.acme.example", port = 993, security = "ssl" }', ""),
     ("connector 'Support'", "incoming", "required")),
    ("relay-no-password-auth", lambda t: t.replace('auth = "none" }', 'auth = "username-password" }'),
     ("connector 'Relay'", "outgoing.auth", "certificate, none")),
    ("gmail-smtp-password-only", lambda t: t.replace('service = "office365-smtp-relay"', 'service = "gmail-smtp"'),
     ("connector 'Relay'", "outgoing.auth", "'none'")),
    ("username-required", lambda t: t.replace('username = "support@acme.example"\n', ""),
     ("connector 'Support'", "username", "required")),
    ("certificate-auth-needs-file", lambda t: t.replace('auth = "none" }', 'auth = "certificate" }'),
     ("connector 'Relay'", "certificate", ".pfx")),
    ("invalid-primary-address", lambda t: t.replace('primary_address = "noreply@acme.example"',
                                                    'primary_address = "noreply"'),
     ("connector 'Relay'", "primary_address", "'noreply'")),
    ("bad-subject-pattern", lambda t: t.replace(r"subject_pattern = '\[REF:(?P<ref>[A-Z]-\d+)\]'",
                                                "subject_pattern = '[REF:('"),
     ("[linking]", "subject_pattern", "regular expression")),
    ("unknown-field", lambda t: t.replace("send_automated_emails = true", "send_automated_email = true"),
     ("route 'Invoices from Globex'", "send_automated_email", "unknown field")),
    ("bad-kind", lambda t: t.replace('kind = "case"', 'kind = "incident"'),
     ("route 'Invoices from Globex'", "target.kind", "'incident'")),
    ("bad-blocked-action", lambda t: t.replace('action = "reject"', 'action = "drop"'),
     ("blocked entry #1", "action", "'drop'")),
    ("bad-company-pattern", lambda t: t.replace('"ceo.globex@gmail.com"', '"ceo"'),
     ("[companies]", "'ceo'")),
    ("invalid-toml", lambda t: t + "\n[[[\n", ("invalid TOML",)),
]


@pytest.mark.parametrize(("edit", "expected"), [(e, x) for _, e, x in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_configuration_is_named_precisely(
    write_config: Callable[[str], Path], edit: Callable[[str], str], expected: tuple[str, ...]
) -> None:
    """An invalid file raises ConfigError whose first line names the file, the place, the field and the item."""
    path = write_config(edit(DOC_EXAMPLE))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    first = str(caught.value).splitlines()[0]
    assert first.startswith(str(path))
    for words in expected:
        assert words in first, first
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(("edit", "expected"), [(e, x) for _, e, x in INVALID], ids=[i for i, _, _ in INVALID])
def test_check_reports_invalid_configuration_in_one_line(
    write_config: Callable[[str], Path],
    edit: Callable[[str], str],
    expected: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`check` exits 1 with one clear error line per problem, no traceback and no secret."""
    path = write_config(edit(DOC_EXAMPLE))
    assert main(["check", "--config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines)
    assert all(words in lines[0] for words in expected), lines[0]
    assert "Traceback" not in err
    assert SECRET not in err


def test_spec_example_is_valid(write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The docs/semantics.md §6 example loads, and `check` accepts it with exit 0."""
    path = write_config(DOC_EXAMPLE)
    config = load_config(path)
    assert [c.name for c in config.connectors] == ["Support", "Relay"]
    assert main(["check", "--config", str(path)]) == 0
    assert "OK" in capsys.readouterr().out


def test_several_problems_are_all_reported(write_config: Callable[[str], Path]) -> None:
    """Cross-object problems are collected: each one is its own line."""
    text = DOC_EXAMPLE.split("[[fallbacks]]")[0].replace('name = "Relay"', 'name = "Support"')
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(text))
    problems = [issue.problem for issue in caught.value.issues]
    assert any("duplicate connector name" in p for p in problems)
    assert any("exactly one" in p for p in problems)


def test_presets_fill_named_services(write_config: Callable[[str], Path]) -> None:
    """A relay connector takes port 25 + STARTTLS from its preset; a Gmail IMAP connector its whole server."""
    text = DOC_EXAMPLE + '''
[[connectors]]
name = "Gmail"
service = "gmail-imap"
username = "desk@gmail.com"
primary_address = "Desk@Gmail.com"
use_for = "incoming"

[[fallbacks]]
connector = "Gmail"
address = "desk@gmail.com"
target = { customer = "Acme", contract = "Internal", service = "IT", process = "General", kind = "ticket" }
'''
    config = load_config(write_config(text))
    relay = config.connector("Relay").outgoing
    assert relay is not None and (relay.port, relay.security) == (25, "starttls")
    gmail = config.connector("Gmail")
    assert gmail.incoming is not None
    assert (gmail.incoming.host, gmail.incoming.port, gmail.incoming.protocol) == ("imap.gmail.com", 993, "imap")
    assert gmail.primary_address == "desk@gmail.com"


def test_gmail_pop3_rejects_imap_protocol(write_config: Callable[[str], Path]) -> None:
    """A named service fixes the protocol: gmail-pop3 with protocol imap names the field."""
    text = DOC_EXAMPLE.replace('service = "other"', 'service = "gmail-pop3"')
    with pytest.raises(ConfigError, match=r"incoming\.protocol.*pop3"):
        load_config(write_config(text))


def test_lists_accept_arrays_and_semicolons(write_config: Callable[[str], Path]) -> None:
    """`"a; ; b "` and `["a", "b"]` give the same normalised rule; extensions lose their dot."""
    one = load_config(write_config(DOC_EXAMPLE))
    two = load_config(write_config(DOC_EXAMPLE.replace(
        'rules = { senders = "*globex.example", attachment_types = ".pdf; .xlsx" }',
        'rules = { senders = ["*@Globex.Example"], attachment_types = ["PDF", "  ", ".xlsx"] }'), "two.toml"))
    assert one.routes[0].rules == two.routes[0].rules
    assert one.routes[0].rules.attachment_types == ("pdf", "xlsx")
    assert one.routes[0].rules.senders == ("*globex.example",)


def test_secret_never_in_repr_or_error(write_config: Callable[[str], Path]) -> None:
    """An inline password is a SecretStr: neither repr nor str of the config shows it."""
    config = load_config(write_config(DOC_EXAMPLE.replace('password_env = "SUPPORT_PASSWORD"',
                                                           f'password = "{SECRET}"')))
    assert config.connector("Support").password_value() == SECRET
    assert SECRET not in repr(config) and SECRET not in str(config)


def test_missing_password_env_is_named_without_value(write_config: Callable[[str], Path]) -> None:
    """Reading a password given by reference names the variable when it is unset."""
    config = load_config(write_config(DOC_EXAMPLE))
    with pytest.raises(ConfigError, match="SUPPORT_PASSWORD"):
        config.connector("Support").password_value(environ={})
    assert config.connector("Support").password_value(environ={"SUPPORT_PASSWORD": SECRET}) == SECRET


def test_fingerprint_changes_with_tested_settings(write_config: Callable[[str], Path]) -> None:
    """The life-cycle fingerprint moves with host, port, login and password, and never contains the password."""
    config = load_config(write_config(DOC_EXAMPLE))
    support = config.connector("Support")
    env = {"SUPPORT_PASSWORD": SECRET}
    base = support.settings_fingerprint(env)
    assert base == support.settings_fingerprint(env)
    assert SECRET not in base
    assert support.settings_fingerprint({"SUPPORT_PASSWORD": "other"}) != base
    assert support.model_copy(update={"username": "x@acme.example"}).settings_fingerprint(env) != base
    moved = support.incoming.model_copy(update={"port": 143}) if support.incoming else None
    assert support.model_copy(update={"incoming": moved}).settings_fingerprint(env) != base
    assert support.model_copy(update={"enabled": False}).settings_fingerprint(env) == base
