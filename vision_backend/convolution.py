"""Convolution and pooling, written out in numpy so every step can be shown and checked.

A convolutional layer slides small kernels over the image and sums products (strictly a
cross-correlation, as every deep-learning library computes it); ReLU keeps the positive
responses; pooling halves the size by keeping the largest (or mean) value of each 2x2 block.
:func:`conv2d` and :func:`pool2d` follow ``tf.nn.conv2d`` / ``tf.nn.max_pool2d`` exactly,
including how 'same' padding splits the border.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from vision_backend.imageops import fit_long_side

KERNELS: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32),
    "Laplacian edge": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32),
    "Sobel x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32),
    "Sobel y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float32),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32),
    "box blur": np.full((3, 3), 1 / 9, np.float32),
    "Gaussian blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16,
    "emboss": np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32),
    "outline": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32),
    "Gaussian blur 5x5": np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256,
}


def kernel_bank(names: list[str]) -> np.ndarray:
    """The named kernels as one layer's weights, (k, k, 1, n): a smaller kernel sits centred in the
    largest one's square (zeros around it), so it computes what it computes alone."""
    size = max(KERNELS[name].shape[0] for name in names)
    bank = np.zeros((size, size, 1, len(names)), np.float32)
    for i, name in enumerate(names):
        pad = (size - KERNELS[name].shape[0]) // 2
        bank[pad : size - pad, pad : size - pad, 0, i] = KERNELS[name]
    return bank


def working_grey(photo: np.ndarray, long_side: int = 256) -> np.ndarray:
    """The photo in grey, 0..1, long side at most ``long_side``: small enough for numpy convolution live."""
    return fit_long_side(photo, long_side)[0].mean(axis=2).astype(np.float32) / 255.0


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same': output ceil(size / stride); the extra pixel of an odd total goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


def conv2d(image: np.ndarray, kernels: np.ndarray, stride: int = 1, padding: str = "same") -> np.ndarray:
    """(H, W, C_in) image with (k, k, C_in, C_out) kernels -> (H', W', C_out) feature maps.

    A 2-D kernel applies to a single-channel image; a 2-D image is taken as one channel.
    """
    image = np.asarray(image, np.float32)
    kernels = np.asarray(kernels, np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    if kernels.ndim == 2:
        kernels = kernels[:, :, None, None]
    kh, kw = kernels.shape[:2]
    if padding == "same":
        top, bottom = _same_padding(image.shape[0], kh, stride)
        left, right = _same_padding(image.shape[1], kw, stride)
        image = np.pad(image, ((top, bottom), (left, right), (0, 0)))
    elif padding != "valid":
        raise ValueError("padding is 'same' or 'valid'")
    windows = sliding_window_view(image, (kh, kw), axis=(0, 1))[::stride, ::stride]  # (H', W', C_in, kh, kw)
    return np.einsum("hwcij,ijco->hwo", windows, kernels, optimize=True)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def pool2d(maps: np.ndarray, size: int = 2, stride: int = 2, mode: str = "max", padding: str = "valid") -> np.ndarray:
    """Max or average pooling of (H, W[, C]) maps (as ``tf.nn.max_pool2d`` / ``avg_pool2d``)."""
    maps = np.asarray(maps, np.float32)
    squeeze = maps.ndim == 2
    if squeeze:
        maps = maps[:, :, None]
    if padding == "same":
        top, bottom = _same_padding(maps.shape[0], size, stride)
        left, right = _same_padding(maps.shape[1], size, stride)
        fill = -np.inf if mode == "max" else np.nan
        maps = np.pad(maps, ((top, bottom), (left, right), (0, 0)), constant_values=fill)
    windows = sliding_window_view(maps, (size, size), axis=(0, 1))[::stride, ::stride]
    pooled = windows.max(axis=(3, 4)) if mode == "max" else np.nanmean(windows, axis=(3, 4))
    return pooled[:, :, 0] if squeeze else pooled


def pooling_steps(image: np.ndarray, mode: str = "max", smallest: int = 4) -> list[np.ndarray]:
    """Pool 2x2 / stride 2 again and again (224 -> 112 -> 56 -> 28 -> 14 -> 7) and keep every step."""
    steps = [np.asarray(image, np.float32)]
    while min(steps[-1].shape[:2]) // 2 >= smallest:
        steps.append(pool2d(steps[-1], 2, 2, mode))
    return steps


def to_display(feature_map: np.ndarray) -> np.ndarray:
    """A feature map scaled to 0..255 for showing (min-max; a flat map becomes mid grey)."""
    low, high = float(feature_map.min()), float(feature_map.max())
    if high <= low:
        return np.full(feature_map.shape, 128, np.uint8)
    return ((feature_map - low) / (high - low) * 255).astype(np.uint8)


def enlarged(image: np.ndarray, side: int) -> np.ndarray:
    """A small map enlarged by a whole factor towards ``side`` without blurring its pixels (nearest)."""
    factor = max(1, side // max(image.shape[:2]))
    return cv2.resize(image, (image.shape[1] * factor, image.shape[0] * factor), interpolation=cv2.INTER_NEAREST)


# ---- what a real CNN sees ------------------------------------------------------------------
def output_shape(layer: Any) -> tuple | None:
    """A Keras layer's output shape, or None for a layer without one (an unbuilt or multi-output layer)."""
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None


def is_spatial(layer: Any) -> bool:
    """True for a layer whose output is a stack of feature maps (N, H, W, C) larger than 1x1."""
    shape = output_shape(layer)
    return shape is not None and len(shape) == 4 and bool(shape[1]) and shape[1] > 1


def conv_layers(model: Any) -> list[str]:
    """Names of the layers with spatial outputs, input to output (the ones worth looking at)."""
    kinds = {"Conv2D", "DepthwiseConv2D", "ReLU", "Activation"}
    return [layer.name for layer in model.layers if is_spatial(layer) and type(layer).__name__ in kinds]


def feature_maps(model: Any, layer: str, batch: np.ndarray, count: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` most active channels of ``layer`` for one preprocessed image, strongest first.

    Returns the maps (count, H, W) and their channel indices.
    """
    from vision_backend import engines

    probe = engines.keras().Model(model.inputs, model.get_layer(layer).output)
    maps = np.asarray(probe.predict_on_batch(batch[:1]))[0]
    order = np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:count]
    return maps[:, :, order].transpose(2, 0, 1), order
