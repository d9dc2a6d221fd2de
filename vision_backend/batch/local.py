"""A task run in this process: photos read and decoded on threads while the model works on the last batch.

Decoding (Pillow and OpenCV let go of Python's lock while they work) overlaps inference, one batch
ahead, so neither waits for the other; a progress bar counts photos, and the end summary says how
fast it went and what was found.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from vision_backend.batch.tasks import Photo, Task, cores

Write = Callable[[list[dict[str, Any]]], None]


@dataclass
class Summary:
    """What a run did: photos, failures, detections, the most common labels or names, and its speed."""

    task: str = ""
    count: str = ""
    tally_field: str = ""
    photos: int = 0
    failed: int = 0
    skipped: int = 0
    detections: int = 0
    seconds: float = 0.0
    first_s: float = 0.0
    """Seconds until the first rows came back (start-up: models loaded, Ray's actors started)."""
    first_photos: int = 0
    tally: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, task: Task, skipped: int = 0) -> "Summary":
        return cls(task.name, task.count, task.tally, skipped=skipped)

    def add(self, photos: int, rows: list[dict[str, Any]], elapsed: float) -> None:
        if not self.first_s:
            self.first_s, self.first_photos = elapsed, photos
        self.photos += photos
        for row in rows:
            if "error" in row:
                self.failed += 1
                if len(self.failures) < 5:
                    self.failures.append((row["path"], row["error"]))
            elif row.get(self.tally_field) is not None:
                self.tally[row[self.tally_field]] += 1
        if self.count:  # each photo's own count, once (a photo has a row per detection)
            self.detections += sum({row["path"]: row.get(self.count) or 0 for row in rows}.values())

    @property
    def rate(self) -> float:
        return self.photos / self.seconds if self.seconds else 0.0

    @property
    def steady_rate(self) -> float:
        """Photos per second after the first rows came back (start-up left out)."""
        later = self.seconds - self.first_s
        return (self.photos - self.first_photos) / later if later > 0 else self.rate

    def text(self) -> str:
        steady = f"; {self.steady_rate:.1f}/s after the first {self.first_s:.1f} s" \
            if self.photos > self.first_photos else ""
        lines = [f"{self.task}: {self.photos} photo(s) in {self.seconds:.1f} s ({self.rate:.1f} photos/s{steady}): "
                 f"{self.photos - self.failed} done, {self.failed} failed"
                 + (f", {self.skipped} skipped (already in the output)" if self.skipped else "")]
        if self.count:
            lines.append(f"  {self.count} found: {self.detections}")
        if self.tally:
            lines.append("  most common: " + ", ".join(f"{k} {n}" for k, n in self.tally.most_common(8)))
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failures]
        if self.failed > len(self.failures):
            lines.append(f"  ... and {self.failed - len(self.failures)} more (rows with an `error`)")
        return "\n".join(lines)


def batches(paths: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def _read_ahead(pool: ThreadPoolExecutor, task: Task, paths: list[str], size: int) -> Iterator[list[Photo]]:
    """Each batch's photos read on the pool, the next batch already submitted while this one is used."""
    waiting: deque[list[Future]] = deque()
    for chunk in batches(paths, size):
        waiting.append([pool.submit(task.read, p) for p in chunk])
        if len(waiting) > 1:
            yield [f.result() for f in waiting.popleft()]
    while waiting:
        yield [f.result() for f in waiting.popleft()]


def run_local(task: Task, paths: list[str], write: Write, batch_size: int = 16, workers: int = 0,
              progress: bool = True, skipped: int = 0) -> Summary:
    """``task`` over ``paths`` here; rows go to ``write`` batch by batch, in the photos' order."""
    from tqdm import tqdm

    started = time.perf_counter()
    task.load()
    summary = Summary.of(task, skipped)
    with ThreadPoolExecutor(workers or cores(), thread_name_prefix="decode") as pool, \
            tqdm(total=len(paths), unit="photo", disable=None if progress else True, desc=task.name) as bar:
        for photos in _read_ahead(pool, task, paths, batch_size):
            rows = task.finish(photos)
            write(rows)
            summary.add(len(photos), rows, time.perf_counter() - started)
            bar.update(len(photos))
    summary.seconds = time.perf_counter() - started
    return summary
