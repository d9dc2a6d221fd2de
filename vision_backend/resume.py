"""What a visitor was doing, kept server-side: the current photo and the pages' settings.

A Streamlit session lives in one replica's memory: a reload, a network drop longer than the reconnect time or the
replica's death gave the visitor a fresh session with the sample photo and every setting back at its default, and
nothing said so. Here both are kept with the visit (or the signed-in person) through the store, so any replica can
give them back: a catalogue ``resume`` in the workspace's scope ``resume`` holds one row (the settings as JSON, the
photo's name and blob key), and the photo's bytes are a content-addressed blob beside it (the same upload twice is
one file; a replaced photo's blob is removed in the transaction that replaces it).

Page runs hand their state to :data:`SAVER`, which writes it from a thread of its own, the latest state per place
and at most one write per place every :data:`EVERY_S` seconds (a room dragging sliders writes a few rows a second,
not one a rerun); a new session reading a place first lets a write still waiting for it land (:meth:`settle`).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from vision_backend.storage import Store

CATALOGUE = SCOPE = "resume"
SCHEMA = """
CREATE TABLE IF NOT EXISTS resume (
    slot TEXT PRIMARY KEY, photo_name TEXT, photo TEXT, settings TEXT NOT NULL, saved {REAL} NOT NULL)
"""
SLOT = "current"
MAX_SETTINGS = 64 * 1024
"""Settings are a few hundred bytes; a state larger than this is not kept (said in the log)."""
EVERY_S = 1.0
log = logging.getLogger("vision_lab.resume")


@dataclass(frozen=True)
class Saved:
    settings: dict[str, Any]
    photo_name: str | None
    photo: bytes | None
    key: str | None
    saved: float


def encode_settings(settings: dict[str, Any]) -> str:
    """Settings as JSON, keeping what JSON would blur (a range slider's tuple); values it cannot hold are left
    out (they are widgets' own objects, made again by the page)."""
    kept = {}
    for key, value in settings.items():
        try:
            kept[str(key)] = json.loads(json.dumps(_tagged(value)))
        except (TypeError, ValueError):
            continue
    return json.dumps(kept, sort_keys=True)


def _tagged(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_tagged(v) for v in value]}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a NumPy number
        return value.item()
    return value


def decode_settings(text: str) -> dict[str, Any]:
    def untag(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"__tuple__"}:
            return tuple(untag(v) for v in value["__tuple__"])
        return [untag(v) for v in value] if isinstance(value, list) else value

    return {key: untag(value) for key, value in json.loads(text).items()}


class Resume:
    """The kept state of one visit or person (``scope``: their workspace's ``resume``)."""

    def __init__(self, store: Store, scope: str):
        self.catalogue = store.catalogue(scope, CATALOGUE, SCHEMA)
        self.blobs = store.blobs(scope, "photos")

    def save(self, settings: str, photo: tuple[str, bytes] | None) -> None:
        """The settings (:func:`encode_settings`) and the photo (name, bytes; None for a sample, which the
        settings name) in one transaction; the photo's blob is stored inside it, an old one swept once it has committed."""
        if len(settings) > MAX_SETTINGS:
            log.warning("settings of %d bytes not kept (over %d)", len(settings), MAX_SETTINGS)
            return
        with self.catalogue.transaction() as db:
            before = db.execute("SELECT photo FROM resume WHERE slot = ?", (SLOT,)).fetchone()
            key = self.blobs.key(photo[1]) if photo else None
            if photo and (before is None or before[0] != key):
                self.blobs.put(photo[1])
            db.execute("INSERT INTO resume (slot, photo_name, photo, settings, saved) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (slot) DO UPDATE SET photo_name = excluded.photo_name, photo = excluded.photo, "
                       "settings = excluded.settings, saved = excluded.saved",
                       (SLOT, photo[0] if photo else None, key, settings, time.time()))
        if before is not None and before[0] != key:  # the old photo goes once the new row has committed
            with self.catalogue.transaction() as db:
                kept = db.execute("SELECT photo FROM resume WHERE slot = ?", (SLOT,)).fetchone()
                self.blobs.sweep([kept[0]] if kept and kept[0] else [])

    def load(self) -> Saved | None:
        rows = self.catalogue.rows("SELECT photo_name, photo, settings, saved FROM resume WHERE slot = ?", (SLOT,))
        if not rows:
            return None
        name, key, settings, saved = rows[0]
        return Saved(decode_settings(settings), name, self.blobs.read(key) if key else None, key, float(saved))


@functools.lru_cache(maxsize=256)
def place(store: Store, scope: str) -> Resume:
    """One :class:`Resume` per place a process (opening a catalogue makes its tables: once is enough)."""
    return Resume(store, scope)


class Debounced:
    """Writes done in one background thread: per key the latest write only, at most one every ``every_s``."""

    def __init__(self, every_s: float = EVERY_S, retries: int = 3, retry_after_s: float = 2.0):
        self.every_s, self.retries, self.retry_after_s = every_s, retries, retry_after_s
        self._cond = threading.Condition()
        self._pending: dict[str, Callable[[], None]] = {}
        self._due: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._failed: dict[str, int] = {}
        self._busy: str | None = None
        self._thread: threading.Thread | None = None

    def submit(self, key: str, write: Callable[[], None]) -> None:
        with self._cond:
            self._pending[key] = write
            self._due.setdefault(key, max(time.monotonic(), self._last.get(key, 0.0) + self.every_s))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="resume-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def settle(self, key: str, timeout: float = 10.0) -> bool:
        """Write ``key``'s waiting state now and wait for it (a new session is about to read it); False on timeout."""
        with self._cond:
            if key in self._due:
                self._due[key] = time.monotonic()
                self._cond.notify_all()
            return self._cond.wait_for(lambda: key not in self._pending and self._busy != key, timeout)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every waiting write is done (tests, benches, a server stopping)."""
        with self._cond:
            for key in self._due:
                self._due[key] = time.monotonic()
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._pending and self._busy is None, timeout)

    def _next(self) -> tuple[str, Callable[[], None]]:
        with self._cond:
            while True:
                if self._pending:
                    key = min(self._due, key=self._due.__getitem__)
                    wait = self._due[key] - time.monotonic()
                    if wait <= 0:
                        self._due.pop(key)
                        self._busy = key
                        return key, self._pending.pop(key)
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _loop(self) -> None:
        while True:
            key, write = self._next()
            try:
                write()
                self._failed.pop(key, None)
            except Exception:  # noqa: BLE001 - a store that is down: tried again, then given up with a line
                self._retry(key, write)
            finally:
                with self._cond:
                    self._busy, self._last[key] = None, time.monotonic()
                    self._cond.notify_all()

    def _retry(self, key: str, write: Callable[[], None]) -> None:
        tries = self._failed[key] = self._failed.get(key, 0) + 1
        log.warning("keeping a visitor's photo and settings failed (try %d of %d)", tries, self.retries,
                    exc_info=tries == self.retries)
        with self._cond:
            if tries < self.retries and key not in self._pending:
                self._pending[key] = write
                self._due[key] = time.monotonic() + self.retry_after_s * tries
            elif tries >= self.retries:
                self._failed.pop(key, None)


SAVER = Debounced()
