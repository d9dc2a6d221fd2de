"""A video through detection, tracking and counting, one frame at a time: decode, detect, track, count, draw,
encode, with nothing but the current frame in memory however long the video.

``track_video`` runs a file and returns its rows and counts (and writes the annotated video when asked);
``TrackingRun`` is the per-frame state it uses (tracker, line, zones, trails, face blurring), which a live
stream can drive frame by frame with ``step``.

The tracker's thresholds decide what counts in a video: the detector runs down to the tracker's low threshold
(:func:`detection_settings`), so ByteTrack's second stage gets the weak boxes a detector's usual threshold drops.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vision_backend import drawing
from vision_backend.detections import Detections
from vision_backend.errors import VideoIntakeError
from vision_backend.model import Detector
from vision_backend.tracking import (
    ByteTrack,
    Crossing,
    LineCounter,
    PolygonZone,
    Trails,
)
from vision_backend.video.io import Frame, VideoInfo, decode, open_video, video_writer

COLUMNS = ("frame", "time_s", "id", "label", "score", "x1", "y1", "x2", "y2")
"""The per-frame rows: one a tracked box."""
FACE_STRONG = 0.7
"""A face scoring this is blurred from its first frame (YuNet's own threshold)."""
FACE_WEAK = 0.4
"""Weaker faces only keep a face's track (and its blur) going, as ByteTrack's second stage does."""
FACE_KEEP_FRAMES = 12
"""How many frames a face the detector lost stays blurred where its track predicts it (about half a second)."""


@dataclass(frozen=True)
class Progress:
    """How far a run is: frames done of the header's count (0: unknown), frames a second, seconds left."""

    frames_done: int
    frames_total: int
    fps: float
    seconds_left: float | None


@dataclass
class VideoResult:
    """What a run gives: the rows (columns of :data:`COLUMNS`, ready for ``pandas.DataFrame``), the counts,
    the annotated video's path and codec, timing, and why it stopped early (``error``; "" when whole)."""

    info: VideoInfo
    frames: int
    rows: dict[str, np.ndarray]
    line: dict[str, Any] | None
    zones: list[dict[str, Any]]
    crossings: list[Crossing]
    video: Path | None
    codec: str
    seconds: float
    fps: float
    error: str = ""
    stopped: bool = False
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts (JSON Lines, a CSV writer)."""
        names = list(self.rows)
        return [dict(zip(names, values)) for values in zip(*(self.rows[n].tolist() for n in names))]


class Rows:
    """Tracked boxes gathered frame by frame into numeric blocks (a few dozen bytes a row, not a dict each)."""

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._pending: list[np.ndarray] = []
        self._labels: list[str] = []

    def add(self, index: int, time_s: float, tracked: Detections) -> None:
        if not len(tracked):
            return
        n = len(tracked)
        ids = tracked.tracker_id if tracked.tracker_id is not None else np.full(n, -1)
        self._pending.append(np.c_[np.full(n, index), np.full(n, time_s), ids, tracked.labels, tracked.scores,
                                   tracked.boxes])
        self._labels = list(tracked.class_names)
        if len(self._pending) >= 256:
            self._blocks.append(np.concatenate(self._pending))
            self._pending = []

    def columns(self) -> dict[str, np.ndarray]:
        table = np.concatenate(self._blocks + self._pending) if self._blocks or self._pending else np.zeros((0, 9))
        names = np.asarray(self._labels, dtype=object)
        label = names[table[:, 3].astype(np.int64)] if len(table) else np.zeros(0, dtype=object)
        return {"frame": table[:, 0].astype(np.int64), "time_s": table[:, 1].round(4),
                "id": table[:, 2].astype(np.int64), "label": label, "score": table[:, 4].round(4),
                **{name: table[:, 5 + k].round(1) for k, name in enumerate(("x1", "y1", "x2", "y2"))}}


def detection_settings(detector: Detector, settings: dict[str, Any] | None, tracker: ByteTrack) -> dict[str, Any]:
    """The detector's settings for a tracked video: checked as its page checks them, with its score threshold
    lowered to the tracker's low threshold (never below the setting's own floor)."""
    chosen = detector.settings(settings)
    if "score_threshold" in chosen:
        floor = detector.param("score_threshold").low or 0.0
        chosen["score_threshold"] = max(floor, min(chosen["score_threshold"], tracker.low_threshold))
    return chosen


class FaceBlur:
    """Faces blurred through a video, following their tracks: every face found (weak ones while they continue
    a track), and for a few frames after the detector loses one, where its track predicts it, so a face
    turned away for a frame is never shown."""

    def __init__(self, detector: Detector, keep_frames: int = FACE_KEEP_FRAMES):
        self.detector, self.keep_frames = detector, keep_frames
        floors = [p.low or 0.0 for p in detector.params if p.name == "score_threshold"]
        self.settings = {"score_threshold": max(FACE_WEAK, *floors)} if floors else {}
        self.tracker = ByteTrack(track_threshold=FACE_STRONG, low_threshold=FACE_WEAK, new_track_threshold=FACE_STRONG,
                                 lost_frames=keep_frames)

    def faces(self, image: np.ndarray) -> np.ndarray:
        """The boxes to blur in this frame."""
        found = self.detector.detect(image, **self.settings)
        tracked = self.tracker.update(found)
        strong = found.boxes[found.scores >= FACE_STRONG]
        return np.concatenate([strong, tracked.boxes, self.tracker.lost(self.keep_frames).boxes])

    def blur(self, image: np.ndarray) -> np.ndarray:
        boxes = self.faces(image)
        if not len(boxes):
            return image
        return drawing.anonymise(image, Detections(boxes, np.ones(len(boxes)), np.zeros(len(boxes))))


def default_face_detector() -> Detector:
    """The face detector whose role is ``faces`` (the pages' and the live camera's default)."""
    from vision_backend.face_detection.detectors import DETECTORS
    from vision_backend.model import with_role

    return with_role(DETECTORS.values(), "faces")


def as_line(line: LineCounter | Sequence[float] | None, anchor: str) -> LineCounter | None:
    return line if line is None or isinstance(line, LineCounter) else LineCounter(line, anchor=anchor)


def as_zones(zones: Sequence[PolygonZone | Sequence[Sequence[float]]], anchor: str) -> list[PolygonZone]:
    return [z if isinstance(z, PolygonZone) else PolygonZone(z, anchor=anchor, name=f"zone {k + 1}")
            for k, z in enumerate(zones)]


class TrackingRun:
    """One video's (or one live stream's) state: the detector and its settings, the tracker (reset: ids start
    from 1), the counting line and zones, trails, face blurring and the rows so far. ``step`` per frame."""

    def __init__(self, detector: Detector, settings: dict[str, Any] | None = None, tracker: ByteTrack | None = None,
                 line: LineCounter | Sequence[float] | None = None,
                 zones: Sequence[PolygonZone | Sequence[Sequence[float]]] = (), blur_faces: bool | Detector = False,
                 anchor: str = "bottom_center", trail_length: int = 30):
        self.detector, self.tracker = detector, tracker or ByteTrack()
        self.tracker.reset()
        self.settings = detection_settings(detector, settings, self.tracker)
        self.line, self.zones = as_line(line, anchor), as_zones(zones, anchor)
        self.trails = Trails(length=trail_length, anchor=anchor, forget_frames=self.tracker.lost_frames)
        face_detector = default_face_detector() if blur_faces is True else blur_faces or None
        self.faces = FaceBlur(face_detector) if face_detector else None
        self.rows = Rows()

    def step(self, frame: Frame, draw: bool = True) -> tuple[Detections, np.ndarray | None]:
        """Detect, track, count and (``draw``) annotate one frame; returns its tracked rows and image."""
        found = self.detector.detect(frame.image, **self.settings)
        tracked = self.tracker.update(found)
        if self.line is not None:
            self.line.update(tracked, frame.time_s, frame.index)
        for zone in self.zones:
            zone.update(tracked, frame.time_s)
        self.trails.update(tracked)
        self.rows.add(frame.index, frame.time_s, tracked)
        return tracked, self.annotate(frame.image, tracked) if draw else None

    def annotate(self, image: np.ndarray, tracked: Detections) -> np.ndarray:
        """Faces blurred (when asked), zones with their occupancy, tracks with ids and trails, the line with its
        counts, and the totals in a corner."""
        if self.faces is not None:
            image = self.faces.blur(image)
        for zone in self.zones:
            image = drawing.draw_zone(image, zone.polygon, f"{zone.name}: {sum(zone.occupancy.values())}")
        image = drawing.draw_tracks(image, tracked, self.trails.points())
        if self.line is not None:
            image = drawing.draw_counting_line(image, self.line.line, self.line.total_in, self.line.total_out)
        return drawing.draw_panel(image, self.panel())

    def panel(self) -> list[str]:
        """The counts on screen: per class each way across the line, and each zone's occupancy and entries."""
        lines = []
        if self.line is not None:
            for name in sorted(set(self.line.counts_in) | set(self.line.counts_out)):
                lines.append(f"{name}: in {self.line.counts_in[name]} | out {self.line.counts_out[name]}")
        for zone in self.zones:
            lines.append(f"{zone.name}: {sum(zone.occupancy.values())} now, {sum(zone.entries.values())} entered")
        return lines

    def notes(self) -> list[str]:
        threshold = self.settings.get("score_threshold")
        if threshold is None:
            return []
        return [(f"{self.detector.title} ran at score threshold {threshold:g} (the tracker's low threshold) so "
                 f"ByteTrack's second stage sees weak boxes; boxes scoring {self.tracker.track_threshold:g} or more "
                 "drive the tracks.")]


