"""The command line with Graph and OAuth 2.0 connectors from the file alone: test-connection, poll, login, check."""

from __future__ import annotations

import json
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from enate_routing._cli import main
from enate_routing._loading import parse_config, save_config
from enate_routing.errors import AuthenticationError
from enate_routing.transports._factory import ConnectorAccess, open_sender
from mailrig.graph import FakeGraph
from mailrig.oauth_server import IdentityProvider
from mailrig.pki import Pki
from mailrig.util import message
from transports.cloud_config import DESK, ENV, SECRET, SECRET_ENV, graph_connector, register_app

pytestmark = pytest.mark.servers

TARGET = {"customer": "Contoso", "contract": "Internal", "service": "IT", "process": "General", "kind": "ticket"}


def write_config(tmp_path: Path, graph: FakeGraph, idp: IdentityProvider, pki: Pki, **oauth: Any) -> Path:
    connector = graph_connector(graph, idp, pki, oauth=oauth or None)
    data = {"connectors": [connector.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
                           | {"name": "Graph desk"}],
            "fallbacks": [{"connector": "Graph desk", "address": DESK, "send_automated_emails": True,
                           "target": TARGET}]}
    path = tmp_path / "routing.toml"
    save_config(parse_config(data), path)
    return path


def test_test_connection_and_poll_from_the_file_alone(graph: FakeGraph, idp: IdentityProvider, pki: Pki,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """test-connection passes both ways; poll routes every message, acknowledges through sendMail as MIME, and
    moves the mail; a second poll adds nothing."""
    register_app(idp)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    for i in range(5):
        graph.deliver(DESK, message(f"request {i}", sender=f"customer{i}@example.net"))
    config = write_config(tmp_path, graph, idp, pki)
    assert main(["test-connection", "--config", str(config), "Graph desk", "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"graph://127.0.0.1:{graph.port}: ok") == 2 and "5 messages" in out
    decisions = tmp_path / "decisions.jsonl"
    assert main(["poll", "--config", str(config), "Graph desk", "--once", "--out", str(decisions),
                 "--timeout", "5"]) == 0
    lines = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert len(lines) == 5 and all(line["fallback"] for line in lines)
    assert graph.messages_in(DESK) == [] and len(graph.messages_in(DESK, "Processed")) == 5
    assert len(graph.sent) == 5
    acks = [message_from_bytes(sent.mime) for sent in graph.sent]
    assert all(ack["Auto-Submitted"] == "auto-replied" for ack in acks)
    assert sorted(str(ack["To"]) for ack in acks) == [f"customer{i}@example.net" for i in range(5)]
    assert main(["poll", "--config", str(config), "Graph desk", "--once", "--out", str(decisions),
                 "--timeout", "5"]) == 0
    assert len(decisions.read_text().splitlines()) == 5 and len(graph.sent) == 5
    assert SECRET not in capsys.readouterr().err


def test_login_stores_the_refresh_token_and_poll_uses_it(graph: FakeGraph, idp: IdentityProvider, pki: Pki,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`login` runs the device-code sign-in, stores the refresh token 0600 without printing it; poll then reads
    the signed-in user's mailbox with delegated tokens."""
    register_app(idp)
    idp.auto_approve = DESK
    graph.deliver(DESK, message("delegated"))
    config = write_config(tmp_path, graph, idp, pki, flow="refresh-token", token_file="tokens/desk.json",
                          client_secret_env=None)
    assert main(["login", "--config", str(config), "Graph desk", "--timeout", "5"]) == 0
    captured = capsys.readouterr()
    token_file = tmp_path / "tokens" / "desk.json"
    stored = json.loads(token_file.read_text())["refresh_token"]
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert "enter the code" in captured.err and stored not in captured.out + captured.err
    decisions = tmp_path / "decisions.jsonl"
    assert main(["poll", "--config", str(config), "Graph desk", "--once", "--out", str(decisions),
                 "--timeout", "5"]) == 0
    assert len(decisions.read_text().splitlines()) == 1


def test_login_refuses_an_app_only_connector(graph: FakeGraph, idp: IdentityProvider, pki: Pki, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A client-secret connector has nothing to sign in: one clear line, exit 1."""
    config = write_config(tmp_path, graph, idp, pki)
    assert main(["login", "--config", str(config), "Graph desk"]) == 1
    err = capsys.readouterr().err
    assert "refresh-token" in err and "Traceback" not in err


def _mailbox_connector(service: str, auth: str) -> dict[str, Any]:
    return {"connectors": [{"name": "Desk", "service": service, "username": "desk@example.test", "password": "pw",
                            "primary_address": "desk@example.test", "use_for": "incoming",
                            "incoming": {"auth": auth}}],
            "fallbacks": [{"connector": "Desk", "address": "desk@example.test", "target": TARGET}]}


def _toml(service: str, auth: str) -> str:
    return f"""
[[connectors]]
name = "Desk"
service = "{service}"
username = "desk@example.test"
password = "app-password"
primary_address = "desk@example.test"
use_for = "incoming"
incoming = {{ auth = "{auth}" }}

[[fallbacks]]
connector = "Desk"
address = "desk@example.test"
target = {{ customer = "C", contract = "K", service = "S", process = "P", kind = "ticket" }}
"""


def test_check_refuses_office365_passwords_and_warns_for_gmail(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Exchange Online retired basic authentication: an error naming it; Gmail app passwords: a warning."""
    path = tmp_path / "routing.toml"
    path.write_text(_toml("office365-imap", "username-password"))
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "retired basic authentication" in err and "incoming.auth" in err
    path.write_text(_toml("gmail-imap", "username-password"))
    assert main(["check", "--config", str(path)]) == 0
    assert "app password" in capsys.readouterr().out
    assert main(["check", "--strict", "--config", str(path)]) == 1


def test_modern_auth_is_the_default_for_the_named_services() -> None:
    """office365-imap / -pop3 and gmail-* read and send with OAuth 2.0 unless told otherwise."""
    for service in ("office365-imap", "office365-pop3", "gmail-imap", "gmail-pop3"):
        data = _mailbox_connector(service, "oauth2")
        del data["connectors"][0]["incoming"]
        data["connectors"][0]["use_for"] = "both"
        connector = parse_config(data).connectors[0]
        assert connector.incoming is not None and connector.incoming.auth == "oauth2"
        assert connector.outgoing is not None and connector.outgoing.auth == "oauth2"


def test_sendmail_keeps_the_mime_and_adds_envelope_only_recipients_as_bcc(
        graph: FakeGraph, idp: IdentityProvider, pki: Pki) -> None:
    """The MIME arrives byte for byte after a Bcc line naming the envelope recipients the headers lack (a
    local part that is no dot-atom quoted, as RFC 5322 writes it)."""
    register_app(idp)
    graph.mailbox(DESK)
    raw = message("ack").replace(b"To: support@example.test",
                                 b"To: customer@example.net\r\nAuto-Submitted: auto-replied")
    with open_sender(graph_connector(graph, idp, pki), ConnectorAccess(environ=ENV, timeout=5)) as sender:
        assert sender.send(DESK, ["customer@example.net", "audit@example.net", ".odd@example.net"], raw) == {}
    (sent,) = graph.sent
    assert sent.mime == b'Bcc: audit@example.net, ".odd"@example.net\r\n' + raw and sent.mailbox == DESK


def test_sendmail_without_the_mail_send_role_is_refused(graph: FakeGraph, idp: IdentityProvider, pki: Pki) -> None:
    """No Mail.Send: AuthenticationError (403), nothing stored as sent."""
    register_app(idp, roles=frozenset({"Mail.ReadWrite"}))
    graph.mailbox(DESK)
    connector = graph_connector(graph, idp, pki, name="No send")
    with open_sender(connector, ConnectorAccess(environ=ENV, timeout=5)) as sender, \
            pytest.raises(AuthenticationError, match="denied"):
        sender.send(DESK, ["customer@example.net"], message("ack"))
    assert graph.sent == []
