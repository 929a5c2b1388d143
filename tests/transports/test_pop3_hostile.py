"""Pop3Source against a scripted, broken POP3 server on loopback: ambiguous UIDLs never lose a message."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest

from enate_routing.errors import MessageGoneError, TransportTimeoutError
from enate_routing.transports import Endpoint, PasswordAuth
from enate_routing.transports._base import MessageRef
from enate_routing.transports._pop3 import POP3_MAILBOX, Pop3Source
from mailrig.faults import ScriptedServer

pytestmark = pytest.mark.servers


def _pop3(uidl: bytes) -> Callable[[bytes], bytes]:
    def reply(line: bytes) -> bytes:
        command = line.split()[0].upper()
        if command == b"CAPA":
            return b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"
        if command == b"UIDL":
            return b"+OK\r\n" + uidl + b".\r\n"
        if command == b"DELE":
            return b"+OK deleted\r\n"
        return b"+OK\r\n"

    return reply


def test_messages_sharing_a_uidl_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    """Two messages answering to one UIDL are neither listed, fetched nor deleted (either could be taken
    for the other and deleted unread); the rest of the maildrop is listed, and a warning names the id."""
    server = ScriptedServer(b"+OK scripted\r\n", _pop3(b"1 same\r\n2 other\r\n3 same\r\n"))
    with server, caplog.at_level(logging.WARNING, "enate_routing.transports"):
        endpoint = Endpoint("127.0.0.1", server.port, "none", timeout=5, allow_plaintext_auth=True)
        with Pop3Source(endpoint, PasswordAuth("u", "p")) as source:
            assert [ref.uidl for ref in source.list_new()] == ["other"]
            with pytest.raises(MessageGoneError):
                source.fetch(MessageRef(POP3_MAILBOX, uidl="same"))
            source.mark_processed(MessageRef(POP3_MAILBOX, uidl="same"))
    assert not [line for line in server.received if line.upper().startswith(b"DELE")]
    assert any(getattr(r, "uidls", None) == ["same"] for r in caplog.records)


def _dripping_uidl(line: bytes) -> Iterator[bytes]:
    command = line.split()[0].upper()
    if command == b"CAPA":
        yield b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"
    elif command == b"UIDL":
        yield b"+OK\r\n"
        until, number = time.monotonic() + 4, 0
        while time.monotonic() < until:  # each line well within the timeout, the listing never within it
            number += 1
            yield f"{number} uidl-{number}\r\n".encode()
            time.sleep(0.1)
        yield b".\r\n"
    else:
        yield b"+OK\r\n"


def test_a_listing_that_does_not_end_in_time_is_a_timeout() -> None:
    """The endpoint's timeout bounds a whole UIDL listing: lines dripping in, each in time, are a
    TransportTimeoutError after the timeout, not a worker held for as long as the server likes."""
    with ScriptedServer(b"+OK scripted\r\n", _dripping_uidl) as server:
        endpoint = Endpoint("127.0.0.1", server.port, "none", timeout=1, allow_plaintext_auth=True)
        source = Pop3Source(endpoint, PasswordAuth("u", "p"))
        with pytest.raises(TransportTimeoutError):
            source.list_new()
