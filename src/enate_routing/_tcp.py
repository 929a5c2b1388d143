"""TCP keepalives for every long-lived connection: the mail servers' (transports) and the database's (postgres).

A worker's connections sit idle for minutes — an IMAP IDLE wait lasts up to 29 — and NAT gateways and cloud
load balancers end an idle flow silently after a few (AWS's network load balancer after 350 s, Azure's after
4 minutes): a dead IDLE hears of no new mail until it is re-issued. A probe after a minute of silence keeps
such a flow open, and the probes going unanswered (the host is gone) end the connection in two minutes rather
than the kernel's two hours; ``TCP_USER_TIMEOUT`` does the same for data sent and never acknowledged, which
the kernel otherwise retransmits for about 15 minutes. Where the platform lacks an option it is left as is.
"""

from __future__ import annotations

import socket

__all__ = ["KEEPALIVE_COUNT", "KEEPALIVE_IDLE", "KEEPALIVE_INTERVAL", "UNACKNOWLEDGED_MS", "keep_alive"]

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
