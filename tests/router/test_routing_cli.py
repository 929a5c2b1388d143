"""The route, explain, diff, demo and check commands (docs/semantics.md §5), through enate_routing._cli.main."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from routing_helpers import eml

from enate_routing._cli import main

DATA = Path(str(resources.files("enate_routing") / "data"))
DEMO = DATA / "demo.toml"
MAIL = DATA / "demo_mail"
WORK_ITEMS = DATA / "demo_work_items.json"
DECISION_FIELDS = ["message", "connector", "action", "address", "route", "fallback", "target", "ticket_category",
                   "send_automated_emails", "test_mode", "for_attention", "acknowledge", "suppressed", "link",
                   "reason", "idempotency_key"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_route_prints_one_json_object_per_decision(capsys: pytest.CaptureFixture[str]) -> None:
    """route prints the docs/semantics.md §5 fields, one line per decision: two for a mail to two routed addresses."""
    message = MAIL / "11-two-routed-addresses.eml"
    code, out, err = run(capsys, "route", "--config", str(DEMO), str(message))
    assert (code, err) == (0, "")
    found = rows(out)
    assert [list(row) for row in found] == [DECISION_FIELDS, DECISION_FIELDS]
    assert [row["route"] for row in found] == ["Help desk", "Fabrikam invoices"]
    assert {row["message"] for row in found} == {str(message)}


def test_route_takes_folders_and_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder routes every .eml in it (sorted); '-' reads one message from stdin."""
    code, out, _ = run(capsys, "route", "--config", str(DEMO), str(MAIL))
    assert code == 0 and len({row["message"] for row in rows(out)}) == len(list(MAIL.glob("*.eml")))
    raw = eml({"From": "a@fabrikam.example", "Subject": "x"})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code, out, _ = run(capsys, "route", "--config", str(DEMO), "-")
    assert code == 0 and rows(out)[0]["message"] == "-" and rows(out)[0]["route"] == "Fabrikam by Bcc"


def test_route_with_work_items_links_follow_ups(capsys: pytest.CaptureFixture[str]) -> None:
    """--work-items gives the command a lookup, so In-Reply-To links."""
    message = str(MAIL / "22-follow-up-in-reply-to.eml")
    _, without, _ = run(capsys, "route", "--config", str(DEMO), message)
    _, with_items, _ = run(capsys, "route", "--config", str(DEMO), "--work-items", str(WORK_ITEMS), message)
    assert rows(without)[0]["action"] == "create"
    assert rows(with_items)[0]["link"] == "C-000077"


