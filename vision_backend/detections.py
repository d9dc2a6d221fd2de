"""One small structure for everything a detector finds, faces and objects alike.

Parallel numpy arrays, one row per instance: ``boxes`` (N, 4) float32 in pixel ``xyxy``,
``scores`` (N,), integer ``labels`` (N,) indexing ``class_names``, and optionally
``landmarks`` (N, K, 2), ``masks`` (N, H, W) bool, ``tracker_id`` (N,) int (a tracker's persistent
id; -1 for a row no track holds yet) and ``data``: per-row attributes by name, each an array of N
rows (a person's name, an emotion, a distance; roboflow/supervision's ``data``). Indexing with a
boolean mask (or indices) filters every array at once, so thresholds, class filters and NMS are one
line. Drawing lives in :mod:`vision_backend.drawing`, never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] = ("face",)
    landmarks: np.ndarray | None = None
    masks: np.ndarray | None = None
    tracker_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.boxes)
        object.__setattr__(self, "boxes", np.asarray(self.boxes, np.float32).reshape(n, 4))
        object.__setattr__(self, "scores", np.asarray(self.scores, np.float32).reshape(n))
        object.__setattr__(self, "labels", np.asarray(self.labels, np.int64).reshape(n))
        if self.tracker_id is not None:
            object.__setattr__(self, "tracker_id", np.asarray(self.tracker_id, np.int64).reshape(n))
        object.__setattr__(self, "data", {key: _column(value) for key, value in self.data.items()})
        for name, value in (("landmarks", self.landmarks), ("masks", self.masks),
                            *((f"data[{k!r}]", v) for k, v in self.data.items())):
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} rows for {n} boxes")

    @classmethod
    def empty(cls, class_names: tuple[str, ...] = ("face",), landmarks: int = 0) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), class_names,
                   np.zeros((0, landmarks, 2), np.float32) if landmarks else None)

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, keep: Any) -> "Detections":
        """Filter every array by a boolean mask or an index array."""
        keep = np.asarray(keep)
        if keep.dtype != bool:
            keep = keep.astype(np.int64).reshape(-1)
        return self._with(
            boxes=self.boxes[keep], scores=self.scores[keep], labels=self.labels[keep],
            landmarks=None if self.landmarks is None else self.landmarks[keep],
            masks=None if self.masks is None else self.masks[keep],
            tracker_id=None if self.tracker_id is None else self.tracker_id[keep],
            data={key: value[keep] for key, value in self.data.items()},
        )

    def with_data(self, **columns: Any) -> "Detections":
        """A copy with more per-row attributes (each a sequence of one value per row)."""
        return self._with(data={**self.data, **columns})

    def with_ids(self, ids: Any) -> "Detections":
        """A copy whose rows carry these tracker ids (-1: no track)."""
        return self._with(tracker_id=np.asarray(ids, np.int64).reshape(len(self)))

    def _with(self, **changes: Any) -> "Detections":
        """A copy with ``changes``, and its own ``meta`` (a filtered copy must not share the original's)."""
        return replace(self, meta=dict(self.meta), **changes)

    @classmethod
    def merge(cls, parts: list["Detections"]) -> "Detections":
        """One Detections of several with the same classes (a tracker's rows from its two rounds)."""
        if not parts:
            return cls.empty()
        first = parts[0]

        def joined(name: str) -> Any:
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        keys = set(first.data).intersection(*(p.data for p in parts[1:]))
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.labels for p in parts]), first.class_names, joined("landmarks"),
                   joined("masks"), joined("tracker_id"), {k: np.concatenate([p.data[k] for p in parts]) for k in keys},
                   dict(first.meta))

    @property
    def names(self) -> list[str]:
        return [self.class_names[i] for i in self.labels]

    def scaled(self, factor: float) -> "Detections":
        """Boxes and landmarks multiplied by ``factor`` (map a downscaled run back to the photo)."""
        if factor == 1:
            return self
        return self._with(
            boxes=self.boxes * factor,
            landmarks=None if self.landmarks is None else self.landmarks * factor,
        )

    def clipped(self, width: int, height: int) -> "Detections":
        boxes = self.boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        return self._with(boxes=boxes)

    def finite(self) -> "Detections":
        """Only the rows whose box, score and landmarks are finite numbers (a model can return NaN
        on a degenerate input, and a NaN box cannot be drawn, matched or exported)."""
        keep = np.isfinite(self.boxes).all(1) & np.isfinite(self.scores)
        if self.landmarks is not None and len(self):
            keep &= np.isfinite(self.landmarks).reshape(len(self), -1).all(1)
        return self if keep.all() else self[keep]

    def with_area(self) -> "Detections":
        """Only the rows whose box has a width and a height (YuNet gave a zero-area box on a 32x2000 photo)."""
        keep = (self.boxes[:, 2] > self.boxes[:, 0]) & (self.boxes[:, 3] > self.boxes[:, 1])
        return self if keep.all() else self[keep]

    def sorted(self) -> "Detections":
        """Best score first."""
        return self[np.argsort(-self.scores, kind="stable")]

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready rows (box as xyxy pixel floats rounded to 0.1)."""
        rows = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "label": self.class_names[self.labels[i]], "score": round(float(self.scores[i]), 4),
                "box_xyxy": [round(float(v), 1) for v in self.boxes[i]],
            }
            if self.landmarks is not None:
                row["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks[i]]
            if self.masks is not None:
                row["mask_area"] = int(self.masks[i].sum())
            if self.tracker_id is not None:
                row["id"] = int(self.tracker_id[i])
            row.update({key: _plain(value[i]) for key, value in self.data.items()})
            rows.append(row)
        return rows


def _column(value: Any) -> np.ndarray:
    """A per-row attribute as an array (text as an object array, so it never truncates)."""
    if isinstance(value, np.ndarray):
        return value
    values = list(value)
    return np.asarray(values, dtype=object) if any(isinstance(v, str) for v in values) else np.asarray(values)


def _plain(value: Any) -> Any:
    """One attribute value as JSON takes it (numpy scalars and arrays to Python)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    return round(value, 4) if isinstance(value, float) else value
