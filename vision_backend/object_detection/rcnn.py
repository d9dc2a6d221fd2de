"""R-CNN's building blocks to play with: region proposals, anchors, ROI pooling and NMS step by step.

:func:`selective_search` gives R-CNN's proposals, :func:`anchor_boxes` Faster R-CNN's anchors at
one position, :func:`roi_pool` Fast R-CNN's fixed-size grid per proposal, and :func:`nms_steps`
greedy non-maximum suppression written out as a table. :func:`iou_parts`, :func:`medium_proposal` and
:func:`anchor_scales` give the page the numbers it shows, so it computes nothing itself.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from vision_backend.boxes import area, iou
from vision_backend.detections import Detections
from vision_backend.imageops import fit_long_side

MIN_PHOTO_SIDE = 32
"""The smallest photo side the building blocks are shown on: a box needs room to move and a proposal
room to exist (32 px is also the stride of a detector's coarsest grid); smaller photos get a message."""


def selective_search(image: np.ndarray, mode: str = "fast", max_side: int = 480, top: int | None = None) -> Detections:
    """OpenCV's selective search (Uijlings et al.): hierarchical grouping of superpixels.

    Runs on a copy whose long side is at most ``max_side`` (it is slow: seconds at 640x480);
    boxes come back in the photo's pixels, in OpenCV's order (most promising first).
    """
    started = time.perf_counter()
    small, factor = fit_long_side(image, max_side)
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if mode == "quality":
        search.switchToSelectiveSearchQuality()
    else:
        search.switchToSelectiveSearchFast()
    rects = np.asarray(search.process(), np.float32).reshape(-1, 4)
    if top:
        rects = rects[:top]
    boxes = np.c_[rects[:, :2], rects[:, :2] + rects[:, 2:]] * factor
    found = Detections(boxes, np.linspace(1, 0, len(boxes)), np.zeros(len(boxes)), ("proposal",))
    found = found.clipped(image.shape[1], image.shape[0])
    found.meta.update(ms=(time.perf_counter() - started) * 1000, scale=1 / factor)
    return found


def anchor_boxes(cx: float, cy: float, scales: tuple[int, ...] = (64, 128, 256),
                 ratios: tuple[float, ...] = (0.5, 1.0, 2.0)) -> np.ndarray:
    """A Region Proposal Network's anchors at one position: each scale (sqrt of area) at each h/w ratio."""
    boxes = []
    for scale in scales:
        for ratio in ratios:
            w, h = scale / np.sqrt(ratio), scale * np.sqrt(ratio)
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.asarray(boxes, np.float32)


def roi_pool(feature_map: np.ndarray, box: np.ndarray, output: int = 7) -> np.ndarray:
    """Fast R-CNN's ROI pooling: split a box of any size into ``output`` x ``output`` bins, max of each.

    Every proposal becomes the same fixed-size grid, so one head can classify them all.
    """
    height, width = feature_map.shape[:2]
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    xs = np.clip(np.floor(np.linspace(x1, x2, output + 1)).astype(int), 0, width)
    ys = np.clip(np.floor(np.linspace(y1, y2, output + 1)).astype(int), 0, height)
    pooled = np.zeros((output, output) + feature_map.shape[2:], feature_map.dtype)
    for r in range(output):
        for c in range(output):
            cell = feature_map[ys[r] : max(ys[r + 1], ys[r] + 1), xs[c] : max(xs[c + 1], xs[c] + 1)]
            if cell.size:
                pooled[r, c] = cell.max(axis=(0, 1))
    return pooled


def nms_steps(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
              labels: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Greedy NMS written out: which box is kept at each step and which it suppresses.

    With ``labels``, boxes only suppress boxes of their own class (as detectors run it).
    """
    labels = np.zeros(len(boxes), np.int64) if labels is None else np.asarray(labels)
    order = list(np.argsort(-np.asarray(scores), kind="stable"))
    steps = []
    while order:
        best, rest = order[0], order[1:]
        overlaps = iou(boxes[best], boxes[rest])[0] if rest else np.zeros(0)
        overlaps = np.where(labels[rest] == labels[best], overlaps, 0.0) if rest else overlaps
        suppressed = [int(r) for r, o in zip(rest, overlaps) if o > iou_threshold]
        steps.append({"keep": int(best), "score": float(scores[best]), "suppressed": suppressed,
                      "overlaps": {int(r): round(float(o), 3) for r, o in zip(rest, overlaps)}})
        order = [r for r, o in zip(rest, overlaps) if o <= iou_threshold]
    return steps


def iou_parts(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """``(intersection, area_a, area_b, iou)`` of two xyxy boxes: the terms of IoU's fraction, to show the sum."""
    a, b = np.asarray(a, np.float64).reshape(4), np.asarray(b, np.float64).reshape(4)
    overlap = np.r_[np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])]  # area() counts an empty one as 0
    intersection, area_a, area_b = (float(v) for v in area(np.stack([overlap, a, b])))
    return intersection, area_a, area_b, float(iou(a, b)[0, 0])


def medium_proposal(boxes: np.ndarray, image_hw: tuple[int, int], low: float = 0.02, high: float = 0.5) -> int:
    """Index of the largest proposal covering between ``low`` and ``high`` of the photo (0 if none does).

    What ROI pooling is shown on: big enough to see its 7x7 grid, not the whole photo.
    """
    sizes = area(boxes)
    photo = float(image_hw[0] * image_hw[1])
    fits = (sizes > low * photo) & (sizes < high * photo)
    return int(np.argmax(np.where(fits, sizes, 0))) if len(sizes) else 0


def anchor_scales(width: int, height: int) -> tuple[int, int, int]:
    """Three anchor scales sized to the photo (an eighth, a quarter and half of its short side, at least 16 px),
    so the anchors drawn on any photo look like a Region Proposal Network's on its input."""
    base = max(16, min(width, height) // 8)
    return base, base * 2, base * 4
