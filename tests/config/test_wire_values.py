"""Values that reach a server are refused at load time when they could never work or would be misread there:
host names, ports, line breaks in logins, passwords and folders, CA files. And files a parser chokes on
(a byte order mark, a key twice, a 5,000-digit number, deep nesting, a regex too large) are ConfigErrors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from enate_routing import load_config, parse_config
from enate_routing.errors import CertificateError, ConfigError
from mailrig.pki import Pki

PASSWORD = "Wire-Canary-77"


def _data(incoming: dict[str, Any] | None = None, **connector: Any) -> dict[str, Any]:
    server = {"protocol": "imap", "host": "mail.acme.example", "port": 993, "security": "ssl", **(incoming or {})}
    return {
        "connectors": [{"name": "Support", "service": "other", "username": "support@acme.example",
                        "password": PASSWORD, "primary_address": "support@acme.example", "use_for": "incoming",
                        "incoming": server, **connector}],
        "fallbacks": [{"connector": "Support", "address": "support@acme.example",
                       "target": {"customer": "Acme", "contract": "C", "service": "IT", "process": "P",
                                  "kind": "ticket"}}],
    }


@pytest.mark.parametrize("host", ["imaps://mail.acme.example:993", "mail acme.example", "mail.acme.example:993",
                                  "[::1", "[::1]", "127.0.0.1\x00", "a" * 64 + ".example", "mail..example", ""])
def test_a_host_that_is_not_a_host_name_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match=r"incoming\.host: (not a host name|String should have)"):
        parse_config(_data({"host": host}))


@pytest.mark.parametrize("host", ["mail.acme.example", "localhost", "127.0.0.1", "::1", "bücher.example",
                                  "mail_1.corp.example", "MAIL.Acme.Example."])
def test_host_names_and_addresses_are_accepted(host: str) -> None:
    assert parse_config(_data({"host": host})).connectors[0].incoming.host == host  # type: ignore[union-attr]


@pytest.mark.parametrize("port", [True, "993", 993.0])
def test_a_port_must_be_an_integer(port: object) -> None:
    with pytest.raises(ConfigError, match=r"incoming\.port"):
        parse_config(_data({"port": port}))


@pytest.mark.parametrize(("field", "value"), [("password", PASSWORD + "\r\nX1 DELETE INBOX"),
                                              ("username", "support\r\nX1 DELETE INBOX"),
                                              ("password", PASSWORD + "\x00"),
                                              ("additional_mailbox", "shared\nX"),
                                              ("incoming.folder", "INBOX\r\nX1 DELETE INBOX")])
def test_a_line_break_in_a_value_sent_to_the_server_is_refused(field: str, value: str) -> None:
    data = _data()
    if field.startswith("incoming."):
        data["connectors"][0]["incoming"][field.removeprefix("incoming.")] = value
    else:
        data["connectors"][0][field] = value
    with pytest.raises(ConfigError, match=f"{field}: must not contain a line break or NUL") as caught:
        parse_config(data)
    assert PASSWORD not in str(caught.value)


def test_ca_files_are_checked_when_loading(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "not-pem.txt").write_text("hello\n")
    for ca_file, problem in (("missing.pem", "cannot read the CA file (No such file or directory)"),
                             (".", "cannot read the CA file (Is a directory)"),
                             ("not-pem.txt", "not a PEM certificate bundle")):
        path = tmp_path / "routing.json"
        path.write_text(json.dumps(_data({"ca_file": ca_file})))
        with pytest.raises(CertificateError, match=rf"routing\.json: connector 'Support': incoming\.ca_file: "
                                                   rf"{re.escape(problem)}.*{re.escape(ca_file)}"):
            load_config(path)
    path.write_text(json.dumps(_data({"ca_file": str(pki.ca_pem)})))
    assert load_config(path).connectors[0].incoming.ca_file == str(pki.ca_pem)  # type: ignore[union-attr]


def test_a_home_relative_ca_file_is_checked_where_the_transports_read_it(tmp_path: Path, pki: Pki,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``~/ca.pem`` is the home directory's file when loading, as in the transports (not a folder named ``~``)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "ca.pem").write_bytes(pki.ca_pem.read_bytes())
    monkeypatch.setenv("HOME", str(home))
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(_data({"ca_file": "~/ca.pem"})))
    assert load_config(path).connectors[0].incoming.ca_file == "~/ca.pem"  # type: ignore[union-attr]
    (home / "ca.pem").unlink()
    with pytest.raises(CertificateError, match="cannot read the CA file"):
        load_config(path)


def _written(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_byte_order_mark_is_read_past(tmp_path: Path) -> None:
    text = json.dumps(_data())
    assert load_config(_written(tmp_path, "bom.json", "\ufeff" + text)) == load_config(_written(tmp_path, "a.json",
                                                                                                  text))


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("twice.json", '{"connectors": [], "connectors": []}', "the key 'connectors' is given twice"),
    ("long.json", '{"limits": {"max_message_bytes": ' + "9" * 5000 + "}}", "a number has more than"),
    ("long.toml", "x = " + "9" * 5000, "a number has more than"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply to read"),
    ("deep.toml", "x = " + "[" * 100_000 + "]" * 100_000, "nested too deeply to read"),
    ("regex.toml", "[linking]\nsubject_pattern = '(?P<ref>x{99999999999})'", "not a valid regular expression"),
])
def test_files_a_parser_chokes_on_are_config_errors(tmp_path: Path, name: str, text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"{name}: .*{problem}"):
        load_config(_written(tmp_path, name, text))
