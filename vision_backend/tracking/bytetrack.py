"""ByteTrack (Zhang et al., ECCV 2022): multi-object tracking by associating every detection box, weak ones too.

Each frame: every track's Kalman filter predicts its box (:mod:`~vision_backend.tracking.kalman`); the boxes
scoring at least ``track_threshold`` are matched to the tracks (lost ones too, which are revived) by
``linear_sum_assignment`` on their ``iou``; the tracks left over then get a second chance with the weak boxes
(``low_threshold`` to ``track_threshold``), which is what keeps a half-hidden or blurred object's track alive
where a detector's usual threshold would drop it; tracks still unmatched become lost and are forgotten after
``lost_frames``. A strong box nobody took starts a new track, which gets its id (and is shown) only when a box
matches it again the next frame, so a one-frame false positive never gets an id; on a tracker's first frame
tracks start confirmed, as in ByteTrack.

Output rows: only the boxes of this frame that belong to a confirmed track, each with its ``tracker_id``
(ids count from 1 per tracker; an unconfirmed box is left out, never given -1), in the input's order.

``class_aware`` (default): a track only takes boxes of its own class, so a car's track never takes a person's
box. Switch it off when the detector's class flickers on one object (NanoDet-m sees a car from above as
"car", "cell phone" or "bus" from frame to frame): tracks then take any class, the duplicate boxes per-class NMS
leaves on one object (one per class) are merged first by class-agnostic NMS, and each row's label is its
track's label by vote (scores summed per class over its life), as ultralytics' and supervision's trackers do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from vision_backend import boxes as box_ops
from vision_backend.detections import Detections
from vision_backend.errors import SettingError
from vision_backend.model import Param
from vision_backend.tracking import kalman

PARAMS: tuple[Param, ...] = (
    Param("track_threshold", "Track threshold", 0.35, 0.05, 0.95, 0.05,
          help="Boxes scoring at least this are matched first and can start a track."),
    Param("low_threshold", "Low-score threshold", 0.1, 0.01, 0.9, 0.01,
          help="Weaker boxes, down to this, only keep an existing track alive (ByteTrack's second stage)."),
    Param("new_track_threshold", "New track threshold", 0.45, 0.05, 1.0, 0.05,
          help="A box nobody took starts a track only when it scores at least this (ByteTrack: track + 0.1)."),
    Param("match_iou", "Match IoU", 0.2, 0.05, 0.95, 0.05,
          help="A box joins a track only when it overlaps the track's predicted box by at least this IoU."),
    Param("lost_frames", "Keep lost tracks (frames)", 30, 1, 600, 1,
          help="How long a track nobody matched waits to be revived: about a second of video."),
    Param("class_aware", "One class per track", True,
          help="On: a car's track never takes a person's box. Off: for detectors whose class flickers."),
)
SECOND_STAGE_IOU = 0.5
"""ByteTrack's match IoU for weak boxes: stricter, since a weak box is more often background."""
UNCONFIRMED_IOU = 0.3
"""ByteTrack's match IoU for a track seen once (its velocity is still unknown)."""
AGNOSTIC_NMS_IOU = 0.7
"""Without class awareness, boxes of other classes overlapping a better one by more than this are one object."""
DUPLICATE_IOU = 0.85
"""A lost track and a live one this close are one object: the younger goes (ByteTrack's rule)."""


@dataclass(eq=False)
class Track:
    """One object followed over frames: its Kalman state, its class and what its boxes said."""

    mean: np.ndarray
    covariance: np.ndarray
    box: np.ndarray
    """The box of ``mean`` (xyxy), kept beside it so matching needs no conversion per track."""
    label: int
    score: float
    first_frame: int
    last_frame: int
    id: int = -1
    lost: bool = False
    votes: dict[int, float] = field(default_factory=dict)

    @property
    def confirmed(self) -> bool:
        return self.id >= 0

    def vote(self, label: int, score: float) -> None:
        self.votes[label] = self.votes.get(label, 0.0) + score

    @property
    def voted_label(self) -> int:
        return max(self.votes, key=self.votes.__getitem__) if self.votes else self.label


Pairs = list[tuple[Track, int]]