class Pace:
    """Calls a progress callback at most every ``every_s`` seconds (and at the end) with the rate and time left;
    a callback that returns ``False`` asks the run to stop (the frames done are kept)."""

    def __init__(self, progress: Callable[[Progress], Any] | None, every_s: float = 0.2):
        self.progress, self.every_s = progress, every_s
        self.started = time.perf_counter()
        self._last = -np.inf

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def fps(self, done: int) -> float:
        return done / self.seconds if self.seconds > 0 else 0.0

    def tick(self, done: int, total: int, final: bool = False) -> bool:
        """True to go on."""
        now = time.perf_counter()
        if self.progress is None or (not final and now - self._last < self.every_s):
            return True
        self._last = now
        fps = self.fps(done)
        left = 0.0 if final else max(0, total - done) / fps if total and fps else None
        return self.progress(Progress(done, total if not final else max(total, done), fps, left)) is not False


def track_video(path: str | Path, detector: Detector, settings: dict[str, Any] | None = None,
                tracker: ByteTrack | None = None, line: LineCounter | Sequence[float] | None = None,
                zones: Sequence[PolygonZone | Sequence[Sequence[float]]] = (), out_video: str | Path | None = None,
                blur_faces: bool | Detector = False, progress: Callable[[Progress], Any] | None = None, *,
                anchor: str = "bottom_center", name: str | None = None, progress_every_s: float = 0.2,
                **caps: Any) -> VideoResult:
    """Detect, track and count through a video file; write it annotated to ``out_video`` (an MP4) when given.

    ``line`` is a :class:`LineCounter` or its ends ``(x1, y1, x2, y2)``; ``zones`` are :class:`PolygonZone` or
    their corners; ``anchor`` is the point of a box they follow when built here. ``blur_faces``: True for
    YuNet, or a face detector. ``progress(Progress)`` is called at most every ``progress_every_s`` and at the
    end, and may return False to stop (a page's Stop button). A refused file raises
    :class:`VideoIntakeError`; a file cut short part-way returns what was done, with ``error`` saying why.
    """
    run = TrackingRun(detector, settings, tracker, line, zones, blur_faces, anchor)
    pace = Pace(progress, progress_every_s)
    done, error, stopped, writer = 0, "", False, None
    with contextlib.ExitStack() as stack:
        container, stream, info = stack.enter_context(open_video(path, name, **caps))
        limits = {k: caps[k] for k in ("max_seconds", "max_frames") if k in caps}
        frames = stack.enter_context(contextlib.closing(decode(container, stream, info, **limits)))
        try:
            for frame in frames:
                _, image = run.step(frame, draw=out_video is not None)
                if image is not None:
                    writer = writer or stack.enter_context(video_writer(out_video, info.fps, *image.shape[1::-1]))
                    writer.write(image)
                done = frame.index + 1
                if not pace.tick(done, info.frames):
                    stopped = True
                    break
        except VideoIntakeError as cut:
            if not getattr(cut, "frames_read", 0):
                raise
            error = str(cut)
    pace.tick(done, info.frames, final=True)
    return VideoResult(info, done, run.rows.columns(), run.line.summary() if run.line else None,
                       [z.summary() for z in run.zones], list(run.line.crossings) if run.line else [],
                       Path(out_video) if writer else None, writer.codec if writer else "", pace.seconds,
                       pace.fps(done), error, stopped, run.notes())
