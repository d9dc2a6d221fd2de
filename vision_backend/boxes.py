"""Box geometry every detector here shares: intersection over union and non-maximum suppression.

Boxes are ``(N, 4)`` arrays of ``x1, y1, x2, y2`` in pixels. Both functions are vectorised
numpy: ``iou`` gives the full ``(N, M)`` matrix, and greedy NMS keeps the best-scoring box,
drops every box overlapping it by more than the threshold, and repeats.
"""

from __future__ import annotations

import numpy as np


def area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union, ``(len(a), len(b))``; 0 where the union is empty."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    union = area(a)[:, None] + area(b)[None, :] - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


def non_max_suppression(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5,
    score_threshold: float = -np.inf, max_output: int | None = None,
) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, best score first (as ``tf.image.non_max_suppression``)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] > score_threshold]
    keep: list[int] = []
    while order.size and (max_output is None or len(keep) < max_output):
        best = order[0]
        keep.append(int(best))
        overlaps = iou(boxes[best], boxes[order[1:]])[0]
        order = order[1:][overlaps <= iou_threshold]
    return np.asarray(keep, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Per-class NMS in one call: boxes of different classes are moved apart so they never overlap."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    boxes = np.asarray(boxes, np.float64)
    offset = np.asarray(labels)[:, None].astype(np.float64) * (float(boxes.max() - boxes.min()) + 1.0)
    return non_max_suppression(boxes + offset, scores, iou_threshold)


def match(predicted: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching at IoU >= ``threshold`` (as detection benchmarks count).

    Returns, for each predicted box, the index of its true box or -1, and the matched IoUs.
    Predictions are taken in the given order (sort by score first).
    """
    overlaps = iou(predicted, truth)
    assigned = np.full(len(predicted), -1, np.int64)
    matched_iou = np.zeros(len(predicted))
    taken = np.zeros(len(truth), bool)
    for i in range(len(predicted)):
        candidates = np.where(~taken & (overlaps[i] >= threshold))[0]
        if candidates.size:
            j = candidates[np.argmax(overlaps[i, candidates])]
            assigned[i], matched_iou[i], taken[j] = j, overlaps[i, j], True
    return assigned, matched_iou
