"""Box geometry a trained detector learns in: anchors on a grid, R-CNN's box regression, and its loss.

A detector never predicts a box's corners: it predicts how to move a box it already has (an anchor, a
proposal) onto the object. R-CNN's parameterisation (Girshick et al. 2014) makes that move independent of
the box's size and position: ``dx = (gx - px) / pw``, ``dy = (gy - py) / ph`` (centres), ``dw = log(gw / pw)``,
``dh = log(gh / ph)``. Each is divided by a fixed spread (0.1, 0.1, 0.2, 0.2, as Fast R-CNN's and SSD's
normalisation) so the four numbers a network learns are about unit size. The loss on them is the smooth
L1 (Huber): quadratic near zero, linear beyond ``beta``, so one far-off box cannot dominate a batch.
"""

from __future__ import annotations

import numpy as np

from vision_backend.object_detection.rcnn import anchor_boxes

SPREAD = np.array([0.1, 0.1, 0.2, 0.2], np.float32)
"""What (dx, dy, dw, dh) are divided by."""
MAX_LOG_SCALE = float(np.log(1000 / 16))
"""The largest dw, dh applied (as torchvision's ``BoxCoder``): exp of a wild guess cannot overflow."""


def centres(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cx, cy, w, h) of xyxy boxes."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w, h


def box_regression(sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The normalised (dx, dy, dw, dh) that move each source box onto its target box (R-CNN's targets)."""
    px, py, pw, ph = centres(sources)
    gx, gy, gw, gh = centres(targets)
    pw, ph = np.maximum(pw, 1e-3), np.maximum(ph, 1e-3)
    deltas = np.stack([(gx - px) / pw, (gy - py) / ph, np.log(np.maximum(gw, 1e-3) / pw),
                       np.log(np.maximum(gh, 1e-3) / ph)], axis=1)
    return (deltas / SPREAD).astype(np.float32)


def apply_regression(sources: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Source boxes moved by normalised deltas (``(..., 4)``, one row per box): :func:`box_regression` undone."""
    px, py, pw, ph = centres(sources)
    d = np.asarray(deltas, np.float32).reshape(-1, 4) * SPREAD
    cx, cy = px + d[:, 0] * pw, py + d[:, 1] * ph
    w = pw * np.exp(np.minimum(d[:, 2], MAX_LOG_SCALE))
    h = ph * np.exp(np.minimum(d[:, 3], MAX_LOG_SCALE))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).reshape(np.shape(deltas))


def smooth_l1(x: np.ndarray, beta: float = 1 / 9) -> tuple[np.ndarray, np.ndarray]:
    """Smooth L1 of each value and its gradient: ``0.5 x² / beta`` below ``beta``, ``|x| - beta / 2`` above."""
    x = np.asarray(x, np.result_type(x, np.float32))
    small = np.abs(x) < beta
    loss = np.where(small, 0.5 * x * x / beta, np.abs(x) - 0.5 * beta)
    return loss, np.where(small, x / beta, np.sign(x)).astype(x.dtype)


def anchors(size: int, cells: int, scales: tuple[float, ...], ratios: tuple[float, ...]) -> np.ndarray:
    """Every anchor of a ``cells`` x ``cells`` feature map over a ``size`` x ``size`` input, ``(cells² A, 4)`` xyxy
    input pixels, in the order a head's output reshapes to: row by row, cell by cell, then the A = scales x
    ratios shapes of a cell (``scales`` in input pixels: the square root of the anchor's area)."""
    stride = size / cells
    shapes = anchor_boxes(0.0, 0.0, tuple(scales), tuple(ratios))  # (A, 4) around the origin
    ys, xs = np.meshgrid((np.arange(cells) + 0.5) * stride, (np.arange(cells) + 0.5) * stride, indexing="ij")
    offsets = np.stack([xs, ys, xs, ys], axis=-1).reshape(-1, 1, 4)
    return (offsets + shapes[None]).reshape(-1, 4).astype(np.float32)
