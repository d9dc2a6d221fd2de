"""Each track's recent path, for drawing trails behind moving objects."""

from __future__ import annotations

from collections import deque

import numpy as np

from vision_backend.detections import Detections
from vision_backend.tracking.zones import anchor_points


class Trails:
    """The last ``length`` anchor points of every track, forgotten ``forget_frames`` after its last sighting
    (so memory stays flat however long the video)."""

    def __init__(self, length: int = 30, anchor: str = "center", forget_frames: int = 30):
        self.length, self.anchor, self.forget_frames = int(length), anchor, int(forget_frames)
        self._points: dict[int, deque[tuple[float, float]]] = {}
        self._labels: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._frame = 0

    def update(self, tracked: Detections) -> None:
        self._frame += 1
        if tracked.tracker_id is None:
            raise ValueError("Trails follow tracks: give them a tracker's output (tracker_id set)")
        points = anchor_points(tracked, self.anchor)
        for track, label, (x, y) in zip(tracked.tracker_id.tolist(), tracked.labels.tolist(), points.tolist()):
            if track < 0:
                continue
            self._points.setdefault(track, deque(maxlen=self.length)).append((x, y))
            self._labels[track], self._last[track] = label, self._frame
        for track in [t for t, seen in self._last.items() if self._frame - seen > self.forget_frames]:
            del self._points[track], self._labels[track], self._last[track]

    def points(self) -> dict[int, np.ndarray]:
        """Track id to its points ``(K, 2)``, oldest first."""
        return {track: np.asarray(path, np.float64) for track, path in self._points.items()}

    def label(self, track: int) -> int:
        return self._labels[track]

    def __len__(self) -> int:
        return len(self._points)
