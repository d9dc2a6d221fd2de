"""How the face detectors work, shown step by step: the integral image, Haar features, the cascade's
funnel, HOG's cells and MTCNN's three stages.

:func:`integral_image` and :func:`rect_sum` give any rectangle's sum from four look-ups; two- and
three-rectangle :func:`haar_feature` values are built on them; :func:`cascade_funnel` is a plain
numpy evaluation of OpenCV's cascade XML that counts how many windows each stage rejects.
:func:`mtcnn_stages` shows the candidates after each of MTCNN's nets.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision_backend import engines
from vision_backend.boxes import iou
from vision_backend.detections import Detections
from vision_backend.face_detection.detectors import MTCNN, mtcnn_rows_to_detections
from vision_backend.imageops import fit_long_side


def integral_image(image: np.ndarray) -> np.ndarray:
    """``ii[y, x]`` = sum of ``image[:y+1, :x+1]``: any rectangle's sum from four look-ups."""
    return np.asarray(image, np.int64).cumsum(axis=0).cumsum(axis=1)


def rect_sum(ii: np.ndarray, x: int, y: int, w: int, h: int) -> int:
    """Sum of the ``w`` x ``h`` rectangle at (x, y): D - B - C + A on the integral image."""
    x2, y2 = x + w - 1, y + h - 1
    total = ii[y2, x2]
    if x > 0:
        total -= ii[y2, x - 1]
    if y > 0:
        total -= ii[y - 1, x2]
    if x > 0 and y > 0:
        total += ii[y - 1, x - 1]
    return int(total)


HAAR_KINDS = {
    "two-rectangle (left/right)": [(0, 0, 1, 2, +1), (1, 0, 1, 2, -1)],
    "two-rectangle (top/bottom)": [(0, 0, 2, 1, +1), (0, 1, 2, 1, -1)],
    "three-rectangle (horizontal)": [(0, 0, 1, 3, +1), (1, 0, 1, 3, -2), (2, 0, 1, 3, +1)],
    "three-rectangle (vertical)": [(0, 0, 3, 1, +1), (0, 1, 3, 1, -2), (0, 2, 3, 1, +1)],
}
"""Each feature as (col, row, cols, rows, weight) cells on a grid: 2x2 or 3x3 equal parts."""


def haar_feature(ii: np.ndarray, kind: str, x: int, y: int, w: int, h: int) -> tuple[int, list[tuple]]:
    """Value of a Haar feature over the box (x, y, w, h) and its weighted rectangles.

    Value = sum of white (+) minus sum of black (-) pixels; a three-rectangle feature's middle
    band weighs -2 so a flat patch gives 0.
    """
    parts = HAAR_KINDS[kind]
    grid_x = max(p[0] + p[2] for p in parts)
    grid_y = max(p[1] + p[3] for p in parts)
    cell_w, cell_h = w // grid_x, h // grid_y
    value, rects = 0, []
    for col, row, cols, rows, weight in parts:
        rect = (x + col * cell_w, y + row * cell_h, cols * cell_w, rows * cell_h)
        value += weight * rect_sum(ii, *rect)
        rects.append((*rect, weight))
    return value, rects


