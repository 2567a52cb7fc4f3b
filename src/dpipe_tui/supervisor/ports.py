"""Master-port allocation for concurrent runs on one host.

Why probe and exclude: every DeepSpeed job binds its own rendezvous port (spec §1.2: train.py
overwrites ``MASTER_PORT``, so the port goes to the launcher *and* train.py). A port is free when we
can bind it on 127.0.0.1 right now *and* no other live run in the registry owns it; the second check
covers a run that is still loading and has not bound its port yet.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection

PORT_RANGE = (29500, 29999)


def port_is_free(port: int) -> bool:
    """True when ``port`` can be bound on 127.0.0.1 at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(exclude: Collection[int] = (), *, port_range: tuple[int, int] = PORT_RANGE) -> int:
    """Return a bindable port in ``port_range`` not in ``exclude``, starting at a random offset.

    Raises:
        RuntimeError: every port in the range is taken.
    """
    low, high = port_range
    span = high - low + 1
    offset = int.from_bytes(os.urandom(2), "big") % span
    for i in range(span):
        port = low + (offset + i) % span
        if port not in exclude and port_is_free(port):
            return port
    raise RuntimeError(f"no free master port in {low}-{high}")