class ByteTrack:
    """A ByteTrack tracker: ``update(detections)`` once a frame, in order; one instance per video or stream."""

    params: tuple[Param, ...] = PARAMS

    def __init__(self, track_threshold: float = 0.35, low_threshold: float = 0.1, new_track_threshold: float = 0.45,
                 match_iou: float = 0.2, lost_frames: int = 30, class_aware: bool = True):
        self.track_threshold = float(track_threshold)
        self.low_threshold = min(float(low_threshold), self.track_threshold)
        self.new_track_threshold = max(float(new_track_threshold), self.track_threshold)
        self.match_iou = float(match_iou)
        self.lost_frames = int(lost_frames)
        self.class_aware = bool(class_aware)
        self.reset()

    @classmethod
    def from_settings(cls, overrides: dict[str, Any] | None = None) -> ByteTrack:
        """A tracker with the defaults and ``overrides`` (a page's widgets), each checked against its Param."""
        return cls(**settings(overrides))

    def reset(self) -> None:
        """Forget every track (a new video); ids start again from 1."""
        self.tracks: list[Track] = []
        self.frame = 0
        self.next_id = 1
        self.class_names: tuple[str, ...] = ("object",)

    def update(self, detections: Detections) -> Detections:
        """This frame's boxes that belong to a confirmed track, with ``tracker_id`` set."""
        self.frame += 1
        self.class_names = detections.class_names
        found = self._candidates(detections)
        self._predict()
        strong = np.flatnonzero(found.scores >= self.track_threshold)
        weak = np.flatnonzero(found.scores < self.track_threshold)
        confirmed = [t for t in self.tracks if t.confirmed]
        first, left, strong_left = self._associate(confirmed, found, strong, self.match_iou)
        second, unmatched, _ = self._associate([t for t in left if not t.lost], found, weak, SECOND_STAGE_IOU)
        for track in unmatched:
            track.lost = True
        newcomers = [t for t in self.tracks if not t.confirmed]
        third, stale, strong_left = self._associate(newcomers, found, strong_left, UNCONFIRMED_IOU)
        self._correct(first + second + third, found)
        for track, _ in third:
            self._confirm(track)
        born = self._start(found, strong_left)
        self._forget(stale)
        return self._rows(found, first + second + third + born)

    def lost(self, within: int) -> Detections:
        """The predicted boxes of confirmed tracks unmatched for 1 to ``within`` frames, with their ids: where
        an object probably still is (a face to keep blurred through a missed frame)."""
        gone = [t for t in self.tracks if t.confirmed and 0 < self.frame - t.last_frame <= within]
        boxes = np.asarray([t.box for t in gone]).reshape(-1, 4)
        rows = Detections(boxes, [t.score for t in gone], [t.voted_label for t in gone], self.class_names)
        return rows.with_ids([t.id for t in gone])

    # ---- the steps of a frame ----------------------------------------------------------------------
    def _candidates(self, detections: Detections) -> Detections:
        found = detections.finite().with_area()
        found = found[found.scores >= self.low_threshold]
        if not self.class_aware and len(found) > 1:
            found = found[agnostic_nms(found)]
        return found

    def _predict(self) -> None:
        if not self.tracks:
            return
        mean = np.stack([t.mean for t in self.tracks])
        covariance = np.stack([t.covariance for t in self.tracks])
        mean[[t.lost for t in self.tracks], 7] = 0  # ByteTrack: a lost box stops growing or shrinking
        mean, covariance = kalman.predict(mean, covariance)
        for track, m, c, b in zip(self.tracks, mean, covariance, kalman.xyah_to_xyxy(mean)):
            track.mean, track.covariance, track.box = m, c, b

    def _associate(self, tracks: list[Track], found: Detections, candidates: np.ndarray,
                   min_iou: float) -> tuple[Pairs, list[Track], np.ndarray]:
        """Tracks matched one-to-one with the candidate boxes (``linear_sum_assignment`` on IoU, pairs under
        ``min_iou`` or of two classes when class-aware forbidden); returns pairs, tracks left, boxes left."""
        if not tracks or not len(candidates):
            return [], tracks, candidates
        overlap = box_ops.iou(np.stack([t.box for t in tracks]), found.boxes[candidates])
        if self.class_aware:
            overlap *= np.asarray([t.label for t in tracks])[:, None] == found.labels[candidates][None, :]
        gain = np.where(overlap >= min_iou, overlap - min_iou + 1e-6, 0.0)  # as lapjv's cost limit: 1 - min_iou
        rows, cols = linear_sum_assignment(gain, maximize=True)
        kept = gain[rows, cols] > 0
        rows, cols = rows[kept], cols[kept]
        pairs = [(tracks[r], int(candidates[c])) for r, c in zip(rows.tolist(), cols.tolist())]
        taken = set(rows.tolist())
        left = [t for i, t in enumerate(tracks) if i not in taken]
        return pairs, left, np.delete(candidates, cols)

    def _correct(self, pairs: Pairs, found: Detections) -> None:
        """Each matched track's Kalman update by its box (all in one batch), and what the box said."""
        if not pairs:
            return
        index = [i for _, i in pairs]
        mean, covariance = kalman.update(np.stack([t.mean for t, _ in pairs]),
                                         np.stack([t.covariance for t, _ in pairs]),
                                         kalman.xyxy_to_xyah(found.boxes[index]))
        for (track, i), m, c, b in zip(pairs, mean, covariance, kalman.xyah_to_xyxy(mean)):
            track.mean, track.covariance, track.box = m, c, b
            track.last_frame, track.lost, track.score = self.frame, False, float(found.scores[i])
            track.vote(int(found.labels[i]), track.score)

    def _confirm(self, track: Track) -> None:
        track.id = self.next_id
        self.next_id += 1

    def _start(self, found: Detections, candidates: np.ndarray) -> Pairs:
        """New tracks from the strong boxes nobody took; on the first frame they are confirmed at once."""
        candidates = candidates[found.scores[candidates] >= self.new_track_threshold]
        if not len(candidates):
            return []
        means, covariances = kalman.initiate(kalman.xyxy_to_xyah(found.boxes[candidates]))
        born = []
        for i, m, c, b in zip(candidates, means, covariances, kalman.xyah_to_xyxy(means)):
            label, score = int(found.labels[i]), float(found.scores[i])
            track = Track(m, c, b, label, score, self.frame, self.frame, votes={label: score})
            if self.frame == 1:
                self._confirm(track)
            self.tracks.append(track)
            born.append((track, int(i)))
        return born

    def _forget(self, stale: list[Track]) -> None:
        """Drop unconfirmed tracks nobody matched, lost tracks past ``lost_frames`` and duplicates."""
        gone = {id(t) for t in stale}
        gone |= {id(t) for t in self.tracks if t.lost and self.frame - t.last_frame > self.lost_frames}
        gone |= self._duplicates()
        self.tracks = [t for t in self.tracks if id(t) not in gone]

    def _duplicates(self) -> set[int]:
        """Of a live and a lost confirmed track (of one class, when class-aware) whose boxes overlap by more than
        ``DUPLICATE_IOU``, the younger."""
        live = [t for t in self.tracks if t.confirmed and not t.lost]
        lost = [t for t in self.tracks if t.confirmed and t.lost]
        if not live or not lost:
            return set()
        overlap = box_ops.iou(np.stack([t.box for t in live]), np.stack([t.box for t in lost]))
        if self.class_aware:  # a person standing where a car was lost is no duplicate of it
            overlap *= np.asarray([t.label for t in live])[:, None] == np.asarray([t.label for t in lost])[None, :]
        younger = set()
        for a, b in zip(*np.nonzero(overlap > DUPLICATE_IOU)):
            p, q = live[a], lost[b]
            age_p, age_q = p.last_frame - p.first_frame, q.last_frame - q.first_frame
            younger.add(id(q) if age_p > age_q else id(p))
        return younger

    def _rows(self, found: Detections, pairs: Pairs) -> Detections:
        """The matched boxes of confirmed tracks, in the input's order, each with its track's id (and, when
        not class-aware, its track's voted label)."""
        alive = {id(t) for t in self.tracks}
        shown = sorted(((i, t) for t, i in pairs if t.confirmed and id(t) in alive), key=lambda pair: pair[0])
        rows = found[np.asarray([i for i, _ in shown], np.int64)].with_ids([t.id for _, t in shown])
        if not self.class_aware:
            rows = replace(rows, labels=np.asarray([t.voted_label for _, t in shown], np.int64))
        return rows


def agnostic_nms(found: Detections) -> np.ndarray:
    """Indices (in order) of the boxes greedy NMS keeps whatever their class: one ``iou`` matrix, then the best
    box drops those overlapping it by more than ``AGNOSTIC_NMS_IOU`` (a detector's per-class NMS leaves one box
    per class on an object whose class it is unsure of)."""
    overlap = box_ops.iou(found.boxes, found.boxes) > AGNOSTIC_NMS_IOU
    dropped = np.zeros(len(found), bool)
    for i in np.argsort(-found.scores, kind="stable").tolist():
        if not dropped[i]:
            row = overlap[i].copy()
            row[i] = False
            dropped |= row
    return np.flatnonzero(~dropped)


def settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tracker's defaults with ``overrides`` applied, each checked against its :class:`Param`."""
    by_name = {p.name: p for p in PARAMS}
    chosen = {p.name: p.default for p in PARAMS}
    for key, value in (overrides or {}).items():
        if key not in by_name:
            raise SettingError(f"ByteTrack has no setting {key!r}; it has {', '.join(by_name)}")
        chosen[key] = by_name[key].coerce(value)
    return chosen
