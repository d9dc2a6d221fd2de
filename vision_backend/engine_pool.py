"""A few engines of one model shared by callers on many threads: a room of visitors uses every core.

An engine that keeps state between calls (MTCNN's TensorFlow graphs, a TFLite interpreter, dlib's detectors,
a cascade) may be called by one thread at a time. With one engine behind one lock, a room of visitors queued
behind one core (MTCNN answered about 1.6 calls a second on 2 cores). A pool holds up to ``size`` engines of
the model: the model's shared one first, more built the first time callers overlap. A caller takes a free
engine or waits for one; when more than ``limit`` callers wait already, it is told at once that the server
is busy (``errors.Busy``) instead of hanging.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator

from vision_backend.errors import Busy


class EnginePool:
    """Engines for one model (and variant): ``take()`` lends one for a call."""

    def __init__(self, first: Any, build: Callable[[], Any], size: int, limit: int, title: str = "This model"):
        self.build, self.size, self.limit, self.title = build, max(1, size), limit, title
        self._free, self._made, self._waiting = [first], 1, 0
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def made(self) -> int:
        return self._made

    @contextlib.contextmanager
    def take(self) -> Iterator[Any]:
        """A free engine for the block (built if callers overlap and the pool is not full yet)."""
        engine = self._acquire()
        try:
            yield engine
        finally:
            with self._changed:
                self._free.append(engine)
                self._changed.notify()

    def _acquire(self) -> Any:
        """A free engine; else a place for a new one, built outside the lock (it takes a while); else a wait, or
        :class:`Busy` at once when ``limit`` callers wait already."""
        with self._changed:
            while not self._free:
                if self._made < self.size:
                    self._made += 1
                    break
                if self._waiting >= self.limit:
                    raise Busy(f"{self.title} is busy: {self._waiting} request(s) ahead of yours. Try again in a "
                               "moment.", retry_after_s=2.0)
                self._waiting += 1
                try:
                    self._changed.wait()
                finally:
                    self._waiting -= 1
            else:
                return self._free.pop()
        try:
            return self.build()
        except BaseException:
            with self._changed:
                self._made -= 1
                self._changed.notify()
            raise
