"""ByteTrack's constant-velocity Kalman filter on a box's centre, aspect ratio and height, for many tracks at once.

The state is ``(cx, cy, a, h, vcx, vcy, va, vh)``: centre, aspect (width / height), height and their velocities
per frame; a box is measured as ``(cx, cy, a, h)``. Noise grows with the box's height (a near object moves
more pixels a frame than a far one), with ByteTrack's weights: 1/20 of the height for positions, 1/160
for velocities. Every function takes a batch, means ``(N, 8)`` and covariances ``(N, 8, 8)``, so a frame of
50 tracks is a handful of numpy calls instead of 50 of each.
"""

from __future__ import annotations

import numpy as np

POSITION_WEIGHT = 1.0 / 20
VELOCITY_WEIGHT = 1.0 / 160

MOTION = np.eye(8)
MOTION[:4, 4:] = np.eye(4)  # x' = x + v (one frame a step)
PROCESS_STD = np.array([POSITION_WEIGHT] * 4 + [VELOCITY_WEIGHT] * 4)
"""Per unit of height; the aspect's entries are replaced by constants."""
MEASUREMENT_STD = np.full(4, POSITION_WEIGHT)
INITIAL_STD = np.array([2 * POSITION_WEIGHT] * 4 + [10 * VELOCITY_WEIGHT] * 4)
"""A new track: twice the position noise, ten times the velocity noise (it has not moved yet)."""


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    height = np.maximum(height, 1e-3)
    return np.stack([boxes[:, 0] + width / 2, boxes[:, 1] + height / 2, width / height, height], axis=1)


def xyah_to_xyxy(states: np.ndarray) -> np.ndarray:
    states = np.asarray(states, np.float64).reshape(-1, states.shape[-1])
    height = np.maximum(states[:, 3], 1e-3)
    width = states[:, 2] * height
    return np.stack([states[:, 0] - width / 2, states[:, 1] - height / 2, states[:, 0] + width / 2,
                     states[:, 1] + height / 2], axis=1)


def _diagonal(std: np.ndarray) -> np.ndarray:
    """``(N, K)`` standard deviations as ``(N, K, K)`` diagonal covariances."""
    out = np.zeros((*std.shape, std.shape[1]))
    index = np.arange(std.shape[1])
    out[:, index, index] = std**2
    return out


def initiate(measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from unmatched boxes ``(N, 4)`` in xyah: at rest, with a wide uncertainty on velocity."""
    measurements = np.asarray(measurements, np.float64).reshape(-1, 4)
    mean = np.concatenate([measurements, np.zeros_like(measurements)], axis=1)
    std = measurements[:, 3:4] * INITIAL_STD
    std[:, [2, 6]] = [1e-2, 1e-5]
    return mean, _diagonal(std)


def predict(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead: the constant-velocity step, plus process noise scaled by each box's height."""
    std = mean[:, 3:4] * PROCESS_STD
    std[:, [2, 6]] = [1e-2, 1e-5]  # the aspect ratio's noise does not grow with the height
    mean = mean @ MOTION.T
    covariance = MOTION @ covariance @ MOTION.T + _diagonal(std)
    return mean, covariance


def project(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The state as a measurement would see it, with the measurement's own noise added."""
    std = mean[:, 3:4] * MEASUREMENT_STD
    std[:, 2] = 1e-1
    return mean[:, :4], covariance[:, :4, :4] + _diagonal(std)


def update(mean: np.ndarray, covariance: np.ndarray, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kalman correction of each track by its matched box (xyah): gain ``P H^T S^-1``."""
    projected, innovation_cov = project(mean, covariance)
    cross = covariance[:, :, :4]  # P H^T
    gain = np.linalg.solve(innovation_cov, cross.transpose(0, 2, 1)).transpose(0, 2, 1)  # S symmetric
    innovation = np.asarray(measurements, np.float64).reshape(-1, 4) - projected
    mean = mean + np.einsum("nij,nj->ni", gain, innovation)
    covariance = covariance - gain @ innovation_cov @ gain.transpose(0, 2, 1)
    return mean, covariance
