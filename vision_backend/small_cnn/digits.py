"""Your own digit: a drawing or a photo prepared the way MNIST's digits were."""

from __future__ import annotations

import cv2
import numpy as np


def prepare_digit(image: np.ndarray) -> np.ndarray | None:
    """A drawn or photographed digit made to look like MNIST's, or None if there is no ink.

    As LeCun et al. prepared MNIST: greyscale, white ink on black (inverted if the background
    is light), cropped to the ink, scaled to fit 20x20 keeping the aspect ratio, placed in
    28x28 with its centre of mass at the centre.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 4:  # a canvas: transparent pixels are background
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    grey = image if image.ndim == 2 else cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2GRAY)
    grey = grey.astype(np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:
        grey = 255 - grey
    grey = np.where(grey > 0.25 * grey.max(), grey, 0) if grey.max() > 0 else grey
    rows, cols = np.flatnonzero(grey.max(1) > 0), np.flatnonzero(grey.max(0) > 0)
    if grey.max() < 30 or not len(rows):
        return None
    ink = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    factor = 20.0 / max(ink.shape)
    size = (max(1, round(ink.shape[1] * factor)), max(1, round(ink.shape[0] * factor)))
    small = cv2.resize(ink, size, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - small.shape[0]) // 2, (28 - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    total = canvas.sum()
    cy, cx = (np.indices(canvas.shape) * canvas).reshape(2, -1).sum(1) / total
    shift = np.float32([[1, 0, 13.5 - cx], [0, 1, 13.5 - cy]])  # pixel centres run 0..27
    centred = cv2.warpAffine(canvas, shift, (28, 28), flags=cv2.INTER_LINEAR)
    return (centred / max(centred.max(), 1e-6) * 255).clip(0, 255).astype(np.uint8)
