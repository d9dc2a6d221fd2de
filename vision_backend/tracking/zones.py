"""Counting tracked objects: crossings of a line (``LineCounter``) and who is inside an area (``PolygonZone``).

Both take a frame's tracked :class:`~vision_backend.detections.Detections` (``tracker_id`` set, see
:mod:`~vision_backend.tracking.bytetrack`) and the frame's time, and follow one point of each box, its anchor:
``bottom_center`` (where a person or a car meets the ground, for a camera looking across a scene) or
``center`` (for a camera looking straight down). Counts are per class name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from vision_backend.detections import Detections

ANCHORS = ("bottom_center", "center")
MIN_MARGIN_PX = 2.0
"""The least distance from a counting line that puts a point on one side of it."""


def anchor_points(detections: Detections, anchor: str = "bottom_center") -> np.ndarray:
    """One point ``(x, y)`` a box, ``(N, 2)``: its bottom centre or its centre."""
    if anchor not in ANCHORS:
        raise ValueError(f"anchor is one of {', '.join(ANCHORS)}, not {anchor!r}")
    boxes = detections.boxes.astype(np.float64)
    x = (boxes[:, 0] + boxes[:, 2]) / 2
    y = boxes[:, 3] if anchor == "bottom_center" else (boxes[:, 1] + boxes[:, 3]) / 2
    return np.c_[x, y]


def _tracked(detections: Detections, what: str) -> np.ndarray:
    if detections.tracker_id is None:
        raise ValueError(f"{what} counts tracks: give it a tracker's output (tracker_id set)")
    return detections.tracker_id


@dataclass(frozen=True)
class Crossing:
    """One counted crossing: which track, its class, which way, when."""

    id: int
    label: str
    direction: str
    frame: int
    time_s: float


class LineCounter:
    """Counts tracks whose anchor goes from one side of a line segment to the other, per class and direction.

    ``in`` is towards the right-hand side of the line walked from ``(x1, y1)`` to ``(x2, y2)`` on screen: for a
    line drawn left to right, downwards; swap its ends to swap in and out. A track's side changes only once its
    anchor is further from the line than ``margin`` times its box's height (at least 2 pixels): a detector's
    box edges jitter in proportion to the box, so a box jittering on the line is on neither side (0.1 is twice
    the position noise ByteTrack's Kalman filter assumes, 1/20 of the height). It must also be within the
    segment's length (going round an end is no crossing); each track counts at most once each way.
    """

    def __init__(self, line: Sequence[float], anchor: str = "bottom_center", margin: float = 0.1):
        x1, y1, x2, y2 = (float(v) for v in line)
        if (x1, y1) == (x2, y2):
            raise ValueError("a counting line needs two different ends")
        if anchor not in ANCHORS:
            raise ValueError(f"anchor is one of {', '.join(ANCHORS)}, not {anchor!r}")
        self.line, self.anchor, self.margin = (x1, y1, x2, y2), anchor, float(margin)
        self.counts_in: Counter[str] = Counter()
        self.counts_out: Counter[str] = Counter()
        self.crossings: list[Crossing] = []
        self._side: dict[int, int] = {}
        self._counted: set[tuple[int, str]] = set()
        self._frame = 0

    def geometry(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed distance of each point from the line (positive: the ``in`` side) and its position along the
        segment (0 at the start, 1 at the end)."""
        x1, y1, x2, y2 = self.line
        direction = np.array([x2 - x1, y2 - y1])
        length = float(np.hypot(*direction))
        offset = np.asarray(points, np.float64).reshape(-1, 2) - [x1, y1]
        distance = (direction[0] * offset[:, 1] - direction[1] * offset[:, 0]) / length
        return distance, offset @ direction / length**2

    def update(self, tracked: Detections, time_s: float, frame: int | None = None) -> list[Crossing]:
        """Follow this frame's tracks; returns the crossings counted now."""
        ids = _tracked(tracked, "LineCounter")
        self._frame = self._frame + 1 if frame is None else int(frame)
        distance, along = self.geometry(anchor_points(tracked, self.anchor))
        band = np.maximum(MIN_MARGIN_PX, self.margin * (tracked.boxes[:, 3] - tracked.boxes[:, 1]))
        counted = []
        for i, track in enumerate(ids.tolist()):
            if track < 0:
                continue
            if not 0 <= along[i] <= 1:
                self._side.pop(track, None)  # beside the segment: whatever side it was on no longer counts
                continue
            if abs(distance[i]) <= band[i]:
                continue
            side, before = (1 if distance[i] > 0 else -1), self._side.get(track)
            self._side[track] = side
            direction = "in" if side > 0 else "out"
            if before is None or before == side or (track, direction) in self._counted:
                continue
            self._counted.add((track, direction))
            label = tracked.class_names[tracked.labels[i]]
            (self.counts_in if side > 0 else self.counts_out)[label] += 1
            counted.append(Crossing(track, label, direction, self._frame, float(time_s)))
        self.crossings.extend(counted)
        return counted

    @property
    def total_in(self) -> int:
        return sum(self.counts_in.values())

    @property
    def total_out(self) -> int:
        return sum(self.counts_out.values())

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts: totals and per class, each way."""
        return {"line": list(self.line), "in": self.total_in, "out": self.total_out,
                "in_by_class": dict(self.counts_in), "out_by_class": dict(self.counts_out)}


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Whether each point lies inside the polygon (even-odd ray casting, vectorised over points and edges)."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    x, y = points[:, :1], points[:, 1:]
    a = np.asarray(polygon, np.float64).reshape(-1, 2)
    b = np.roll(a, -1, axis=0)
    spans = (a[:, 1] > y) != (b[:, 1] > y)  # edges crossing the point's row
    dy = np.where(b[:, 1] == a[:, 1], 1.0, b[:, 1] - a[:, 1])
    crossing_x = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / dy
    return (spans & (x < crossing_x)).sum(axis=1) % 2 == 1


class PolygonZone:
    """Who is inside an area: occupancy per class now, entries per class, and each track's dwell time.

    A track is inside when its anchor is. ``entries`` counts each track once, the first time it is seen
    inside (a track jittering on the edge is one entry, and one already inside when first seen counts too).
    Dwell time adds the time between two frames in which the track was seen inside with no frame between
    that saw it outside, so a track missed for a few frames while it stays inside keeps its time.
    """

    def __init__(self, polygon: Sequence[Sequence[float]], anchor: str = "bottom_center", name: str = "zone"):
        self.polygon = np.asarray(polygon, np.float64).reshape(-1, 2)
        if len(self.polygon) < 3:
            raise ValueError("a zone needs at least three corners")
        if anchor not in ANCHORS:
            raise ValueError(f"anchor is one of {', '.join(ANCHORS)}, not {anchor!r}")
        self.anchor, self.name = anchor, name
        self.occupancy: Counter[str] = Counter()
        self.entries: Counter[str] = Counter()
        self.dwell: dict[int, float] = {}
        self.inside_ids: set[int] = set()
        self._seen_inside: dict[int, float] = {}

    def update(self, tracked: Detections, time_s: float) -> set[int]:
        """Follow this frame's tracks; returns the ids inside now."""
        ids = _tracked(tracked, "PolygonZone")
        inside = inside_polygon(anchor_points(tracked, self.anchor), self.polygon)
        self.occupancy = Counter()
        self.inside_ids = set()
        for track, label, here in zip(ids.tolist(), tracked.labels.tolist(), inside.tolist()):
            if track < 0:
                continue
            if not here:
                self._seen_inside.pop(track, None)
                continue
            name = tracked.class_names[label]
            self.occupancy[name] += 1
            self.inside_ids.add(track)
            if track not in self.dwell:
                self.entries[name] += 1
                self.dwell[track] = 0.0
            elif track in self._seen_inside:
                self.dwell[track] += max(0.0, float(time_s) - self._seen_inside[track])
            self._seen_inside[track] = float(time_s)
        return self.inside_ids

    def summary(self) -> dict[str, Any]:
        """JSON-ready: occupancy now, entries and dwell seconds per track."""
        return {"name": self.name, "polygon": self.polygon.tolist(), "occupancy": dict(self.occupancy),
                "entries": dict(self.entries), "dwell_s": {k: round(v, 3) for k, v in self.dwell.items()}}
