"""`poll` on a terminal: the progress line counts since the start, and log lines never run into it."""

from __future__ import annotations

import argparse
import io
import logging
import re

from enate_routing._cli._logging import configure_logging
from enate_routing._cli._poll import Progress, StatusLine
from enate_routing.ingest import IngestStats


class Terminal(io.StringIO):
    """What a terminal shows: ``\\r`` returns to the margin, ``ESC[K`` erases to the end of the line."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        lines = [""]
        column = 0
        for token in re.split(r"(\r|\n|\x1b\[K)", self.getvalue()):
            if token == "\r":
                column = 0
            elif token == "\n":
                lines.append("")
                column = 0
            elif token == "\x1b[K":
                lines[-1] = lines[-1][:column]
            elif token:
                lines[-1] = lines[-1][:column] + token + lines[-1][column + len(token):]
                column += len(token)
        return lines


def test_the_progress_line_counts_since_the_start_across_passes() -> None:
    """The daemon starts new IngestStats every pass: an idle pass after 3 hand-offs still shows 3, not 0."""
    terminal = Terminal()
    progress = Progress(StatusLine(terminal))
    busy = IngestStats(listed=3, spooled=3, handed=3, marked=3)
    progress(busy)
    progress(busy)  # the same pass again (end of pass): not counted twice
    progress(IngestStats())  # the next, idle, pass
    assert terminal.screen() == ["listed 0  spooled 3  handed off 3  quarantined 0  marked 3  reconnects 0"]


def test_a_log_line_starts_at_the_margin_and_the_progress_line_comes_back_below() -> None:
    """A warning while the progress line shows used to be appended to it ("... reconnects 0   12:20:47 warning")."""
    terminal = Terminal()
    line = StatusLine(terminal)
    progress = Progress(line)
    progress(IngestStats(listed=1, handed=1))
    args = argparse.Namespace(log_level=None, verbose=0, log_format="text")
    with configure_logging(args, stream=line):
        logging.getLogger("enate_routing.ingest").warning("waiting for the mail server")
    progress(IngestStats(listed=0, reconnects=1))
    line.end()
    first, last, after = terminal.screen()
    assert first.endswith("warning enate_routing.ingest: waiting for the mail server")
    assert not first.startswith("listed") and re.match(r"\d\d:\d\d:\d\d ", first)
    assert last == "listed 0  spooled 0  handed off 1  quarantined 0  marked 0  reconnects 1" and after == ""
