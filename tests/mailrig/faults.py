"""Network faults on loopback: a proxy that cuts a connection mid-command, and a server that never answers.

- :class:`CuttingProxy` forwards ``127.0.0.1:<port>`` to a real server and closes both sides the moment
  the client sends a line containing ``cut_on``, compared case-insensitively (``b"FETCH"``, ``b"RETR"``,
  ``b"DATA"`` — smtplib sends lower-case commands): the server
  closing mid-command, as a crash or a network drop would look to the client. Everything else passes
  through untouched, so logins and TLS (for ``starttls`` the upgrade happens end to end through the
  proxy) work normally. ``cuts`` counts the cuts made.
- :class:`HangUpAfterHandshake` is a :class:`CuttingProxy` in front of a TLS port (IMAPS, POP3S) whose first
  ``times`` connections complete the TLS handshake with the rig's server certificate and are then closed, as a
  Dovecot login process does while Dovecot restarts; later connections are forwarded untouched.
- :class:`SilentServer` accepts connections and never sends a byte: every client read times out.
- :class:`EchoingImapServer` refuses every login with a reply that quotes what the client sent (the LOGIN
  line, or the SASL PLAIN response in base64), as careless servers do; ``received`` keeps every line.
- :class:`ScriptedServer` sends ``greeting``, then answers each line the client sends with whatever
  ``reply(line)`` returns (bytes, or an iterable of chunks to stream): a hostile or broken IMAP, POP3 or
  SMTP server in a few lines of test code; ``received`` keeps every line.

All run in daemon threads and are context managers that stop and close every socket on exit.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self

__all__ = ["CuttingProxy", "EchoingImapServer", "HangUpAfterHandshake", "ScriptedServer", "SilentServer"]


class _Listener:
    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._open.append(client)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        raise NotImplementedError


class SilentServer(_Listener):
    """Accepts and then says nothing."""

    def _handle(self, client: socket.socket) -> None:
        self._stop.wait()


class CuttingProxy(_Listener):
    """Forwards to ``target_port`` until the client sends ``cut_on``; then closes both connections."""

    def __init__(self, target_port: int, cut_on: bytes) -> None:
        super().__init__()
        self.target_port = target_port
        self.cut_on = cut_on
        self.cuts = 0

    def _handle(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        self._open.append(upstream)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.2):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client and self.cut_on.lower() in data.lower():
                        self.cuts += 1
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


class HangUpAfterHandshake(CuttingProxy):
    """The first ``times`` connections: the TLS handshake (``certificate_chain``, ``key``), then closed; the rest
    are forwarded to ``target_port``. ``hangups`` counts the connections closed after the handshake."""

    def __init__(self, target_port: int, certificate_chain: str, key: str, times: int) -> None:
        super().__init__(target_port, cut_on=b"\x00never sent\x00")
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificate_chain, key)
        self.times = times
        self.hangups = 0

    def _handle(self, client: socket.socket) -> None:
        if self.hangups >= self.times:
            super()._handle(client)
            return
        self.hangups += 1
        try:
            client.settimeout(5)
            with self._context.wrap_socket(client, server_side=True):
                pass  # handshake done; closing now is all the client sees
        except OSError:
            client.close()


class EchoingImapServer(_Listener):
    """An IMAP server (plaintext, ``AUTH=PLAIN`` offered unless ``plain`` is false) that echoes credentials."""

    def __init__(self, *, plain: bool = True) -> None:
        super().__init__()
        self.capabilities = b"IMAP4rev1 AUTH=PLAIN" if plain else b"IMAP4rev1"
        self.received: list[bytes] = []

    def _handle(self, client: socket.socket) -> None:
        with client, client.makefile("rb") as lines:
            client.sendall(b"* OK [CAPABILITY " + self.capabilities + b"] echo ready\r\n")
            for line in lines:
                self.received.append(line)
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                command = rest.split(b" ", 1)[0].upper()
                if command == b"CAPABILITY":
                    client.sendall(b"* CAPABILITY " + self.capabilities + b"\r\n" + tag + b" OK done\r\n")
                elif command == b"AUTHENTICATE":
                    client.sendall(b"+ \r\n")
                    response = lines.readline().strip()
                    self.received.append(response)
                    client.sendall(tag + b" NO [AUTHENTICATIONFAILED] bad credentials " + response + b"\r\n")
                elif command == b"LOGIN":
                    client.sendall(tag + b" NO [AUTHENTICATIONFAILED] " + rest + b" rejected\r\n")
                elif command == b"LOGOUT":
                    client.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                    return
                else:
                    client.sendall(tag + b" BAD unknown command\r\n")


class ScriptedServer(_Listener):
    """Greets, then answers every received line with ``reply(line)`` (plaintext, one thread per client)."""

    def __init__(self, greeting: bytes, reply: Callable[[bytes], bytes | Iterable[bytes]]) -> None:
        super().__init__()
        self.greeting = greeting
        self.reply = reply
        self.received: list[bytes] = []

    def _handle(self, client: socket.socket) -> None:
        with client, client.makefile("rb") as lines:
            try:
                client.sendall(self.greeting)
                for line in lines:
                    self.received.append(line)
                    answer = self.reply(line)
                    for chunk in [answer] if isinstance(answer, bytes) else answer:
                        client.sendall(chunk)
            except OSError:  # the client hung up (as it should, on some faults)
                return
