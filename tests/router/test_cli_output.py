"""Machine-readable and terminal-friendly output: complete JSON decisions, `explain` / `diff --format json`,
a demo table that fits the terminal with wide characters counted (docs/json-output.md)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from enate_routing._cli import main
from enate_routing._cli._demo import layout, table_row
from enate_routing._cli._text import display_width, fit, plural

DATA = Path(str(resources.files("enate_routing") / "data"))
DEMO = DATA / "demo.toml"
MAIL = DATA / "demo_mail"
WORK_ITEMS = DATA / "demo_work_items.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_route_lines_carry_reason_and_for_attention(capsys: pytest.CaptureFixture[str]) -> None:
    """A link says why (reason) and a create names its for-attention person: no decision field is left out."""
    _, out = run(capsys, "route", "--config", str(DEMO), "--work-items", str(WORK_ITEMS),
                 str(MAIL / "22-follow-up-in-reply-to.eml"), str(MAIL / "08-northwind-important.eml"))
    link, create = (json.loads(line) for line in out.splitlines())
    assert link["reason"] == "In-Reply-To <order-77@fabrikam.example> is work item C-000077"
    assert (create["route"], create["for_attention"], create["reason"]) == ("Northwind VIP", "Key account team", None)


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    """explain --format json: the email's facts, the steps, every route and rule considered, the decisions."""
    message = MAIL / "01-urgent-outage.eml"
    code, out = run(capsys, "explain", "--config", str(DEMO), "--format", "json", str(message))
    (line,) = out.splitlines()
    report = json.loads(line)
    assert code == 0 and report["format"] == 1 and report["message"] == str(message)
    assert report["sender"] and report["subject"].startswith("URGENT")
    assert report["steps"] and report["connector"] == report["decisions"][0]["connector"]
    group = report["addresses"][0]
    assert set(group) == {"address", "source", "routes", "chosen"} and group["chosen"] == "Urgent outages"
    check = next(r for r in group["routes"] if r["route"] == "Urgent outages")
    assert check["held"] is True and all({"rule", "held", "why"} == set(rule) for rule in check["rules"])
    assert report["decisions"][0]["route"] == "Urgent outages"


def test_diff_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """diff --format json: one object with each differing message's decisions before and after, and counts."""
    new = tmp_path / "new.toml"
    new.write_text(DEMO.read_text(encoding="utf-8").replace('subject_keywords = "urgent; outage; server down"',
                                                            'subject_keywords = "outage"'), encoding="utf-8")
    code, out = run(capsys, "diff", "--config", str(DEMO), "--against", str(new), "--format", "json",
                    "--exit-code", str(MAIL))
    report = json.loads(out)
    assert code == 1
    assert (report["messages"], report["differing"]) == (37, 1)
    (change,) = report["changes"]
    assert change["message"].endswith("01-urgent-outage.eml")
    assert [d["route"] for d in change["before"]] == ["Urgent outages"]
    assert [d["route"] for d in change["after"]] == ["Help desk"]
    assert {(r["label"], r["delta"]) for r in report["per_route"]} == {("Help desk", 1), ("Urgent outages", -1)}


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_demo_fits_the_terminal(capsys: pytest.CaptureFixture[str], width: int) -> None:
    """Every table line is at most the terminal's width in display columns."""
    code, out = run(capsys, "demo", "--width", str(width))
    table = out.split("\n\n")[0].splitlines()
    assert code == 0 and len(table) > 37
    assert max(display_width(line) for line in table) <= width
    assert "37 messages, " in out


def test_demo_takes_the_width_from_columns(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --width, $COLUMNS (or the terminal) sets the width."""
    monkeypatch.setenv("COLUMNS", "72")
    _, out = run(capsys, "demo")
    assert max(display_width(line) for line in out.split("\n\n")[0].splitlines()) <= 72


def test_wide_characters_keep_the_columns_aligned() -> None:
    """A CJK subject counts two columns per character, so the next column starts where it does for ASCII."""
    columns = layout(100)
    ascii_row = table_row({"message": "m", "subject": "Printer jam on floor 2", "action": "create"}, columns)
    wide_row = table_row({"message": "m", "subject": "打印机卡纸了请帮忙处理一下谢谢", "action": "create"}, columns)
    assert display_width(ascii_row[:ascii_row.index("create")]) == display_width(wide_row[:wide_row.index("create")])
    assert display_width(fit("打印机卡纸", 5)) == 5 and fit("打印机卡纸", 5).endswith("…")


def test_plural_forms() -> None:
    """One connector, two connectors, zero messages."""
    assert [plural(1, "connector"), plural(2, "connector"), plural(0, "message")] == [
        "1 connector", "2 connectors", "0 messages"]
