"""SASL logins against scripted servers whose challenges are not base64: a typed error, never a ValueError."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from enate_routing.errors import ProtocolError
from enate_routing.transports import Endpoint, PasswordAuth
from enate_routing.transports._pop3 import Pop3Source
from enate_routing.transports._smtp import SmtpSender
from mailrig.faults import ScriptedServer
from mailrig.util import assert_no_secret

pytestmark = pytest.mark.servers

PASSWORD = "sasl-pw-41d0"


def _smtp(line: bytes) -> bytes:
    command = line.split()[0].upper()
    if command == b"EHLO":
        return b"250-scripted\r\n250 AUTH PLAIN LOGIN\r\n"
    return b"334 abc\r\n" if command == b"AUTH" else b"250 ok\r\n"


def _pop3(line: bytes) -> bytes:
    command = line.split()[0].upper()
    if command == b"CAPA":
        return b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
    return b"+ abc\r\n" if command == b"AUTH" else b"+OK\r\n"


@pytest.mark.parametrize(("greeting", "reply", "login"), [
    (b"220 scripted\r\n", _smtp, lambda e: SmtpSender(e, PasswordAuth("u", PASSWORD)).noop()),
    (b"+OK scripted\r\n", _pop3, lambda e: Pop3Source(e, PasswordAuth("u", PASSWORD)).list_new()),
], ids=["smtp", "pop3"])
def test_a_challenge_that_is_not_base64_is_a_protocol_error(
        greeting: bytes, reply: Callable[[bytes], bytes], login: Callable[[Endpoint], object]) -> None:
    """``334 abc`` / ``+ abc`` (bad base64 padding) is a retryable ProtocolError without the password,
    not a binascii.Error ending the worker."""
    with ScriptedServer(greeting, reply) as server:
        endpoint = Endpoint("127.0.0.1", server.port, "none", timeout=5, allow_plaintext_auth=True)
        with pytest.raises(ProtocolError, match="malformed base64") as caught:
            login(endpoint)
    assert caught.value.retryable
    assert_no_secret(PASSWORD, caught.value)
