"""`check` reports an OAuth refresh-token file the transports would refuse, by the transports' own rule.

Real files with real modes in tmp_path; the token never appears in any output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from enate_routing._cli import main
from enate_routing._dead_settings import Finding, find_token_file_problems
from enate_routing._loading import load_config
from enate_routing._token_files import write_token_file
from enate_routing.errors import ConfigError
from enate_routing.transports._tokens import read_refresh_token

TOKEN = "0.ARwA-refresh-token-that-must-never-be-printed"
CONFIG = '''
[[connectors]]
name = "Support"
service = "office365-imap"
username = "support@acme.example"
primary_address = "support@acme.example"
use_for = "incoming"
incoming = {{ protocol = "imap", host = "outlook.office365.com", port = 993, security = "ssl", auth = "oauth2" }}

[connectors.oauth]
provider = "microsoft"
flow = "refresh-token"
tenant = "acme.example"
client_id = "app-1"
token_file = {token_file}

[[fallbacks]]
connector = "Support"
address = "support@acme.example"
target = {{ customer = "Acme", contract = "Internal", service = "IT", process = "General", kind = "ticket" }}
'''
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX; elsewhere the mode is not tested")


def write_config(folder: Path, token_file: str = "tokens/support.json") -> Path:  # noqa: S107 (a path, no secret)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "routing.toml"
    path.write_text(CONFIG.format(token_file=json.dumps(token_file)), encoding="utf-8")
    return path


def token_at(path: Path, mode: int = 0o600, content: bytes | None = None) -> Path:
    """A token file as `login` writes it (or holding ``content``), then given ``mode``."""
    if content is None:
        write_token_file(path, TOKEN, provider="microsoft", client_id="app-1")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    path.chmod(mode)
    return path


def transport_reads(path: Path) -> str:
    """What the Microsoft transport reads from the token file of the configuration above."""
    return read_refresh_token(path, "connector 'Support'", provider="microsoft", client_id="app-1")


def findings(config: Path) -> tuple[Finding, ...]:
    return find_token_file_problems(load_config(config), base_dir=config.parent)


def check(capsys: pytest.CaptureFixture[str], config: Path, *options: str) -> tuple[int, str]:
    code = main(["check", str(config), *options])
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    assert "Traceback" not in captured.err
    return code, captured.out


def test_a_private_token_file_written_by_login_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mode 0600, as `login` writes it: nothing to report, `check --strict` exits 0."""
    config = write_config(tmp_path)
    token_at(tmp_path / "tokens" / "support.json")
    assert findings(config) == ()
    code, out = check(capsys, config, "--strict")
    assert code == 0 and out.splitlines() == [f"{config}: OK — 1 connector, 1 incoming route, 0 outgoing routes"]


def test_a_token_file_not_written_yet_is_not_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`login` runs after the configuration is written (and CI holds no token): a missing file is no finding,
    not even a warning under --strict, though the transport refuses it at first use."""
    config = write_config(tmp_path)
    assert findings(config) == ()
    assert check(capsys, config, "--strict")[0] == 0
    with pytest.raises(ConfigError, match="enate-routing login"):
        transport_reads(tmp_path / "tokens" / "support.json")


@posix_only
def test_a_token_file_others_may_read_is_an_error_naming_the_fix(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """0644: an error located at the connector's oauth.token_file, telling `chmod 600 PATH`; exit 1."""
    config = write_config(tmp_path)
    token = token_at(tmp_path / "tokens" / "support.json", 0o644)
    (finding,) = findings(config)
    assert (finding.severity, finding.code) == ("error", "token-file-exposed")
    assert (finding.issue.where, finding.issue.field, finding.issue.item) == (
        "connector 'Support'", "oauth.token_file", str(token))
    assert f"chmod 600 {token}" in finding.issue.problem
    code, out = check(capsys, config)
    assert code == 1
    assert (f"error: {config}: connector 'Support': oauth.token_file: other users may access the token file "
            f"(mode 0644), so it is refused: chmod 600 {token}") in out
    assert out.splitlines()[-1].endswith("FAILED — 1 connector, 1 incoming route, 0 outgoing routes, 1 error")
    for mode in (0o640, 0o620, 0o601):  # the group alone, or any access, is enough to refuse it
        token.chmod(mode)
        assert [f.code for f in findings(config)] == ["token-file-exposed"]
    token.chmod(0o400)  # read-only for the owner is private too
    assert findings(config) == ()


