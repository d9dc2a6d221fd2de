"""Live video: a task run on a camera's newest frame, with frames per second and milliseconds per frame.

A webcam sends 30 frames a second and a detector on 2 cores may manage ten. Queuing the rest would
add a delay that grows every second, so :class:`FrameProcessor` drops a frame that arrives while
another is being processed (the newest frame wins, none waits) and the person always sees the
present. The task and its settings are swapped between two frames without restarting the stream.

A task is one small object: faces with any detector (optionally blurred), people recognised against
a gallery, COCO objects (masks and "keep only people" with YOLOv8n-seg), or a transfer-learning
project's saved model with a bar per class. Models are the registry's shared instances, called
through their own methods, which lock themselves. Nothing here imports Streamlit or WebRTC: the
page hands frames in (PyAV frames through :meth:`FrameProcessor.video_frames`, or RGB arrays).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol, Sequence

import cv2
import numpy as np

from vision_backend import drawing
from vision_backend.boxes import match
from vision_backend.face_detection import DETECTORS as FACE_DETECTORS
from vision_backend.face_recognition import recognise
from vision_backend.intake import encode_jpeg
from vision_backend.model import Detector
from vision_backend.video import Frame, options, regions
from vision_backend.video.pipeline import TrackingRun, default_face_detector

log = logging.getLogger("vision_lab")
TASKS = {"faces": "Faces", "recognition": "Recognise people", "objects": "Objects", "tracking": "Track and count",
         "classes": "Your classes"}
"""The live tasks, by key, with the name the page shows."""
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Seen:
    """What a task made of one frame: the overlay, and one label (and score) per thing found."""

    image: np.ndarray = field(repr=False)
    labels: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()
    """Lines the page shows beside the video (a tracking task's counts)."""

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.labels))


class Task(Protocol):
    def run(self, frame: np.ndarray) -> Seen: ...


def prepare(task: Any) -> None:
    """Load what ``task`` runs (its ``prepare``, when it has one) before the stream sees it."""
    getattr(task, "prepare", lambda: None)()


def load_detector(detector: Detector, settings: dict[str, Any]) -> None:
    """The detector's engine for these settings, loaded now rather than on the stream's first frame."""
    detector.runtime(detector.variant(detector.settings(settings)))


def preload_srtp() -> None:
    """Import aiortc's SRTP binding bound to its own OpenSSL; call before importing aiortc or streamlit-webrtc.

    pylibsrtp links OpenSSL in and exports every one of its symbols. TensorFlow, once imported,
    has put same-named BoringSSL symbols in the process's global scope, and the binding would call
    those: the server crashes (segmentation fault in ``srtp_init``) the first time someone opens
    the live page after any TensorFlow page. RTLD_DEEPBIND makes the binding use its own.
    """
    if "pylibsrtp" in sys.modules:
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import pylibsrtp  # noqa: F401
    finally:
        sys.setdlopenflags(flags)


