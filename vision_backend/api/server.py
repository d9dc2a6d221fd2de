"""What the API needs of the server it is served by: its start and stop, and replies sent without a 40 ms wait.

Streamlit 1.67 binds its listening socket itself (``socket.socket(family, SOCK_STREAM)``, protocol 0), and
asyncio sets ``TCP_NODELAY`` only on sockets whose protocol says TCP, so every connection the server accepts
keeps Nagle's algorithm on: a reply written in two pieces (headers, then body) waits for the client's delayed
acknowledgement, about 40 ms, on every call after the first of a kept-alive connection (a program calling the
API in a loop, Streamlit's own ``/_stcore/health``). Linux gives accepted sockets the listening socket's
``TCP_NODELAY``, so setting it there once fixes every connection.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
from typing import Any, AsyncIterator

from vision_backend.api import limits

log = logging.getLogger("vision_lab.api")


def no_delay_on_listening_sockets() -> int:
    """``TCP_NODELAY`` on every listening TCP socket of this process (found among live objects: the server
    keeps its own); how many were set."""
    done = 0
    for candidate in gc.get_objects():
        if not isinstance(candidate, socket.socket) or candidate.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        with contextlib.suppress(OSError):
            if candidate.type == socket.SOCK_STREAM and candidate.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                candidate.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                done += 1
    return done


@contextlib.asynccontextmanager
async def lifespan(_app: Any = None) -> AsyncIterator[None]:
    """The server's start and stop: replies without Nagle's wait, and the API's worker pool stopped at the end.
    The engines are still warmed from the first page visit on (``app.py``): warming them here, as the server
    starts, left two of eight visitors of a cold server without the navigation in 2 of 4 runs of
    tests/test_browser.py's room test (0 of 3 without). An API call before any visit loads its model itself."""
    if not no_delay_on_listening_sockets():
        log.warning("no listening socket found to set TCP_NODELAY on: kept-alive calls may wait 40 ms each")
    try:
        yield
    finally:
        limits.reset()
