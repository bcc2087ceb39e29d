"""Ports for test servers that stop and start again on the same port.

A port from the kernel's ephemeral range (what binding to port 0 gives) is unsafe for a
server that goes away for a while: meanwhile, a client that keeps dialling it on 127.0.0.1
can be handed that same port as its own source port and connect to itself (a TCP
"self-connect"), and the restarted server then fails with "address already in use". Ports
below the ephemeral range are never handed out that way.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 20_000


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def stable_port(rng: random.Random | None = None) -> int:
    """A free port on 127.0.0.1 below the ephemeral range (see the module docstring)."""
    chooser = rng or random.Random()
    top = max(_LOWEST + 1_000, _ephemeral_start())
    for _ in range(200):
        port = chooser.randrange(_LOWEST, top)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        return port
    raise OSError("no free port below the ephemeral range on 127.0.0.1")
