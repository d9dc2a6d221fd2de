"""How good a detector trained on your own boxes is, measured the way COCO measures it.

Per class, detections from every photo are ranked by score and matched greedily to the true boxes
of their photo: each detection takes the unmatched true box it overlaps most, if that IoU reaches
the threshold, and each true box is taken once (so a second box on the same object is a false
alarm). Precision is made monotone (the precision envelope), read at COCO's 101 recall points
0, 0.01, ..., 1 and averaged: that is AP. ``ap50`` is AP at IoU 0.5 (PASCAL VOC's threshold);
``ap`` averages the 10 thresholds 0.50, 0.55, ..., 0.95 (COCO's headline "AP", which rewards tight
boxes). As in ``pycocotools``' COCOeval: at most 100 detections per photo and class count, a class
with no true box has no AP and is left out of the means, a class never detected has AP 0.

For a page to draw: each class's precision-recall curve at IoU 0.5, and each photo's misses (true
boxes nothing found) and false alarms (detections that found nothing: a duplicate, the wrong
class, a box too loose, or background) among detections scoring at least ``score_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from vision_backend.boxes import iou
from vision_backend.detections import Detections
from vision_backend.own_detection.annotations import LabelledPhoto

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""COCO's 0.50:0.05:0.95."""
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
"""COCO's 101 recall points at which the precision envelope is read."""
MAX_DETECTIONS = 100
"""Per photo and class, as COCOeval's ``maxDets`` for AP."""
POOR_BOX_IOU = 0.1
"""A false alarm overlapping a true box of its class at least this much is a box too loose, not background."""


@dataclass(frozen=True, eq=False)  # these hold numpy arrays: equal by identity
class PrecisionRecall:
    """A class's curve at IoU 0.5: one point per detection in score order, and COCO's interpolated 101 points."""

    recall: np.ndarray
    precision: np.ndarray
    scores: np.ndarray
    interpolated: np.ndarray
    recall_points: np.ndarray = field(default_factory=RECALL_POINTS.copy)


@dataclass(frozen=True, eq=False)
class ClassResult:
    """One class: its true boxes and detections, AP at IoU 0.5 and over 0.50:0.95 (NaN with no true box)."""

    name: str
    boxes: int
    detections: int
    ap50: float
    ap: float
    ap_by_iou: np.ndarray
    recall50: float
    curve: PrecisionRecall


@dataclass(frozen=True, eq=False)
class Miss:
    """A true box no detection (scoring at least the threshold) found at IoU 0.5."""

    box: np.ndarray
    label: str


@dataclass(frozen=True, eq=False)
class FalseAlarm:
    """A detection that found no true box at IoU 0.5, and what it is: ``duplicate``, ``wrong class``,
    ``poor box`` or ``background``; ``iou`` and ``other`` say with which true box."""

    box: np.ndarray
    label: str
    score: float
    kind: str
    iou: float = 0.0
    other: str = ""

    @property
    def why(self) -> str:
        """The reason in a few words, for a page's caption."""
        return {"duplicate": f"a second box on a {self.label} already found (IoU {self.iou:.2f})",
                "wrong class": f"on a {self.other}, not a {self.label} (IoU {self.iou:.2f})",
                "poor box": f"too loose on a {self.label} (IoU {self.iou:.2f} < 0.5)",
                "background": "nothing there"}[self.kind]


@dataclass(frozen=True, eq=False)
class PhotoErrors:
    """One photo's hits, misses and false alarms at IoU 0.5 among detections scoring at least the threshold."""

    name: str
    hits: int
    misses: tuple[Miss, ...]
    false_alarms: tuple[FalseAlarm, ...]


@dataclass(frozen=True, eq=False)
class DetectionEvaluation:
    """Per-class results, their means (COCO's AP50 and AP), and every photo's errors to draw."""

    classes: tuple[ClassResult, ...]
    map50: float
    map: float
    photos: tuple[PhotoErrors, ...]
    score_threshold: float

    def result(self, name: str) -> ClassResult:
        return next(c for c in self.classes if c.name == name)

    @property
    def precision(self) -> float:
        """At the score threshold and IoU 0.5, over every photo (1.0 when nothing was detected)."""
        hits = sum(p.hits for p in self.photos)
        found = hits + sum(len(p.false_alarms) for p in self.photos)
        return hits / found if found else 1.0

    @property
    def recall(self) -> float:
        """At the score threshold and IoU 0.5, over every photo (1.0 when there is no true box)."""
        hits = sum(p.hits for p in self.photos)
        boxes = hits + sum(len(p.misses) for p in self.photos)
        return hits / boxes if boxes else 1.0

    def table(self) -> list[dict[str, Any]]:
        """One row a class, for a page's table."""
        return [{"class": c.name, "boxes": c.boxes, "detections": c.detections, "AP50": c.ap50, "AP": c.ap,
                 "recall@0.5": c.recall50} for c in self.classes]


