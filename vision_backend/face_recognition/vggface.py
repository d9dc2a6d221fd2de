"""keras-vggface's ResNet50 (VGGFace2), rebuilt for Keras 3, and its published weight file.

keras-vggface 0.6 does not import under Keras 3, and its layer names contain ``/``
(``conv1/7x7_s2/bn``), which Keras 3 forbids. Here the same network is built with ``/``
written as ``__``, and :func:`load_weights` reads the Keras-2 h5 file itself: for every
layer the file lists, its weights go to the layer of the same (mapped) name, and every layer
of the model that has weights must receive them — ``load_weights(by_name=True)`` would
silently load nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np


MEAN_BGR = np.array([91.4953, 103.8827, 131.0912], np.float32)  # keras-vggface utils.preprocess_input(version=2)
GROW = 0.3  # VGGFace2 crops the detector's box extended by 30%

# (stage, filters, blocks, first block's stride)
STAGES = ((2, (64, 64, 256), 3, 1), (3, (128, 128, 512), 4, 2), (4, (256, 256, 1024), 6, 2), (5, (512, 512, 2048), 3, 2))


def keras_name(name: str) -> str:
    return name.replace("/", "__")


def file_name(name: str) -> str:
    return name.replace("__", "/")


def resnet50(pooling: str = "avg") -> Any:
    """keras-vggface ``RESNET50(include_top=False, pooling=...)``: 224x224x3 in, 2048-d out."""
    from vision_backend import engines

    keras = engines.keras()
    layers = keras.layers

    def conv_bn(x: Any, filters: int, size: int, name: str, strides: int = 1, padding: str = "valid") -> Any:
        x = layers.Conv2D(filters, size, strides=strides, padding=padding, use_bias=False, name=keras_name(name))(x)
        return layers.BatchNormalization(axis=3, name=keras_name(name + "/bn"))(x)

    inputs = keras.Input((224, 224, 3))
    x = conv_bn(inputs, 64, 7, "conv1/7x7_s2", strides=2, padding="same")
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for stage, (f1, f2, f3), blocks, stride in STAGES:
        for block in range(1, blocks + 1):
            prefix = f"conv{stage}_{block}"
            y = conv_bn(x, f1, 1, prefix + "_1x1_reduce", strides=stride if block == 1 else 1)
            y = layers.Activation("relu")(y)
            y = conv_bn(y, f2, 3, prefix + "_3x3", padding="same")
            y = layers.Activation("relu")(y)
            y = conv_bn(y, f3, 1, prefix + "_1x1_increase")
            shortcut = conv_bn(x, f3, 1, prefix + "_1x1_proj", strides=stride) if block == 1 else x
            x = layers.Activation("relu")(layers.add([y, shortcut]))
    x = layers.AveragePooling2D((7, 7), name="avg_pool")(x)
    x = layers.GlobalAveragePooling2D()(x) if pooling == "avg" else layers.Flatten()(x)
    return keras.Model(inputs, x, name="vggface_resnet50")


def load_weights(model: Any, path: Path) -> int:
    """Copy every layer's weights from keras-vggface's h5 file by name; returns the layers loaded."""
    import h5py

    with h5py.File(path, "r") as handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        loaded = set()
        for name in names:
            weight_names = [w.decode() if isinstance(w, bytes) else w for w in group[name].attrs["weight_names"]]
            if not weight_names:
                continue
            layer = model.get_layer(keras_name(name))
            values = [np.asarray(group[name][w]) for w in weight_names]
            expected = [tuple(v.shape) for v in layer.weights]
            if [v.shape for v in values] != expected:
                raise ValueError(f"{name}: file has shapes {[v.shape for v in values]}, model {expected}")
            layer.set_weights(values)
            loaded.add(layer.name)
    needing = {layer.name for layer in model.layers if layer.weights}
    if needing - loaded:
        raise ValueError(f"{len(needing - loaded)} layers got no weights, e.g. {sorted(needing - loaded)[:3]}")
    return len(loaded)


def crop(image: np.ndarray, box: np.ndarray, grow: float = GROW) -> np.ndarray:
    """The box grown by ``grow`` of its size on every side (padded with edge pixels), 224x224."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * grow / 2, (y2 - y1) * grow / 2
    a, b, c, d = (int(round(v)) for v in (x1 - dx, y1 - dy, x2 + dx, y2 + dy))
    pad = max(0, -a, -b, c - image.shape[1], d - image.shape[0])
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
    patch = padded[b + pad : d + pad, a + pad : c + pad]
    return cv2.resize(patch, (224, 224), interpolation=cv2.INTER_AREA if patch.shape[0] > 224 else cv2.INTER_LINEAR)


def preprocess(crops: np.ndarray) -> np.ndarray:
    """keras-vggface ``preprocess_input(version=2)``: RGB -> BGR, minus the VGGFace2 channel means."""
    return np.asarray(crops, np.float32)[..., ::-1] - MEAN_BGR