@pytest.mark.parametrize("argv", [
    ["route", "--config", str(DEMO), "no/such/file.eml"],
    ["route", "--config", str(DEMO), "--connector", "Nope", str(MAIL / "01-urgent-outage.eml")],
    ["route", "--config", "missing.toml", str(MAIL / "01-urgent-outage.eml")],
    ["explain", "--config", str(DEMO), "no/such/file.eml"],
])
def test_errors_are_one_line_without_traceback(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """A missing message, unknown connector or missing config is one 'error:' line naming it, exit 1."""
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert any(part in err for part in ("no/such/file.eml", "Nope", "missing.toml"))


def test_explain_prints_a_readable_trace(capsys: pytest.CaptureFixture[str]) -> None:
    """explain shows every route considered with ticks and crosses, and the decision."""
    code, out, _ = run(capsys, "explain", "--config", str(DEMO), str(MAIL / "03-resetting-is-not-reset.eml"))
    assert code == 0
    assert "'Password resets': fails" in out and "✗ subject_keywords" in out
    assert "#9 'Old printer queue': skipped (disabled)" in out  # listed: it comes before the winner
    assert "create via route 'Help desk'" in out


def test_diff_lists_changed_messages_and_per_route_counts(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    """diff names each message that routes differently and counts decisions per route, old → new."""
    new = tmp_path / "new.toml"
    new.write_text(DEMO.read_text(encoding="utf-8").replace('subject_keywords = "urgent; outage; server down"',
                                                            'subject_keywords = "outage"'), encoding="utf-8")
    code, out, _ = run(capsys, "diff", "--config", str(DEMO), "--against", str(new), str(MAIL))
    assert code == 0
    assert "01-urgent-outage.eml: Urgent outages (help@contoso.example) → Help desk" in out
    assert "1 of 37 messages route differently" in out
    assert any(line.split()[:2] == ["Urgent", "outages"] and "(-1)" in line for line in out.splitlines())
    code, _, _ = run(capsys, "diff", "--config", str(DEMO), "--against", str(new), "--exit-code", str(MAIL))
    assert code == 1
    code, out, _ = run(capsys, "diff", "--config", str(DEMO), "--against", str(DEMO), "--exit-code", str(MAIL))
    assert code == 0 and "0 of 37" in out


def test_diff_names_the_fields_that_changed_when_the_route_did_not(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    """A change of what a route creates (its target, its category) keeps the route: diff says which field changed
    instead of printing the same route on both sides of the arrow."""
    new = tmp_path / "new.toml"
    new.write_text(DEMO.read_text(encoding="utf-8").replace('process = "Invoice query", kind = "case"',
                                                            'process = "Invoice query", kind = "ticket"'),
                   encoding="utf-8")
    code, out, _ = run(capsys, "diff", "--config", str(DEMO), "--against", str(new),
                       str(MAIL / "04-fabrikam-invoice-pdf.eml"), str(MAIL / "11-two-routed-addresses.eml"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith(
        "04-fabrikam-invoice-pdf.eml: Fabrikam invoices (billing@contoso.example): target.kind case → ticket")
    # Of a message's two decisions, only the one that changed is named.
    assert lines[1].endswith(
        "11-two-routed-addresses.eml: Fabrikam invoices (billing@contoso.example): target.kind case → ticket")
    assert lines[2] == "2 of 2 messages route differently"


def test_demo_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    """demo routes the bundled mailbox and prints one row per decision plus a summary."""
    code, out, err = run(capsys, "demo")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["message", "from", "subject", "action"]
    assert any(line.startswith("19-blocked-spammer") and " reject " in line for line in lines)
    assert "37 messages" in out


def test_demo_hint_runs_when_pasted_from_a_folder_with_a_space(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The "Why? enate-routing explain ..." line is a command a user pastes into a shell: it still works when the
    package is installed under a folder whose name has a space ("Application Support", "Program Files")."""
    folder = tmp_path / "site packages"
    shutil.copytree(Path(str(resources.files("enate_routing"))), folder / "enate_routing",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "enate_routing", "demo"], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(folder)})
    hint = done.stdout.splitlines()[-1]
    assert hint.startswith("Why? enate-routing explain ") and hint.endswith("  (docs/routing.md)")
    argv = shlex.split(hint.removeprefix("Why? ").removesuffix("  (docs/routing.md)"))
    code, out, err = run(capsys, *argv[1:])
    assert (code, err) == (0, "") and "create via route 'Urgent outages'" in out


def test_python_dash_m_demo_runs() -> None:
    """`python -m enate_routing demo` works in a fresh interpreter."""
    # env= from os.environ: under pytest, readline has put COLUMNS=80 into the C environment a bare child
    # would inherit, and demo fits $COLUMNS (a pipe alone is never cut).
    done = subprocess.run([sys.executable, "-m", "enate_routing", "demo"], capture_output=True, text=True,
                          timeout=120, check=False, env=dict(os.environ))
    assert done.returncode == 0 and "Fabrikam invoices" in done.stdout and done.stderr == ""


SHADOWED = '''
[[connectors]]
name = "Support"
service = "other"
username = "support@contoso.example"
password_env = "SUPPORT_PASSWORD"
primary_address = "support@contoso.example"
use_for = "incoming"
incoming = { protocol = "imap", host = "mail.contoso.example", port = 993, security = "ssl" }

[[connectors]]
name = "Relay"
service = "other"
primary_address = "noreply@contoso.example"
use_for = "outgoing"
outgoing = { host = "relay.contoso.example", port = 25, security = "starttls", auth = "none" }

[[routes]]
connector = "Support"
name = "Fabrikam"
address = "support@contoso.example"
target = { customer = "F", contract = "C", service = "S", process = "P", kind = "ticket" }
rules = { senders = "*fabrikam.example" }

[[routes]]
connector = "Support"
name = "CFO"
address = "support@contoso.example"
target = { customer = "F", contract = "C", service = "S", process = "P", kind = "ticket" }
rules = { senders = "cfo@fabrikam.example" }

[[routes]]
connector = "Support"
name = "Noreply"
address = "noreply@contoso.example"
target = { customer = "F", contract = "C", service = "S", process = "P", kind = "ticket" }

[[fallbacks]]
connector = "Support"
address = "support@contoso.example"
target = { customer = "F", contract = "C", service = "S", process = "General", kind = "ticket" }
'''


def test_check_reports_shadowed_routes_and_loops(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """check prints one warning line per shadowed route and loop; exit 0, or 1 with --strict."""
    path = tmp_path / "routing.toml"
    path.write_text(SHADOWED, encoding="utf-8")
    code, out, err = run(capsys, "check", "--config", str(path))
    assert code == 0 and err == ""
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: {path}: route 'CFO' of connector 'Support' is shadowed by route 'Fabrikam' (same address "
        "support@contoso.example; 'Fabrikam' holds whenever 'CFO' holds, so it can never fire)",
        f"warning: {path}: mail loop: noreply@contoso.example is an outgoing address (connector 'Relay') and also "
        "a routed incoming address of connector 'Support'",
    ]
    assert "2 warnings" in out
    assert run(capsys, "check", "--strict", "--config", str(path))[0] == 1


def test_check_of_the_demo_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """The bundled demo configuration has no warnings, even with --strict."""
    code, out, _ = run(capsys, "check", "--strict", "--config", str(DEMO))
    assert code == 0 and "warning" not in out


def test_route_applies_the_configured_parse_limits(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """[limits] in the configuration reaches the parser: a two-part mail over max_mime_parts = 1 is ignored."""
    message = MAIL / "04-fabrikam-invoice-pdf.eml"
    _, before, _ = run(capsys, "route", "--config", str(DEMO), str(message))
    assert rows(before)[0]["action"] == "create"
    strict = tmp_path / "strict.toml"
    strict.write_text(DEMO.read_text(encoding="utf-8") + "\n[limits]\nmax_mime_parts = 1\n", encoding="utf-8")
    code, after, _ = run(capsys, "route", "--config", str(strict), str(message))
    assert code == 0 and rows(after)[0]["action"] == "ignore"
    code, out, _ = run(capsys, "diff", "--config", str(DEMO), "--against", str(strict), str(message))
    assert code == 0 and "04-fabrikam-invoice-pdf" in out