@pytest.mark.parametrize("content", [b"{not json " + TOKEN.encode(), b'["a list"]', b'{"provider": "microsoft"}',
                                     b'{"refresh_token": ""}', b'{"refresh_token": 7}', b"\xff\xfe not UTF-8", b""])
def test_a_file_that_is_not_a_token_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     content: bytes) -> None:
    """Junk JSON, JSON of another shape, or no refresh token: an error, never quoting the file's text."""
    config = write_config(tmp_path)
    token_at(tmp_path / "tokens" / "support.json", content=content)
    (finding,) = findings(config)
    assert (finding.severity, finding.code, finding.issue.field) == ("error", "token-file-invalid", "oauth.token_file")
    assert "not a token file" in finding.issue.problem or "holds no \"refresh_token\"" in finding.issue.problem
    code, data = check_json(capsys, config)
    assert code == 1 and not data["ok"] and data["warnings"] == []
    (error,) = data["errors"]
    assert error["code"] == "token-file-invalid" and error["where"] == "connector 'Support'"


# The same connector signing in with Google.
GOOGLE = (CONFIG.format(token_file='"tokens/support.json"')
          .replace('"office365-imap"', '"gmail-imap"').replace('"outlook.office365.com"', '"imap.gmail.com"')
          .replace('provider = "microsoft"', 'provider = "google"')
          .replace('tenant = "acme.example"', 'client_secret_env = "GOOGLE_CLIENT_SECRET"'))


@pytest.mark.parametrize("content", [b"not json", b'{"access_token": "x"}'])
def test_a_google_token_file_problem_points_at_the_google_page(tmp_path: Path, content: bytes) -> None:
    """`enate-routing login` signs in Microsoft connectors only, so a Google connector's bad token file is not
    "sign in with login" alone: the line says what the file must hold and where Google's sign-in is described."""
    config = tmp_path / "routing.toml"
    config.write_text(GOOGLE, encoding="utf-8")
    token_at(tmp_path / "tokens" / "support.json", content=content)
    (finding,) = findings(config)
    assert finding.code == "token-file-invalid"
    assert '"refresh_token"' in finding.issue.problem and "docs/google.md" in finding.issue.problem


def test_a_directory_is_not_a_token_file(tmp_path: Path) -> None:
    """A folder where the file should be can never work: an error, not a missing file."""
    config = write_config(tmp_path)
    (tmp_path / "tokens" / "support.json").mkdir(parents=True)
    assert [(f.severity, f.code) for f in findings(config)] == [("error", "token-file-invalid")]


@posix_only
@pytest.mark.skipif(os.name == "posix" and os.geteuid() == 0, reason="root reads any file")
def test_a_token_file_this_user_may_not_read_is_a_warning(tmp_path: Path) -> None:
    """Permission denied may hold only for the account running `check` (poll may run as another): a warning."""
    config = write_config(tmp_path)
    token = token_at(tmp_path / "tokens" / "support.json", 0o000)
    try:
        (finding,) = findings(config)
    finally:
        token.chmod(0o600)
    assert (finding.severity, finding.code) == ("warning", "token-file-unreadable")


def check_json(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, dict[str, Any]]:
    code, out = check(capsys, config, "--format", "json")
    (line,) = out.splitlines()
    return code, json.loads(line)