def rtc_configuration(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """WebRTC's configuration from the ``[live]`` secrets section: no ICE server unless some are listed.

    One machine or a LAN connects over its own addresses; a server reached over the internet needs a
    STUN server, and behind strict NATs a TURN server. An explicit empty list also keeps
    streamlit-webrtc from fetching public ones on its own.
    """
    servers = (section or {}).get("ice_servers", [])
    return {"iceServers": [{**server} for server in servers]}


# ---- the tasks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceTask:
    """Faces with any face detector: boxes and landmarks, or every face blurred or pixelated."""

    detector: Detector
    settings: dict[str, Any] = field(default_factory=dict)
    privacy: str = "none"  # none, blur or pixelate

    def prepare(self) -> None:
        load_detector(self.detector, self.settings)

    def run(self, frame: np.ndarray) -> Seen:
        found = self.detector.detect(frame, **self.settings)
        image = drawing.draw_detections(frame, found) if self.privacy == "none" else \
            drawing.anonymise(frame, found, self.privacy)
        return Seen(image, ("face",) * len(found), tuple(float(s) for s in found.scores))


def similarity(distance: float) -> float:
    """Cosine similarity of two unit vectors from their Euclidean distance (1 = the same, 0 = unrelated)."""
    return 1.0 - distance * distance / 2.0


@dataclass(frozen=True)
class RecognitionTask:
    """People named against a gallery: the nearest enrolled face if within the threshold, else "unknown".

    dlib's network takes about 55 ms a face here, so five faces embedded on every frame cap the stream
    near 3 frames a second. A face that stays where it was (IoU >= 0.5 with a face of the last frame)
    keeps its embedding; new faces are embedded at once and ``recheck`` of the others (the longest
    unchecked first) again on each frame, so every name is re-checked every few frames. ``recheck=0``
    embeds every face on every frame, as the photo page does.
    """

    embedder: Any  # a FaceEmbedder
    names: tuple[str, ...]
    gallery: np.ndarray
    threshold: float
    finder: str = field(default_factory=recognise.face_finder)
    finder_settings: dict[str, Any] = field(default_factory=dict)
    recheck: int = 1
    margin: float = 0.0
    """Within this of the threshold a face is uncertain: its nearest person with a question mark, never named."""
    min_face: float = 0.0
    """A face smaller than this (pixels) is too small to tell."""
    _last: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_gallery(cls, embedder: Any, gallery: Any, threshold: float, finder: str | None = None,
                     finder_settings: dict[str, Any] | None = None, recheck: int = 1, margin: float = 0.0,
                     min_face: float = 0.0) -> "RecognitionTask":
        """The person's gallery read once (its embeddings for this embedder), not once a frame."""
        names, vectors = gallery.embeddings(embedder.name, embedder.dimensions)
        return cls(embedder, tuple(names), vectors, float(threshold), finder or recognise.face_finder(),
                   dict(finder_settings or {}), recheck, float(margin), float(min_face))

    def prepare(self) -> None:
        load_detector(FACE_DETECTORS[self.finder], self.finder_settings)
        self.embedder.runtime()

    def run(self, frame: np.ndarray) -> Seen:
        if self.recheck:
            found = FACE_DETECTORS[self.finder].detect(frame, **self.finder_settings)
            vectors = self._vectors(frame, found)
        else:
            faces = recognise.analyse(self.embedder, frame, self.finder, **self.finder_settings)
            found, vectors = faces.detections, faces.vectors
        matches = recognise.recognise(vectors, list(self.names), self.gallery, self.threshold, self.margin,
                                      recognise.face_sides(found), self.min_face)
        scores = tuple(similarity(m.distance) if np.isfinite(m.distance) else 0.0 for m in matches)
        captions = [m.caption for m in matches]
        image = drawing.draw_detections(frame, found, show_scores=False, show_landmarks=False, captions=captions)
        return Seen(image, tuple(m.name for m in matches), scores)

    def _vectors(self, frame: np.ndarray, found: Any) -> np.ndarray:
        """Each face's embedding: carried over from the same place in the last frame, or computed now
        (new faces, and the ``recheck`` longest unchecked)."""
        last = self._last
        vectors = np.zeros((len(found), self.embedder.dimensions), np.float32)
        ages = np.full(len(found), np.inf)
        if last and len(found) and len(last["boxes"]):
            track, _ = match(found.boxes, last["boxes"], 0.5)
            kept = track >= 0
            vectors[kept], ages[kept] = last["vectors"][track[kept]], last["ages"][track[kept]] + 1
        todo = np.union1d(np.flatnonzero(~np.isfinite(ages)), np.argsort(-ages, kind="stable")[:self.recheck])
        if len(todo):
            vectors[todo] = self.embedder.embed(frame, found[todo])[0]
            ages[todo] = 0
        last.update(boxes=found.boxes, vectors=vectors, ages=ages)
        return vectors


def object_detectors(space: Any = None) -> dict[str, Detector]:
    """What the live camera offers for objects: the registry's COCO detectors, then the fast detectors a person
    trained on their own boxes (each detection project's newest, from ``space``, a workspace). R-CNN's are left
    out: selective search takes about a second a frame."""
    from vision_backend.object_detection import DETECTORS

    return {**DETECTORS, **(space.own_detectors("fast") if space is not None else {})}


@dataclass(frozen=True)
class ObjectTask:
    """COCO objects: boxes and labels, masks when the model has them, and "keep only people" (masks only)."""

    detector: Detector
    settings: dict[str, Any] = field(default_factory=dict)
    keep_people: bool = False
    mask_opacity: float = 0.5

    def prepare(self) -> None:
        load_detector(self.detector, self.settings)

    def run(self, frame: np.ndarray) -> Seen:
        found = self.detector.detect(frame, **self.settings)
        image = frame
        if self.keep_people and found.masks is not None:
            found = found[np.asarray(found.names, dtype=object) == "person"] if len(found) else found
            image = drawing.keep_only(frame, found, "person", blur=41)
        if found.masks is not None:
            image = drawing.draw_masks(image, found, self.mask_opacity)
        image = drawing.draw_detections(image, found, show_labels=True)
        return Seen(image, tuple(found.names), tuple(float(s) for s in found.scores))


class LiveRun(TrackingRun):
    """The Video page's tracking run on a camera: no per-frame rows are kept (a stream has no end), and the counts
    are drawn at the top left by the task, clear of the rate at the top right."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.rows = NoRows()

    def panel(self) -> list[str]:
        return []

    def counts(self) -> list[str]:
        """Per class each way across the line, each zone's occupancy and entries (the video's panel)."""
        return TrackingRun.panel(self)


class NoRows:
    """Where a live run's rows go: nowhere."""

    def add(self, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class TrackTask:
    """Objects followed from frame to frame (ByteTrack) with ids and trails, counted across a line and in zones,
    faces optionally blurred along their tracks: the Video page's run fed each processed frame with its time.

    The line and zones are fractions of the frame (0 to 1), since a camera's size is known only at its first
    frame; the run is built then (and again if the size changes). A new task (new settings) counts afresh.
    Frames dropped while one is processed are simply not seen: the tracker's Kalman filter bridges them.
    """

    detector: Detector
    settings: dict[str, Any] = field(default_factory=dict)
    tracking: dict[str, Any] = field(default_factory=dict)
    """Tracking settings (:mod:`vision_backend.video.options`); their defaults where missing."""
    line: tuple[float, float, float, float] | None = (0.0, 0.5, 1.0, 0.5)
    zones: tuple[tuple[tuple[float, float], ...], ...] = ()
    blur_faces: bool = False
    _state: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def prepare(self) -> None:
        load_detector(self.detector, self.settings)
        if self.blur_faces:
            load_detector(default_face_detector(), {})

    def continues(self, other: Any) -> bool:
        """True when ``other`` is a tracking task with the same choices (its tracks and counts can go on)."""
        fields = ("detector", "settings", "tracking", "line", "zones", "blur_faces")
        return isinstance(other, TrackTask) and all(getattr(self, f) == getattr(other, f) for f in fields)

    def run(self, frame: np.ndarray) -> Seen:
        run, state = self._run_for(frame.shape), self._state
        index = state["frames"]
        state["frames"] += 1
        tracked, image = run.step(Frame(index, time.perf_counter() - state["start"], frame))
        counts = run.counts()
        image = drawing.draw_panel(image, counts, corner="top_left")
        return Seen(image, tuple(tracked.names), tuple(float(s) for s in tracked.scores), tuple(counts))

    def _run_for(self, shape: tuple[int, ...]) -> LiveRun:
        """This frame size's run: the line and zones in its pixels, a fresh tracker."""
        height, width = shape[:2]
        state = self._state
        if state.get("size") != (width, height):
            values = options.chosen(self.tracking)
            line = regions.scaled_line(self.line, width, height) if self.line else None
            zones = [regions.scaled_zone(zone, width, height) for zone in self.zones]
            run = LiveRun(self.detector, self.settings, options.tracker(values), line, zones, self.blur_faces,
                          values["anchor"])
            state.update(size=(width, height), frames=0, start=time.perf_counter(), run=run)
        return state["run"]


@dataclass(frozen=True)
class ClassTask:
    """A transfer-learning project's saved model (raw RGB 0..255 in): a bar per class, Teachable Machine's
    live preview. The model is the one every page shares (``transfer.export.loaded``)."""

    saved: Any  # a SavedModel
    classes: tuple[str, ...]

    @classmethod
    def from_project(cls, project: Any, stem: str) -> "ClassTask":
        saved = project.models.get(stem)
        return cls(saved, tuple(saved.meta["classes"]))

    def prepare(self) -> None:
        from vision_backend.transfer.export import loaded

        loaded(self.saved)

    def run(self, frame: np.ndarray) -> Seen:
        from vision_backend.transfer.export import saved_probabilities

        probabilities = saved_probabilities(self.saved, [frame])[0]
        return Seen(class_bars(frame, self.classes, probabilities), self.classes,
                    tuple(float(p) for p in probabilities))


# ---- overlays -----------------------------------------------------------------------------------
def class_bars(frame: np.ndarray, classes: Sequence[str], probabilities: np.ndarray, width: int = 220) -> np.ndarray:
    """A panel at the bottom left: one bar per class (at most 8, best first), its length the probability."""
    out = frame.copy()
    order = np.argsort(-np.asarray(probabilities))[:8]
    row, left = 22, 8
    top = out.shape[0] - row * len(order) - 8
    for rank, k in enumerate(order):
        y = top + rank * row
        share = float(probabilities[k])
        cv2.rectangle(out, (left, y), (left + width, y + row - 4), (30, 30, 30), -1)
        cv2.rectangle(out, (left, y), (left + round(width * share), y + row - 4), drawing.colour(int(k)), -1)
        cv2.putText(out, f"{classes[k]} {share:.0%}", (left + 4, y + row - 9), FONT, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out


def draw_rate(image: np.ndarray, fps: float, ms: float, note: str = "") -> np.ndarray:
    """Frames per second and milliseconds per frame written at the top right (on ``image`` itself)."""
    text = f"{fps:.1f} FPS  {ms:.0f} ms" + (f"  {note}" if note else "")
    (width, height), base = cv2.getTextSize(text, FONT, 0.55, 1)
    left = max(0, image.shape[1] - width - 12)
    cv2.rectangle(image, (left, 0), (image.shape[1], height + base + 10), (0, 0, 0), -1)
    cv2.putText(image, text, (left + 6, height + 5), FONT, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return image


# ---- recording examples -----------------------------------------------------------------------
class Recorder:
    """Adds frames to one class of a project, a few a second, while the person holds record."""

    def __init__(self, project: Any, label: str, per_second: float = 3.0):
        self.project, self.label, self.gap = project, label, 1.0 / per_second
        self.added = 0
        self._last = -float("inf")

    def offer(self, frame: np.ndarray, now: float) -> bool:
        """Keep ``frame`` if the last one kept is old enough; True when it was added."""
        if now - self._last < self.gap:
            return False
        self._last = now
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"
        new = self.project.add_example(self.label, encode_jpeg(frame), f"live_{stamp}.jpg")
        self.added += int(new)
        return new


# ---- the processor ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    """What the page shows beside the video: rates over the window, totals, and the newest frame's finds."""

    fps: float
    ms: float
    processed: int
    dropped: int
    counts: dict[str, int]
    seen: Seen | None
    recorded: int = 0
    error: str = ""


class FrameProcessor:
    """One stream's processor: the newest frame wins, the task changes between frames, rates over a window.

    ``submit`` never waits: a frame that arrives while another is being processed is dropped and
    counted, so no frame is ever processed late. ``task`` (and ``recorder``) may be replaced from
    another thread at any time; a frame in progress finishes with the task it started with.
    """

    def __init__(self, task: Task | None = None, window: int = 30, stale_s: float = 2.0):
        self.task = task
        self.recorder: Recorder | None = None
        self.window, self.stale_s = window, stale_s
        self.processed = self.dropped = 0
        self.latest: tuple[np.ndarray, Seen] | None = None
        """The newest (frame as it came, what the task made of it)."""
        self.error = ""
        self._busy = threading.Lock()
        self._count = threading.Lock()
        self._done: deque[tuple[float, float]] = deque(maxlen=window)  # (started, finished) per frame

    def configure(self, task: Task | None) -> None:
        """Use ``task`` from the next frame on: new settings without restarting the stream.

        Its models are loaded first, in the caller's thread, so the stream never stalls on a load;
        the rates start afresh, as they are the new settings' rates. A task that carries on the running one
        (a tracking task with the same settings: the page reran) leaves it running, with its counts.
        """
        if getattr(task, "continues", None) is not None and task.continues(self.task):
            return
        prepare(task)
        with self._count:
            self._done.clear()
        self.task = task

    def submit(self, frame: np.ndarray) -> Seen | None:
        """Process ``frame`` now, or drop it (None) if another frame is being processed."""
        if not self._busy.acquire(blocking=False):
            self.drop()
            return None
        try:
            return self._process(frame)
        finally:
            self._busy.release()

    def drop(self, count: int = 1) -> None:
        with self._count:
            self.dropped += count

    def _process(self, frame: np.ndarray) -> Seen:
        started = time.perf_counter()
        seen = self._run(self.task, frame)
        recorder = self.recorder
        if recorder is not None:
            self._record(recorder, frame)
        finished = time.perf_counter()
        with self._count:
            self._done.append((started, finished))
            self.processed += 1
        fps, ms = self.rates(finished)
        note = f"REC {recorder.label}: {recorder.added}" if recorder is not None else ""
        draw_rate(seen.image, fps, ms, note)
        self.latest = (frame, seen)
        return seen

    def _run(self, task: Task | None, frame: np.ndarray) -> Seen:
        """The task's overlay (always a new image: the frame stays as it came, for a snapshot); a
        failure is logged and written on the frame instead of ending the stream."""
        if task is None:
            return Seen(frame.copy())
        try:
            seen = task.run(frame)
            self.error = ""
            return seen if seen.image is not frame else replace(seen, image=frame.copy())
        except Exception as error:  # noqa: BLE001 — one bad frame must not end the stream
            log.exception("live task failed")
            self.error = str(error) or type(error).__name__
            image = frame.copy()
            cv2.putText(image, self.error[:70], (8, image.shape[0] - 12), FONT, 0.5, (255, 80, 80), 1, cv2.LINE_AA)
            return Seen(image)

    def _record(self, recorder: Recorder, frame: np.ndarray) -> None:
        try:
            recorder.offer(frame, time.time())
        except Exception as error:  # noqa: BLE001 — a full disk or a deleted project stops recording only
            log.exception("live recording failed")
            self.error, self.recorder = f"Recording stopped: {error}", None

    def rates(self, now: float | None = None) -> tuple[float, float]:
        """(frames per second, mean milliseconds per frame) over the window; 0 FPS once frames stop coming."""
        with self._count:
            done = list(self._done)
        now = time.perf_counter() if now is None else now
        if not done:
            return 0.0, 0.0
        ms = 1000 * float(np.mean([end - start for start, end in done]))
        span = done[-1][1] - done[0][0]
        fresh = now - done[-1][1] <= self.stale_s
        return (len(done) / span if fresh and span > 0 else 0.0), ms

    def stats(self) -> Stats:
        fps, ms = self.rates()
        latest = self.latest
        seen = latest[1] if latest else None
        recorder = self.recorder
        return Stats(fps, ms, self.processed, self.dropped, seen.counts() if seen else {}, seen,
                     recorder.added if recorder else 0, self.error)

    def snapshot(self) -> np.ndarray | None:
        """The newest frame as the camera gave it (no overlay), for the photo pages."""
        latest = self.latest
        return None if latest is None else latest[0].copy()

    def video_frames(self, frames: Sequence[Any]) -> list[Any]:
        """The WebRTC callback's work on the PyAV frames that arrived since the last call: the newest
        is processed and the rest dropped; the overlay goes back (the last one while another is busy)."""
        self.drop(len(frames) - 1)
        newest = frames[-1]
        seen = self.submit(newest.to_ndarray(format="rgb24"))
        if seen is None:
            latest = self.latest
            if latest is None:
                return [newest]
            seen = latest[1]
        return [video_frame(seen.image)]


def video_frame(image: np.ndarray) -> Any:
    """An RGB overlay as a PyAV frame in yuv420p, the VP8 encoder's own format.

    The stream sends 30 frames a second, the newest overlay again between processed frames; handed
    over as RGB, each of those would be converted by the encoder again (1 ms each here), where
    OpenCV converts it once in 0.3 ms (the same BT.601 video range).
    """
    import av

    height, width = image.shape[:2]
    if height % 2 or width % 2:
        return av.VideoFrame.from_ndarray(image, format="rgb24")
    return av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
