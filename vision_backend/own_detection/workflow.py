"""What the page, the command line and the API do with a detection project, in one place.

Train a detector on the project's boxes and keep it (:func:`train_project`: a share of the photos held out, chosen
by the person, to measure it on, the rest to learn from); measure a detector on photos with boxes, as COCO does,
with a COCO detector's boxes beside it where a class is also one of COCO's (:func:`measure`,
:func:`pretrained_beside`); and a
detector's boxes as rows to download (:func:`rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from vision_backend.detections import Detections
from vision_backend.errors import BadInput
from vision_backend.model import Param
from vision_backend.own_detection.annotations import LabelledPhoto
from vision_backend.own_detection.evaluate import DetectionEvaluation, evaluate
from vision_backend.own_detection.maps import Progress, never, nothing, photo_image
from vision_backend.own_detection.projects import DetectionProject, StoredPhoto
from vision_backend.own_detection.trained import KINDS, chosen_settings, held_out

HELD_OUT = Param("held_out", "Photos held out to measure on", 0.2, 0.0, 0.5, 0.05,
                 help="This share of the photos is kept out of training; the detector's AP is measured on them. "
                      "0 trains on every photo (and measures nothing).")
KIND_TITLES = {"fast": "Fast (single shot, anchors: for the live camera)",
               "rcnn": "R-CNN (proposals, a head per region: the deck's way, step by step)"}
AP_SCORE_FLOOR = 0.05
"""Detections scoring at least this are ranked for AP, as COCO takes a detector's output."""


def params(kind: str) -> tuple[Param, ...]:
    """The training settings of ``kind`` as data (the page's widgets, the command line's ``--set``)."""
    if kind not in KINDS:
        raise BadInput(f"A detector here is “fast” or “rcnn”, not “{kind}”.")
    from vision_backend.own_detection import fast, rcnn

    return fast.PARAMS if kind == "fast" else rcnn.PARAMS


def trainer(kind: str) -> Callable[..., Any]:
    from vision_backend.own_detection import fast, rcnn

    return {"fast": fast.train_fast, "rcnn": rcnn.train_rcnn}[kind]


def default_base() -> Any:
    """The frozen base both detectors train on (MobileNetV2: its feature maps run on ONNX Runtime)."""
    from vision_backend.transfer.bases import MOBILENET_V2

    return MOBILENET_V2


def split(photos: Sequence[StoredPhoto], share: float, seed: int = 0) -> tuple[list[StoredPhoto], list[StoredPhoto]]:
    """(photos to learn from, photos held out): a random ``share`` kept back (none for 0), the same for a seed."""
    share = HELD_OUT.coerce(share)
    if share <= 0 or len(photos) < 2:
        return list(photos), []
    return held_out(list(photos), share, seed)


@dataclass(frozen=True)
class Trained:
    """A training's outcome: the detector (with its AP on the held-out photos when any), as kept, and those photos."""

    trained: Any
    saved: Any
    held_out: list[StoredPhoto]
    stopped: bool


def train_project(project: DetectionProject, kind: str, settings: dict[str, Any] | None = None,
                  share: float = HELD_OUT.default, base: Any = None, progress: Progress = nothing,
                  should_stop: Callable[[], bool] = never) -> Trained:
    """Train a ``kind`` detector on the project's boxes, measure it on the held-out ``share`` and keep it with the
    project. ``progress(stage, done, total)`` for proposals, features, training and evaluation; stopped during
    training it keeps (and measures) the head trained so far, before that :class:`~.maps.Stopped`."""
    chosen = chosen_settings(params(kind), settings)
    problems = project.problems()
    if problems:
        raise BadInput(problems[0])
    learn, test = split(project.photos(), share, int(chosen["seed"]))
    classes = [name for name, count in project.counts().items() if count]
    trained = trainer(kind)(project.labelled(learn), classes, base or default_base(), chosen, progress, should_stop)
    stopped = bool(should_stop())
    if test:
        from vision_backend.own_detection.detector import measure as measured

        trained = measured(trained, project.labelled(test), progress)
    saved = project.save_detector(trained, held_out=[p.digest for p in test], held_out_share=HELD_OUT.coerce(share),
                                  stopped=stopped, epochs_done=len(next(iter(trained.history.values()), [])))
    return Trained(trained, saved, test, stopped)


def held_out_photos(project: DetectionProject, saved: Any) -> list[StoredPhoto]:
    """The photos a saved detector was measured on (those still in the project), else every photo with boxes."""
    digests = set(saved.meta.get("held_out") or [])
    photos = project.photos()
    return [p for p in photos if p.digest in digests] or [p for p in photos if p.boxes]


