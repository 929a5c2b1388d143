"""ImapSource against a scripted, broken or hostile IMAP server on loopback: typed errors, never a crash."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from enate_routing.errors import ConnectError, MessageGoneError, TransportTimeoutError
from enate_routing.transports import Endpoint, PasswordAuth
from enate_routing.transports._imap import _MAX_LINE, _MAX_UNTAGGED, ImapSource
from mailrig.faults import ScriptedServer

pytestmark = pytest.mark.servers

RAW = b"Subject: hi\r\n\r\nhello\r\n"


def _imap(select: bytes = b"* 1 EXISTS\r\n", search: bytes = b"* SEARCH 1\r\n",
          fetch: bytes = b"", capabilities: bytes = b"IMAP4rev1") -> Callable[[bytes], bytes]:
    """A minimal IMAP server: LOGIN, SELECT (UIDVALIDITY 7 after ``select``), UID SEARCH, UID FETCH, LOGOUT."""

    def reply(line: bytes) -> bytes:
        tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
        words = rest.upper().split()
        command = b" ".join(words[:2]) if words[:1] == [b"UID"] else words[0]
        if command == b"CAPABILITY":
            return b"* CAPABILITY " + capabilities + b"\r\n" + tag + b" OK done\r\n"
        if command == b"SELECT":
            return select + b"* OK [UIDVALIDITY 7] ok\r\n" + tag + b" OK [READ-WRITE] done\r\n"
        if command == b"UID SEARCH":
            return search + tag + b" OK done\r\n"
        if command == b"UID FETCH":
            return fetch + tag + b" OK done\r\n"
        if command == b"LOGOUT":
            return b"* BYE\r\n" + tag + b" OK bye\r\n"
        return tag + b" OK done\r\n"

    return reply


@pytest.fixture
def imap() -> Iterator[Callable[..., ImapSource]]:
    servers: list[ScriptedServer] = []
    sources: list[ImapSource] = []

    def start(reply: Callable[[bytes], bytes | Iterator[bytes]], timeout: float = 5) -> ImapSource:
        server = ScriptedServer(b"* OK IMAP4rev1 scripted\r\n", reply).__enter__()
        servers.append(server)
        endpoint = Endpoint("127.0.0.1", server.port, "none", timeout=timeout, allow_plaintext_auth=True)
        source = ImapSource(endpoint, PasswordAuth("user", "pw-9c1e"))
        sources.append(source)
        return source

    yield start
    for source in sources:
        source._discard()
    for server in servers:
        server.__exit__(None, None, None)


def test_two_exists_answers_to_select_are_the_latest_count(imap: Callable[..., ImapSource]) -> None:
    """Mail arriving while SELECT runs gives two ``EXISTS`` lines (RFC 3501 §7.3.1): the last one counts."""
    source = imap(_imap(select=b"* 1 EXISTS\r\n* 2 EXISTS\r\n", search=b"* SEARCH 1 2\r\n"))
    assert [ref.uid for ref in source.list_new()] == [1, 2]
    assert source.exists == 2


def test_a_search_answer_with_a_non_ascii_digit_is_not_a_crash(imap: Callable[..., ImapSource]) -> None:
    """``²`` is a digit to str.isdigit but not a number: it is skipped like any other non-UID word."""
    source = imap(_imap(search="* SEARCH 1 \u00b2 3\r\n".encode()))
    assert [ref.uid for ref in source.list_new()] == [1, 3]


@pytest.mark.parametrize("size", [10**12, 10**30])
def test_a_huge_literal_announcement_then_hang_up_is_a_connect_error(imap: Callable[..., ImapSource],
                                                                    size: int) -> None:
    """A FETCH literal announcing terabytes, then the connection closed: no giant allocation, no
    MemoryError / OverflowError escaping, but the retryable ConnectError of a dropped connection."""
    plain = _imap()

    def reply(line: bytes) -> Iterator[bytes]:
        if b"UID FETCH" not in line.upper():
            yield plain(line)
            return
        yield b"* 1 FETCH (UID 1 BODY[] {" + str(size).encode() + b"}\r\n" + RAW
        raise OSError("the server hangs up")

    source = imap(reply)
    ref = source.list_new()[0]
    with pytest.raises(ConnectError):
        source.fetch(ref)


def test_a_fetch_answer_for_another_uid_is_message_gone(imap: Callable[..., ImapSource]) -> None:
    """A FETCH answer for a UID never asked for is not taken for the message that was asked for."""
    fetch = b"* 1 FETCH (UID 9 BODY[] {" + str(len(RAW)).encode() + b"}\r\n" + RAW + b")\r\n"
    source = imap(_imap(fetch=fetch))
    ref = source.list_new()[0]
    with pytest.raises(MessageGoneError):
        source.fetch(ref)


def test_a_flood_of_untagged_responses_drops_the_connection(imap: Callable[..., ImapSource]) -> None:
    """A command answered by endless untagged responses (imaplib keeps every one until the tagged answer) is
    cut after _MAX_UNTAGGED of them: a retryable ConnectError, not a worker held with its memory filling."""
    plain = _imap()

    def reply(line: bytes) -> Iterator[bytes]:
        if b"UID SEARCH" not in line.upper():
            yield plain(line)
            return
        for _ in range(2 * _MAX_UNTAGGED // 10_000):
            yield b"* 1 RECENT\r\n" * 10_000
        yield line.split(b" ", 1)[0] + b" OK done\r\n"

    with pytest.raises(ConnectError, match="untagged responses"):
        imap(reply).list_new()


def test_a_server_chattering_after_idle_done_is_a_timeout(imap: Callable[..., ImapSource]) -> None:
    """After DONE the tagged answer must come within the endpoint's timeout, however many untagged lines the
    server sends meanwhile (each read alone would be in time)."""
    plain = _imap(capabilities=b"IMAP4rev1 IDLE")
    idle_tag = [b""]

    def reply(line: bytes) -> Iterator[bytes]:
        if b" IDLE" in line.upper():
            idle_tag[0] = line.split(b" ", 1)[0]
            yield b"+ idling\r\n"
        elif line.strip().upper() == b"DONE":
            until = time.monotonic() + 4
            while time.monotonic() < until:
                yield b"* OK still here\r\n"
                time.sleep(0.01)
            yield idle_tag[0] + b" OK idle done\r\n"
        else:
            yield plain(line)

    source = imap(reply, timeout=1)
    known = {ref.key for ref in source.list_new()}
    with pytest.raises(TransportTimeoutError, match="did not end IDLE"):
        source.wait_for_new(0.2, known)


def test_a_search_answer_longer_than_a_megabyte_is_read(imap: Callable[..., ImapSource]) -> None:
    """A folder with 200,000 waiting messages answers UID SEARCH with one 1.3 MB line (imaplib's own limit is
    1,000,000 octets, so such a folder could never be listed); an endless line is still refused."""
    uids = range(1, 200_001)
    source = imap(_imap(search=b"* SEARCH " + " ".join(map(str, uids)).encode() + b"\r\n"))
    assert [ref.uid for ref in source.list_new()] == list(uids)


def test_an_endless_line_drops_the_connection(imap: Callable[..., ImapSource]) -> None:
    """A line without end (no CRLF) is refused after _MAX_LINE octets (a retryable ConnectError), not read
    into memory for ever."""
    plain = _imap()

    def reply(line: bytes) -> Iterator[bytes]:
        if b"UID SEARCH" not in line.upper():
            yield plain(line)
            return
        yield b"* SEARCH "
        for _ in range(_MAX_LINE // (1 << 20) + 1):
            yield b"1" * (1 << 20)

    with pytest.raises(ConnectError, match="longer than"):
        imap(reply).list_new()
