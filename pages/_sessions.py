"""Server housekeeping: disconnected sessions closed when they expire, and freed memory given back.

Streamlit keeps a session whose browser went away for ``server.disconnectedSessionTTL`` seconds, so a
network blip can resume it. When that time is up its storage (a TTL cache) simply forgets the session
and never shuts it down (streamlit/streamlit#12506): its uploads and every image and download it
showed stay in the server's memory for good. A room of visitors coming and going grew the server by
about 250 MB in five rounds of eight. Here the storage shuts each expired session down as Streamlit
does for one closed on purpose, a reaper thread expires them even when nobody connects, and once
sessions are gone glibc is asked to hand the freed heap back to the system (``malloc_trim``), which
it otherwise keeps; large blocks get pages of their own, so freeing them returns them at once.

This reaches into Streamlit's runtime (the session manager's storage); on a version laid out
differently it logs one warning and changes nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import threading
import time
from typing import Any

from streamlit import config
from streamlit.runtime.caching.ttl_cache import TTLCache
from streamlit.runtime.session_manager import SessionInfo, SessionStorage

_LOG = logging.getLogger("vision_lab.sessions")
REAP_EVERY_S = 15.0
_INSTALLED = threading.Lock()
_installed = False


class ClosingSessionStorage(SessionStorage):
    """Streamlit's in-memory session storage, but a session that expires (or is evicted) is shut down.

    Sessions taken out on purpose (``delete``: resumed, or closed by Streamlit, which shuts them down
    itself) are left alone. Thread-safe: Streamlit calls it from its event loop and script threads,
    the reaper from its own.
    """

    def __init__(self, ttl_seconds: float, maxsize: int = 128, timer: Any = time.monotonic):
        self._lock = threading.RLock()
        self._cache: TTLCache[str, SessionInfo] = TTLCache(maxsize=maxsize, ttl=ttl_seconds, timer=timer,
                                                           on_remove=self._removed)
        self._keep: str | None = None
        self._expired: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = 0

    def _removed(self, session_id: str, info: SessionInfo) -> None:
        if session_id != self._keep:
            self._expired.append(info.session)

    def get(self, session_id: str) -> SessionInfo | None:
        with self._lock:
            return self._cache.get(session_id)

    def save(self, session_info: SessionInfo) -> None:
        self._remember_loop()
        with self._lock:
            self._keep = session_info.session.id
            try:
                self._cache[session_info.session.id] = session_info
            finally:
                self._keep = None
        self._close_later()

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._keep = session_id
            try:
                self._cache.pop(session_id, None)
            finally:
                self._keep = None
        self._close_later()

    def list(self) -> list[SessionInfo]:  # noqa: A003 - Streamlit's protocol
        with self._lock:
            return list(self._cache.values())

    def adopt(self, sessions: list[SessionInfo]) -> None:
        """Sessions already stored by the storage this one replaces."""
        with self._lock:
            for info in sessions:
                self._keep = info.session.id
                self._cache[info.session.id] = info
            self._keep = None

    def reap(self) -> int:
        """Expire what is due now (``len`` reaps) and shut those sessions down; how many were."""
        with self._lock:
            len(self._cache)
        return self.close_expired()

    def close_expired(self) -> int:
        with self._lock:
            expired, self._expired = self._expired, []
        for session in expired:
            try:
                session.shutdown()
            except Exception:  # noqa: BLE001 - one session's shutdown never stops the others'
                _LOG.warning("An expired session did not shut down cleanly", exc_info=True)
        self.closed += len(expired)
        return len(expired)

    def _remember_loop(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass

    def _close_later(self) -> None:
        """Shut expired sessions down after the caller's step (it may hold Streamlit's storage lock)."""
        if self._expired:
            self.on_loop(self.close_expired)

    def on_loop(self, step: Any) -> None:
        """``step`` on Streamlit's event loop once it is known (a session's shutdown sets asyncio events),
        else here."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(step)
        else:
            step()


M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number (malloc.h)."""
LARGE_BLOCK = 256 * 1024


def map_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Blocks of ``threshold`` bytes and more get pages of their own from the system, returned when freed.

    glibc raises this threshold by itself after a large block is freed (up to 32 MB), so photos, encoded
    images and arrays of a few MB then come from the shared heap, where a block still in use pins the
    freed ones around it. Fixed at 256 KB: a server after five rounds of eight visitors kept 79-84 MB once
    their sessions were gone, against 123 MB (and 124-128 against 327 MB right after them).
    """
    return _glibc("mallopt", M_MMAP_THRESHOLD, threshold)


def give_back_memory() -> bool:
    """glibc's ``malloc_trim(0)``: free pages inside the heap go back to the system."""
    return _glibc("malloc_trim", 0)


def _glibc(function: str, *args: int) -> bool:
    """A glibc malloc tuning call's success; False where the C library has no such call (not glibc)."""
    name = ctypes.util.find_library("c")
    try:
        return bool(getattr(ctypes.CDLL(name), function)(*args)) if name else False
    except (OSError, AttributeError):
        return False


def _reaper(storage: ClosingSessionStorage, period_s: float) -> None:
    """Every ``period_s``: expire what is due, and after sessions were closed, give their memory back."""
    trimmed_at = 0
    while True:
        time.sleep(period_s)
        storage.on_loop(storage.reap)
        if storage.closed != trimmed_at:
            trimmed_at = storage.closed
            give_back_memory()


def close_expired_sessions(period_s: float = REAP_EVERY_S) -> ClosingSessionStorage | None:
    """Once per process: the running server's session storage replaced by a :class:`ClosingSessionStorage`
    (the sessions it holds carried over) and a reaper thread started. None when there is no server
    (AppTest, bare mode) or Streamlit is laid out differently."""
    global _installed
    with _INSTALLED:
        if _installed:
            return None
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return None
        _installed = True
        try:
            manager = Runtime.instance()._session_mgr
            lock, old = manager._storage_lock, manager._session_storage
        except Exception:  # noqa: BLE001
            _LOG.warning("Streamlit's session storage is not where expected: expired sessions are not closed")
            return None
        storage = ClosingSessionStorage(float(config.get_option("server.disconnectedSessionTTL")))
        with lock:
            storage.adopt(old.list())
            manager._session_storage = storage
        map_large_blocks()
        threading.Thread(target=_reaper, args=(storage, period_s), name="session-reaper", daemon=True).start()
        return storage
