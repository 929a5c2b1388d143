"""SmtpSender against a scripted SMTP server on loopback whose replies never end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from enate_routing.errors import TransportTimeoutError
from enate_routing.transports import Endpoint
from enate_routing.transports._smtp import SmtpSender
from mailrig.faults import ScriptedServer

pytestmark = pytest.mark.servers


def _dripping_ehlo(line: bytes) -> Iterator[bytes]:
    if line.split()[0].upper() != b"EHLO":
        yield b"250 ok\r\n"
        return
    until = time.monotonic() + 4
    while time.monotonic() < until:  # each line well within the timeout, the reply never within it
        yield b"250-still going\r\n"
        time.sleep(0.1)
    yield b"250 done\r\n"


def test_a_multiline_reply_that_does_not_end_in_time_is_a_timeout() -> None:
    """The endpoint's timeout bounds a whole reply: ``250-`` lines dripping in, each in time, are a
    TransportTimeoutError after the timeout, not a worker held for as long as the server likes."""
    with ScriptedServer(b"220 scripted\r\n", _dripping_ehlo) as server:
        sender = SmtpSender(Endpoint("127.0.0.1", server.port, "none", timeout=1))
        with pytest.raises(TransportTimeoutError):
            sender.noop()
        sender.close()