def classic_feature_spots(face: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """Where the classic Haar features sit on a face box (x1, y1, x2, y2): (x, y, w, h) for each kind."""
    x1, y1, x2, y2 = np.asarray(face).astype(int)
    w, h = x2 - x1, y2 - y1
    return {
        "two-rectangle (top/bottom)": (x1 + w // 6, y1 + h // 5, 2 * w // 3, h // 3),  # eyes darker than cheeks
        "three-rectangle (horizontal)": (x1 + w // 4, y1 + h // 5, w // 2, h // 4),  # bridge of the nose
        "two-rectangle (left/right)": (x1 + w // 4, y1 + h // 2, w // 2, h // 3),
        "three-rectangle (vertical)": (x1 + w // 5, y1 + h // 8, 3 * w // 5, h // 2),
    }


@dataclass(frozen=True)
class Cascade:
    """OpenCV's cascade XML, as arrays: stages of decision stumps over weighted rectangles."""

    window: tuple[int, int]
    stage_thresholds: np.ndarray
    stumps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    """Per stage: feature index, node threshold, left leaf, right leaf."""
    rects: list[np.ndarray]
    """Per feature: (k, 5) rows of x, y, w, h, weight."""


@lru_cache(maxsize=4)
def read_cascade(path: str) -> Cascade:
    root = ET.parse(path).getroot().find("cascade")
    window = (int(root.findtext("width")), int(root.findtext("height")))
    thresholds, stumps = [], []
    for stage in root.find("stages"):
        thresholds.append(float(stage.findtext("stageThreshold")))
        nodes = [c for c in stage.find("weakClassifiers")]
        internal = np.array([n.findtext("internalNodes").split() for n in nodes], float)
        leaves = np.array([n.findtext("leafValues").split() for n in nodes], float)
        stumps.append((internal[:, 2].astype(int), internal[:, 3], leaves[:, 0], leaves[:, 1]))
    rects = [
        np.array([r.text.split() for r in feature.find("rects")], float).reshape(-1, 5)
        for feature in root.find("features")
    ]
    return Cascade(window, np.array(thresholds), stumps, rects)


def _box_sums(table: np.ndarray, xs: np.ndarray, ys: np.ndarray, x: float, y: float, w: float, h: float) -> np.ndarray:
    """The sum of the rectangle (x, y, w, h) inside every window at (xs, ys), from a padded integral image."""
    x, y, w, h = int(x), int(y), int(w), int(h)
    return (table[ys + y + h, xs + x + w] - table[ys + y, xs + x + w]
            - table[ys + y + h, xs + x] + table[ys + y, xs + x])


def _level_survivors(cascade: Cascade, level: np.ndarray, step: int, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ``step``-th window of one pyramid level through the stages; adds the survivors of each
    stage to ``counts`` and returns the top-left corners of the windows that pass them all."""
    win_w, win_h = cascade.window
    ii = np.pad(level.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ii2 = np.pad((level**2).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys, xs = np.mgrid[0 : level.shape[0] - win_h + 1 : step, 0 : level.shape[1] - win_w + 1 : step]
    xs, ys = xs.ravel(), ys.ravel()
    # OpenCV normalises by the window's standard deviation, measured 1 px inside the border
    area = (win_w - 2) * (win_h - 2)
    inner = (1, 1, win_w - 2, win_h - 2)
    norm = area * _box_sums(ii2, xs, ys, *inner) - _box_sums(ii, xs, ys, *inner) ** 2
    norm = np.where(norm > 0, np.sqrt(np.maximum(norm, 0)), 1.0)
    alive = np.arange(len(xs))
    counts[0] += len(alive)
    for s, (features, thresholds, left, right) in enumerate(cascade.stumps):
        if not len(alive):
            break
        sub_x, sub_y, sub_norm = xs[alive], ys[alive], norm[alive]
        stage_sum = np.zeros(len(alive))
        for f, t, lv, rv in zip(features, thresholds, left, right):
            value = sum(weight * _box_sums(ii, sub_x, sub_y, x, y, w, h) for x, y, w, h, weight in cascade.rects[f])
            stage_sum += np.where(value < t * sub_norm, lv, rv)
        alive = alive[stage_sum >= cascade.stage_thresholds[s]]
        counts[s + 1] += len(alive)
    return xs[alive], ys[alive]


def cascade_funnel(
    cascade_path: str | Path, image: np.ndarray, scale_factor: float = 1.25, step: int = 2,
    max_side: int = 320, min_size: int = 24,
) -> tuple[list[int], np.ndarray]:
    """Slide the cascade's window over a pyramid and count survivors after each stage.

    A plain numpy evaluation of the XML (variance-normalised features, stumps, stage
    thresholds), as OpenCV does it, without grouping. Returns the windows alive before stage 1
    and after each stage, and the final windows as xyxy boxes in the photo's coordinates.
    """
    cascade = read_cascade(str(cascade_path))
    small, factor = fit_long_side(image, max_side)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float64)
    win_w, win_h = cascade.window
    counts = np.zeros(len(cascade.stumps) + 1, np.int64)
    survivors: list[np.ndarray] = []
    scale = max(1.0, min_size / win_w)
    while grey.shape[1] / scale >= win_w and grey.shape[0] / scale >= win_h:
        level = cv2.resize(grey, (int(grey.shape[1] / scale), int(grey.shape[0] / scale)), interpolation=cv2.INTER_LINEAR)
        xs, ys = _level_survivors(cascade, level, step, counts)
        if len(xs):
            survivors.append(np.c_[xs * scale, ys * scale, (xs + win_w) * scale, (ys + win_h) * scale])
        scale *= scale_factor
    boxes = np.concatenate(survivors) * factor if survivors else np.zeros((0, 4))
    for s in range(1, len(counts)):  # a scale that ran out of windows early still counts as 0
        counts[s] = min(counts[s], counts[s - 1])
    return counts.tolist(), boxes


def windows_overlapping(boxes: np.ndarray, face: np.ndarray, threshold: float = 0.3) -> int:
    return int((iou(boxes, face) >= threshold).sum())


# ---- HOG and MTCNN -------------------------------------------------------------------------
def hog_cells(image: np.ndarray, cell: int = 8, max_side: int = 512) -> np.ndarray:
    """What HOG sees: the dominant gradient orientations per cell, as an image in 0..255."""
    from skimage.feature import hog

    small, _ = fit_long_side(image, max_side)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    if min(grey.shape) < 2 * cell:
        raise ValueError(f"The photo is too small to show {cell}x{cell} HOG cells; pick a larger one.")
    _, picture = hog(grey, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), visualize=True)
    picture = picture / max(float(picture.max()), 1e-9)
    return (np.sqrt(picture) * 255).astype(np.uint8)


def mtcnn_stages(mtcnn: MTCNN, image: np.ndarray, **overrides: Any) -> list[tuple[str, Detections]]:
    """The candidates after P-Net, R-Net and O-Net in turn, in the photo's coordinates."""
    settings = mtcnn.settings(overrides)
    small, factor = fit_long_side(image, settings["max_side"])
    stage_settings = MTCNN.stage_settings(factor, **settings)
    standardise = engines.mtcnn().utils.images.standarize_batch
    normalized, shapes, _ = standardise([small.astype(np.float32)], justification="center", normalize=True)
    rows, out = None, []
    with mtcnn.using() as cascade:
        for stage, name in zip(cascade.stages, ("P-Net", "R-Net", "O-Net")):
            if rows is not None and len(rows) == 0:
                out.append((name, Detections.empty()))
                continue
            rows = np.asarray(stage(bboxes_batch=rows, images_normalized=normalized, images_oshapes=shapes,
                                    **stage_settings))
            found = mtcnn_rows_to_detections(rows, with_landmarks=name == "O-Net")
            out.append((name, found.scaled(factor).clipped(image.shape[1], image.shape[0])))
    return out
