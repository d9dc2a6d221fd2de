"""What training a detector gives: the one ONNX graph to run, the head in its training-time form, and the facts
a saved detector keeps (classes, kind, base, photos and boxes, settings, AP measured).

``graph`` and :meth:`TrainedDetector.meta` are what ``SavedModels.save(stem, data, meta)`` keeps as one unit;
``own_detection.detector.detector_from_saved`` turns them back into a model object.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from vision_backend.errors import BadInput
from vision_backend.model import Param

KINDS = ("fast", "rcnn")


def chosen_settings(params: Sequence[Param], settings: dict[str, Any] | None) -> dict[str, Any]:
    """The params' defaults with ``settings`` applied, each checked (a name no param has is refused)."""
    chosen = {p.name: p.default for p in params}
    known = {p.name: p for p in params}
    for name, value in (settings or {}).items():
        if name not in known:
            raise BadInput(f"training has no setting {name!r}; it has {', '.join(known)}")
        chosen[name] = known[name].coerce(value)
    return chosen


def check_photos(photos: Sequence[Any], classes: Sequence[str]) -> None:
    """A plain message when there is nothing to learn from: no class, or no box of the classes."""
    if not classes:
        raise BadInput("Name at least one class to detect.")
    if not any(label in classes for photo in photos for label in photo.labels):
        raise BadInput(f"None of the {len(photos)} photos has a box of {', '.join(classes)}: draw some first.")


def held_out(photos: Sequence[Any], share: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """(training photos, held-out photos): a random ``share`` kept back to measure AP on (at least one each)."""
    order = np.random.default_rng(seed).permutation(len(photos))
    cut = min(max(1, round(len(photos) * share)), len(photos) - 1) if len(photos) > 1 else 0
    return [photos[i] for i in sorted(order[cut:])], [photos[i] for i in sorted(order[:cut])]


@dataclass(frozen=True)
class TrainedDetector:
    kind: str
    """``fast`` (single shot, anchors) or ``rcnn`` (proposals, ROI-align, a head per region)."""
    classes: tuple[str, ...]
    base: str
    graph: bytes
    """The ONNX graph: the base and the head, raw 0-255 RGB in (see each kind's module for its outputs)."""
    head: Any
    """The head in its training-time form (numpy), for the steps a page shows and the export check."""
    settings: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)
    photos: int = 0
    boxes: int = 0
    seconds: float = 0.0
    evaluation: Any = None
    """An ``own_detection.evaluate.DetectionEvaluation`` on held-out photos, once measured."""

    def meta(self) -> dict[str, Any]:
        """What a saved detector keeps beside its graph (JSON)."""
        measured = self.evaluation
        return {"kind": self.kind, "classes": list(self.classes), "base": self.base, "photos": self.photos,
                "boxes": self.boxes, "settings": dict(self.settings), "train_s": round(self.seconds, 1),
                "input_size": int(self.head.size), **self.head.meta(),
                "ap50": None if measured is None else round(float(measured.map50), 4),
                "ap": None if measured is None else round(float(measured.map), 4),
                "tested_photos": None if measured is None else len(measured.photos)}

    def measured(self, evaluation: Any) -> "TrainedDetector":
        return replace(self, evaluation=evaluation)
