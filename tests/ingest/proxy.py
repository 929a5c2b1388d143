"""A TCP proxy on 127.0.0.1 that breaks IMAP / POP3 sessions on purpose.

Every ``every``-th mailbox command (counted over all connections: IMAP ``UID ...`` commands, POP3
``UIDL``/``RETR``/``DELE``; logins, SELECT, LOGOUT and QUIT are not counted, so each connection can make
progress) is disrupted, in turn:

1. ``drop-before``: the connection closes before the command reaches the server;
2. ``drop-after``: the command reaches the server (which may carry it out: a MOVE, a DELE) but the
   connection closes before the reply reaches the client — the ambiguous case;
3. ``cut-download``: for a FETCH / RETR, only part of the message literal is relayed, then the connection
   closes mid-literal (for other commands this is ``drop-after``).

Threads only; :meth:`close` (or leaving the ``with`` block) closes every socket.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from types import TracebackType
from typing import Self

_COUNTED = re.compile(rb"^(?:\S+ UID \w+|UIDL|RETR|DELE)\b", re.IGNORECASE)
_DOWNLOAD = re.compile(rb"^(?:\S+ UID FETCH|RETR)\b", re.IGNORECASE)
MODES = ("drop-before", "drop-after", "cut-download")


class FaultProxy:
    def __init__(self, target_port: int, every: int) -> None:
        self.target_port = target_port
        self.every = every
        self.commands = 0
        self.faults = {mode: 0 for mode in MODES}
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._accept.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._accept.join(5)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(5)

    def _serve(self) -> None:
        fault = 0
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            with self._lock:
                self._sockets += [client, server]
                self.connections += 1
            fault += 1
            thread = threading.Thread(target=self._session, args=(client, server), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _decide(self, line: bytes) -> str | None:
        if not _COUNTED.match(line):
            return None
        with self._lock:
            self.commands += 1
            if self.commands % self.every:
                return None
            mode = MODES[(self.commands // self.every) % len(MODES)]
            if mode == "cut-download" and not _DOWNLOAD.match(line):
                mode = "drop-after"
            self.faults[mode] += 1
            return mode

    def _session(self, client: socket.socket, server: socket.socket) -> None:
        cut = threading.Event()
        cut_download = threading.Event()

        def close_both() -> None:
            cut.set()
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

        def downstream() -> None:  # server -> client
            relayed = 0
            try:
                while not cut.is_set():
                    data = server.recv(65536)
                    if not data:
                        break
                    if cut_download.is_set():
                        relayed += len(data)
                        if relayed > 200:  # part of the literal got through; now the line dies
                            client.sendall(data[: max(1, len(data) // 2)])
                            break
                    client.sendall(data)
            except OSError:
                pass
            close_both()

        reader = threading.Thread(target=downstream, daemon=True)
        reader.start()
        buffer = b""
        try:
            while not cut.is_set():
                data = client.recv(65536)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    mode = self._decide(line)
                    if mode == "drop-before":
                        close_both()
                        return
                    if mode == "cut-download":
                        cut_download.set()
                    server.sendall(line + b"\n")
                    if mode == "drop-after":
                        # Give the server the command, then hang up before its answer arrives.
                        with contextlib.suppress(OSError):
                            server.shutdown(socket.SHUT_WR)
                        client.close()
                        cut.set()
                        return
        except OSError:
            pass
        finally:
            if not reader.is_alive() or cut.is_set():
                close_both()
            else:
                close_both()
            reader.join(5)