def coco_match(found: np.ndarray, truth: np.ndarray, thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """COCOeval's greedy matching of one photo's detections of one class (sorted by score, best first) to its
    true boxes: ``(len(thresholds), len(found))``, the index of the true box each takes, or -1.

    Each detection takes the still-unmatched true box it overlaps most with IoU >= the threshold (of equal
    overlaps, the last, as COCOeval's loop does).
    """
    overlaps = iou(found, truth)
    matched = np.full((len(thresholds), len(found)), -1, np.int64)
    for t, threshold in enumerate(thresholds):
        taken = np.zeros(len(truth), bool)
        for d in range(len(found)):
            candidates = np.flatnonzero(~taken & (overlaps[d] >= min(threshold, 1 - 1e-10)))
            if candidates.size:
                values = overlaps[d, candidates]
                best = candidates[np.flatnonzero(values == values.max())[-1]]
                matched[t, d], taken[best] = best, True
    return matched


def interpolated_precision(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """COCO's precision at :data:`RECALL_POINTS`: the envelope (best precision at this recall or beyond)
    read at the first detection reaching each recall point; 0 past the last recall reached."""
    envelope = np.maximum.accumulate(np.asarray(precision, np.float64)[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    out = np.zeros(len(RECALL_POINTS))
    inside = at < len(recall)
    out[inside] = envelope[at[inside]]
    return out


@dataclass(frozen=True, eq=False)
class _Pair:
    """One photo's boxes of one class: the true ones, and the detections (best first, at most 100) matched."""

    truth: np.ndarray
    found: np.ndarray
    scores: np.ndarray
    matched: np.ndarray


def _pair(truth: np.ndarray, found: np.ndarray, scores: np.ndarray, max_detections: int) -> _Pair:
    order = np.argsort(-scores, kind="mergesort")[:max_detections]
    found, scores = found[order], scores[order]
    return _Pair(truth, found, scores, coco_match(found, truth))


def _class_result(name: str, pairs: list[_Pair]) -> ClassResult:
    """COCOeval's accumulate for one class: detections of every photo ranked by score, cumulative hits and false
    alarms, AP at each threshold from the interpolated precision."""
    boxes = sum(len(p.truth) for p in pairs)
    scores = np.concatenate([p.scores for p in pairs]) if pairs else np.zeros(0)
    matched = np.concatenate([p.matched for p in pairs], axis=1) if pairs else np.zeros((len(IOU_THRESHOLDS), 0))
    order = np.argsort(-scores, kind="mergesort")
    scores, matched = scores[order], matched[:, order]
    hits = np.cumsum(matched >= 0, axis=1).astype(np.float64)
    alarms = np.cumsum(matched < 0, axis=1).astype(np.float64)
    recall = hits / boxes if boxes else np.full_like(hits, np.nan)
    precision = hits / (hits + alarms + np.spacing(1))
    curves = (np.stack([interpolated_precision(r, p) for r, p in zip(recall, precision)]) if boxes
              else np.full((len(IOU_THRESHOLDS), len(RECALL_POINTS)), np.nan))
    ap_by_iou = curves.mean(axis=1)
    recall50 = (float(recall[0, -1]) if len(scores) else 0.0) if boxes else float("nan")
    curve = PrecisionRecall(recall[0], precision[0], scores, curves[0])
    return ClassResult(name, boxes, len(scores), float(ap_by_iou[0]), float(ap_by_iou.mean()), ap_by_iou,
                       recall50, curve)


def _false_alarm(box: np.ndarray, label: str, score: float, pair: _Pair, others: list[tuple[str, np.ndarray]]
                 ) -> FalseAlarm:
    """What an unmatched detection is: on a true box already taken (duplicate), on another class's box, too loose
    on a box of its class, or on nothing."""
    same = iou(box, pair.truth)[0] if len(pair.truth) else np.zeros(0)
    if same.size and same.max() >= IOU_THRESHOLDS[0]:
        return FalseAlarm(box, label, score, "duplicate", float(same.max()), label)
    other = [(float(iou(box, boxes)[0].max()), name) for name, boxes in others if len(boxes)]
    best = max(other, default=(0.0, ""))
    if best[0] >= IOU_THRESHOLDS[0]:
        return FalseAlarm(box, label, score, "wrong class", *best)
    if same.size and same.max() >= POOR_BOX_IOU:
        return FalseAlarm(box, label, score, "poor box", float(same.max()), label)
    return FalseAlarm(box, label, score, "background")


def _photo_errors(name: str, pairs: dict[str, _Pair], threshold: float) -> PhotoErrors:
    """Hits, misses and false alarms at IoU 0.5 among detections scoring at least ``threshold``: the best-scoring
    prefix of each class's detections, whose greedy matches are the same as in the full ranking."""
    hits, misses, alarms = 0, [], []
    for label, pair in pairs.items():
        kept = pair.scores >= threshold
        taken = set(pair.matched[0][kept].tolist()) - {-1}
        hits += len(taken)
        misses += [Miss(box, label) for g, box in enumerate(pair.truth) if g not in taken]
        others = [(other, p.truth) for other, p in pairs.items() if other != label]
        alarms += [_false_alarm(pair.found[d], label, float(pair.scores[d]), pair, others)
                   for d in np.flatnonzero(kept) if pair.matched[0, d] < 0]
    alarms.sort(key=lambda a: -a.score)
    return PhotoErrors(name, hits, tuple(misses), tuple(alarms))


def _detections_by_photo(truth: Sequence[LabelledPhoto],
                         found: Mapping[str, Detections] | Sequence[Detections]) -> list[Detections | None]:
    if isinstance(found, Mapping):
        return [found.get(photo.name) for photo in truth]
    if len(found) != len(truth):
        raise ValueError(f"{len(found)} detection sets for {len(truth)} photos; give one a photo, or a mapping by name")
    return list(found)


def _photo_pairs(photo: LabelledPhoto, found: Detections | None, names: list[str],
                 max_detections: int) -> dict[str, _Pair]:
    """The photo's true boxes and detections split by class (classes with neither left out)."""
    labels = np.asarray(photo.labels, dtype=object)
    det_names = (np.asarray([found.class_names[i] for i in found.labels], dtype=object) if found is not None
                 else np.zeros(0, dtype=object))
    pairs = {}
    for name in names:
        truth = photo.boxes[labels == name] if len(labels) else np.zeros((0, 4))
        mine = det_names == name
        if len(truth) or mine.any():
            boxes = found.boxes[mine].astype(np.float64) if found is not None else np.zeros((0, 4))
            scores = found.scores[mine].astype(np.float64) if found is not None else np.zeros(0)
            pairs[name] = _pair(truth, boxes, scores, max_detections)
    return pairs


def evaluate(truth: Sequence[LabelledPhoto], found: Mapping[str, Detections] | Sequence[Detections],
             classes: Sequence[str] | None = None, score_threshold: float = 0.5,
             max_detections: int = MAX_DETECTIONS) -> DetectionEvaluation:
    """Score ``found`` (a :class:`Detections` per photo, in ``truth``'s order or by photo name) against ``truth``.

    AP uses every detection, as COCO does; the per-photo misses and false alarms only those scoring at least
    ``score_threshold``, as a page shows a detector's output. ``classes`` fixes the order of the results
    (classes found only in the detections are added after).
    """
    by_photo = _detections_by_photo(truth, found)
    seen = [label for photo in truth for label in photo.labels]
    seen += [d.class_names[i] for d in by_photo if d is not None for i in d.labels]
    names = list(dict.fromkeys([*(classes or []), *sorted(set(seen))]))
    all_pairs = [_photo_pairs(photo, dets, names, max_detections) for photo, dets in zip(truth, by_photo)]
    results = tuple(_class_result(name, [p[name] for p in all_pairs if name in p]) for name in names)
    scored = [r for r in results if r.boxes]
    map50 = float(np.mean([r.ap50 for r in scored])) if scored else float("nan")
    map_ = float(np.mean([r.ap for r in scored])) if scored else float("nan")
    photos = tuple(_photo_errors(photo.name, pairs, score_threshold) for photo, pairs in zip(truth, all_pairs))
    return DetectionEvaluation(results, map50, map_, photos, score_threshold)
