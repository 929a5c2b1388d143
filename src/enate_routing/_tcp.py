"""TCP keepalives for every long-lived connection — the mail servers' (transports) and the database's (postgres) —
and the check that an idle connection is still open before it is used again.

A worker's connections sit idle for minutes — an IMAP IDLE wait lasts up to 29 — and NAT gateways and cloud
load balancers end an idle flow silently after a few (AWS's network load balancer after 350 s, Azure's after
4 minutes): a dead IDLE hears of no new mail until it is re-issued. A probe after a minute of silence keeps
such a flow open, and the probes going unanswered (the host is gone) end the connection in two minutes rather
than the kernel's two hours; ``TCP_USER_TIMEOUT`` does the same for data sent and never acknowledged, which
the kernel otherwise retransmits for about 15 minutes. Where the platform lacks an option it is left as is.

A server ends an idle connection on its side too (an HTTP keep-alive timeout, a database restart): then the
socket has something to read — the end of the stream, a last message — before the next request is sent.
:func:`peer_has_spoken` asks without waiting, so the connection can be replaced before anything is sent on it
(a request that fails after it was sent may have been carried out: a POST must not be repeated).
"""

from __future__ import annotations

import select
import socket

__all__ = ["KEEPALIVE_COUNT", "KEEPALIVE_IDLE", "KEEPALIVE_INTERVAL", "UNACKNOWLEDGED_MS", "keep_alive",
           "peer_has_spoken"]

KEEPALIVE_IDLE = 60  # seconds of silence before the first probe
KEEPALIVE_INTERVAL = 10  # seconds between probes
KEEPALIVE_COUNT = 6  # unanswered probes that end the connection
UNACKNOWLEDGED_MS = (KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT) * 1000  # TCP_USER_TIMEOUT: 2 minutes


def keep_alive(sock: socket.socket) -> None:
    """Turn on keepalive probes (and the unacknowledged-data bound) for a connected TCP socket."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                        ("TCP_KEEPCNT", KEEPALIVE_COUNT), ("TCP_USER_TIMEOUT", UNACKNOWLEDGED_MS)):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def peer_has_spoken(fd: int) -> bool:
    """Whether the socket ``fd`` has data or a hang-up to read now (never waits): on a connection that sat idle,
    that the server ended it. ``poll``, unlike ``select``, takes descriptors past 1,023; Windows has only
    ``select``."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])
