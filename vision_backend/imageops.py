"""Image and vector operations every topic shares: fitting photos to a model's input, and the small maths.

Models want a fixed input (a square, a long side, a letterboxed canvas); results come back in
those coordinates and are mapped to the photo's. Scores and embeddings need softmax, sigmoid
and L2 normalisation. Each is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def fit_long_side(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """``image`` shrunk (never enlarged) so its long side is at most ``max_side``.

    Returns the image and the factor that maps its coordinates back to the original.
    """
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return image, 1.0
    factor = max(height, width) / max_side
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def resized(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resized by ``factor`` (area averaging to shrink, bicubic to enlarge)."""
    if factor == 1.0:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor,
                      interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Plain resize to a square (what Keras' ``load_img(target_size=...)`` does)."""
    shrink = min(image.shape[:2]) > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def centre_crop(image: np.ndarray, size: int, short_side: int) -> np.ndarray:
    """Resize the short side, then cut the centre square (the torchvision / ONNX Zoo way)."""
    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    resized_image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized_image[top : top + size, left : left + size]


@dataclass(frozen=True)
class Letterbox:
    """How a photo was fitted into a square input: scale, then padding on each side."""

    scale: float
    pad_x: int
    pad_y: int

    def to_photo(self, boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, np.float32).copy()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.scale
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.scale
        return boxes


def letterbox(image: np.ndarray, size: int, pad_value: int = 0) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad, centred, to ``size`` x ``size``."""
    height, width = image.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.full((size, size, 3), pad_value, np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = small
    return canvas, Letterbox(scale, pad_x, pad_y)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ---- pixel scaling: a model's own preprocessing, as numpy and as Keras layers -------------------
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


@dataclass(frozen=True)
class PixelScaling:
    """How a network wants its 0-255 RGB pixels, in the modes of Keras' ``imagenet_utils``:

    ``tf`` x / 127.5 - 1 (MobileNet, Inception, Xception); ``torch`` x / 255 then ImageNet
    mean and std (DenseNet); ``caffe`` RGB -> BGR minus the BGR means (VGG, ResNet50); ``none``
    (EfficientNet scales inside the model). The same mode gives numpy for inference and Keras
    layers for an exported model, so the two cannot disagree.
    """

    mode: str

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, np.float32)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            return (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        if self.mode == "caffe":
            return x[..., ::-1] - CAFFE_MEAN_BGR
        if self.mode == "none":
            return x
        raise ValueError(f"unknown pixel scaling {self.mode!r}")

    def keras_layers(self, tensor: object) -> object:
        """``tensor`` (raw 0-255 RGB) through Keras layers that do exactly what ``__call__`` does."""
        from vision_backend import engines

        layers = engines.keras().layers
        if self.mode == "tf":
            return layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_minus1_1")(tensor)
        if self.mode == "torch":
            scaled = layers.Rescaling(1 / 255.0, name="scale_to_0_1")(tensor)
            return layers.Normalization(mean=IMAGENET_MEAN, variance=IMAGENET_STD**2, name="imagenet_mean_std")(scaled)
        if self.mode == "caffe":
            # RGB -> BGR and minus the means as one fixed 1x1 convolution
            swap = layers.Conv2D(3, 1, name="rgb_to_bgr_minus_mean", trainable=False)
            out = swap(tensor)
            swap.set_weights([np.eye(3, dtype=np.float32)[::-1].T.reshape(1, 1, 3, 3), -CAFFE_MEAN_BGR])
            return out
        return tensor