@posix_only
def test_json_report_locates_the_file_and_never_holds_the_token(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`--format json`: the finding's code, where, field and item (the path); the token is nowhere."""
    config = write_config(tmp_path)
    token = token_at(tmp_path / "tokens" / "support.json", 0o604)
    code, data = check_json(capsys, config)
    assert code == 1 and data["valid"] and not data["ok"]
    assert data["errors"] == [{"code": "token-file-exposed", "file": str(config), "where": "connector 'Support'",
                               "field": "oauth.token_file", "item": str(token),
                               "problem": f"other users may access the token file (mode 0604), so it is "
                                          f"refused: chmod 600 {token}"}]


@posix_only
def test_check_and_the_transport_give_the_same_reason(tmp_path: Path) -> None:
    """One rule: for every refused file, `check`'s problem is the transport's ConfigError problem, word for word."""
    config = write_config(tmp_path)
    token = tmp_path / "tokens" / "support.json"
    other_client = json.dumps({"provider": "microsoft", "client_id": "app-0", "refresh_token": TOKEN}).encode()
    for mode, content in ((0o644, None), (0o600, b"{}"), (0o600, b"junk"), (0o600, other_client)):
        token_at(token, mode, content)
        (finding,) = findings(config)
        with pytest.raises(ConfigError) as refused:
            transport_reads(token)
        (issue,) = refused.value.issues
        assert (issue.problem, issue.field, issue.item) == (finding.issue.problem, finding.issue.field, str(token))
    token_at(token, 0o600)
    assert transport_reads(token) == TOKEN


@posix_only
def test_relative_and_home_paths_resolve_as_the_transports_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A relative token_file is relative to the configuration's folder, not the working directory; ``~`` is home."""
    config = write_config(tmp_path / "etc")
    token = token_at(tmp_path / "etc" / "tokens" / "support.json", 0o644)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out = check(capsys, Path("..") / "etc" / "routing.toml")
    assert code == 1 and f"chmod 600 {Path('..') / 'etc' / 'tokens' / 'support.json'}" in out
    token.unlink()
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    config = write_config(tmp_path / "etc", "~/support.json")
    token_at(home / "support.json", 0o644)
    (finding,) = findings(config)
    assert finding.issue.item == str(home / "support.json")


@posix_only
def test_the_command_line_reports_it_in_a_subprocess(tmp_path: Path) -> None:
    """`enate-routing check FILE` as a user runs it: exit 1, one located error line, no token, no traceback."""
    config = write_config(tmp_path)
    token = token_at(tmp_path / "tokens" / "support.json", 0o644)
    result = subprocess.run([sys.executable, "-m", "enate_routing", "check", str(config)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and TOKEN not in result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {config}: connector 'Support': oauth.token_file: other users may access the token "
                      f"file (mode 0644), so it is refused: chmod 600 {token}: {str(token)!r}"]


def test_a_token_file_issued_to_another_client_is_an_error(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The configuration's client_id (or provider) changed after `login`: the provider would answer
    invalid_grant at the first poll; `check` says which fact differs and that the user must sign in again.
    A file that records neither fact (written by hand, or by an older version) is not judged on them."""
    config = write_config(tmp_path)
    token = tmp_path / "tokens" / "support.json"
    write_token_file(token, TOKEN, provider="microsoft", client_id="app-0")
    (finding,) = findings(config)
    assert (finding.severity, finding.code, finding.issue.field) == ("error", "token-file-mismatch", "oauth.token_file")
    assert finding.issue.problem.startswith("the token file was issued to client_id 'app-0', but the configuration "
                                            "names 'app-1': sign in again (`enate-routing login NAME`")
    code, out = check(capsys, config)
    assert code == 1
    assert (f"error: {config}: connector 'Support': oauth.token_file: the token file was issued to client_id "
            "'app-0'") in out
    write_token_file(token, TOKEN, provider="google", client_id="app-1")
    assert "provider 'google'" in findings(config)[0].issue.problem
    write_token_file(token, TOKEN)
    assert findings(config) == ()
    assert transport_reads(token) == TOKEN