# ---- measuring -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    """A detector run on labelled photos and scored: the evaluation, and each photo's detections (same order)."""

    evaluation: DetectionEvaluation
    photos: list[LabelledPhoto]
    found: list[Detections]


def measure(detector: Any, photos: Sequence[LabelledPhoto], classes: Sequence[str] | None = None,
            score_threshold: float = 0.5, settings: dict[str, Any] | None = None,
            progress: Callable[[int, int], None] | None = None) -> Measured:
    """``detector`` on every photo, every detection scoring 0.05 or more ranked for AP (COCO's way); each photo's
    misses and false alarms among those scoring at least ``score_threshold``."""
    found = []
    for index, photo in enumerate(photos):
        found.append(detector.detect(photo_image(photo), **{**(settings or {}), "score_threshold": AP_SCORE_FLOOR}))
        if progress:
            progress(index + 1, len(photos))
    chosen = list(classes) if classes is not None else list(detector.class_names)
    return Measured(evaluate(photos, found, chosen, score_threshold), list(photos), found)


def coco_names(classes: Sequence[str]) -> dict[str, str]:
    """The classes that are also COCO classes (a case-insensitive match of the name), to COCO's name."""
    from vision_backend.object_detection.coco import COCO_NAMES

    coco = {name.lower(): name for name in COCO_NAMES}
    return {name: coco[name.strip().lower()] for name in classes if name.strip().lower() in coco}


def only(photos: Sequence[LabelledPhoto], classes: Sequence[str]) -> list[LabelledPhoto]:
    """The photos with their boxes of ``classes`` only."""
    kept = []
    for photo in photos:
        mine = np.isin(np.asarray(photo.labels, dtype=object), list(classes)) if photo.labels else np.zeros(0, bool)
        kept.append(LabelledPhoto(photo.name, photo.width, photo.height, photo.boxes[mine],
                                  tuple(np.asarray(photo.labels, dtype=object)[mine]), photo.data))
    return kept


def as_classes(found: Detections, names: dict[str, str]) -> Detections:
    """A COCO detector's boxes of the classes in ``names`` (yours -> COCO's), labelled with your class names."""
    yours = tuple(names)
    coco_to_yours = {coco: index for index, coco in enumerate(names.values())}
    keep = np.array([name in coco_to_yours for name in found.names], bool)
    picked = found[keep] if len(found) else found
    return Detections(picked.boxes, picked.scores, [coco_to_yours[n] for n in picked.names], yours)


def pretrained_beside(photos: Sequence[LabelledPhoto], classes: Sequence[str], pretrained: Any,
                      score_threshold: float = 0.5) -> Measured | None:
    """A detector of COCO's 80 classes (the registry's default, NanoDet) on the same photos, scored on your classes
    that are also COCO's; None when none is. What a pretrained detector does on your photos, beside yours."""
    names = coco_names(classes)
    if not names:
        return None
    photos = only(photos, list(names))
    found = [as_classes(pretrained.detect(photo_image(p), score_threshold=AP_SCORE_FLOOR), names) for p in photos]
    return Measured(evaluate(photos, found, list(names), score_threshold), photos, found)


nanodet_beside = pretrained_beside
"""The name it had first."""


def summary(evaluation: DetectionEvaluation) -> dict[str, Any]:
    """AP50 and AP (0.5:0.95) per class and their means, JSON-ready (a class without boxes: None)."""
    def number(value: float) -> float | None:
        return None if value is None or not np.isfinite(value) else round(float(value), 4)

    return {"ap50": number(evaluation.map50), "ap": number(evaluation.map),
            "per_class": {c.name: {"ap50": number(c.ap50), "ap": number(c.ap), "boxes": c.boxes,
                                   "detections": c.detections, "recall50": number(c.recall50)}
                          for c in evaluation.classes},
            "photos": len(evaluation.photos)}


ROW_COLUMNS = ("photo", "object", "label", "score", "x1", "y1", "x2", "y2")


def rows(found: Detections, photo: str = "") -> list[dict[str, Any]]:
    """A photo's detections as rows to download: photo, object number, label, score and corners (photo pixels)."""
    out = []
    for index, record in enumerate(found.to_records()):
        x1, y1, x2, y2 = record["box_xyxy"]
        out.append({"photo": photo, "object": index + 1, "label": record["label"], "score": record["score"],
                    "x1": x1, "y1": y1, "x2": x2, "y2": y2})
    return out


__all__ = ["HELD_OUT", "KIND_TITLES", "Measured", "ROW_COLUMNS", "Trained", "as_classes", "coco_names", "held_out_photos", "measure",
           "nanodet_beside", "params", "pretrained_beside", "rows", "split", "summary", "train_project"]
